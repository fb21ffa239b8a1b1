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

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from envs.errors import ReprlError
from envs.storage.artefacts import StageDir, stage_key
from envs.storage.files import atomic_write_json, file_sha256, library_version
from experiments.config import ConfigError, to_dict, write_yaml
from experiments.evaluation import evaluate_agent, relative, stage_evaluate
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

STAGES = ("collect", "pretrain", "probe", "train", "evaluate", "report")


def _file_ref(path: Path | None, base: Path) -> dict[str, str] | None:
    return None if path is None else {"path": relative(path, base), "sha256": file_sha256(path)}


# --- collect ---------------------------------------------------------------------------------
def _collect_key(c: Any) -> dict[str, Any]:
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
    out = base / "collect" / "explore.h5"
    stage = StageDir(out.parent, stage_key({**_collect_key(c), "device": cfg.device}), [out.name])
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


# --- pretrain --------------------------------------------------------------------------------
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
        pc = PretrainConfig(
            method=e.method,
            model=model,
            dataset=str(dataset),
            out=str(base / "pretrain" / e.name),
            seed=e.seed,
            steps=e.steps,
            batch_size=e.batch_size,
            lr=e.lr,
            device=cfg.device,
            log_every=max(1, min(50, e.steps // 10)),
            checkpoint_every=max(1, min(500, e.steps)),
        )
        done[e.name] = pretrain(pc)
    return done


# --- probe -----------------------------------------------------------------------------------
SEGMENTATION_PURPOSE = "probe_segmentation"
"""The :func:`envs.rng.spawn_seeds` purpose of the games the segmentation scores are taken on
(no collect, training or evaluation stream)."""


def _can_decompose(encoder: Path) -> bool:
    """Whether the checkpoint's method splits a frame into masks (has ``decompose``)."""
    from representations import get_class, read_header

    return callable(getattr(get_class(read_header(encoder)["method"]), "decompose", None))


def segmentation_scores(
    model: Any,
    env_id: str,
    num_frames: int,
    *,
    seed: int,
    device: str = "cpu",
    env_kwargs: dict[str, Any] | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """ARI and foreground ARI of a decomposing encoder's masks against the ground truth.

    Frames come from :func:`envs.segmentation.segmented_frames` (uniformly random games seeded
    with ``seed``); each pixel's predicted object is its most probable mask
    (:func:`representations.metrics.segmentation.masks_to_ids`).

    Args:
        model: a representation with ``decompose(obs) -> {"masks": (B, K, 1, H, W)}`` (obs
            ``(B, C, H, W)`` float32 in [0, 1]) and ``to_model_input``.
        env_id: an env with a segmentation (:func:`envs.segmentation.has_segmentation`).
        num_frames: frames to score, >= 1.
        seed: seed of the games.
        device: torch device of the games.
        env_kwargs: kwargs of the env (those the encoder's training frames were made with).
        batch_size: frames per ``decompose`` call.

    Returns:
        ``{"ari", "fg_ari", "frames", "env_id"}``: the mean per-frame ARI over all pixels and
        over the pixels whose true object is an object (not one of
        :func:`envs.segmentation.background_ids`: the Lab's floor and walls are left out too),
        each in [-1, 1] (1: the
        true partition up to relabelling, about 0: chance).
    """
    import numpy as np
    import torch

    from envs.segmentation import background_ids, segmented_frames
    from representations.base import check_frame_shape
    from representations.metrics.segmentation import adjusted_rand_index, masks_to_ids

    frames, true_ids = segmented_frames(
        env_id, num_frames, seed=seed, device=device, **(env_kwargs or {})
    )
    check_frame_shape(model.input_spec, frames.shape[1:], f"segmented frames of {env_id}")
    model.eval()
    pred = []
    with torch.inference_mode():
        for lo in range(0, len(frames), batch_size):
            x = model.to_model_input(torch.from_numpy(frames[lo : lo + batch_size]))
            pred.append(masks_to_ids(model.decompose(x)["masks"]))
    pred_ids = np.concatenate(pred)
    background = background_ids(env_id)  # every non-object id, as one label FG-ARI ignores
    fg_true = np.where(np.isin(true_ids, background), background[0], true_ids)
    return {
        "ari": adjusted_rand_index(true_ids, pred_ids),
        "fg_ari": adjusted_rand_index(fg_true, pred_ids, ignore=background[0]),
        "frames": len(frames),
        "env_id": env_id,
    }


PREDICTION_PURPOSE = "probe_prediction"
"""Seed purpose of the fresh episodes a sequence method's predictions are scored on."""


def _batch_kind(encoder: Path) -> str:
    """What the checkpoint's method trains on (``Representation.batch_kind``)."""
    from representations import get_class, read_header

    return get_class(read_header(encoder)["method"]).batch_kind


def prediction_scores(cfg: ExperimentConfig, model: Any, base: Path) -> dict[str, Any]:
    """A sequence method's objective (CPC: top-1 accuracy per k, chance) on fresh episodes.

    ``probe.sequence_frames`` frames of the collect envs, with the collect policy and env
    kwargs but env streams of their own (:data:`PREDICTION_PURPOSE`): episodes the encoder
    never trained on. They are collected into a temporary file beside the probe files and
    deleted after.
    """
    import tempfile

    from envs.exploration import collect
    from envs.rng import spawn_seeds
    from representations.analysis import sequence_scores

    c, p = cfg.collect, cfg.probe
    policy = "random" if c.policy == "sb3" else c.policy
    seed = spawn_seeds(p.seed, 1, purpose=PREDICTION_PURPOSE)[0]
    with tempfile.TemporaryDirectory(dir=base / "probe") as tmp:
        data = Path(tmp) / "fresh.h5"
        collect(
            c.env_ids,
            p.sequence_frames,
            data,
            num_envs=c.num_envs,
            seed=seed,
            policy=policy,
            policy_kwargs={"repeat": c.repeat} if policy == "random_repeat" else {},
            env_kwargs=c.env_kwargs,
            device=cfg.device,
            progress=False,
        )
        try:
            scores = sequence_scores(model, data, seed=p.seed)
        except ReprlError as e:
            return {"skipped": str(e)}
    return {"frames": p.sequence_frames, "policy": policy, **scores}


RENDERING_PURPOSE = "probe_rendering"
"""Seed purpose of the fresh scenes a scene method's renderings are scored on."""


def fresh_rendering_scores(cfg: ExperimentConfig, model: Any, base: Path) -> dict[str, Any]:
    """A scene method's (GQN's) rendering of held-back views of fresh scenes, and the baseline.

    ``probe.rendering_scenes`` scenes of the collect envs with the collect stage's views per
    scene, env kwargs and pitch, but worlds and cameras of their own
    (:data:`RENDERING_PURPOSE`): scenes the encoder never trained on. Each scene's last view is
    rendered from the others (:func:`representations.analysis.rendering_scores`). The scenes
    are written to a temporary file beside the probe files and deleted after.
    """
    import tempfile

    from envs.rng import spawn_seeds
    from envs.scenes import collect_scenes
    from representations.analysis import rendering_scores

    c, p = cfg.collect, cfg.probe
    seed = spawn_seeds(p.seed, 1, purpose=RENDERING_PURPOSE)[0]
    with tempfile.TemporaryDirectory(dir=base / "probe") as tmp:
        data = Path(tmp) / "fresh_scenes.h5"
        collect_scenes(
            c.env_ids,
            p.rendering_scenes,
            data,
            views_per_scene=c.views_per_scene,
            num_envs=min(c.num_envs, p.rendering_scenes),
            seed=seed,
            env_kwargs=c.env_kwargs,
            max_pitch=c.max_pitch,
            device=cfg.device,
            progress=False,
        )
        try:
            scores = rendering_scores(model, data)
        except ReprlError as e:
            return {"skipped": str(e)}
    return {"env_ids": list(c.env_ids), **scores}


def stage_probe(
    cfg: ExperimentConfig, base: Path, dataset: Path, encoders: dict[str, Path]
) -> dict[str, Path]:
    """Scores (or reuses) every encoder against the dataset's ground-truth factors.

    One ``probe/<encoder>.json`` each: the JSON-plain results of
    :func:`representations.analysis.probe` on ``probe.frames`` frames (linear probes per
    factor, MIG, DCI, ... as ``probe.metrics`` asks), with ``encoder`` (the name in this
    experiment), ``method``, ``latent_dim``, ``active_latents`` (as pretraining measured them,
    or null), ``checkpoint`` and ``dataset`` (path relative to the experiment, sha256), the
    probe config and, for an encoder with ``decompose``, ``segmentation``
    (:func:`segmentation_scores`, or ``{"skipped": reason, "env_id": ...}`` where the collect
    env has no ground-truth segmentation). Where the metrics cannot score the dataset (it
    records no factors, as ALE datasets; every factor is constant) the file says why in
    ``skipped`` instead of failing the experiment. Keyed on the probe config, the device and
    the content of encoder and dataset.

    Returns:
        encoder name -> its probe JSON.
    """
    import representations as R
    from envs.rng import spawn_seeds
    from envs.segmentation import has_segmentation
    from representations.analysis import probe

    p = cfg.probe
    d = base / "probe"
    d.mkdir(parents=True, exist_ok=True)
    env_id = cfg.collect.env_ids[0]
    out: dict[str, Path] = {}
    for name, enc in tqdm(encoders.items(), desc="probe", unit="encoder", mininterval=1.0):
        seg = p.segmentation_frames > 0 and _can_decompose(enc)
        plain: dict[str, Any] = {
            "encoder": name,
            "frames": p.frames,
            "metrics": list(p.metrics),
            "seed": p.seed,
            "device": cfg.device,
        }
        if seg:  # only decomposing encoders depend on the segmentation settings
            plain["segmentation"] = {
                "frames": p.segmentation_frames,
                "env_id": env_id,
                "env_kwargs": cfg.collect.env_kwargs,
            }
        seq = p.sequence_frames > 0 and _batch_kind(enc) == "sequences"
        if seq:  # only sequence methods depend on the fresh episodes' settings
            plain["prediction"] = {
                "frames": p.sequence_frames,
                "collect": _collect_key(cfg.collect),
            }
        scenes = p.rendering_scenes > 0 and _batch_kind(enc) == "scenes"
        if scenes:  # only scene methods depend on the fresh scenes' settings
            plain["rendering"] = {
                "scenes": p.rendering_scenes,
                "collect": _collect_key(cfg.collect),
            }
        path = d / f"{name}.json"
        stage = StageDir(
            d, stage_key(plain, {"encoder": enc, "dataset": dataset}), [path.name], name=name
        )
        out[name] = path
        if stage.done():
            continue
        stage.begin(resume=False)
        t0 = time.perf_counter()
        model = R.load(enc, device=cfg.device)
        try:
            results = probe(model, dataset, max_frames=p.frames, metrics=p.metrics, seed=p.seed)
        except ReprlError as e:  # data the metrics cannot score (no factors: ALE): say why
            results = {"skipped": f"factor metrics not computed: {e}"}
        results.pop("encoder", None)
        results.pop("dataset", None)
        record: dict[str, Any] = {
            "encoder": name,
            "method": model.name,
            "latent_dim": model.latent_dim,
            "active_latents": _active_latents(enc),
            "checkpoint": _file_ref(enc, base),
            "dataset": _file_ref(dataset, base),
            "config": {k: v for k, v in plain.items() if k != "encoder"},
            **results,
        }
        if seg and has_segmentation(env_id):
            record["segmentation"] = segmentation_scores(
                model,
                env_id,
                p.segmentation_frames,
                seed=spawn_seeds(p.seed, 1, purpose=SEGMENTATION_PURPOSE)[0],
                device=cfg.device,
                env_kwargs=cfg.collect.env_kwargs,
            )
        elif seg:
            record["segmentation"] = {
                "skipped": f"{env_id} (the collect env) has no ground-truth segmentation",
                "env_id": env_id,
            }
        if seq:
            record["prediction"] = prediction_scores(cfg, model, base)
        if scenes:
            record["rendering"] = fresh_rendering_scores(cfg, model, base)
        record["seconds"] = round(time.perf_counter() - t0, 1)
        record["reprl_version"] = library_version()
        atomic_write_json(path, record)
        stage.finish()
    return out


# --- train -----------------------------------------------------------------------------------
class EpisodeLog(BaseCallback):
    """Writes episodic returns to ``metrics.jsonl`` (cleanrl's keys), shows a progress bar and
    ends training when a wall-clock budget is spent.

    Needs a ``VecMonitor`` below the agent so ``info["episode"]`` exists.

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
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step", mininterval=1.0)

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            ep = info.get("episode")
            if ep is not None:
                row = {
                    "global_step": int(self.num_timesteps),
                    "charts/episodic_return": float(ep["r"]),
                    "charts/episodic_length": int(ep["l"]),
                }
                self.file.write(json.dumps(row) + "\n")
        self.bar.update(max(0, int(self.num_timesteps) - self.bar.n))
        return self.seconds is None or time.perf_counter() - self.start < self.seconds

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


def _active_latents(encoder: Path) -> dict[str, Any] | None:
    """``{"active", "latent_dim", "variational"}`` as the encoder's pretraining measured them
    (``None`` if it did not)."""
    from representations.checkpoint import read_header

    activity = (read_header(encoder).get("provenance") or {}).get("latent_activity")
    if not isinstance(activity, dict):
        return None
    return {k: activity[k] for k in ("active", "latent_dim", "variational")}


A3C_CHECKPOINT = "checkpoint.zip"
"""An A3C run's checkpoint in its train directory (saved every :data:`A3C_CHECKPOINT_EVERY`
seconds, atomically); an unfinished run with the same key resumes from it."""

A3C_CHECKPOINT_EVERY = 60.0
"""Seconds between an A3C run's checkpoints."""


def _train_key(cfg: ExperimentConfig, a: AgentStage, seed: int) -> dict[str, Any]:
    """The resolved config a training run is keyed on. Fields a run does not depend on are
    left out so the runs of older configs keep their keys: the agent's ``algo`` and
    ``lstm_hidden_size`` when they are none, ``train.a3c`` unless the run is an A3C, and its
    ``lstm_hidden_size`` when it is 0 (no LSTM core)."""
    agent, train = to_dict(a), to_dict(cfg.train)
    for key in ("algo", "lstm_hidden_size"):
        if agent[key] is None:
            del agent[key]
    if cfg.agent_algo(a) != "a3c":
        del train["a3c"]
    elif not train["a3c"]["lstm_hidden_size"]:
        del train["a3c"]["lstm_hidden_size"]
    return {"agent": agent, "train": train, "seed": seed, "device": cfg.device}


def stage_train(
    cfg: ExperimentConfig, base: Path, encoders: dict[str, Path], dataset: Path | None
) -> tuple[dict[str, Path], int]:
    """Trains (or reuses) every agent x seed on the source env.

    Each agent is trained by its own ``algo`` or ``train.algo``. An A3C run splits
    ``train.num_envs`` among ``train.a3c.n_workers`` worker processes (each builds its own
    envs, :class:`agents.a3c.WorkerEnvs`), checkpoints to :data:`A3C_CHECKPOINT` and, when an
    unfinished run with the same key left one (a kill, Ctrl-C), resumes from it: the
    remaining steps or seconds, ``metrics.jsonl`` continued.

    Returns:
        run name -> agent zip, and how many runs were reused.
    """
    import torch
    from stable_baselines3.common.vec_env import VecMonitor

    import agents
    import envs
    from envs.rng import spawn_seeds

    out: dict[str, Path] = {}
    reused = 0
    t = cfg.train
    meanings = list(envs.action_meanings(t.env_id, **t.env_kwargs))
    for a in cfg.agents:
        enc = None if a.encoder is None else encoders[a.encoder]
        env_kwargs = {**t.env_kwargs, **cfg.agent_env_kwargs(a)}
        algo = cfg.agent_algo(a)
        a3c = algo == "a3c"
        # an A3C's main process only holds one worker's worth of envs, for the spaces
        num_envs = t.num_envs // t.a3c.n_workers if a3c else t.num_envs
        for seed in cfg.seeds:
            run = f"{a.name}__{seed}"
            d = base / "train" / run
            plain = _train_key(cfg, a, seed)
            stage = StageDir(d, stage_key(plain, {"encoder": enc}), ["agent.zip"])
            if stage.done():
                out[run], reused = d / "agent.zip", reused + 1
                continue
            ckpt = d / A3C_CHECKPOINT
            # an unfinished or outdated run restarts cleanly; an A3C with a checkpoint resumes
            resuming = stage.begin(resume=a3c)
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
            env_fn = None
            if a3c:
                env_fn = agents.WorkerEnvs(
                    t.env_id, num_envs, {"info_factors": False, **env_kwargs}, device=cfg.device
                )
            model = agents.make_agent(
                algo,
                venv,
                encoder=None if enc is None else str(enc),
                mode=a.mode,
                fast=a.fast,
                pixel_extractor=a.pixel_extractor,
                frame_stack=t.frame_stack,
                seed=seed,
                device=cfg.device,
                tensorboard_log=str(d / "tb"),
                env_fn=env_fn,
                **cfg.agent_sb3_kwargs(a),
            )
            steps = t.timesteps if t.budget == "steps" else 10**12
            seconds = t.seconds if t.budget == "seconds" else None
            learn_kwargs: dict[str, Any] = {}
            if a3c:
                learn_kwargs = {"checkpoint": ckpt, "checkpoint_every": A3C_CHECKPOINT_EVERY}
            if resuming:
                model.load_checkpoint(ckpt)
                learn_kwargs["reset_num_timesteps"] = False
                if seconds is None:
                    steps = t.timesteps - model.num_timesteps
                else:
                    seconds = max(0.0, seconds - model.a3c_seconds)
            log = EpisodeLog(
                d / "metrics.jsonl",
                t.timesteps if seconds is None else None,
                seconds,
                run,
                append=resuming,
            )
            start = time.perf_counter()
            if steps > 0 and (seconds is None or seconds > 0):
                model.learn(steps, callback=log, tb_log_name="sb3", **learn_kwargs)
            took = time.perf_counter() - start
            venv.close()
            if a3c:  # every session of a resumed run
                took = model.a3c_seconds
            provenance = {
                "run": run,
                "agent": to_dict(a),
                "seed": seed,
                "train": to_dict(t),
                "env_seeds": env_seeds,
                "encoder": _file_ref(enc, base),
                "dataset": None if enc is None else _file_ref(dataset, base),
                "pretraining_domains": None if enc is None else _pretraining_domains(dataset),
                "encoder_active_latents": None if enc is None else _active_latents(enc),
                "budget": {
                    "kind": t.budget,
                    "value": t.timesteps if t.budget == "steps" else t.seconds,
                    "env_steps": int(model.num_timesteps),
                    "seconds": round(took, 1),
                },
                "train_seconds": round(took, 1),
                "env_steps_per_s": round(model.num_timesteps / max(took, 1e-9)),
                "reprl_version": library_version(),
            }
            if a3c:
                provenance["a3c"] = {
                    "n_workers": model.n_workers,
                    "envs_per_worker": num_envs,
                    "updates_per_worker": model.a3c_stats["updates"],
                    "env_steps_per_worker": model.a3c_stats["env_steps"],
                    "resumed": resuming,
                }
            atomic_write_json(d / "provenance.json", provenance)
            info = {
                "env_id": t.env_id,
                "env_kwargs": env_kwargs,
                "action_meanings": meanings,
                "run": run,
            }
            agents.save_agent(model, d / "agent.zip", info=info)  # atomic
            stage.finish()
            ckpt.unlink(missing_ok=True)  # the agent zip holds what the checkpoint did
            out[run] = d / "agent.zip"
    return out, reused


# --- run -------------------------------------------------------------------------------------
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
    last = STAGES.index(until)
    base = Path(cfg.root) / cfg.name
    base.mkdir(parents=True, exist_ok=True)
    write_yaml(base / "config.yaml", to_dict(cfg))
    previous: dict[str, Any] = {}
    if (base / "summary.json").exists():
        try:
            previous = json.loads((base / "summary.json").read_text()).get("stages", {})
        except ValueError:
            previous = {}
    summary: dict[str, Any] = {"experiment": str(base), "stages": {}}

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        result, reused, total = fn(*args)
        took = round(time.perf_counter() - t0, 1)
        status = "reused" if reused == total else "partly reused" if reused else "ran"
        entry: dict[str, Any] = {"seconds": took, "status": status}
        if status == "reused" and name in previous:  # keep the time of the run that built it
            entry["built_in_seconds"] = previous[name].get(
                "built_in_seconds", previous[name].get("seconds")
            )
        summary["stages"][name] = entry
        if on_stage is not None:
            on_stage(name, took, status)
        return result

    encoders: dict[str, Path] = {}
    dataset: Path | None = None
    if cfg.encoders and any(a.mode != "pixels" for a in cfg.agents):

        def collect_() -> tuple[Path, int, int]:
            path, was = stage_collect(cfg, base)
            return path, int(was), 1

        dataset = timed("collect", collect_)
        summary["dataset"] = str(dataset)
        if last >= STAGES.index("pretrain"):

            def pretrain_() -> tuple[dict[str, Path], int, int]:
                def stamp(e: EncoderStage) -> float | None:
                    f = base / "pretrain" / e.name / "encoder.safetensors"
                    return f.stat().st_mtime_ns if f.exists() else None

                before = [stamp(e) for e in cfg.encoders]
                done = stage_pretrain(cfg, base, dataset)
                was = sum(b is not None and b == stamp(e) for b, e in zip(before, cfg.encoders))
                return done, was, len(cfg.encoders)

            encoders = timed("pretrain", pretrain_)
            summary["encoders"] = {k: str(v) for k, v in encoders.items()}
        if last >= STAGES.index("probe") and cfg.probe.enabled:

            def probe_() -> tuple[dict[str, Path], int, int]:
                def stamp(name: str) -> int | None:
                    f = base / "probe" / f"{name}.json"
                    return f.stat().st_mtime_ns if f.exists() else None

                before = {name: stamp(name) for name in encoders}
                done = stage_probe(cfg, base, dataset, encoders)
                was = sum(b is not None and b == stamp(n) for n, b in before.items())
                return done, was, len(encoders)

            probes = timed("probe", probe_)
            summary["probes"] = {k: str(v) for k, v in probes.items()}
    if last >= STAGES.index("train"):

        def train_() -> tuple[dict[str, Path], int, int]:
            zips, was = stage_train(cfg, base, encoders, dataset)
            return zips, was, len(zips)

        zips = timed("train", train_)
        summary["agents"] = {k: str(v) for k, v in zips.items()}
        if last >= STAGES.index("evaluate"):

            def evaluate_() -> tuple[list[Path], int, int]:
                paths, was = stage_evaluate(cfg, base, zips)
                return paths, was, len(paths)

            timed("evaluate", evaluate_)
        if last >= STAGES.index("report"):
            from experiments.report import build_report

            def report_() -> tuple[None, int, int]:
                source = cfg.train.env_id if cfg.train.env_id in cfg.evaluate.env_ids else None
                build_report(
                    [base], base / "report", source_env=source, baseline=cfg.evaluate.baseline
                )
                return None, 0, 1

            timed("report", report_)
            summary["report"] = str(base / "report" / "report.md")
    summary["seconds"] = round(sum(s["seconds"] for s in summary["stages"].values()), 1)
    atomic_write_json(base / "summary.json", summary)
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
