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

import contextlib
import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from envs.errors import ReprlError
from envs.storage.artefacts import StageDir, stage_key
from envs.storage.files import atomic_write_json, library_version
from experiments.experiment import ExperimentConfig
from experiments.layout import RunLayout
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
    the content of encoder and dataset.

    Returns:
        encoder name -> its probe JSON.
    """
    from representations.analysis import probe

    if cfg.probe.protocol == "atariari":
        return stage_atariari(cfg, base, dataset, encoders)
    p = cfg.probe
    layout = RunLayout(base)
    d = layout.probe_dir
    d.mkdir(parents=True, exist_ok=True)
    ctx = score_context(cfg, base)
    out: dict[str, Path] = {}
    for name, opened in tqdm(encoders.items(), desc="probe", unit="encoder", mininterval=1.0):
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
        path = layout.probe_file(name)
        stage = StageDir(
            d, stage_key(plain, {"encoder": enc, "dataset": dataset}), [path.name], name=name
        )
        out[name] = path
        if stage.done():
            continue
        stage.begin(resume=False)
        t0 = time.perf_counter()
        model = enc.load(device=cfg.device)
        try:
            results = probe(model, dataset, max_frames=p.frames, metrics=p.metrics, seed=p.seed)
        except ReprlError as e:  # data the metrics cannot score (no factors: ALE): say why
            results = {"skipped": f"factor metrics not computed: {e}"}
        results.pop("encoder", None)
        results.pop("dataset", None)
        record = _record(name, enc, model, base, dataset, plain, results)
        if own:
            record.update(model.probe_scores(ctx))
        record["seconds"] = round(time.perf_counter() - t0, 1)
        record["reprl_version"] = library_version()
        atomic_write_json(path, record)
        stage.finish()
    return out


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
    content of encoder and dataset.

    Returns:
        encoder name -> its probe JSON.
    """
    from representations.analysis import atariari

    p = cfg.probe
    layout = RunLayout(base)
    layout.probe_dir.mkdir(parents=True, exist_ok=True)
    ctx = score_context(cfg, base)
    settings = dataclasses.asdict(p.atariari)
    episodes = atariari_episodes(cfg)
    out: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        data: Path | None = None
        for name, opened in tqdm(encoders.items(), desc="probe", unit="encoder", mininterval=1.0):
            enc = open_checkpoint(opened)
            plain = {"encoder": name, "protocol": "atariari", "frames": p.frames, "seed": p.seed,
                     "device": cfg.device, "atariari": settings, "episodes": episodes}  # fmt: skip
            path = layout.probe_file(name)
            key = stage_key(plain, {"encoder": enc, "dataset": dataset})
            stage = StageDir(layout.probe_dir, key, [path.name], name=name)
            out[name] = path
            if stage.done():
                continue
            stage.begin(resume=False)
            if data is None:
                data = stack.enter_context(ctx.temporary("atariari_episodes.h5"))
                _collect_episodes(episodes, data, cfg.device)
            t0 = time.perf_counter()
            model = enc.load(device=cfg.device)
            try:
                results = {"atariari": atariari(model, data, seed=p.seed, device=cfg.device,
                                                **settings)}  # fmt: skip
            except ReprlError as e:  # labels the probe cannot score: say why
                results = {"skipped": f"AtariARI probe not computed: {e}"}
            record = _record(name, enc, model, base, dataset, plain, results)
            record["seconds"] = round(time.perf_counter() - t0, 1)
            record["reprl_version"] = library_version()
            atomic_write_json(path, record)
            stage.finish()
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
