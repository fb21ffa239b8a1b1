"""Looking at a trained encoder: metrics on a dataset, reconstructions and latent traversals.

These join a checkpoint (:func:`representations.load`) and an exploration dataset
(:class:`envs.storage.dataset.FrameDataset`); the metrics themselves see only latents and factors
(:mod:`representations.metrics`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.errors import ReprlError
from envs.storage.dataset import FrameDataset
from envs.storage.files import atomic_path, atomic_write_text
from representations.base import Representation, check_frame_shape
from representations.batches import SCENES, SEQUENCES, sequences_to_input
from representations.factors import FACTOR_VALUES_ABSENT as FACTOR_VALUES_ABSENT
from representations.factors import _absent, factor_data
from representations.metrics import METRICS, FactorData, atariari_probe, evaluate, linear_probe


def subsample(ds: FrameDataset, max_frames: int) -> np.ndarray:
    """Sorted indices of at most ``max_frames`` frames spread evenly over the whole file."""
    n = len(ds)
    if max_frames >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(np.int64))


@torch.inference_mode()
def encode_dataset(
    model: Representation, ds: FrameDataset, index: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Latents of frames ``index`` (sorted), read chunk-wise from disk.

    Returns:
        (K, latent_dim) float32.
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for lo in range(0, len(index), batch_size):
        frames = ds.frames(index[lo : lo + batch_size])
        x = model.to_model_input(torch.from_numpy(frames).to(device))
        out.append(model.encode(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.latent_dim), np.float32)


def probe(
    model: Representation,
    dataset: str | os.PathLike[str],
    *,
    max_frames: int = 20000,
    metrics: Sequence[str] = METRICS,
    factor_names: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Scores ``model``'s latents against a dataset's ground-truth factors.

    Args:
        model: a loaded representation.
        dataset: an exploration dataset with factors.
        max_frames: frames used at most (spread evenly over the file).
        metrics: any of ``probe``, ``mig``, ``dci``, ``factor_vae``.
        factor_names: factors to score, default all present.
        seed: seed of the held-out-episode split and the metrics' sampling.

    Returns:
        JSON-plain results of :func:`representations.metrics.evaluate`, plus ``encoder`` and
        ``dataset`` provenance.
    """
    ds = FrameDataset(dataset)
    try:
        check_frame_shape(model.input_spec, ds.info.frame_shape, f"dataset {dataset}")
    except ReprlError:
        ds.close()
        raise
    index = subsample(ds, max_frames)
    latents = encode_dataset(model, ds, index)
    data = factor_data(ds, index, factor_names)
    ds.close()
    columns, values, _ = data.factor_matrix()
    absent = _absent(columns, values)
    partial = [c for c, a in zip(columns, absent.T) if a.any()]
    complete = [c for c in columns if c not in partial]
    results = evaluate(latents, data, metrics=metrics, seed=seed, factor_names=complete)
    if "probe" in metrics and partial:
        _probe_where_present(results, latents, data, columns, absent, partial, seed)
    results["dataset"] = str(dataset)
    results["encoder"] = {"method": model.name, "latent_dim": model.latent_dim}
    return results


def frame_digests(frames: np.ndarray) -> np.ndarray:
    """A 64-bit digest of every frame (equal frames, equal digests; BLAKE2b of the bytes).

    Args:
        frames: ``(B, H, W, C)`` uint8.

    Returns:
        ``(B,)`` uint64.
    """
    import hashlib

    flat = np.ascontiguousarray(frames).reshape(len(frames), -1)
    digests = [hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in flat]
    return np.frombuffer(b"".join(digests), dtype=np.uint64).copy()


def atariari(
    model: Representation,
    dataset: str | os.PathLike[str],
    *,
    factor_names: Sequence[str] | None = None,
    seed: int = 0,
    device: str = "cpu",
    encode_batch_size: int = 256,
    **settings: Any,
) -> dict[str, Any]:
    """The AtariARI probe of ``model``'s frozen codes on every frame of a dataset.

    Every frame is encoded (the code ``encode`` returns, as their probes read the encoder's
    output) and digested, so test frames equal to a train or validation frame are dropped as
    theirs are; labels are the dataset's discrete factors (RAM bytes of an ALE game).

    Args:
        model: a loaded representation.
        dataset: probe episodes with discrete factors (values in ``[0, 256)``).
        factor_names: factors to probe; ``None``: every discrete one.
        seed: seed of the split and of the probes.
        device: torch device of the probes' training.
        encode_batch_size: frames per encoding call.
        **settings: ``epochs``, ``patience``, ``batch_size``, ``lr``, ``entropy_threshold``,
            ``min_episode_length`` of :func:`representations.metrics.atariari.atariari_probe`.

    Returns:
        The JSON-plain results of :func:`~representations.metrics.atariari.atariari_probe`.

    Raises:
        ReprlError: frames the model does not take, or labels the probe cannot score.
    """
    ds = FrameDataset(dataset)
    try:
        check_frame_shape(model.input_spec, ds.info.frame_shape, f"dataset {dataset}")
        model.eval()
        dev = next(model.parameters()).device
        codes, keys = [], []
        for lo in range(0, len(ds), encode_batch_size):
            frames = ds.frames(slice(lo, min(lo + encode_batch_size, len(ds))))
            with torch.inference_mode():
                x = model.to_model_input(torch.from_numpy(frames).to(dev))
                codes.append(model.encode(x).float().cpu().numpy())
            keys.append(frame_digests(frames))
        data = factor_data(ds, np.arange(len(ds)), factor_names)
    finally:
        ds.close()
    return atariari_probe(
        np.concatenate(codes),
        data,
        frame_keys=np.concatenate(keys),
        seed=seed,
        device=device,
        **settings,
    )


def _probe_where_present(
    results: dict[str, Any],
    latents: np.ndarray,
    data: FactorData,
    columns: list[str],
    absent: np.ndarray,
    partial: list[str],
    seed: int,
) -> None:
    """Probes factors that exist only in some frames (a juggling ball, the middle wall) on
    exactly those frames, so "absent" (-1) is not scored as a value; updates ``results``.

    The disentanglement metrics are computed on the always-present factors only.
    """
    per = results["probe"]["per_factor"]
    for col in partial:
        j = columns.index(col)
        rows = ~absent[:, j]
        if len(np.unique(data.episode[rows])) < 2:
            per[col] = {
                "kind": "continuous",
                "metric": "r2",
                "score": None,
                "baseline": None,
                "skipped": "present in fewer than 2 episodes",
            }
            continue
        base = col.split("[")[0]
        sub = FactorData(
            frames=None,
            factors={col: data.factor_matrix([col])[1][rows, 0]},
            episode=data.episode[rows],
            discrete={col} if base in data.discrete or col in data.discrete else set(),
        )
        entry = linear_probe(latents[rows], sub, seed=seed)[col]
        entry["note"] = f"on the {int(rows.sum())} frames where present"
        per[col] = entry
    results["probe"]["per_factor"] = {c: per[c] for c in columns if c in per}
    for kind, key in (("continuous", "mean_r2"), ("discrete", "mean_f1")):
        scores = [r["score"] for r in per.values() if r["kind"] == kind and r["score"] is not None]
        results["probe"][key] = float(np.mean(scores)) if scores else None
    results["partially_present_factors"] = partial


@torch.inference_mode()
def sequence_scores(
    model: Representation,
    dataset: str | os.PathLike[str],
    *,
    batches: int = 16,
    batch_size: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """A sequence method's own objective on a dataset's sequences: the mean of its logged terms.

    For CPC: ``loss``, ``acc_k1`` .. ``acc_kK`` (top-1 accuracy of picking the true future
    code among every code of the batch) and ``chance``. Score it on episodes it never trained
    on to see whether it learned to predict rather than to remember.

    Args:
        model: a representation whose ``batch_kind`` is ``"sequences"``.
        dataset: an exploration dataset with episodes of at least ``model.sequence_length``
            consecutive frames.
        batches: random batches to average over, >= 1.
        batch_size: sequences per batch (the candidates of InfoNCE are ``batch_size * L``).
        seed: seed of the windows drawn.

    Raises:
        ReprlError: a model that does not learn from sequences, or a dataset without windows
            of its length.
    """
    if model.batch_kind != SEQUENCES:
        raise ReprlError(
            f"{model.name} does not learn from sequences (batch_kind "
            f"{model.batch_kind.name!r}): nothing to predict"
        )
    model.eval()
    device = next(model.parameters()).device
    ds = FrameDataset(dataset)
    sums: dict[str, float] = {}
    try:
        for b in ds.iter_sequences(
            batch_size, model.sequence_length, num_batches=batches, seed=seed
        ):
            _, terms = model.loss({"seq": sequences_to_input(b["frames"], device, False)})
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) / batches
    finally:
        ds.close()
    return sums


def _scene_split(model: Representation, k: int, context: int | None) -> int:
    """The number of context views M of a scene of ``k`` views (the last view is the query)."""
    if k < 2:
        raise ReprlError(f"scenes of {k} view: expected at least 2 (context and query)")
    m = min(int(getattr(model, "max_context", k - 1)), k - 1) if context is None else context
    if not 1 <= m <= k - 1:
        raise ReprlError(f"context: expected 1 to {k - 1} views (scenes of {k}), got {m}")
    return m


@torch.inference_mode()
def rendering_scores(
    model: Representation,
    dataset: str | os.PathLike[str],
    *,
    context: int | None = None,
    batch_size: int = 16,
    max_scenes: int | None = None,
) -> dict[str, Any]:
    """How well a scene method (GQN) renders a view it was not shown, against a baseline.

    Per scene of the dataset: the first M views and their viewpoints are the context, the last
    view is the query; the model renders the query viewpoint (``model.render``, deterministic)
    and the mean squared error per pixel against the true view is averaged over scenes. The
    baseline predicts the pixel-wise mean of the context views (it knows the scene's colours,
    not where things are). Score it on scenes the model never trained on.

    Args:
        model: a representation whose ``batch_kind`` is ``"scenes"``, with ``render``.
        dataset: a scene dataset (:func:`envs.scenes.collect_scenes`).
        context: M in [1, K - 1]; ``None``: the model's ``max_context`` (at most K - 1).
        batch_size: scenes per forward pass, >= 1.
        max_scenes: score at most this many scenes (the first ones); ``None``: all.

    Returns:
        ``{"mse": float, "baseline_mse": float, "ratio": mse / baseline_mse, "scenes": int,
        "context_views": M}``; MSEs of images in ``[0, 1]``, over pixels and channels.

    Raises:
        ReprlError: a model that does not learn from scenes, or a dataset without scenes.
    """
    if model.batch_kind != SCENES or not hasattr(model, "render"):
        raise ReprlError(
            f"{model.name} does not render scenes (batch_kind {model.batch_kind.name!r}): "
            "nothing to render"
        )
    model.eval()
    device = next(model.parameters()).device
    ds = FrameDataset(dataset)
    try:
        k = ds.views_per_scene
        if k is None:
            ds.viewpoints(slice(0, 1))  # raises the dataset's own error
        assert k is not None
        m = _scene_split(model, k, context)
        n = ds.num_scenes if max_scenes is None else min(ds.num_scenes, max_scenes)
        err = base = 0.0
        for lo in range(0, n, batch_size):
            hi = min(lo + batch_size, n)
            views = ds.frames(slice(lo * k, hi * k)).reshape(hi - lo, k, *ds.info.frame_shape)
            cams = torch.from_numpy(ds.viewpoints(slice(lo * k, hi * k))).to(device)
            cams = cams.view(hi - lo, k, -1)
            x = sequences_to_input(views, device, False)
            truth = x[:, -1]
            pred = model.render(x[:, :m], cams[:, :m], cams[:, -1])
            err += float((pred - truth).pow(2).mean((1, 2, 3)).sum())
            base += float((x[:, :m].mean(1) - truth).pow(2).mean((1, 2, 3)).sum())
    finally:
        ds.close()
    mse, baseline = err / n, base / n
    return {
        "mse": mse,
        "baseline_mse": baseline,
        "ratio": mse / baseline if baseline > 0 else float("nan"),
        "scenes": n,
        "context_views": m,
    }


def write_json(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Writes JSON atomically (temporary name, then rename)."""
    atomic_write_text(path, json.dumps(data, indent=2))


def _grid(rows: list[np.ndarray], pad: int = 1) -> np.ndarray:
    """Stacks rows of images ((K, H, W, 3) uint8 each) into one padded picture."""
    k = max(len(r) for r in rows)
    h, w = rows[0].shape[1:3]
    out = np.full((len(rows) * (h + pad) + pad, k * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, img in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = img
    return out


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) float in [0, 1] -> (B, H, W, 3) uint8."""
    x = x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


@torch.inference_mode()
def pictures(
    model: Representation,
    dataset: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    num_frames: int = 8,
    num_latents: int = 10,
    steps: int = 7,
    span: float = 3.0,
    scale: int = 3,
    seed: int = 0,
) -> dict[str, str]:
    """Writes ``reconstructions.png`` and ``traversals.png`` for a model with ``decode``, and
    ``decomposition.png`` for one that also splits a frame into slots (``decompose``, MONet).

    Reconstructions: inputs (top row) over their reconstructions (bottom row). Traversals: one
    row per latent, the ``num_latents`` latents with the highest variance of the posterior mean
    over the frames, each swept over ``span`` standard deviations around a frame's mean.
    Decomposition: one column per frame; the input, the reconstruction, then per slot (in the
    model's slot order) its attention mask (white: the slot's pixels) and its reconstruction
    seen through that mask.

    A scene method (GQN, ``batch_kind`` ``"scenes"``) draws ``rendering.png`` instead, on a
    scene dataset: one row per scene (``num_frames`` scenes), its context views, then the
    view it renders from the held-back last viewpoint beside the true view (the split of
    :func:`rendering_scores`).

    Returns:
        name -> path of each picture written.
    """
    if model.batch_kind == SCENES and hasattr(model, "render"):
        return _save_pictures(
            {"rendering": _rendering_grid(model, dataset, num_frames)}, out_dir, scale
        )
    if not hasattr(model, "decode"):
        raise ReprlError(f"{model.name} has no decoder: nothing to reconstruct or traverse")
    ds = FrameDataset(dataset)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(ds), size=min(num_frames, len(ds)), replace=False))
    frames = ds.frames(index)
    ds.close()
    model.eval()
    device = next(model.parameters()).device
    x = model.to_model_input(torch.from_numpy(frames).to(device))
    z = model.encode(x)
    recon = model.decode(z)
    rec = _grid([frames, _to_uint8(recon)])
    # traversals around the first frame's code, latents ranked by spread over the frames
    order = torch.argsort(z.var(0) if len(z) > 1 else z.abs()[0], descending=True)[:num_latents]
    values = torch.linspace(-span, span, steps, device=device)
    rows = []
    for d in order.tolist():
        codes = z[:1].repeat(steps, 1)
        codes[:, d] = values
        rows.append(_to_uint8(model.decode(codes)))
    images = {"reconstructions": rec, "traversals": _grid(rows)}
    if hasattr(model, "decompose"):
        parts = model.decompose(x)
        masks, recons = parts["masks"], parts["recons"]  # (B, K, 1, H, W), (B, K, C, H, W)
        slots = []
        for k in range(masks.shape[1]):
            slots.append(_to_uint8(masks[:, k].expand(-1, 3, -1, -1)))
            slots.append(_to_uint8(recons[:, k] * masks[:, k]))
        images["decomposition"] = _grid([frames, _to_uint8(parts["reconstruction"]), *slots])
    return _save_pictures(images, out_dir, scale)


def _save_pictures(
    images: dict[str, np.ndarray], out_dir: str | os.PathLike[str], scale: int
) -> dict[str, str]:
    """Writes each image as ``<name>.png``, ``scale`` times larger, atomically."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, img in images.items():
        path = out / f"{name}.png"
        big = Image.fromarray(img).resize(
            (img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST
        )
        with atomic_path(path) as tmp:
            big.save(tmp, format="PNG")
        written[name] = str(path)
    return written


def _rendering_grid(
    model: Representation, dataset: str | os.PathLike[str], scenes: int
) -> np.ndarray:
    """Rows of context views, then the rendered and the true query view, a gap between."""
    ds = FrameDataset(dataset)
    try:
        k = ds.views_per_scene
        if k is None:
            ds.viewpoints(slice(0, 1))  # raises the dataset's own error
        assert k is not None
        m = _scene_split(model, k, None)
        n = min(scenes, ds.num_scenes)
        views = ds.frames(slice(0, n * k)).reshape(n, k, *ds.info.frame_shape)
        cams = ds.viewpoints(slice(0, n * k)).reshape(n, k, -1)
    finally:
        ds.close()
    model.eval()
    device = next(model.parameters()).device
    x = sequences_to_input(views, device, False)
    pred = _to_uint8(
        model.render(
            x[:, :m],
            torch.from_numpy(cams[:, :m]).to(device),
            torch.from_numpy(cams[:, -1]).to(device),
        )
    )
    gap = np.full_like(views[0, 0], 255)
    return _grid([np.stack([*views[i, :m], gap, pred[i], views[i, -1]]) for i in range(n)])
