"""The pretrain stage: every encoder of the experiment, on the collect stage's dataset.

Each is one :func:`representations.pretrain.pretrain` run (content-keyed itself) into
``pretrain/<encoder>/``; a ``model`` value ``"@name"`` is the checkpoint of an earlier encoder
(the DAE of a beta-VAE_DAE).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from experiments.experiment import ExperimentConfig
from experiments.layout import RunLayout
from experiments.stages.base import RunContext, Stage, StageResult, mtime, needs_encoders
from representations.checkpoint import Checkpoint


def stage_pretrain(cfg: ExperimentConfig, base: Path, dataset: Path) -> dict[str, Path]:
    """Pretrains (or reuses: :func:`representations.pretrain.pretrain` is content-keyed too)
    every encoder; returns name -> checkpoint path."""
    from representations.pretrain import PretrainConfig, pretrain

    done: dict[str, Path] = {}
    for e in cfg.encoders:
        model = {
            k: str(done[v[1:]]) if isinstance(v, str) and v.startswith("@") else v
            for k, v in e.model.items()
        }
        shared = {f.name for f in fields(PretrainConfig)} & {f.name for f in fields(e)}
        pc = PretrainConfig(
            **{k: getattr(e, k) for k in shared if k != "model"},
            model=model,
            dataset=str(dataset),
            out=str(RunLayout(base).pretrain_dir(e.name)),
            device=cfg.device,
            log_every=max(1, min(50, e.steps // 10)),
            checkpoint_every=max(1, min(500, e.steps)),
        )
        done[e.name] = pretrain(pc)
    return done


class Pretrain(Stage):
    """Pretrains (or reuses) every encoder; each checkpoint is opened once into
    ``ctx.encoders``."""

    name = "pretrain"

    def wanted(self, ctx: RunContext) -> bool:
        return needs_encoders(ctx.cfg)

    def run(self, ctx: RunContext) -> StageResult:
        assert ctx.dataset is not None, "pretrain runs after collect"
        encoders = ctx.cfg.encoders
        before = [mtime(ctx.layout.checkpoint(e.name)) for e in encoders]
        done = stage_pretrain(ctx.cfg, ctx.base, ctx.dataset)
        reused = sum(
            b is not None and b == mtime(ctx.layout.checkpoint(e.name))
            for b, e in zip(before, encoders)
        )
        ctx.encoders = {name: Checkpoint(path) for name, path in done.items()}
        return StageResult(reused, len(encoders))


__all__ = ["Pretrain", "stage_pretrain"]
