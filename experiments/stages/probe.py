"""The probe stage: what each encoder captures, scored against the dataset's factors.

One ``probe/<encoder>.json`` per encoder (:func:`stage_probe`): linear probes, MIG, DCI, ...
(:func:`representations.analysis.probe`), and the scores of the method's own kind: the ARI of
a decomposing encoder's masks (:func:`segmentation_scores`), a sequence method's predictions
(:func:`prediction_scores`), a scene method's renderings (:func:`fresh_rendering_scores`).
"""

from __future__ import annotations

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

SEGMENTATION_PURPOSE = "probe_segmentation"
"""The :func:`envs.rng.spawn_seeds` purpose of the games the segmentation scores are taken on
(no collect, training or evaluation stream)."""


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
    with tempfile.TemporaryDirectory(dir=RunLayout(base).probe_dir) as tmp:
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
    with tempfile.TemporaryDirectory(dir=RunLayout(base).probe_dir) as tmp:
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
    cfg: ExperimentConfig, base: Path, dataset: Path, encoders: Mapping[str, Path | Checkpoint]
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
    from envs.rng import spawn_seeds
    from envs.segmentation import has_segmentation
    from representations.analysis import probe

    p = cfg.probe
    layout = RunLayout(base)
    d = layout.probe_dir
    d.mkdir(parents=True, exist_ok=True)
    env_id = cfg.collect.env_ids[0]
    out: dict[str, Path] = {}
    for name, opened in tqdm(encoders.items(), desc="probe", unit="encoder", mininterval=1.0):
        enc = open_checkpoint(opened)
        method = enc.method_class
        seg = p.segmentation_frames > 0 and callable(getattr(method, "decompose", None))
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
        seq = p.sequence_frames > 0 and method.batch_kind == "sequences"
        if seq:  # only sequence methods depend on the fresh episodes' settings
            plain["prediction"] = {
                "frames": p.sequence_frames,
                "collect": collect_key(cfg.collect),
            }
        scenes = p.rendering_scenes > 0 and method.batch_kind == "scenes"
        if scenes:  # only scene methods depend on the fresh scenes' settings
            plain["rendering"] = {
                "scenes": p.rendering_scenes,
                "collect": collect_key(cfg.collect),
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
        record: dict[str, Any] = {
            "encoder": name,
            "method": model.name,
            "latent_dim": model.latent_dim,
            "active_latents": enc.latent_activity,
            "checkpoint": file_ref(enc, base),
            "dataset": file_ref(dataset, base),
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
    "PREDICTION_PURPOSE",
    "RENDERING_PURPOSE",
    "SEGMENTATION_PURPOSE",
    "Probe",
    "fresh_rendering_scores",
    "prediction_scores",
    "segmentation_scores",
    "stage_probe",
]
