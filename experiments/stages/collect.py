"""The collect stage: the exploration dataset every encoder is pretrained on.

Random (or an SB3 agent's epsilon-greedy) exploration of ``collect.env_ids`` into
``collect/explore.h5`` (:func:`envs.exploration.collect`), or scenes of several views each for
the scene methods (:func:`envs.scenes.collect_scenes`), keyed on the collect config and the
device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envs.storage.artefacts import StageDir, stage_key
from experiments.config import to_dict, write_yaml
from experiments.experiment import ExperimentConfig
from experiments.layout import RunLayout
from experiments.stages.base import RunContext, Stage, StageResult, needs_encoders


def collect_key(c: Any) -> dict[str, Any]:
    """The collect config as stage keys see it: trajectories keep the keys they had before
    scenes existed (no ``views_per_scene``, ``max_pitch``), so their artefacts stay valid."""
    plain = to_dict(c)
    del plain["trust_pickle"]  # how a zip may be opened, not what is collected
    if not c.views_per_scene:
        del plain["views_per_scene"], plain["max_pitch"]
    return plain


def stage_collect(cfg: ExperimentConfig, base: Path) -> tuple[Path, bool]:
    """Writes (or reuses) the exploration dataset; returns its path and whether it was reused."""
    from envs.exploration import collect

    c = cfg.collect
    out = RunLayout(base).dataset
    stage = StageDir(out.parent, stage_key({**collect_key(c), "device": cfg.device}), [out.name])
    if stage.done():
        return out, True
    stage.begin(resume=False)
    write_yaml(out.parent / "config.yaml", {**to_dict(c), "device": cfg.device})
    if c.views_per_scene:
        from envs.scenes import collect_scenes

        collect_scenes(
            c.env_ids,
            c.frames // c.views_per_scene,
            out,
            views_per_scene=c.views_per_scene,
            num_envs=c.num_envs,
            seed=c.seed,
            env_kwargs=c.env_kwargs,
            max_pitch=c.max_pitch,
            device=cfg.device,
        )
        stage.finish()
        return out, False
    if c.policy == "sb3":
        from agents.exploration import sb3_policy

        policy: Any = sb3_policy(
            str(c.model_path), epsilon=c.epsilon, device=cfg.device, trust_pickle=c.trust_pickle
        )
        policy_kwargs: dict[str, Any] = {}
    else:
        policy = c.policy
        policy_kwargs = {"repeat": c.repeat} if c.policy == "random_repeat" else {}
    collect(
        c.env_ids,
        c.frames,
        out,
        num_envs=c.num_envs,
        seed=c.seed,
        policy=policy,
        policy_kwargs=policy_kwargs,
        env_kwargs=c.env_kwargs,
        device=cfg.device,
    )
    stage.finish()
    return out, False


class Collect(Stage):
    """Writes (or reuses) the exploration dataset into ``ctx.dataset``."""

    name = "collect"

    def wanted(self, ctx: RunContext) -> bool:
        return needs_encoders(ctx.cfg)

    def run(self, ctx: RunContext) -> StageResult:
        ctx.dataset, reused = stage_collect(ctx.cfg, ctx.base)
        return StageResult(int(reused), 1)


__all__ = ["Collect", "collect_key", "stage_collect"]
