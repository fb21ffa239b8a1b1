"""The probe stage: what each encoder captures, scored against the dataset's factors.

One ``probe/<encoder>.json`` per encoder (:func:`stage_probe`). Protocol ``reprl`` (the
default): linear probes, MIG, DCI, ... (:func:`representations.analysis.probe`), and the scores
the method offers of its own (:mod:`representations.probing`: its ``probe_settings`` and
``probe_scores`` hooks): the ARI of a decomposing encoder's masks (MONet), a sequence method's
predictions on fresh episodes (CPC), a scene method's renderings of fresh scenes (GQN).
Protocol ``atariari``: the AtariARI benchmark's probe (:func:`representations.analysis.atariari`)
on fresh random-agent episodes of the collect envs, collected once for all encoders.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from envs.errors import ReprlError
from envs.storage.artefacts import StageDir, stage_key
from envs.storage.files import atomic_write_json, library_version
from experiments.experiment import ExperimentConfig
from experiments.layout import RunLayout
from experiments.parallel import run_jobs
from experiments.stages.base import (
    RunContext,
    Stage,
    StageResult,
    file_ref,
    mtime,
    needs_encoders,
    open_checkpoint,
)
from experiments.stages.collect import collect_key
from representations.checkpoint import Checkpoint
from representations.probing import (
    PREDICTION_PURPOSE,
    RENDERING_PURPOSE,
    SEGMENTATION_PURPOSE,
    ScoreContext,
    segmentation_scores,
)

ATARIARI_PURPOSE = "probe_atariari"
"""Seed purpose of the fresh random-agent episodes the AtariARI probe is taken on."""


def score_context(cfg: ExperimentConfig, base: Path) -> ScoreContext:
    """What the encoders' own probe scores read (:class:`representations.probing.ScoreContext`):
    the collect and probe settings, the device, and the probe directory for temporary data."""
    c, p = cfg.collect, cfg.probe
    return ScoreContext(
        env_ids=tuple(c.env_ids),
        env_kwargs=c.env_kwargs,
        collect_key=collect_key(c),
        policy=c.policy,
        repeat=c.repeat,
        num_envs=c.num_envs,
        views_per_scene=c.views_per_scene,
        max_pitch=c.max_pitch,
        segmentation_frames=p.segmentation_frames,
        sequence_frames=p.sequence_frames,
        rendering_scenes=p.rendering_scenes,
        seed=p.seed,
        device=cfg.device,
        tmp_dir=RunLayout(base).probe_dir,
    )


@dataclass(frozen=True)
class _ProbeJob:
    """One encoder to probe (picklable: a worker process runs it), with its stage directory
    and key, worked out once where the job is made."""

    cfg: ExperimentConfig
    name: str
    encoder: Path | Checkpoint
    base: Path
    dataset: Path
    stage: StageDir
    plain: dict[str, Any]
    own_scores: bool = False  # the method's own scores (reprl protocol; see stage_probe)
    data: Path | None = None  # atariari: the fresh episodes, collected before the jobs run


def stage_probe(
    cfg: ExperimentConfig, base: Path, dataset: Path, encoders: Mapping[str, Path | Checkpoint]
) -> dict[str, Path]:
    """Scores (or reuses) every encoder against the dataset's ground-truth factors.

    One ``probe/<encoder>.json`` each: the JSON-plain results of
    :func:`representations.analysis.probe` on ``probe.frames`` frames (linear probes per
    factor, MIG, DCI, ... as ``probe.metrics`` asks), with ``encoder`` (the name in this
    experiment), ``method``, ``latent_dim``, ``active_latents`` (as pretraining measured them,
    or null), ``checkpoint`` and ``dataset`` (path relative to the experiment, sha256), the
    probe config and the method's own scores, one key each (``segmentation`` of a decomposing
    encoder, ``prediction`` of CPC, ``rendering`` of GQN: :mod:`representations.probing`),
    whose settings are in the config and the key. Where the metrics cannot score the dataset (it
    records no factors, as ALE datasets; every factor is constant) the file says why in
    ``skipped`` instead of failing the experiment. Keyed on the probe config, the device and
    the content of encoder and dataset. Protocol ``atariari``: :func:`stage_atariari`.

    ``cfg.jobs > 1`` probes that many encoders at once (:func:`experiments.parallel.run_jobs`);
    each probe is seeded, so the scores are the same up to float rounding (the probes' torch
    threads differ), and ``jobs`` is not part of the key.

    Returns:
        encoder name -> its probe JSON.
    """
    if cfg.probe.protocol == "atariari":
        return stage_atariari(cfg, base, dataset, encoders)
    p = cfg.probe
    layout = RunLayout(base)
    layout.probe_dir.mkdir(parents=True, exist_ok=True)
    ctx = score_context(cfg, base)
    out: dict[str, Path] = {}
    todo: list[_ProbeJob] = []
    for name, opened in encoders.items():
        enc = open_checkpoint(opened)
        own = enc.method_class.probe_settings(ctx)  # the method's own scores' settings
        plain: dict[str, Any] = {
            "encoder": name,
            "frames": p.frames,
            "metrics": list(p.metrics),
            "seed": p.seed,
            "device": cfg.device,
            **own,
        }
        out[name] = layout.probe_file(name)
        stage = _stage_dir(layout, name, plain, enc, dataset)
        if not stage.done():
            shipped = _shipped(cfg, enc)
            todo.append(_ProbeJob(cfg, name, shipped, base, dataset, stage, plain, bool(own)))
    _run(todo, cfg.jobs, len(encoders))
    return out


def _stage_dir(
    layout: RunLayout, name: str, plain: Mapping[str, Any], enc: Checkpoint, dataset: Path
) -> StageDir:
    """An encoder's probe stage, keyed on ``plain`` and the content of encoder and dataset."""
    key = stage_key(dict(plain), {"encoder": enc, "dataset": dataset})
    return StageDir(layout.probe_dir, key, [layout.probe_file(name).name], name=name)


def _shipped(cfg: ExperimentConfig, enc: Checkpoint) -> Path | Checkpoint:
    """What a job carries of its encoder: the opened checkpoint here, its path to a worker
    (which reads the checkpoint itself)."""
    return enc.path if cfg.jobs > 1 else enc


def _run(todo: list[_ProbeJob], jobs: int, total: int) -> None:
    """Runs the probe jobs, ``jobs`` at once, with one progress bar over all ``total``
    encoders (the reused ones counted done)."""
    with tqdm(total=total, desc="probe", unit="encoder", mininterval=1.0) as bar:
        bar.update(total - len(todo))
        run_jobs(_probe_one, todo, jobs, done=lambda _: bar.update(1))


def _probe_one(job: _ProbeJob) -> Path:
    """Probes one encoder (either protocol) into its ``probe/<encoder>.json``; returns it."""
    from representations.analysis import atariari, probe

    cfg, p, name, base, dataset = job.cfg, job.cfg.probe, job.name, job.base, job.dataset
    enc = open_checkpoint(job.encoder)
    path = RunLayout(base).probe_file(name)
    job.stage.begin(resume=False)
    t0 = time.perf_counter()
    model = enc.load(device=cfg.device)
    if job.data is not None:
        settings = job.plain["atariari"]
        try:
            results = {"atariari": atariari(model, job.data, seed=p.seed, device=cfg.device,
                                            **settings)}  # fmt: skip
        except ReprlError as e:  # labels the probe cannot score: say why
            results = {"skipped": f"AtariARI probe not computed: {e}"}
    else:
        try:
            results = probe(model, dataset, max_frames=p.frames, metrics=p.metrics, seed=p.seed)
        except ReprlError as e:  # data the metrics cannot score (no factors: ALE): say why
            results = {"skipped": f"factor metrics not computed: {e}"}
        results.pop("encoder", None)
        results.pop("dataset", None)
    record = _record(name, enc, model, base, dataset, job.plain, results)
    if job.own_scores:
        record.update(model.probe_scores(score_context(cfg, base)))
    record["seconds"] = round(time.perf_counter() - t0, 1)
    record["reprl_version"] = library_version()
    atomic_write_json(path, record)
    job.stage.finish()
    return path


def _record(
    name: str,
    enc: Checkpoint,
    model: Any,
    base: Path,
    dataset: Path,
    plain: Mapping[str, Any],
    results: Mapping[str, Any],
) -> dict[str, Any]:
    """The head of an encoder's probe record, then its results."""
    return {
        "encoder": name,
        "method": model.name,
        "latent_dim": model.latent_dim,
        "active_latents": enc.latent_activity,
        "checkpoint": file_ref(enc, base),
        "dataset": file_ref(dataset, base),
        "config": {k: v for k, v in plain.items() if k != "encoder"},
        **results,
    }


def atariari_episodes(cfg: ExperimentConfig) -> dict[str, Any]:
    """The settings of the AtariARI probe's fresh episodes (JSON-plain, part of its key):
    ``probe.frames`` frames of the collect envs with their env kwargs and parallel envs, a
    uniformly random agent (the paper's), env streams of :data:`ATARIARI_PURPOSE`."""
    from envs.rng import spawn_seeds

    c = cfg.collect
    return {
        "env_ids": list(c.env_ids),
        "frames": cfg.probe.frames,
        "num_envs": c.num_envs,
        "env_kwargs": dict(c.env_kwargs),
        "policy": "random",
        "seed": spawn_seeds(cfg.probe.seed, 1, purpose=ATARIARI_PURPOSE)[0],
    }


def _collect_episodes(episodes: Mapping[str, Any], out: Path, device: str) -> None:
    """Writes the AtariARI probe's fresh episodes (:func:`atariari_episodes`) to ``out``."""
    from envs.exploration import collect

    collect(
        episodes["env_ids"],
        episodes["frames"],
        out,
        num_envs=episodes["num_envs"],
        seed=episodes["seed"],
        policy=episodes["policy"],
        env_kwargs=dict(episodes["env_kwargs"]),
        device=device,
        progress=False,
    ).close()


def stage_atariari(
    cfg: ExperimentConfig, base: Path, dataset: Path, encoders: Mapping[str, Path | Checkpoint]
) -> dict[str, Path]:
    """The AtariARI probe of every encoder (``probe.protocol: atariari``), or its reuse.

    One ``probe/<encoder>.json`` each, with the head of the ``reprl`` protocol's records
    (``encoder``, ``method``, ``latent_dim``, ``active_latents``, ``checkpoint``,
    ``dataset``: the collect dataset the encoders trained on, ``config``) and ``atariari``:
    :func:`representations.analysis.atariari` on ``probe.frames`` fresh random-agent frames
    of the collect envs (:func:`atariari_episodes`; collected once, into a temporary file of
    the probe directory, only when some encoder is not probed yet, and deleted after). Where
    the probe cannot score them (no discrete factors, too few episodes) the file says why in
    ``skipped``. Keyed on the probe settings, the episodes' settings, the device and the
    content of encoder and dataset. ``cfg.jobs > 1`` probes that many encoders at once, as
    :func:`stage_probe`.

    Returns:
        encoder name -> its probe JSON.
    """
    p = cfg.probe
    layout = RunLayout(base)
    layout.probe_dir.mkdir(parents=True, exist_ok=True)
    settings = dataclasses.asdict(p.atariari)
    episodes = atariari_episodes(cfg)
    out: dict[str, Path] = {}
    todo: list[_ProbeJob] = []
    for name, opened in encoders.items():
        enc = open_checkpoint(opened)
        plain = {"encoder": name, "protocol": "atariari", "frames": p.frames, "seed": p.seed,
                 "device": cfg.device, "atariari": settings, "episodes": episodes}  # fmt: skip
        out[name] = layout.probe_file(name)
        stage = _stage_dir(layout, name, plain, enc, dataset)
        if not stage.done():
            todo.append(_ProbeJob(cfg, name, _shipped(cfg, enc), base, dataset, stage, plain))
    if todo:
        with score_context(cfg, base).temporary("atariari_episodes.h5") as data:
            _collect_episodes(episodes, data, cfg.device)
            _run([dataclasses.replace(j, data=data) for j in todo], cfg.jobs, len(encoders))
    return out


class Probe(Stage):
    """Scores (or reuses) every encoder into ``ctx.probes``."""

    name = "probe"

    def wanted(self, ctx: RunContext) -> bool:
        return needs_encoders(ctx.cfg) and ctx.cfg.probe.enabled

    def run(self, ctx: RunContext) -> StageResult:
        assert ctx.dataset is not None, "probe runs after collect"
        before = {name: mtime(ctx.layout.probe_file(name)) for name in ctx.encoders}
        ctx.probes = stage_probe(ctx.cfg, ctx.base, ctx.dataset, ctx.encoders)
        reused = sum(
            b is not None and b == mtime(ctx.layout.probe_file(n)) for n, b in before.items()
        )
        return StageResult(reused, len(ctx.encoders))


__all__ = [
    "ATARIARI_PURPOSE",
    "PREDICTION_PURPOSE",
    "RENDERING_PURPOSE",
    "SEGMENTATION_PURPOSE",
    "Probe",
    "atariari_episodes",
    "score_context",
    "segmentation_scores",
    "stage_atariari",
    "stage_probe",
]
