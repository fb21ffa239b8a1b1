"""Segmentation scores: the adjusted Rand index (ARI) of predicted against true label maps.

Object-centric models (MONet, IODINE, Slot Attention) are scored by the ARI between the
ground-truth object ids and the slot each pixel is assigned to (the argmax of the masks,
:func:`masks_to_ids`), computed per image and averaged over images. The ARI is invariant to
relabelling (slot 3 may be the red square in one image and slot 1 in the next), 1.0 for
identical partitions and 0.0 in expectation for a random one (it can go negative).

With ``ignore`` set to the background id, pixels whose *true* label is the background are
left out: that is the foreground ARI (FG-ARI) the papers report, which scores how well
objects are told apart without rewarding a model for the (large, easy) background.

Definition (Hubert & Arabie, 1985), over the ``n`` kept pixels of one image with contingency
table ``n_ij`` (true label ``i``, predicted label ``j``), row sums ``a_i``, column sums ``b_j``,
and ``C(m) = m (m - 1) / 2``::

    index    = sum_ij C(n_ij)
    expected = sum_i C(a_i) * sum_j C(b_j) / C(n)
    maximum  = (sum_i C(a_i) + sum_j C(b_j)) / 2
    ARI      = (index - expected) / (maximum - expected)

Degenerate images: the denominator is zero only when both partitions put all kept pixels in one
cluster, or both put every pixel in its own cluster (one kept pixel is both); the partitions
are then identical and the ARI is defined as 1.0 (as scikit-learn and DeepMind's
``multi_object_datasets`` do for a single cluster). An image with no kept pixel (all of it
``ignore``) has no ARI: :func:`adjusted_rand_index_per_image` gives NaN for it and
:func:`adjusted_rand_index` averages over the other images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.errors import ReprlError

#: Largest ``images x true labels x predicted labels`` contingency array built at once; larger
#: inputs are scored one image at a time (same result).
_MAX_TABLE = 1 << 24


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _label_maps(true_ids: Any, pred_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _to_numpy(true_ids), _to_numpy(pred_ids)
    if t.shape != p.shape:
        raise ReprlError(
            f"label maps: expected true_ids and pred_ids of the same shape, got {t.shape} "
            f"and {p.shape}"
        )
    if t.ndim not in (2, 3):
        raise ReprlError(f"label maps: expected (H, W) or (N, H, W), got shape {t.shape}")
    for what, a in (("true_ids", t), ("pred_ids", p)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise ReprlError(f"{what}: expected integer labels, got dtype {a.dtype}")
    if t.ndim == 2:
        t, p = t[None], p[None]
    return t.reshape(t.shape[0], -1), p.reshape(p.shape[0], -1)


def _pairs(counts: np.ndarray) -> np.ndarray:
    """``C(m) = m (m - 1) / 2`` elementwise, float64."""
    c = counts.astype(np.float64)
    return c * (c - 1.0) / 2.0


def _ari_from_tables(tables: np.ndarray) -> np.ndarray:
    """ARI of each ``(T, P)`` contingency table in ``tables`` ``(N, T, P)``; NaN where empty."""
    n = tables.sum(axis=(1, 2))
    index = _pairs(tables).sum(axis=(1, 2))
    rows = _pairs(tables.sum(axis=2)).sum(axis=1)
    cols = _pairs(tables.sum(axis=1)).sum(axis=1)
    total = _pairs(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(total > 0, rows * cols / np.where(total > 0, total, 1.0), 0.0)
        maximum = 0.5 * (rows + cols)
        denom = maximum - expected
        ari = (index - expected) / np.where(denom != 0, denom, 1.0)
    ari = np.where(denom == 0, 1.0, ari)
    return np.where(n > 0, ari, np.nan)


def adjusted_rand_index_per_image(
    true_ids: Any, pred_ids: Any, *, ignore: int | None = None
) -> np.ndarray:
    """ARI of each image's predicted against its true partition.

    Args:
        true_ids: ``(H, W)`` or ``(N, H, W)`` integer ground-truth labels (object ids); numpy
            array or torch tensor.
        pred_ids: Predicted labels of the same shape (e.g. :func:`masks_to_ids`); label values
            need not match ``true_ids``'s, only the partition counts.
        ignore: A true label (the background id) whose pixels are left out: the foreground
            ARI. ``None`` keeps every pixel.

    Returns:
        ``(N,)`` float64 (``(1,)`` for one ``(H, W)`` map), each in ``[-1, 1]``; NaN for an
        image with no kept pixel.

    Raises:
        ReprlError: For maps of different or unsupported shapes, or non-integer labels.
    """
    t, p = _label_maps(true_ids, pred_ids)
    keep = np.ones(t.shape, dtype=bool) if ignore is None else t != ignore
    t_vals, t_idx = np.unique(t, return_inverse=True)
    p_vals, p_idx = np.unique(p, return_inverse=True)
    t_idx, p_idx = t_idx.reshape(t.shape), p_idx.reshape(p.shape)
    num_t, num_p, num_img = len(t_vals), len(p_vals), t.shape[0]
    if num_img * num_t * num_p <= _MAX_TABLE:
        img = np.broadcast_to(np.arange(num_img)[:, None], t.shape)
        flat = (img * num_t + t_idx) * num_p + p_idx
        tables = np.bincount(flat[keep], minlength=num_img * num_t * num_p)
        return _ari_from_tables(tables.reshape(num_img, num_t, num_p))
    out = np.empty(num_img)
    for i in range(num_img):
        _, ti = np.unique(t_idx[i][keep[i]], return_inverse=True)
        _, pi = np.unique(p_idx[i][keep[i]], return_inverse=True)
        nt, np_ = int(ti.max(initial=-1)) + 1, int(pi.max(initial=-1)) + 1
        table = np.bincount(ti * np_ + pi, minlength=nt * np_).reshape(1, nt, np_)
        out[i] = _ari_from_tables(table)[0]
    return out


def adjusted_rand_index(true_ids: Any, pred_ids: Any, *, ignore: int | None = None) -> float:
    """Mean per-image ARI (as MONet, IODINE and Slot Attention report it).

    Args:
        true_ids: ``(H, W)`` or ``(N, H, W)`` integer ground-truth labels.
        pred_ids: Predicted labels of the same shape.
        ignore: True label to leave out (the background id gives the foreground ARI).

    Returns:
        The mean over images with at least one kept pixel, in ``[-1, 1]`` (1.0: identical
        partitions up to relabelling; about 0: chance).

    Raises:
        ReprlError: For bad maps (see :func:`adjusted_rand_index_per_image`), or when no
            image has a pixel outside ``ignore``.
    """
    per_image = adjusted_rand_index_per_image(true_ids, pred_ids, ignore=ignore)
    scored = per_image[~np.isnan(per_image)]
    if scored.size == 0:
        raise ReprlError(
            f"adjusted_rand_index: every pixel of all {per_image.size} image(s) has the "
            f"ignored true label {ignore}: nothing to score"
        )
    return float(scored.mean())


def masks_to_ids(masks: Any) -> np.ndarray:
    """Hard segmentation from soft slot masks: each pixel's most probable slot.

    Args:
        masks: ``(B, K, 1, H, W)`` (as :meth:`representations.monet.MONet.decompose` gives
            them) or ``(B, K, H, W)`` non-negative masks; numpy array or torch tensor.

    Returns:
        ``(B, H, W)`` int64 slot ids in ``[0, K)`` (ties go to the lower slot).

    Raises:
        ReprlError: For other shapes.
    """
    m = _to_numpy(masks)
    if m.ndim == 5:
        if m.shape[2] != 1:
            raise ReprlError(f"masks: expected (B, K, 1, H, W), got shape {m.shape}")
        m = m[:, :, 0]
    if m.ndim != 4 or m.shape[1] == 0:
        raise ReprlError(f"masks: expected (B, K, 1, H, W) or (B, K, H, W), got shape {m.shape}")
    return m.argmax(axis=1).astype(np.int64)
