"""The train stage: every agent x seed on the source env, with its algorithm's own loop.

One ``train/<agent>__<seed>/`` each (:func:`stage_train`): ``agent.zip`` (a safe zip,
:func:`agents.save_agent`), ``metrics.jsonl`` (cleanrl's keys, :class:`EpisodeLog`), ``tb/``
and ``provenance.json``; a resumable algorithm's run (A3C) checkpoints and resumes
(:data:`A3C_CHECKPOINT`). The algorithms differ only behind :class:`agents.Algorithm`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from envs.storage.artefacts import StageDir, stage_key
from envs.storage.files import atomic_write_json, library_version
from experiments.config import to_dict, write_yaml
from experiments.experiment import AgentStage, ExperimentConfig
from experiments.layout import RunLayout
from experiments.parallel import bar_position, run_jobs
from experiments.stages.base import RunContext, Stage, StageResult, file_ref, open_checkpoint
from representations.checkpoint import Checkpoint


class EpisodeLog(BaseCallback):
    """Writes episodic returns to ``metrics.jsonl`` (cleanrl's keys), shows a progress bar and
    ends training when a wall-clock budget is spent.

    Needs a ``VecMonitor`` below the agent so ``info["episode"]`` exists. Under the device loop
    (:class:`agents.device_ppo.DevicePPO`: no per-env infos) the episodes come in batches, one
    :class:`agents.device_ppo.EpisodeBatch` per rollout in ``locals["episodes"]``, each row with
    the step its episode ended at: the same rows.

    The bar follows the model's ``num_timesteps`` (an A3C's main process calls ``on_step``
    about ten times a second, not once per vector step).

    Args:
        path: the metrics file (created, or appended to with ``append``).
        total: env steps of the run (budget ``steps``), or None.
        seconds: wall-clock seconds of the run (budget ``seconds``), or None.
        desc: the bar's label.
        append: continue the file of a resumed run instead of starting it afresh.
    """

    def __init__(
        self,
        path: Path,
        total: int | None,
        seconds: float | None,
        desc: str,
        *,
        append: bool = False,
    ) -> None:
        super().__init__()
        self.path, self.total, self.seconds, self.desc = path, total, seconds, desc
        self.append = append

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        self.file = self.path.open("a" if self.append else "w")
        self.bar = tqdm(
            total=self.total,
            desc=self.desc,
            unit="step",
            mininterval=1.0,
            position=bar_position(),
            leave=bar_position() == 0,
        )

    def _write(self, global_step: int, ret: float, length: int) -> None:
        row = {
            "global_step": int(global_step),
            "charts/episodic_return": float(ret),
            "charts/episodic_length": int(length),
        }
        self.file.write(json.dumps(row) + "\n")

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            ep = info.get("episode")
            if ep is not None:
                self._write(self.num_timesteps, ep["r"], ep["l"])
        self.bar.update(max(0, int(self.num_timesteps) - self.bar.n))
        return self.seconds is None or time.perf_counter() - self.start < self.seconds

    def _on_rollout_end(self) -> None:
        batch = self.locals.get("episodes")
        if batch is None:  # SB3's loop: written step by step
            return
        for step, ret, length in zip(
            batch.global_step.tolist(), batch.returns.tolist(), batch.lengths.tolist()
        ):
            self._write(step, round(ret, 6), length)
        self.locals["episodes"] = None

    def _on_training_end(self) -> None:
        self.file.close()
        self.bar.close()


def _pretraining_domains(dataset: Path | None) -> list[str] | None:
    if dataset is None:
        return None
    from envs.storage.dataset import FrameDataset

    ds = FrameDataset(dataset)
    try:
        return list(ds.info.domains)
    finally:
        ds.close()


A3C_CHECKPOINT = "checkpoint.zip"
"""An A3C run's checkpoint in its train directory (saved every :data:`A3C_CHECKPOINT_EVERY`
seconds, atomically); an unfinished run with the same key resumes from it."""

A3C_CHECKPOINT_EVERY = 60.0
"""Seconds between an A3C run's checkpoints."""


LATER_BLOCKS: tuple[str, ...] = ("a3c",)
"""Algorithm blocks of ``train`` added after runs were first keyed: a run's key holds one only
when the run uses that algorithm."""

LATER_FIELDS: dict[str, tuple[str, ...]] = {"a3c": ("lstm_hidden_size",)}
"""Fields added later inside a block: left out of a key while unset (0 or none)."""


def train_key(cfg: ExperimentConfig, a: AgentStage, seed: int) -> dict[str, Any]:
    """The resolved config a training run is keyed on. Fields a run does not depend on are
    left out so the runs of older configs keep their keys: the agent's ``algo`` and
    ``lstm_hidden_size`` when they are none, ``train.a3c`` unless the run is an A3C, and its
    ``lstm_hidden_size`` when it is 0 (no LSTM core); ``train.loop`` is the resolved loop
    (:meth:`ExperimentConfig.agent_loop`), left out where it is SB3's (the loop of every
    older run), so a run on the device loop has a key of its own; ``jobs`` where it is not 1
    and the budget is ``seconds`` (the cores a run's seconds buy)."""
    agent, train = to_dict(a), to_dict(cfg.train)
    for key in ("algo", "lstm_hidden_size"):
        if agent[key] is None:
            del agent[key]
    algo = cfg.agent_algo(a)
    for block in LATER_BLOCKS:
        if block != algo:
            del train[block]
    for block, names in LATER_FIELDS.items():
        for name in names:
            if block in train and not train[block][name]:
                del train[block][name]
    loop = cfg.agent_loop(a)
    if loop == "sb3":
        del train["loop"]
    else:
        train["loop"] = loop
    key = {"agent": agent, "train": train, "seed": seed, "device": cfg.device}
    if cfg.jobs != 1 and cfg.train.budget == "seconds":
        key["jobs"] = cfg.jobs
    return key


@dataclass(frozen=True)
class _TrainJob:
    """One agent x seed to train (picklable: a worker process runs it), with its stage
    directory and key, worked out once where the job is made."""

    cfg: ExperimentConfig
    agent: AgentStage
    seed: int
    base: Path
    encoder: Path | Checkpoint | None
    dataset: Path | None
    stage: StageDir
    plain: dict[str, Any]


def _algorithm(cfg: ExperimentConfig, a: AgentStage) -> Any:
    import agents

    return agents.get_algorithm(
        cfg.agent_algo(a),
        cfg.agent_sb3_kwargs(a),
        checkpoint_every=A3C_CHECKPOINT_EVERY,
        loop=cfg.agent_loop(a),
    )


def _stage_dir(
    cfg: ExperimentConfig, a: AgentStage, seed: int, base: Path, enc: Checkpoint | None
) -> tuple[StageDir, dict[str, Any]]:
    """The run's stage directory (keyed on :func:`train_key` and the encoder) and its key."""
    d = RunLayout(base).run_dir(f"{a.name}__{seed}")
    plain = train_key(cfg, a, seed)
    return StageDir(d, stage_key(plain, {"encoder": enc}), ["agent.zip"]), plain


def _train_one(job: _TrainJob) -> Path:
    """Trains one agent x seed into its run directory (module doc); returns its agent zip."""
    import torch
    from stable_baselines3.common.vec_env import VecMonitor

    import agents
    import envs
    from envs.rng import spawn_seeds

    cfg, a, seed, base, t = job.cfg, job.agent, job.seed, job.base, job.cfg.train
    enc = None if job.encoder is None else open_checkpoint(job.encoder)
    budget = agents.Budget(t.budget, t.timesteps if t.budget == "steps" else t.seconds)
    env_kwargs = {**t.env_kwargs, **cfg.agent_env_kwargs(a)}
    sb3_kwargs = cfg.agent_sb3_kwargs(a)
    algorithm = _algorithm(cfg, a)
    num_envs = algorithm.main_envs(t.num_envs)
    run = f"{a.name}__{seed}"
    stage, plain = job.stage, job.plain
    d = stage.path
    ckpt = d / A3C_CHECKPOINT
    # an unfinished or outdated run restarts cleanly; a resumable one with a checkpoint resumes
    resuming = stage.begin(resume=algorithm.resumable)
    if resuming and not ckpt.is_file():  # killed before its first checkpoint
        resuming = stage.begin(resume=False)
    write_yaml(d / "config.yaml", plain)
    torch.manual_seed(seed)
    env_seeds = spawn_seeds(seed, num_envs, purpose="train")
    venv = VecMonitor(
        envs.make_vec(
            t.env_id,
            num_envs,
            seed=env_seeds,
            device=cfg.device,
            info_factors=False,
            **env_kwargs,
        )
    )
    model = agents.make_agent(
        algorithm.name,
        venv,
        encoder=enc,
        mode=a.mode,
        fast=a.fast,
        pixel_extractor=a.pixel_extractor,
        frame_stack=t.frame_stack,
        seed=seed,
        device=cfg.device,
        tensorboard_log=str(d / "tb"),
        **algorithm.agent_kwargs(t.env_id, num_envs, env_kwargs, cfg.device),
        **sb3_kwargs,
    )
    algorithm.check(model)
    left = algorithm.resume(model, ckpt, budget) if resuming else budget
    log = EpisodeLog(
        d / "metrics.jsonl",
        t.timesteps if left.seconds is None else None,
        left.seconds,
        run,
        append=resuming,
    )
    took = algorithm.learn(
        model, left, checkpoint=ckpt, callback=log, resumed=resuming, tb_log_name="sb3"
    )
    venv.close()
    provenance = {
        "run": run,
        "agent": to_dict(a),
        "seed": seed,
        "train": to_dict(t),
        "env_seeds": env_seeds,
        "encoder": file_ref(enc, base),
        "dataset": None if enc is None else file_ref(job.dataset, base),
        "pretraining_domains": None if enc is None else _pretraining_domains(job.dataset),
        "encoder_active_latents": None if enc is None else enc.latent_activity,
        "budget": {
            "kind": t.budget,
            "value": t.timesteps if t.budget == "steps" else t.seconds,
            "env_steps": int(model.num_timesteps),
            "seconds": round(took, 1),
        },
        "train_seconds": round(took, 1),
        "env_steps_per_s": round(model.num_timesteps / max(took, 1e-9)),
        "jobs": cfg.jobs,
        "torch_threads": torch.get_num_threads(),
        "reprl_version": library_version(),
        **algorithm.provenance(model, num_envs, resuming),
    }
    atomic_write_json(d / "provenance.json", provenance)
    info = {
        "env_id": t.env_id,
        "env_kwargs": env_kwargs,
        "action_meanings": list(envs.action_meanings(t.env_id, **t.env_kwargs)),
        "run": run,
    }
    agents.save_agent(model, d / "agent.zip", info=info)  # atomic
    stage.finish()
    ckpt.unlink(missing_ok=True)  # the agent zip holds what the checkpoint did
    return d / "agent.zip"


def stage_train(
    cfg: ExperimentConfig,
    base: Path,
    encoders: Mapping[str, Path | Checkpoint],
    dataset: Path | None,
) -> tuple[dict[str, Path], int]:
    """Trains (or reuses) every agent x seed on the source env.

    Each agent is trained by its own ``algo`` or ``train.algo``, through that algorithm's
    :class:`agents.Algorithm`: the envs of the main process (an A3C splits ``train.num_envs``
    among ``train.a3c.n_workers`` worker processes, each building its own envs), the training
    loop and the algorithm's provenance. A resumable algorithm (A3C) checkpoints to
    :data:`A3C_CHECKPOINT` and, when an unfinished run with the same key left one (a kill,
    Ctrl-C), resumes from it: the remaining steps or seconds, ``metrics.jsonl`` continued.
    Each encoder checkpoint is read once here (workers read their own).

    ``cfg.jobs > 1`` trains that many runs at once (:func:`experiments.parallel.run_jobs`:
    worker processes with the cores shared out as torch threads); the runs of an algorithm
    with processes of its own (A3C) run afterwards, one at a time, in this process.

    Returns:
        run name -> agent zip (in config order), and how many runs were reused.
    """
    out: dict[str, Path] = {}
    reused = 0
    alone: list[_TrainJob] = []  # algorithms with processes of their own
    together: list[_TrainJob] = []
    for a in cfg.agents:
        enc = None if a.encoder is None else open_checkpoint(encoders[a.encoder])
        own = _algorithm(cfg, a).own_processes
        for seed in cfg.seeds:
            run = f"{a.name}__{seed}"
            out[run] = RunLayout(base).run_dir(run) / "agent.zip"
            stage, plain = _stage_dir(cfg, a, seed, base, enc)
            if stage.done():
                reused += 1
                continue
            # a worker reads the encoder itself
            shipped = enc.path if cfg.jobs > 1 and not own and enc is not None else enc
            job = _TrainJob(cfg, a, seed, base, shipped, dataset, stage, plain)
            (alone if own or cfg.jobs == 1 else together).append(job)
    run_jobs(_train_one, together, cfg.jobs)
    for job in alone:
        _train_one(job)
    return out, reused


class Train(Stage):
    """Trains (or reuses) every agent x seed into ``ctx.agents``."""

    name = "train"

    def wanted(self, ctx: RunContext) -> bool:
        return bool(ctx.cfg.agents)  # none: a probe-only experiment

    def run(self, ctx: RunContext) -> StageResult:
        ctx.agents, reused = stage_train(ctx.cfg, ctx.base, ctx.encoders, ctx.dataset)
        return StageResult(reused, len(ctx.agents))


__all__ = [
    "A3C_CHECKPOINT",
    "A3C_CHECKPOINT_EVERY",
    "EpisodeLog",
    "Train",
    "stage_train",
    "train_key",
]
