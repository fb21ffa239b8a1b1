"""The report stage: ``report/report.md`` and its tables and plots, from the run's
``eval/``, ``train/`` and ``probe/`` (:func:`experiments.report.build_report`)."""

from __future__ import annotations

from experiments.stages.base import RunContext, Stage, StageResult


class Report(Stage):
    """Writes the report; the source env is the training env where it is also a target."""

    name = "report"

    def run(self, ctx: RunContext) -> StageResult:
        from experiments.report import build_report

        cfg = ctx.cfg
        source = cfg.train.env_id if cfg.train.env_id in cfg.evaluate.env_ids else None
        build_report(
            [ctx.base], ctx.layout.report_dir, source_env=source, baseline=cfg.evaluate.baseline
        )
        return StageResult(0, 1)


__all__ = ["Report"]
