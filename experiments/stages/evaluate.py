"""The evaluate stage: zero-shot returns of every agent, and of a uniform-random reference,
on every target.

One ``eval/<agent>__<seed>.csv`` (one row per episode) and ``.json`` (provenance) per run
(:func:`stage_evaluate`), content-keyed like every stage; the episodes themselves are
:func:`experiments.evaluation.evaluate_agent`'s.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from envs.storage.artefacts import StageDir, stage_key
from envs.storage.files import atomic_path, atomic_write_json, file_sha256, library_version
from experiments.config import to_dict
from experiments.evaluation import Predictor, evaluate_agent, keyed_seed, relative
from experiments.experiment import MAX_EVAL_EPISODE_STEPS, ExperimentConfig
from experiments.layout import RunLayout
from experiments.parallel import bar_position, run_jobs
from experiments.stages.base import RunContext, Stage, StageResult


@dataclass(frozen=True)
class _EvalJob:
    """One run to evaluate on every target (picklable: a worker process runs it).

    ``zip_path`` is the agent's zip; None for the uniform-random reference of ``seed``.
    """

    cfg: ExperimentConfig
    d: Path
    run: str
    zip_path: Path | None
    seed: int
    meta: dict[str, Any]
    inputs: dict[str, Path | None]
    agent_kwargs: dict[str, Any]
    meanings: list[str] | None

    @cached_property
    def stage(self) -> StageDir:
        """The run's evaluation record, keyed on the evaluate block, the env and the inputs
        (worked out once: a worker gets it with the job)."""
        ev = self.cfg.evaluate
        layout = RunLayout(self.d.parent)
        csv_path, meta_path = layout.eval_csv(self.run), layout.eval_json(self.run)
        key = stage_key(
            {"evaluate": to_dict(ev), "env": self.agent_kwargs, "run": self.run}, self.inputs
        )
        return StageDir(self.d, key, [csv_path.name, meta_path.name], name=self.run)

    def model_for(self) -> Callable[[str], Predictor]:
        """Target env id -> the predictor that plays it (the agent, loaded once; or a
        uniform-random policy over that target's actions)."""
        import agents
        import envs
        from envs.exploration import RandomPolicy

        cfg, zip_path = self.cfg, self.zip_path
        if zip_path is not None:
            model = Predictor(lambda: agents.load_agent(zip_path, device=cfg.device))
            return lambda _env_id: model
        ev = cfg.evaluate

        def reference(env_id: str) -> Predictor:
            n_actions = len(envs.action_meanings(env_id, **cfg.train.env_kwargs))
            n_envs, s = min(ev.num_envs, ev.episodes), keyed_seed(self.seed, env_id)
            return Predictor(lambda: RandomPolicy(n_actions, n_envs, seed=s))

        return reference


def _evaluate_one(job: _EvalJob) -> Path:
    """Evaluates one run on every target and mode into ``d/<run>.csv`` (+ ``.json``)."""
    cfg, d, run, agent_kwargs, meanings = job.cfg, job.d, job.run, job.agent_kwargs, job.meanings
    ev = cfg.evaluate
    layout = RunLayout(d.parent)
    csv_path, meta_path = layout.eval_csv(run), layout.eval_json(run)
    stage = job.stage
    stage.begin(resume=False)
    model_for = job.model_for()
    agent_name, seed = run.rsplit("__", 1)
    rows = []
    jobs = [(e, det) for e in ev.env_ids for det in ev.deterministic]
    bar = tqdm(jobs, desc=f"evaluate {run}", mininterval=1.0, position=bar_position())
    for env_id, det in bar:
        res = evaluate_agent(
            model_for(env_id),
            env_id,
            episodes=ev.episodes,
            num_envs=ev.num_envs,
            deterministic=det,
            seed=ev.seed,
            device=cfg.device,
            env_kwargs={**agent_kwargs, **ev.env_kwargs},
            agent_meanings=meanings,
            action_mapping=ev.action_mapping,
        )
        mode = str(det).lower()
        rows += [(agent_name, seed, env_id, i, r, n, mode) for i, (r, n) in enumerate(res)]
    if ev.video and meanings is not None:  # agents, not the random reference
        from experiments.video import record_gif

        for env_id in ev.env_ids:
            slug = env_id.replace("/", "_")
            record_gif(
                model_for(env_id),
                env_id,
                d / "videos" / f"{run}__{slug}.gif",
                seed=ev.seed,
                max_frames=MAX_EVAL_EPISODE_STEPS,
                env_kwargs={**agent_kwargs, **ev.env_kwargs},
                deterministic=True,
                device=cfg.device,
                agent_meanings=meanings,
                action_mapping=ev.action_mapping,
            )
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["agent", "seed", "env_id", "episode", "return", "length", "deterministic"])
        w.writerows(rows)
    atomic_write_json(meta_path, {**job.meta, "reprl_version": library_version()})
    stage.finish()
    return csv_path


def stage_evaluate(
    cfg: ExperimentConfig, base: Path, zips: dict[str, Path]
) -> tuple[list[Path], int]:
    """Zero-shot returns of every agent (and, if configured, of a uniform-random policy per
    seed, the reference row) on every target; one CSV (+ JSON provenance) each.

    ``cfg.jobs > 1`` evaluates that many runs at once (:func:`experiments.parallel.run_jobs`);
    the episodes are the same either way (seeded by ``evaluate.seed`` and the target).

    Returns:
        the CSV paths, and how many were reused.
    """
    import envs

    ev = cfg.evaluate
    d = RunLayout(base).eval_dir
    d.mkdir(parents=True, exist_ok=True)
    by_name = {a.name: a for a in cfg.agents}
    meanings = list(envs.action_meanings(cfg.train.env_id, **cfg.train.env_kwargs))
    jobs: list[_EvalJob] = []
    for run, zip_path in zips.items():
        agent = by_name[run.rsplit("__", 1)[0]]
        train_prov = json.loads((zip_path.parent / "provenance.json").read_text())
        ref = {
            "name": agent.name,
            "path": relative(zip_path, base),
            "sha256": file_sha256(zip_path),
        }
        meta = {"config": {"evaluate": to_dict(ev)}, "agent": ref, "train": train_prov}
        kwargs = {**cfg.train.env_kwargs, **cfg.agent_env_kwargs(agent)}
        seed = int(run.rsplit("__", 1)[1])
        jobs.append(
            _EvalJob(cfg, d, run, zip_path, seed, meta, {"agent": zip_path}, kwargs, meanings)
        )
    if ev.random_baseline:
        for seed in cfg.seeds:
            meta = {
                "config": {"evaluate": to_dict(ev)},
                "agent": {"name": "random", "policy": "uniform random over each target's actions"},
                "train": {"pretraining_domains": None, "budget": None},
            }
            run = f"random__{seed}"
            jobs.append(
                _EvalJob(cfg, d, run, None, seed, meta, {}, dict(cfg.train.env_kwargs), None)
            )
    layout = RunLayout(base)
    todo = [j for j in jobs if not j.stage.done()]
    run_jobs(_evaluate_one, todo, cfg.jobs)
    return [layout.eval_csv(j.run) for j in jobs], len(jobs) - len(todo)


class Evaluate(Stage):
    """Evaluates (or reuses) every trained run into ``ctx.evaluations``."""

    name = "evaluate"

    def wanted(self, ctx: RunContext) -> bool:
        return bool(ctx.cfg.agents)  # none: a probe-only experiment

    def run(self, ctx: RunContext) -> StageResult:
        ctx.evaluations, reused = stage_evaluate(ctx.cfg, ctx.base, ctx.agents)
        return StageResult(reused, len(ctx.evaluations))


__all__ = ["Evaluate", "stage_evaluate"]
