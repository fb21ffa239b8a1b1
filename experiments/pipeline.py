"""The transfer experiment: collect -> pretrain -> probe -> train -> evaluate -> report.

:func:`run` executes an :class:`~experiments.experiment.ExperimentConfig` stage by stage under
``<root>/<name>/``::

    collect/                 stage.json, explore.h5          exploration data
    pretrain/<encoder>/      encoder.safetensors, ...        one run per encoder
    probe/<encoder>.json (+ .stage.json)                     what each encoder captures
    train/<agent>__<seed>/   stage.json, agent.zip, metrics.jsonl, tb/, provenance.json
    eval/<agent>__<seed>.csv/.json (+ .stage.json)           zero-shot returns per episode
    report/                  report.md, results.csv, encoders.csv, learning_curves.png, ...
    summary.json             what the last invocation ran or reused, and how long each took

(:class:`experiments.layout.RunLayout`); each stage is an object of its own module in
:mod:`experiments.stages`.

Every stage is keyed on its resolved config and the sha256 of the content of its inputs
(:mod:`envs.storage.artefacts`): a stage whose key matches a finished attempt is reused, any
other is rebuilt, and so is everything downstream of it (their keys hold the new input's
hash). Artefacts are written under temporary names and renamed, and a stage is marked finished
only after them, so a killed run restarts its unfinished stage cleanly.

Env streams never overlap: collect, the probe's segmentation games, each training seed and the
evaluation draw their per-env seeds from :func:`envs.rng.spawn_seeds` under purposes of their
own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envs.storage.files import atomic_write_json
from experiments.config import ConfigError, to_dict, write_yaml
from experiments.evaluation import evaluate_agent
from experiments.experiment import (
    MAX_EVAL_EPISODE_STEPS,
    AgentStage,
    CollectStage,
    EncoderStage,
    EvalStage,
    ExperimentConfig,
    ProbeStage,
    TrainStage,
    default_config,
    load_experiment,
)
from experiments.layout import RunLayout
from experiments.stages import PIPELINE, STAGES, RunContext
from experiments.stages.probe import segmentation_scores, stage_probe


def _previous_stages(summary: Path) -> dict[str, Any]:
    """The ``stages`` of the last invocation's summary (none: empty)."""
    if not summary.exists():
        return {}
    try:
        return json.loads(summary.read_text()).get("stages", {})
    except ValueError:
        return {}


def _summarise(ctx: RunContext, summary: dict[str, Any], stage: str) -> None:
    """Adds what ``stage`` made to the run's summary."""
    if stage == "collect":
        summary["dataset"] = str(ctx.dataset)
    elif stage == "pretrain":
        summary["encoders"] = {k: str(v.path) for k, v in ctx.encoders.items()}
    elif stage == "probe":
        summary["probes"] = {k: str(v) for k, v in ctx.probes.items()}
    elif stage == "train":
        summary["agents"] = {k: str(v) for k, v in ctx.agents.items()}
    elif stage == "report":
        summary["report"] = str(ctx.layout.report)


def run(
    cfg: ExperimentConfig,
    *,
    until: str = "report",
    on_stage: Callable[[str, float, str], None] | None = None,
) -> dict[str, Any]:
    """Runs the experiment's stages up to ``until``, reusing finished ones; returns a summary.

    Args:
        cfg: the experiment (validated again here, before anything is written).
        until: the last stage to run, one of :data:`STAGES`.
        on_stage: called after each stage with (stage, seconds, "ran" | "reused" | "partly
            reused") (the CLI prints one line each).

    Raises:
        ConfigError: an invalid config or stage name, before anything is written.
    """
    if until not in STAGES:
        raise ConfigError(f"until: expected one of {STAGES}, got {until!r}")
    cfg.validate()
    if cfg.collect.policy == "sb3" and not Path(str(cfg.collect.model_path)).is_file():
        raise ConfigError(
            f"collect.model_path: expected an agent zip, found no file {cfg.collect.model_path}"
        )
    layout = RunLayout.at(cfg.root, cfg.name)
    layout.base.mkdir(parents=True, exist_ok=True)
    # complete as written: ``base: none`` so reloading it (a resume, a benchmark) adds nothing
    write_yaml(layout.config, {"base": "none", **to_dict(cfg)})
    previous = _previous_stages(layout.summary)
    summary: dict[str, Any] = {"experiment": str(layout.base), "stages": {}}
    ctx = RunContext(cfg, layout)
    for stage in PIPELINE[: STAGES.index(until) + 1]:
        if not stage.wanted(ctx):
            continue
        t0 = time.perf_counter()
        status = stage.run(ctx).status
        took = round(time.perf_counter() - t0, 1)
        entry: dict[str, Any] = {"seconds": took, "status": status}
        if status == "reused" and stage.name in previous:  # the time of the run that built it
            old = previous[stage.name]
            entry["built_in_seconds"] = old.get("built_in_seconds", old.get("seconds"))
        summary["stages"][stage.name] = entry
        _summarise(ctx, summary, stage.name)
        if on_stage is not None:
            on_stage(stage.name, took, status)
    summary["seconds"] = round(sum(s["seconds"] for s in summary["stages"].values()), 1)
    atomic_write_json(layout.summary, summary)
    return summary


__all__ = [
    "MAX_EVAL_EPISODE_STEPS",
    "STAGES",
    "AgentStage",
    "CollectStage",
    "EncoderStage",
    "EvalStage",
    "ExperimentConfig",
    "ProbeStage",
    "TrainStage",
    "default_config",
    "evaluate_agent",
    "load_experiment",
    "run",
    "segmentation_scores",
    "stage_probe",
]
