"""What the metrics see: factors and episode ids (:class:`FactorData`), latents, and the
checks, splits and small numeric helpers every metric family shares.

Factor arrays in :class:`FactorData` may be ``(T,)`` or ``(T, k)``; a ``(T, k)`` array becomes
``k`` factors named ``"name[0]" ... "name[k-1]"`` (one column per ball, say). Factors are
"discrete" (categorical, scored by F1 / classifiers) when their base name or column name is in
``FactorData.discrete``; all others are continuous.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.errors import ReprlError

EncodeFn = Callable[[np.ndarray], np.ndarray]
"""Frames ``(B, H, W, C)`` uint8 -> latents ``(B, D)`` float."""

_CONSTANT_ATOL = 1e-12


@dataclass
class FactorData:
    """Frames and ground-truth factors, as read from a dataset.

    Lengths are checked on construction; an empty ``factors`` dict is allowed here (a dataset
    may lack factors) but every metric refuses it with a :class:`~envs.errors.ReprlError`.

    Attributes:
        frames: ``(T, H, W, C)`` uint8 frames, or ``None`` when latents are given directly to
            the metrics (encode them yourself with :func:`encode_all`).
        factors: Factor name -> ``(T,)`` or ``(T, k)`` numeric array. A ``(T, k)`` array is
            treated as ``k`` separate factors ``"name[0]" ... "name[k-1]"``.
        episode: ``(T,)`` integer episode id of every sample, used for held-out-episode splits.
        discrete: Names of categorical factors (base names such as ``"colour"`` or column names
            such as ``"colour[1]"``); all other factors are continuous.
    """

    frames: np.ndarray | None
    factors: dict[str, np.ndarray]
    episode: np.ndarray
    discrete: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.episode = np.asarray(self.episode)
        if self.episode.ndim != 1:
            raise ReprlError(
                f"FactorData.episode must have shape (T,), got shape {self.episode.shape}"
            )
        if not np.issubdtype(self.episode.dtype, np.integer):
            raise ReprlError(
                f"FactorData.episode must hold integer episode ids, got dtype {self.episode.dtype}"
            )
        t = self.episode.shape[0]
        if self.frames is not None:
            self.frames = np.asarray(self.frames)
            if self.frames.shape[0] != t:
                raise ReprlError(
                    f"FactorData length mismatch: episode has T={t} samples but frames has "
                    f"{self.frames.shape[0]} (shape {self.frames.shape})"
                )
        factors: dict[str, np.ndarray] = {}
        for name, values in self.factors.items():
            arr = np.asarray(values)
            if arr.ndim not in (1, 2) or arr.shape[0] != t:
                raise ReprlError(
                    f"factor {name!r}: expected shape (T,) or (T, k) with T={t}, "
                    f"got shape {arr.shape}"
                )
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                raise ReprlError(
                    f"factor {name!r}: expected a numeric array, got dtype {arr.dtype}"
                )
            if not np.all(np.isfinite(arr)):
                raise ReprlError(f"factor {name!r} contains NaN or infinite values")
            factors[name] = arr
        self.factors = factors
        self.discrete = set(self.discrete)
        known = set(self.factors) | set(self.column_names())
        unknown = sorted(self.discrete - known)
        if unknown:
            raise ReprlError(
                f"FactorData.discrete names {unknown} are not factors; "
                f"available factors: {sorted(known)}"
            )

    @property
    def num_samples(self) -> int:
        """Number of samples ``T``."""
        return int(self.episode.shape[0])

    def column_names(self) -> list[str]:
        """Names of all factor columns, ``(T, k)`` factors expanded to ``"name[i]"``."""
        names: list[str] = []
        for name, arr in self.factors.items():
            if arr.ndim == 1:
                names.append(name)
            else:
                names.extend(f"{name}[{i}]" for i in range(arr.shape[1]))
        return names

    def factor_matrix(
        self, names: Sequence[str] | None = None
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Stack the selected factors into one matrix.

        Args:
            names: Factor names to select, each a base name (selects all its columns) or a
                column name ``"name[i]"``. ``None`` selects every factor.

        Returns:
            ``(columns, values, discrete_mask)``: the ``K`` column names, a ``(T, K)`` float64
            matrix, and a ``(K,)`` bool mask of categorical columns.

        Raises:
            ReprlError: If there are no factors, or a requested name is not a factor.
        """
        if not self.factors:
            raise ReprlError(
                "FactorData has no factors: expected at least one ground-truth factor array of "
                f"length T={self.num_samples}, got an empty dict (does this dataset record "
                "factors?)"
            )
        columns: list[str] = []
        arrays: list[np.ndarray] = []
        mask: list[bool] = []
        for name, arr in self.factors.items():
            cols = arr[:, None] if arr.ndim == 1 else arr
            for i in range(cols.shape[1]):
                col_name = name if arr.ndim == 1 else f"{name}[{i}]"
                columns.append(col_name)
                arrays.append(cols[:, i].astype(np.float64))
                mask.append(name in self.discrete or col_name in self.discrete)
        if names is not None:
            names = [names] if isinstance(names, str) else list(names)
            missing = [n for n in names if n not in self.factors and n not in columns]
            if missing:
                raise ReprlError(
                    f"factor(s) {missing} not in dataset; available factors: {columns}"
                )
            wanted = {c for n in names for c in columns if c == n or c.startswith(f"{n}[")}
            keep = [i for i, c in enumerate(columns) if c in wanted]
            columns = [columns[i] for i in keep]
            arrays = [arrays[i] for i in keep]
            mask = [mask[i] for i in keep]
        if not columns:
            raise ReprlError(
                f"selected factors have zero columns; available factors: {self.column_names()}"
            )
        return columns, np.stack(arrays, axis=1), np.asarray(mask, dtype=bool)


def _check_latents(
    latents: Any, num_samples: int | None = None, name: str = "latents"
) -> np.ndarray:
    """Validate latents: 2-D, finite, and (optionally) ``num_samples`` rows.

    Args:
        latents: ``(N, D)`` array-like.
        num_samples: Expected ``N``, or ``None`` to skip the check.
        name: Name used in error messages.

    Returns:
        The latents as a ``(N, D)`` float64 array.

    Raises:
        ReprlError: On a wrong shape, a length mismatch, or NaN / infinite values.
    """
    arr = np.asarray(latents)
    if arr.ndim != 2:
        raise ReprlError(f"{name} must have shape (N, D), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ReprlError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ReprlError(f"{name} is empty: shape {arr.shape}")
    if num_samples is not None and arr.shape[0] != num_samples:
        raise ReprlError(
            f"length mismatch: expected {name} for T={num_samples} samples (one row per "
            f"factor sample), got {arr.shape[0]} rows (shape {arr.shape})"
        )
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_dims = np.flatnonzero(~finite.all(axis=0)).tolist()
        raise ReprlError(
            f"{name} contain {int((~finite).sum())} NaN/infinite values in latent dimension(s) "
            f"{bad_dims[:20]}{'...' if len(bad_dims) > 20 else ''}; the encoder diverged or "
            "produced invalid output"
        )
    return arr


def _check_factors(factors: Any, num_samples: int, name: str = "factors") -> np.ndarray:
    """Validate a ``(N, K)`` factor matrix against ``num_samples`` rows; returns float64."""
    arr = np.asarray(factors)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ReprlError(f"{name} must have shape (N, K) with K >= 1, got shape {arr.shape}")
    if arr.shape[0] != num_samples:
        raise ReprlError(
            f"length mismatch: latents have {num_samples} rows but {name} have "
            f"{arr.shape[0]} rows (shape {arr.shape})"
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ReprlError(f"{name} contain NaN or infinite values")
    return arr


def _check_mask(discrete_mask: Any, factors: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Return a ``(K,)`` bool mask; ``None``: discrete iff <= ``num_bins`` distinct values."""
    k = factors.shape[1]
    if discrete_mask is None:
        return np.array([np.unique(factors[:, j]).size <= num_bins for j in range(k)])
    mask = np.asarray(discrete_mask, dtype=bool).reshape(-1)
    if mask.shape[0] != k:
        raise ReprlError(f"discrete_mask must have K={k} entries, got {mask.shape[0]}")
    return mask


def _is_constant(x: np.ndarray) -> np.ndarray:
    """``(N, K)`` -> ``(K,)`` bool: column is constant (range below a tiny tolerance)."""
    span = x.max(axis=0) - x.min(axis=0)
    return span <= _CONSTANT_ATOL * (1.0 + np.abs(x).max(axis=0))


def _to_plain(obj: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) to JSON-plain Python; NaN becomes ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return None if not math.isfinite(value) else value
    return obj


def encode_all(encode: EncodeFn, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Encode frames in batches.

    Args:
        encode: Maps ``(B, H, W, C)`` uint8 frames to ``(B, D)`` latents (a numpy array; a
            torch tensor is also accepted and moved to CPU).
        frames: ``(T, H, W, C)`` uint8 frames.
        batch_size: Frames per call to ``encode``.

    Returns:
        ``(T, D)`` float32 latents.

    Raises:
        ReprlError: On frames of the wrong shape/dtype, inconsistent encoder output, or
            NaN / infinite latents.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ReprlError(
            f"frames must be (T, H, W, C) uint8, got shape {frames.shape} dtype {frames.dtype}"
        )
    if frames.shape[0] == 0:
        raise ReprlError("frames is empty: expected T >= 1 frames")
    if batch_size < 1:
        raise ReprlError(f"batch_size must be >= 1, got {batch_size}")
    chunks: list[np.ndarray] = []
    for start in range(0, frames.shape[0], batch_size):
        batch = frames[start : start + batch_size]
        out = encode(batch)
        if hasattr(out, "detach"):  # torch.Tensor, without importing torch here
            out = out.detach().cpu().numpy()
        out = np.asarray(out)
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise ReprlError(
                f"encode returned shape {out.shape} for a batch of {batch.shape[0]} frames; "
                f"expected ({batch.shape[0]}, D)"
            )
        if chunks and out.shape[1] != chunks[0].shape[1]:
            raise ReprlError(
                f"encode returned latent dim {out.shape[1]}, earlier batches had "
                f"{chunks[0].shape[1]}"
            )
        chunks.append(out.astype(np.float32, copy=False))
    latents = np.concatenate(chunks, axis=0)
    _check_latents(latents)
    return latents


def episode_split(
    episode: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices by held-out episodes (no episode is in both parts).

    Args:
        episode: ``(T,)`` integer episode ids.
        test_fraction: Fraction of *episodes* held out, in ``(0, 1)``; at least one episode
            goes to each side.
        seed: Seed of the episode permutation.

    Returns:
        ``(train_idx, test_idx)``: sorted int64 sample indices.

    Raises:
        ReprlError: If ``test_fraction`` is outside ``(0, 1)`` or there are fewer than two
            episodes.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ReprlError(f"test_fraction must be in (0, 1), got {test_fraction}")
    episode = np.asarray(episode)
    episodes = np.unique(episode)
    if episodes.size < 2:
        raise ReprlError(
            f"held-out-episode split needs at least 2 distinct episodes, got {episodes.size}"
        )
    rng = np.random.default_rng(seed)
    n_test = int(np.clip(round(test_fraction * episodes.size), 1, episodes.size - 1))
    test_episodes = rng.permutation(episodes)[:n_test]
    is_test = np.isin(episode, test_episodes)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Z-score with training statistics; constant training dims map to 0."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > _CONSTANT_ATOL * (1.0 + np.abs(mean)), std, 1.0)
    return [(x - mean) / std for x in (train, *others)]


def _r2(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Column-wise coefficient of determination; ``(N, K)`` -> ``(K,)``."""
    sse = ((y - pred) ** 2).sum(axis=0)
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - sse / sst
