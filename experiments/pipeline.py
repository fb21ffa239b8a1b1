"""The transfer experiment: collect -> pretrain -> train -> evaluate -> report.

One :class:`ExperimentConfig` describes the whole flow; :func:`run` executes it stage by stage
under ``<root>/<name>/``::

    collect/          config.yaml, explore.h5               exploration data (source domains)
    pretrain/<enc>/   config.yaml, encoder.safetensors, ...  one run per encoder (see pretrain)
    train/<agent>__<seed>/  config.yaml, agent.zip, metrics.jsonl, tb/, provenance.json
    eval/<agent>__<seed>.csv/.json                          zero-shot returns per episode
    report/           report.md, results.csv, learning_curves.png, zero_shot.png

A stage whose artefact exists for the same resolved config is reused; artefacts are written
under temporary names and renamed, so a killed run restarts the unfinished stage cleanly.
The embedded default (:func:`default_config`) is DARLA on Breakout sized for about 15 minutes
on 2 CPU cores: a frozen beta-VAE_DAE encoder vs pixel PPO, trained on Standard, zero-shot on
the four variants, 2 seeds.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from envs.storage.files import atomic_path, atomic_write_text, file_sha256, library_version
from experiments.config import ConfigError, config_hash, to_dict, write_yaml

BREAKOUT_TARGETS = [
    "reprl/BreakoutStandard-v0",
    "reprl/BreakoutOffsetPaddle-v0",
    "reprl/BreakoutMiddleWall-v0",
    "reprl/BreakoutRandomTarget-v0",
    "reprl/BreakoutJuggling-v0",
]


@dataclass
class CollectStage:
    """Exploration data for pretraining.

    Attributes:
        env_ids: envs to explore (each a domain of the dataset).
        frames: total frames.
        num_envs: parallel envs per id.
        policy: ``random``, ``random_repeat`` or ``sb3``.
        policy_kwargs: extra policy settings (``repeat``, ``model_path``, ``epsilon``).
        env_kwargs: kwargs of every env (e.g. ``obs_size``).
        seed: env and policy seed.
    """

    env_ids: list[str] = field(default_factory=lambda: list(BREAKOUT_TARGETS[:1]))
    frames: int = 20000
    num_envs: int = 64
    policy: str = "random_repeat"
    policy_kwargs: dict[str, Any] = field(default_factory=lambda: {"repeat": 4})
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class EncoderStage:
    """One representation to pretrain.

    Attributes:
        name: the encoder's name in this experiment (agents refer to it).
        method: registry name (``beta_vae``, ``beta_vae_dae``, ``dae``, ...).
        model: constructor kwargs; a string value ``"@other"`` is replaced by the checkpoint
            path of encoder ``other`` (e.g. ``dae: "@dae"`` for beta-VAE_DAE).
        steps: optimiser steps.
        batch_size: frames per step.
        lr: AdamW learning rate.
        seed: initialisation and data-order seed.
    """

    name: str = "beta_vae"
    method: str = "beta_vae"
    model: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 64
    lr: float = 5e-4
    seed: int = 0


@dataclass
class AgentStage:
    """One agent variant to train on the source env.

    Attributes:
        name: the agent's name in tables and run directories.
        encoder: name of an :class:`EncoderStage`, or None for a pixel baseline.
        mode: ``frozen``, ``finetune``, ``scratch`` or ``pixels``.
        fast: frozen encoders: encode once per step in a VecEnv wrapper (same numbers, faster).
    """

    name: str = "pixels"
    encoder: str | None = None
    mode: str = "pixels"
    fast: bool = True


@dataclass
class TrainStage:
    """How every agent is trained.

    Attributes:
        algo: ``ppo`` or ``a2c``.
        env_id: the source env.
        env_kwargs: kwargs of the source env.
        timesteps: env steps per agent and seed.
        num_envs: parallel envs.
        sb3: hyperparameters passed to the SB3 algorithm (``n_steps``, ``batch_size``, ...).
    """

    algo: str = "ppo"
    env_id: str = "reprl/BreakoutStandard-v0"
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"max_episode_steps": 2000})
    timesteps: int = 200_000
    num_envs: int = 16
    sb3: dict[str, Any] = field(
        default_factory=lambda: {
            "n_steps": 128,
            "batch_size": 256,
            "n_epochs": 4,
            "learning_rate": 5e-4,
            "ent_coef": 0.01,
            "gamma": 0.99,
            "gae_lambda": 0.95,
            "clip_range": 0.2,
        }
    )


@dataclass
class EvalStage:
    """Zero-shot evaluation.

    Attributes:
        env_ids: target envs (include the source to measure transfer as a fraction of it).
        env_kwargs: kwargs of every target env (e.g. a time limit).
        episodes: episodes per agent, target and evaluation mode.
        num_envs: parallel envs per evaluation.
        deterministic: evaluation modes to run: True (greedy) and/or False (sampled).
        seed: env seed of the evaluation (distinct from training seeds).
        random_baseline: also evaluate a uniform-random policy, the reference row "random".
    """

    env_ids: list[str] = field(default_factory=lambda: list(BREAKOUT_TARGETS))
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"max_episode_steps": 1000})
    episodes: int = 16
    num_envs: int = 16
    deterministic: list[bool] = field(default_factory=lambda: [True, False])
    seed: int = 10_000
    random_baseline: bool = True


@dataclass
class ExperimentConfig:
    """A whole transfer experiment.

    Attributes:
        name: experiment name (its directory under ``root``).
        root: where experiments live.
        seeds: training seeds; every agent is trained once per seed.
        device: torch device for pretraining, agents and batched envs.
        collect: the exploration data.
        encoders: representations to pretrain, in order (later ones may use earlier ones).
        agents: agent variants.
        train: training of every agent.
        evaluate: zero-shot evaluation.
    """

    name: str = "darla_breakout"
    root: str = "runs"
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    device: str = "cpu"
    collect: CollectStage = field(default_factory=CollectStage)
    encoders: list[EncoderStage] = field(default_factory=list)
    agents: list[AgentStage] = field(default_factory=list)
    train: TrainStage = field(default_factory=TrainStage)
    evaluate: EvalStage = field(default_factory=EvalStage)

    def validate(self) -> None:
        """Checks cross-references and the PPO batch arithmetic before anything runs."""
        names = [e.name for e in self.encoders]
        if len(set(names)) != len(names):
            raise ConfigError(f"encoders: names must be unique, got {names}")
        agent_names = [a.name for a in self.agents]
        if len(set(agent_names)) != len(agent_names):
            raise ConfigError(f"agents: names must be unique, got {agent_names}")
        if not self.seeds:
            raise ConfigError("seeds: expected at least one seed")
        for a in self.agents:
            if a.mode not in ("frozen", "finetune", "scratch", "pixels"):
                raise ConfigError(
                    f"agents.{a.name}.mode: expected frozen, finetune, scratch or pixels, "
                    f"got {a.mode!r}"
                )
            if a.mode == "pixels" and a.encoder is not None:
                raise ConfigError(f"agents.{a.name}: mode 'pixels' takes no encoder")
            if a.mode != "pixels" and a.encoder not in names:
                raise ConfigError(
                    f"agents.{a.name}.encoder: expected one of the encoders {names}, "
                    f"got {a.encoder!r}"
                )
        for i, e in enumerate(self.encoders):
            for k, v in e.model.items():
                if isinstance(v, str) and v.startswith("@") and v[1:] not in names[:i]:
                    raise ConfigError(
                        f"encoders.{e.name}.model.{k}: {v!r} must name an earlier encoder, "
                        f"one of {names[:i]}"
                    )
        if self.train.algo not in ("ppo", "a2c"):
            raise ConfigError(f"train.algo: expected 'ppo' or 'a2c', got {self.train.algo!r}")
        if self.train.algo == "ppo":
            n_steps = int(self.train.sb3.get("n_steps", 2048))
            batch = int(self.train.sb3.get("batch_size", 64))
            rollout = n_steps * self.train.num_envs
            if rollout % batch:
                raise ConfigError(
                    f"train: batch_size {batch} does not divide the rollout n_steps x num_envs ="
                    f" {n_steps} x {self.train.num_envs} = {rollout}"
                )
        if self.evaluate.episodes < 1:
            raise ConfigError(f"evaluate.episodes: expected >= 1, got {self.evaluate.episodes}")


def default_config() -> ExperimentConfig:
    """The embedded default: DARLA on Breakout in about 15 minutes on 2 CPU cores."""
    return ExperimentConfig(
        encoders=[
            EncoderStage(name="dae", method="dae", steps=1500),
            EncoderStage(
                name="beta_vae_dae",
                method="beta_vae_dae",
                steps=2500,
                model={"dae": "@dae", "beta": 1.0, "latent_dim": 32},
            ),
        ],
        agents=[
            AgentStage(name="pixels", mode="pixels"),
            AgentStage(name="darla_frozen", encoder="beta_vae_dae", mode="frozen"),
        ],
    )


# --- helpers ---------------------------------------------------------------------------------
def _same_config(directory: Path, cfg: dict[str, Any]) -> bool:
    f = directory / "config.yaml"
    return f.exists() and yaml.safe_load(f.read_text()) == cfg


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


def _encoder_dataset(checkpoint: Path) -> dict[str, Any] | None:
    """The dataset an encoder was pretrained on (path + sha256), from its checkpoint header."""
    from representations.checkpoint import read_header

    prov = read_header(checkpoint).get("provenance") or {}
    return prov.get("dataset")


# --- stages ----------------------------------------------------------------------------------
def stage_collect(cfg: ExperimentConfig, base: Path) -> Path:
    """Writes (or reuses) the exploration dataset; returns its path."""
    from envs.exploration import collect

    d = base / "collect"
    out = d / "explore.h5"
    plain = {**to_dict(cfg.collect), "device": cfg.device}
    if out.exists() and _same_config(d, plain):
        return out
    d.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    write_yaml(d / "config.yaml", plain)
    c = cfg.collect
    collect(c.env_ids, c.frames, out, num_envs=c.num_envs, seed=c.seed, policy=c.policy,
            policy_kwargs=c.policy_kwargs, env_kwargs=c.env_kwargs, device=cfg.device)  # fmt: skip
    return out


def stage_pretrain(cfg: ExperimentConfig, base: Path, dataset: Path) -> dict[str, Path]:
    """Pretrains (or reuses) every encoder; returns name -> checkpoint path."""
    from representations.pretrain import PretrainConfig, pretrain

    done: dict[str, Path] = {}
    for e in cfg.encoders:
        model = {k: str(done[v[1:]]) if isinstance(v, str) and v.startswith("@") else v
                 for k, v in e.model.items()}  # fmt: skip
        pc = PretrainConfig(method=e.method, model=model, dataset=str(dataset),
                            out=str(base / "pretrain" / e.name), seed=e.seed, steps=e.steps,
                            batch_size=e.batch_size, lr=e.lr, device=cfg.device,
                            log_every=max(1, min(50, e.steps // 10)),
                            checkpoint_every=max(1, min(500, e.steps)))  # fmt: skip
        done[e.name] = pretrain(pc)
    return done


class EpisodeLog(BaseCallback):
    """Writes episodic returns to ``metrics.jsonl`` (cleanrl's keys) and shows a progress bar.

    Needs a ``VecMonitor`` (or ``Monitor``) below the agent so ``info["episode"]`` exists.

    Args:
        path: the metrics file (truncated at training start).
        total: timesteps of the run, for the bar.
        desc: the bar's label.
    """

    def __init__(self, path: Path, total: int, desc: str) -> None:
        super().__init__()
        self.path, self.total, self.desc = path, total, desc

    def _on_training_start(self) -> None:
        self.file = self.path.open("w")
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            ep = info.get("episode")
            if ep is not None:
                row = {"global_step": int(self.num_timesteps),
                       "charts/episodic_return": float(ep["r"]),
                       "charts/episodic_length": int(ep["l"])}  # fmt: skip
                self.file.write(json.dumps(row) + "\n")
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.file.close()
        self.bar.close()


def stage_train(cfg: ExperimentConfig, base: Path, encoders: dict[str, Path]) -> dict[str, Path]:
    """Trains (or reuses) every agent x seed on the source env; returns run name -> zip path."""
    import torch
    from stable_baselines3.common.vec_env import VecMonitor

    import agents
    import envs

    out: dict[str, Path] = {}
    t = cfg.train
    for a in cfg.agents:
        for seed in cfg.seeds:
            run = f"{a.name}__{seed}"
            d = base / "train" / run
            enc = None if a.encoder is None else encoders[a.encoder]
            enc_sha = None if enc is None else file_sha256(enc)
            plain = {"agent": to_dict(a), "train": to_dict(t), "seed": seed, "device": cfg.device,
                     "encoder_sha256": enc_sha}  # fmt: skip
            zip_path = d / "agent.zip"
            if zip_path.exists() and _same_config(d, plain):
                out[run] = zip_path
                continue
            if d.exists():
                shutil.rmtree(d)  # an unfinished or outdated run restarts cleanly
            d.mkdir(parents=True)
            write_yaml(d / "config.yaml", plain)
            torch.manual_seed(seed)
            venv = VecMonitor(envs.make_vec(t.env_id, t.num_envs, seed=seed, device=cfg.device,
                                            **t.env_kwargs))  # fmt: skip
            model = agents.make_agent(t.algo, venv, encoder=None if enc is None else str(enc),
                                      mode=a.mode, fast=a.fast, seed=seed, device=cfg.device,
                                      tensorboard_log=str(d / "tb"), **t.sb3)  # fmt: skip
            start = time.perf_counter()
            model.learn(t.timesteps, callback=EpisodeLog(d / "metrics.jsonl", t.timesteps, run),
                        tb_log_name="sb3")  # fmt: skip
            seconds = time.perf_counter() - start
            venv.close()
            provenance = {
                "run": run, "agent": to_dict(a), "seed": seed, "train": to_dict(t),
                "encoder": None if enc is None else {"path": str(enc), "sha256": enc_sha},
                "dataset": None if enc is None else _encoder_dataset(enc),
                "train_seconds": round(seconds, 1),
                "env_steps_per_s": round(t.timesteps / seconds),
                "reprl_version": library_version(), "config_hash": config_hash(cfg),
            }  # fmt: skip
            _write_json(d / "provenance.json", provenance)
            agents.save_agent(model, zip_path)  # atomic: the zip marks the run as finished
            out[run] = zip_path
    return out


def evaluate_agent(
    model: Any, env_id: str, *, episodes: int, num_envs: int, deterministic: bool, seed: int,
    device: str = "cpu", env_kwargs: dict[str, Any] | None = None,
) -> list[tuple[float, int]]:  # fmt: skip
    """Runs ``model`` on ``env_id`` until ``episodes`` episodes have ended.

    Episodes are spread evenly over the envs (env i runs ``(episodes + i) // num_envs`` of
    them, as SB3's ``evaluate_policy``), so short episodes are not over-represented.

    Returns:
        (return, length) per episode, in completion order.
    """
    import envs

    n = min(num_envs, episodes)
    venv = envs.make_vec(env_id, n, seed=seed, device=device, info_factors=False,
                         **(env_kwargs or {}))  # fmt: skip
    targets = np.array([(episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    ret, length = np.zeros(n), np.zeros(n, dtype=int)
    results: list[tuple[float, int]] = []
    obs = venv.reset()
    while (counts < targets).any():
        actions, _ = model.predict(obs, deterministic=deterministic)
        obs, rewards, dones, _ = venv.step(actions)
        ret += rewards
        length += 1
        for i in np.flatnonzero(dones):
            if counts[i] < targets[i]:
                results.append((float(ret[i]), int(length[i])))
                counts[i] += 1
            ret[i], length[i] = 0.0, 0
    venv.close()
    return results


def _evaluate_one(cfg: ExperimentConfig, d: Path, run: str, model: Any, meta: dict) -> Path:
    """Evaluates ``model`` on every target and mode into ``d/<run>.csv`` (+ ``.json``)."""
    ev = cfg.evaluate
    csv_path, meta_path = d / f"{run}.csv", d / f"{run}.json"
    if csv_path.exists() and meta_path.exists():
        if json.loads(meta_path.read_text()).get("config") == meta["config"]:
            return csv_path
    agent_name, seed = run.rsplit("__", 1)
    rows = []
    jobs = [(e, det) for e in ev.env_ids for det in ev.deterministic]
    for env_id, det in tqdm(jobs, desc=f"evaluate {run}"):
        res = evaluate_agent(model, env_id, episodes=ev.episodes, num_envs=ev.num_envs,
                             deterministic=det, seed=ev.seed, device=cfg.device,
                             env_kwargs=ev.env_kwargs)  # fmt: skip
        rows += [(agent_name, seed, env_id, i, r, n, str(det).lower())
                 for i, (r, n) in enumerate(res)]  # fmt: skip
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["agent", "seed", "env_id", "episode", "return", "length", "deterministic"])
        w.writerows(rows)
    _write_json(meta_path, {**meta, "reprl_version": library_version()})
    return csv_path


def stage_evaluate(cfg: ExperimentConfig, base: Path, zips: dict[str, Path]) -> list[Path]:
    """Zero-shot returns of every agent (and, if configured, of a uniform-random policy as the
    reference row) on every target; one CSV (+ JSON provenance) each."""
    import agents

    ev = cfg.evaluate
    d = base / "eval"
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for run, zip_path in zips.items():
        config = {"evaluate": to_dict(ev), "agent_sha256": file_sha256(zip_path)}
        train_prov = json.loads((zip_path.parent / "provenance.json").read_text())
        meta = {"config": config, "agent": str(zip_path), "train": train_prov}
        model = _Lazy(lambda p=zip_path: agents.load_agent(p, device=cfg.device))
        written.append(_evaluate_one(cfg, d, run, model, meta))
    if ev.random_baseline:
        meta = {"config": {"evaluate": to_dict(ev), "agent": "uniform random"},
                "agent": {"name": "random", "policy": "uniform random actions"}}  # fmt: skip
        import envs
        from envs.exploration import RandomPolicy

        probe = envs.make_vec(ev.env_ids[0], 1, **ev.env_kwargs)
        policy = RandomPolicy(probe.action_space.n, min(ev.num_envs, ev.episodes), seed=0)
        probe.close()
        written.append(_evaluate_one(cfg, d, "random__0", policy, meta))
    return written


class _Lazy:
    """Loads an agent only if it is asked to predict (finished evaluations skip the load)."""

    def __init__(self, load) -> None:
        self._load, self._model = load, None

    def predict(self, obs: np.ndarray, deterministic: bool = True):
        if self._model is None:
            self._model = self._load()
        return self._model.predict(obs, deterministic=deterministic)


STAGES = ("collect", "pretrain", "train", "evaluate", "report")


def run(cfg: ExperimentConfig, *, until: str = "report") -> dict[str, Any]:
    """Runs the experiment's stages up to ``until``, reusing finished ones; returns a summary.

    Args:
        cfg: the experiment.
        until: the last stage to run, one of :data:`STAGES`.

    Raises:
        ConfigError: an invalid config or stage name, before anything runs.
    """
    if until not in STAGES:
        raise ConfigError(f"until: expected one of {STAGES}, got {until!r}")
    cfg.validate()
    last = STAGES.index(until)
    base = Path(cfg.root) / cfg.name
    base.mkdir(parents=True, exist_ok=True)
    write_yaml(base / "config.yaml", to_dict(cfg))
    summary: dict[str, Any] = {"experiment": str(base), "seconds": {}}

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        summary["seconds"][name] = round(time.perf_counter() - t0, 1)
        return result

    encoders: dict[str, Path] = {}
    if cfg.encoders and any(a.mode != "pixels" for a in cfg.agents):
        dataset = timed("collect", stage_collect, cfg, base)
        summary["dataset"] = str(dataset)
        if last >= STAGES.index("pretrain"):
            encoders = timed("pretrain", stage_pretrain, cfg, base, dataset)
            summary["encoders"] = {k: str(v) for k, v in encoders.items()}
    if last >= STAGES.index("train"):
        zips = timed("train", stage_train, cfg, base, encoders)
        summary["agents"] = {k: str(v) for k, v in zips.items()}
        if last >= STAGES.index("evaluate"):
            timed("evaluate", stage_evaluate, cfg, base, zips)
        if last >= STAGES.index("report"):
            from experiments.report import build_report

            source = cfg.train.env_id if cfg.train.env_id in cfg.evaluate.env_ids else None
            timed("report", build_report, [base], base / "report", source_env=source)
            summary["report"] = str(base / "report" / "report.md")
    summary["seconds"]["total"] = round(sum(summary["seconds"].values()), 1)
    _write_json(base / "summary.json", summary)
    return summary


def load_experiment(path: str | None, overrides: list[str]) -> ExperimentConfig:
    """The default config, or a YAML file, plus dotted overrides."""
    from experiments.config import from_dict, merge, parse_overrides

    data = to_dict(default_config())
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a YAML mapping, got {type(loaded).__name__}")
        data = merge(data, loaded)  # mappings merge key by key; lists (encoders, agents) replace
    data = merge(data, parse_overrides(overrides))
    return from_dict(ExperimentConfig, data, where=str(path or "default config"))


__all__ = [
    "AgentStage",
    "CollectStage",
    "EncoderStage",
    "EvalStage",
    "ExperimentConfig",
    "TrainStage",
    "default_config",
    "evaluate_agent",
    "load_experiment",
    "run",
]
