"""Information-theoretic metrics: the Mutual Information Gap (Chen et al. 2018).

Computed as in disentanglement_lib: histogram-discretised latents, discrete mutual information,
the gap between the two most informative latents normalised by the factor entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse

from envs.errors import ReprlError
from representations.metrics.data import _check_factors, _check_latents, _check_mask, _is_constant


def histogram_discretise(x: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Discretise each column into ``num_bins`` equal-width bins over its own range.

    Matches disentanglement_lib's histogram discretiser up to the bin labels (here
    ``0 .. num_bins - 1``). A constant column maps to bin 0.

    Args:
        x: ``(N, D)`` values.
        num_bins: Number of bins per column, >= 1.

    Returns:
        ``(N, D)`` int64 bin indices in ``[0, num_bins)``.
    """
    if num_bins < 1:
        raise ReprlError(f"num_bins must be >= 1, got {num_bins}")
    x = np.asarray(x, dtype=np.float64)
    lo = x.min(axis=0)
    span = x.max(axis=0) - lo
    span = np.where(span > 0, span, 1.0)
    bins = np.floor((x - lo) / span * num_bins).astype(np.int64)
    return np.clip(bins, 0, num_bins - 1)


def _categorical_codes(x: np.ndarray) -> np.ndarray:
    """``(N, K)`` values -> ``(N, K)`` int64 codes ``0 .. n_k - 1`` per column."""
    return np.stack([np.unique(x[:, j], return_inverse=True)[1] for j in range(x.shape[1])], 1)


def _one_hot(codes: np.ndarray) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """``(N, D)`` int codes -> sparse ``(N, sum n_d)`` one-hot matrix and per-column offsets."""
    n, d = codes.shape
    sizes = codes.max(axis=0) + 1
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    cols = (codes + offsets[:-1]).ravel()
    rows = np.repeat(np.arange(n), d)
    matrix = scipy.sparse.csr_matrix((np.ones(n * d), (rows, cols)), shape=(n, int(offsets[-1])))
    return matrix, offsets


def discrete_entropy(labels: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each column of discrete labels.

    Args:
        labels: ``(N, K)`` integer (or any hashable numeric) labels.

    Returns:
        ``(K,)`` entropies ``>= 0``.
    """
    codes = _categorical_codes(np.asarray(labels).reshape(len(labels), -1))
    out = np.empty(codes.shape[1])
    for j in range(codes.shape[1]):
        p = np.bincount(codes[:, j]) / codes.shape[0]
        p = p[p > 0]
        out[j] = -(p * np.log(p)).sum()
    return out


def discrete_mutual_info(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mutual information (nats) between every code column and every label column.

    Counts are accumulated with one sparse product per label column, so the cost is
    ``O(N * D)`` per factor rather than a Python loop over ``(code, factor)`` pairs.

    Args:
        codes: ``(N, D)`` discrete codes (e.g. :func:`histogram_discretise` output).
        labels: ``(N, K)`` discrete labels.

    Returns:
        ``(D, K)`` mutual-information matrix, entries ``>= 0``.
    """
    codes = _categorical_codes(np.asarray(codes).reshape(len(codes), -1))
    labels = _categorical_codes(np.asarray(labels).reshape(len(labels), -1))
    n, d = codes.shape
    onehot_c, offsets = _one_hot(codes)
    p_code = np.asarray(onehot_c.sum(axis=0)).ravel() / n  # (sum n_d,)
    log_p_code = np.log(np.where(p_code > 0, p_code, 1.0))
    code_dim = np.repeat(np.arange(d), np.diff(offsets))  # which latent dim each row belongs to
    onehot_c_t = onehot_c.T.tocsr()
    mi = np.zeros((d, labels.shape[1]))
    for k in range(labels.shape[1]):
        onehot_l, _ = _one_hot(labels[:, k : k + 1])
        joint = (onehot_c_t @ onehot_l).toarray() / n  # (sum n_d, n_k)
        p_label = np.asarray(onehot_l.sum(axis=0)).ravel() / n
        safe = np.where(joint > 0, joint, 1.0)
        terms = joint * (np.log(safe) - log_p_code[:, None] - np.log(p_label)[None, :])
        mi[:, k] = np.bincount(code_dim, weights=terms.sum(axis=1), minlength=d)
    return np.maximum(mi, 0.0)


def mig(
    latents: np.ndarray,
    factors: np.ndarray,
    *,
    num_bins: int = 20,
    discrete_mask: Sequence[bool] | np.ndarray | None = None,
) -> float:
    """Mutual Information Gap (Chen et al. 2018), disentanglement_lib style.

    Latents are discretised into ``num_bins`` equal-width histogram bins per dimension.
    Discrete factors are used as categories; continuous factors are discretised like the
    latents. For each factor ``k``: ``(I_(1) - I_(2)) / H(v_k)``, the gap between the largest
    and second-largest mutual information with any latent dimension, normalised by the factor
    entropy; MIG is the mean over factors. Constant factors (zero entropy) are left out.

    Args:
        latents: ``(N, D)`` latents.
        factors: ``(N, K)`` (or ``(N,)``) ground-truth factors.
        num_bins: Histogram bins per latent dimension (and per continuous factor).
        discrete_mask: ``(K,)`` bools marking categorical factors; ``None`` treats a factor
            with at most ``num_bins`` distinct values as categorical.

    Returns:
        MIG in ``[0, 1]`` (1: every factor captured by exactly one latent).

    Raises:
        ReprlError: On mismatched lengths, non-finite latents, or only constant factors.
    """
    z = _check_latents(latents)
    v = _check_factors(factors, z.shape[0])
    mask = _check_mask(discrete_mask, v, num_bins)
    keep = ~_is_constant(v)
    if not keep.any():
        raise ReprlError("MIG needs at least one non-constant factor; all factors are constant")
    v, mask = v[:, keep], mask[keep]
    labels = np.where(mask[None, :], v, 0.0)
    if (~mask).any():
        labels[:, ~mask] = histogram_discretise(v[:, ~mask], num_bins)
    codes = histogram_discretise(z, num_bins)
    mi = discrete_mutual_info(codes, labels)  # (D, K)
    entropy = discrete_entropy(labels)
    if mi.shape[0] == 1:
        mi = np.concatenate([mi, np.zeros_like(mi)], axis=0)
    top2 = -np.sort(-mi, axis=0)[:2]
    return float(np.mean((top2[0] - top2[1]) / entropy))
