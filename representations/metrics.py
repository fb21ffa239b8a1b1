"""Scores for learned representations against ground-truth generative factors.

Metrics see only an ``encode`` callable (or latents it produced) and a :class:`FactorData`
holding frames and factors; they never import a model (as in disentanglement_lib's
``evaluation/metrics``). Implemented here:

- :func:`linear_probe`: AtariARI-style probes (Anand et al. 2019). One linear model per factor
  is fitted on latents from training episodes and scored on held-out episodes: ridge
  regression scored by R^2 for continuous factors, multinomial logistic regression scored by
  macro-F1 for discrete ones.
- :func:`mig`: Mutual Information Gap (Chen et al. 2018), computed as in disentanglement_lib
  (histogram-discretised latents, discrete mutual information, gap normalised by the factor
  entropy).
- :func:`dci`: Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018) from a
  random-forest importance matrix (default) or a lasso importance matrix. disentanglement_lib
  uses gradient-boosted trees; a forest of shallow trees gives the same kind of impurity-based
  importances and runs in seconds on two cores.
- :func:`factor_vae_score`: the FactorVAE metric (Kim & Mnih 2018), adapted to observational
  data: see its docstring for the approximation.
- :func:`evaluate`: one entry point running any subset of the above, with JSON-plain output,
  and :func:`format_table` to print it.

Factor arrays in :class:`FactorData` may be ``(T,)`` or ``(T, k)``; a ``(T, k)`` array becomes
``k`` factors named ``"name[0]" ... "name[k-1]"`` (one column per ball, say). Factors are
"discrete" (categorical, scored by F1 / classifiers) when their base name or column name is in
``FactorData.discrete``; all others are continuous.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.metrics import f1_score

EncodeFn = Callable[[np.ndarray], np.ndarray]
"""Frames ``(B, H, W, C)`` uint8 -> latents ``(B, D)`` float."""

METRICS: tuple[str, ...] = ("probe", "mig", "dci", "factor_vae")
"""Names accepted by :func:`evaluate`'s ``metrics`` argument."""

_CONSTANT_ATOL = 1e-12


# --------------------------------------------------------------------------------------------
# Data container and validation
# --------------------------------------------------------------------------------------------


@dataclass
class FactorData:
    """Frames and ground-truth factors, as read from a dataset.

    Lengths are checked on construction; an empty ``factors`` dict is allowed here (a dataset
    may lack factors) but every metric refuses it with a ``ValueError``.

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
            raise ValueError(
                f"FactorData.episode must have shape (T,), got shape {self.episode.shape}"
            )
        if not np.issubdtype(self.episode.dtype, np.integer):
            raise ValueError(
                f"FactorData.episode must hold integer episode ids, got dtype {self.episode.dtype}"
            )
        t = self.episode.shape[0]
        if self.frames is not None:
            self.frames = np.asarray(self.frames)
            if self.frames.shape[0] != t:
                raise ValueError(
                    f"FactorData length mismatch: episode has T={t} samples but frames has "
                    f"{self.frames.shape[0]} (shape {self.frames.shape})"
                )
        factors: dict[str, np.ndarray] = {}
        for name, values in self.factors.items():
            arr = np.asarray(values)
            if arr.ndim not in (1, 2) or arr.shape[0] != t:
                raise ValueError(
                    f"factor {name!r}: expected shape (T,) or (T, k) with T={t}, "
                    f"got shape {arr.shape}"
                )
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                raise ValueError(
                    f"factor {name!r}: expected a numeric array, got dtype {arr.dtype}"
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"factor {name!r} contains NaN or infinite values")
            factors[name] = arr
        self.factors = factors
        self.discrete = set(self.discrete)
        known = set(self.factors) | set(self.column_names())
        unknown = sorted(self.discrete - known)
        if unknown:
            raise ValueError(
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
            ValueError: If there are no factors, or a requested name is not a factor.
        """
        if not self.factors:
            raise ValueError(
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
                raise ValueError(
                    f"factor(s) {missing} not in dataset; available factors: {columns}"
                )
            wanted = {c for n in names for c in columns if c == n or c.startswith(f"{n}[")}
            keep = [i for i, c in enumerate(columns) if c in wanted]
            columns = [columns[i] for i in keep]
            arrays = [arrays[i] for i in keep]
            mask = [mask[i] for i in keep]
        if not columns:
            raise ValueError(
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
        ValueError: On a wrong shape, a length mismatch, or NaN / infinite values.
    """
    arr = np.asarray(latents)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if num_samples is not None and arr.shape[0] != num_samples:
        raise ValueError(
            f"length mismatch: expected {name} for T={num_samples} samples (one row per "
            f"factor sample), got {arr.shape[0]} rows (shape {arr.shape})"
        )
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_dims = np.flatnonzero(~finite.all(axis=0)).tolist()
        raise ValueError(
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
        raise ValueError(f"{name} must have shape (N, K) with K >= 1, got shape {arr.shape}")
    if arr.shape[0] != num_samples:
        raise ValueError(
            f"length mismatch: latents have {num_samples} rows but {name} have "
            f"{arr.shape[0]} rows (shape {arr.shape})"
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return arr


def _check_mask(discrete_mask: Any, factors: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Return a ``(K,)`` bool mask; ``None``: discrete iff <= ``num_bins`` distinct values."""
    k = factors.shape[1]
    if discrete_mask is None:
        return np.array([np.unique(factors[:, j]).size <= num_bins for j in range(k)])
    mask = np.asarray(discrete_mask, dtype=bool).reshape(-1)
    if mask.shape[0] != k:
        raise ValueError(f"discrete_mask must have K={k} entries, got {mask.shape[0]}")
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


# --------------------------------------------------------------------------------------------
# Encoding and splits
# --------------------------------------------------------------------------------------------


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
        ValueError: On frames of the wrong shape/dtype, inconsistent encoder output, or
            NaN / infinite latents.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be (T, H, W, C) uint8, got shape {frames.shape} dtype {frames.dtype}"
        )
    if frames.shape[0] == 0:
        raise ValueError("frames is empty: expected T >= 1 frames")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chunks: list[np.ndarray] = []
    for start in range(0, frames.shape[0], batch_size):
        batch = frames[start : start + batch_size]
        out = encode(batch)
        if hasattr(out, "detach"):  # torch.Tensor, without importing torch here
            out = out.detach().cpu().numpy()
        out = np.asarray(out)
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise ValueError(
                f"encode returned shape {out.shape} for a batch of {batch.shape[0]} frames; "
                f"expected ({batch.shape[0]}, D)"
            )
        if chunks and out.shape[1] != chunks[0].shape[1]:
            raise ValueError(
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
        ValueError: If ``test_fraction`` is outside ``(0, 1)`` or there are fewer than two
            episodes.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    episode = np.asarray(episode)
    episodes = np.unique(episode)
    if episodes.size < 2:
        raise ValueError(
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


# --------------------------------------------------------------------------------------------
# Linear probes
# --------------------------------------------------------------------------------------------


def _r2(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Column-wise coefficient of determination; ``(N, K)`` -> ``(K,)``."""
    sse = ((y - pred) ** 2).sum(axis=0)
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - sse / sst


def linear_probe(
    latents: np.ndarray,
    data: FactorData,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    factor_names: Sequence[str] | None = None,
    ridge_alpha: float = 1.0,
    logistic_c: float = 1.0,
    max_iter: int = 1000,
) -> dict[str, dict]:
    """Fit one linear probe per factor on training episodes; score on held-out episodes.

    Latents are standardised with training-split statistics. Continuous factors: ridge
    regression (``ridge_alpha``), scored by R^2 on the test split (unbounded below; 0 is the
    test-mean predictor). Discrete factors: multinomial logistic regression (``logistic_c``),
    scored by macro-F1 over the classes that occur in the test labels or predictions.

    Args:
        latents: ``(T, D)`` latents, one row per sample of ``data``.
        data: Factors and episode ids.
        test_fraction: Fraction of episodes held out for testing (see :func:`episode_split`).
        seed: Seed of the episode split.
        factor_names: Factors to probe (base or column names); ``None`` probes all.
        ridge_alpha: L2 strength of the ridge regression, on standardised latents.
        logistic_c: Inverse L2 strength of the logistic regression.
        max_iter: Iteration cap of the logistic-regression solver.

    Returns:
        Column name -> ``{"kind": "continuous" | "discrete", "metric": "r2" | "macro_f1",
        "score": float | None, "baseline": float | None, "n_train": int, "n_test": int}``.
        ``baseline`` is the score of a predictor that ignores the latents (training mean,
        or training majority class). Discrete entries also hold ``"n_classes"`` and
        ``"unseen_test_classes"`` (labels present in test but never in training; the probe
        cannot predict them, so they count with F1 = 0). A factor that cannot be probed
        (constant; a single training class; continuous and constant in the test split) has
        ``score=None`` and a ``"skipped"`` reason.

    Raises:
        ValueError: On missing factors, mismatched lengths, non-finite latents, or fewer
            than two episodes.
    """
    columns, values, mask = data.factor_matrix(factor_names)
    x = _check_latents(latents, data.num_samples)
    train_idx, test_idx = episode_split(data.episode, test_fraction, seed)
    x_train, x_test = _standardise(x[train_idx], x[test_idx])
    n_train, n_test = int(train_idx.size), int(test_idx.size)
    results: dict[str, dict] = {}

    constant_all = _is_constant(values)
    constant_train = _is_constant(values[train_idx])
    constant_test = _is_constant(values[test_idx])

    def skipped(kind: str, reason: str) -> dict:
        return {
            "kind": kind,
            "metric": "macro_f1" if kind == "discrete" else "r2",
            "score": None,
            "baseline": None,
            "n_train": n_train,
            "n_test": n_test,
            "skipped": reason,
        }

    # Continuous factors: one multi-output ridge fit (independent per output).
    cont = [j for j in range(len(columns)) if not mask[j]]
    fit_cont: list[int] = []
    for j in cont:
        if constant_all[j]:
            results[columns[j]] = skipped("continuous", "constant over the dataset")
        elif constant_train[j]:
            results[columns[j]] = skipped("continuous", "constant in the training split")
        elif constant_test[j]:
            results[columns[j]] = skipped(
                "continuous", "constant in the test split (R^2 undefined)"
            )
        else:
            fit_cont.append(j)
    if fit_cont:
        y_train, y_test = values[train_idx][:, fit_cont], values[test_idx][:, fit_cont]
        model = Ridge(alpha=ridge_alpha).fit(x_train, y_train)
        pred = model.predict(x_test).reshape(y_test.shape)
        scores = _r2(y_test, pred)
        baselines = _r2(y_test, np.broadcast_to(y_train.mean(axis=0), y_test.shape))
        for col, j in enumerate(fit_cont):
            results[columns[j]] = {
                "kind": "continuous",
                "metric": "r2",
                "score": float(scores[col]),
                "baseline": float(baselines[col]),
                "n_train": n_train,
                "n_test": n_test,
            }

    # Discrete factors: one multinomial logistic regression each.
    for j in (j for j in range(len(columns)) if mask[j]):
        if constant_all[j]:
            results[columns[j]] = skipped("discrete", "constant over the dataset")
            continue
        y_train, y_test = values[train_idx, j], values[test_idx, j]
        train_classes = np.unique(y_train)
        if train_classes.size < 2:
            results[columns[j]] = skipped("discrete", "a single class in the training split")
            continue
        clf = LogisticRegression(C=logistic_c, max_iter=max_iter)
        clf.fit(x_train, y_train)
        pred = clf.predict(x_test)
        unseen = np.setdiff1d(np.unique(y_test), train_classes)
        values_, counts = np.unique(y_train, return_counts=True)
        majority = np.full_like(y_test, values_[np.argmax(counts)])
        results[columns[j]] = {
            "kind": "discrete",
            "metric": "macro_f1",
            "score": float(f1_score(y_test, pred, average="macro", zero_division=0)),
            "baseline": float(f1_score(y_test, majority, average="macro", zero_division=0)),
            "n_train": n_train,
            "n_test": n_test,
            "n_classes": int(np.unique(values[:, j]).size),
            "unseen_test_classes": _to_plain(unseen),
        }
    return {c: results[c] for c in columns}


# --------------------------------------------------------------------------------------------
# Mutual Information Gap
# --------------------------------------------------------------------------------------------


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
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
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
        ValueError: On mismatched lengths, non-finite latents, or only constant factors.
    """
    z = _check_latents(latents)
    v = _check_factors(factors, z.shape[0])
    mask = _check_mask(discrete_mask, v, num_bins)
    keep = ~_is_constant(v)
    if not keep.any():
        raise ValueError("MIG needs at least one non-constant factor; all factors are constant")
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


# --------------------------------------------------------------------------------------------
# DCI
# --------------------------------------------------------------------------------------------


def _entropy_base(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    """Entropy of distributions along ``axis`` (normalised there), in log base ``base``."""
    p = p + 1e-11
    p = p / p.sum(axis=axis, keepdims=True)
    return -(p * np.log(p)).sum(axis=axis) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """Disentanglement and completeness from a ``(D, K)`` importance matrix.

    Disentanglement: per latent ``1 - H_K(P_d.)`` weighted by the latent's share of total
    importance. Completeness: per factor ``1 - H_D(P_.k)`` weighted by the factor's share.
    An all-zero matrix scores 0 for both.

    Args:
        importance: ``(D, K)`` non-negative importances of latent ``d`` for factor ``k``.

    Returns:
        ``(disentanglement, completeness)``, each in ``[0, 1]``.
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    d, k = r.shape
    if r.sum() <= 0:
        return 0.0, 0.0
    dis = 1.0 - _entropy_base(r, k, axis=1) if k > 1 else np.ones(d)
    com = 1.0 - _entropy_base(r, d, axis=0) if d > 1 else np.ones(k)
    rho_code = r.sum(axis=1) / r.sum()
    rho_factor = r.sum(axis=0) / r.sum()
    return float(np.clip(dis @ rho_code, 0, 1)), float(np.clip(com @ rho_factor, 0, 1))


def dci(
    latents_train: np.ndarray,
    factors_train: np.ndarray,
    latents_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    discrete_mask: Sequence[bool] | np.ndarray | None = None,
    importance: Literal["random_forest", "lasso"] = "random_forest",
    n_estimators: int = 10,
    max_depth: int = 8,
    lasso_alpha: float = 0.02,
    max_train: int | None = 5000,
    seed: int = 0,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018).

    One predictor per factor is fitted from standardised latents; its feature importances
    form column ``k`` of a ``(D, K)`` importance matrix, each column normalised to sum to 1
    (as gradient-boosted-tree importances in disentanglement_lib do).

    Importance choices (disentanglement_lib uses sklearn's GradientBoostingClassifier, which
    takes minutes at D ~ 32, K ~ 10):

    - ``"random_forest"`` (default): a forest of ``n_estimators`` trees of depth
      ``max_depth``, each fitted on a bootstrap sample of half the training rows (regressor
      for continuous factors, classifier for discrete), considering every latent at every
      split so that an irrelevant latent only gains importance when it really helps;
      impurity-based importances. Nonlinear; about 0.5 s per factor at 5000 rows x D=64 on
      one core.
    - ``"lasso"``: L1-regularised linear regression (``lasso_alpha``) on the standardised
      factor (continuous) or on standardised one-hot indicators (discrete, importances
      summed over classes); importance ``|coef|``. Linear, fast for very wide latents.

    Args:
        latents_train: ``(N, D)`` training latents.
        factors_train: ``(N, K)`` training factors.
        latents_test: ``(M, D)`` test latents.
        factors_test: ``(M, K)`` test factors.
        discrete_mask: ``(K,)`` bools marking categorical factors; ``None`` treats factors
            with at most 20 distinct values as categorical.
        importance: ``"random_forest"`` or ``"lasso"``.
        n_estimators: Trees per forest.
        max_depth: Maximum tree depth.
        lasso_alpha: L1 strength for ``"lasso"``.
        max_train: Training rows used (random subset) to bound cost; ``None`` uses all.
        seed: Seed of the forest and of the subset.
        n_jobs: Parallel jobs for the forest (``None``: 1).

    Returns:
        ``{"disentanglement", "completeness", "informativeness", "informativeness_train"}``
        in ``[0, 1]`` (informativeness: mean over factors of test accuracy for discrete
        factors and test R^2 clipped to ``[0, 1]`` for continuous ones), plus
        ``"importance"`` (method name), ``"importance_matrix"`` (``(D, K')`` nested list) and
        ``"factor_indices"`` (the ``K'`` factor columns scored: factors constant in the
        training data are left out).

    Raises:
        ValueError: On mismatched shapes, non-finite latents, or only constant factors.
    """
    z_train = _check_latents(latents_train, name="latents_train")
    z_test = _check_latents(latents_test, name="latents_test")
    if z_test.shape[1] != z_train.shape[1]:
        raise ValueError(
            f"latents_train have D={z_train.shape[1]} dims but latents_test have "
            f"D={z_test.shape[1]}"
        )
    y_train = _check_factors(factors_train, z_train.shape[0], "factors_train")
    y_test = _check_factors(factors_test, z_test.shape[0], "factors_test")
    if y_test.shape[1] != y_train.shape[1]:
        raise ValueError(
            f"factors_train have K={y_train.shape[1]} factors but factors_test have "
            f"K={y_test.shape[1]}"
        )
    if importance not in ("random_forest", "lasso"):
        raise ValueError(f"importance must be 'random_forest' or 'lasso', got {importance!r}")
    mask = _check_mask(discrete_mask, np.concatenate([y_train, y_test]))
    keep = ~_is_constant(y_train)
    if not keep.any():
        raise ValueError("DCI needs at least one non-constant factor; all factors are constant")
    y_train, y_test, mask = y_train[:, keep], y_test[:, keep], mask[keep]
    rng = np.random.default_rng(seed)
    if max_train is not None and z_train.shape[0] > max_train:
        sub = rng.choice(z_train.shape[0], size=max_train, replace=False)
        z_train, y_train = z_train[sub], y_train[sub]
    x_train, x_test = _standardise(z_train, z_test)
    d, k = x_train.shape[1], y_train.shape[1]
    imp = np.zeros((d, k))
    info_train, info_test = np.zeros(k), np.zeros(k)

    for j in range(k):
        yt, ye = y_train[:, j], y_test[:, j]
        if importance == "random_forest":
            cls = RandomForestClassifier if mask[j] else RandomForestRegressor
            model = cls(
                n_estimators=n_estimators,
                max_depth=max_depth,
                max_features=None,
                min_samples_leaf=5,
                max_samples=0.5,
                random_state=seed,
                n_jobs=n_jobs,
            ).fit(x_train, yt)
            imp[:, j] = model.feature_importances_
            pred_train, pred_test = model.predict(x_train), model.predict(x_test)
        else:
            if mask[j]:
                classes = np.unique(yt)
                target = (yt[:, None] == classes[None, :]).astype(np.float64)
            else:
                classes = None
                target = yt[:, None]
            t_mean, t_std = target.mean(axis=0), target.std(axis=0)
            t_std = np.where(t_std > 0, t_std, 1.0)
            model = Lasso(alpha=lasso_alpha, max_iter=5000).fit(x_train, (target - t_mean) / t_std)
            coef = np.asarray(model.coef_).reshape(target.shape[1], d)
            imp[:, j] = np.abs(coef).sum(axis=0)

            def predict(x: np.ndarray, model=model, t_mean=t_mean, t_std=t_std, classes=classes):
                out = np.asarray(model.predict(x)).reshape(x.shape[0], -1) * t_std + t_mean
                return classes[np.argmax(out, axis=1)] if classes is not None else out[:, 0]

            pred_train, pred_test = predict(x_train), predict(x_test)
        if mask[j]:
            info_train[j] = np.mean(pred_train == yt)
            info_test[j] = np.mean(pred_test == ye)
        else:
            info_train[j] = _r2(yt[:, None], pred_train[:, None])[0]
            sst = ((ye - ye.mean()) ** 2).sum()
            info_test[j] = _r2(ye[:, None], pred_test[:, None])[0] if sst > 0 else 0.0

    col_sum = imp.sum(axis=0, keepdims=True)
    imp = np.divide(imp, col_sum, out=np.zeros_like(imp), where=col_sum > 0)
    dis, com = dci_from_importance(imp)
    return {
        "disentanglement": dis,
        "completeness": com,
        "informativeness": float(np.mean(np.clip(info_test, 0.0, 1.0))),
        "informativeness_train": float(np.mean(np.clip(info_train, 0.0, 1.0))),
        "importance": importance,
        "importance_matrix": imp.tolist(),
        "factor_indices": np.flatnonzero(keep).tolist(),
    }


# --------------------------------------------------------------------------------------------
# FactorVAE score
# --------------------------------------------------------------------------------------------


def _fixed_value_groups(values: np.ndarray, discrete: bool, num_bins: int) -> np.ndarray:
    """Group ids ``(N,)`` of samples sharing a factor value (discrete) or quantile bin."""
    if discrete:
        return np.unique(values, return_inverse=True)[1]
    inner = np.linspace(0.0, 1.0, num_bins + 1)[1:-1]
    edges = np.unique(np.quantile(values, inner))
    return np.searchsorted(edges, values, side="right")


def factor_vae_score(
    latents: np.ndarray,
    factors: np.ndarray,
    *,
    discrete_mask: Sequence[bool] | np.ndarray | None = None,
    num_bins: int = 20,
    batch_size: int = 64,
    num_train: int = 2000,
    num_eval: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """FactorVAE disentanglement score (Kim & Mnih 2018) on observational data.

    The original metric asks a simulator for a batch in which one factor is fixed and the
    others are resampled, takes the latent dimension with the smallest variance (normalised
    by its global variance) and votes "(factor, dimension)"; a majority-vote classifier
    dimension -> factor is trained on ``num_train`` votes and its accuracy on ``num_eval``
    fresh votes is the score.

    Approximation (no simulator): a batch with factor ``k`` "fixed" is ``batch_size``
    samples drawn without replacement from the dataset samples that share ``k``'s value
    (discrete factors) or its quantile bin out of ``num_bins`` (continuous factors: fixed
    only up to the bin width). The group is picked by drawing an anchor sample uniformly,
    i.e. with the empirical factor distribution. The other factors in a batch therefore
    follow their empirical distribution *conditional* on the fixed value rather than an
    independent prior: factors correlated in the data (e.g. by the exploration policy) can
    make the wrong dimension look fixed. Train and eval votes come from the same dataset
    (fresh random batches); the classifier has only ``D`` parameters. Groups smaller than
    ``batch_size`` are never drawn; factors without such a group (or constant) are skipped.
    Collapsed latent dimensions (zero variance) are pruned; if none remain the score is 0,
    as in disentanglement_lib.

    Args:
        latents: ``(N, D)`` latents.
        factors: ``(N, K)`` factors.
        discrete_mask: ``(K,)`` bools marking categorical factors; ``None`` treats factors
            with at most ``num_bins`` distinct values as categorical.
        num_bins: Quantile bins used to "fix" a continuous factor.
        batch_size: Samples per vote.
        num_train: Votes used to build the majority-vote classifier.
        num_eval: Votes used to score it.
        seed: Seed of all sampling.

    Returns:
        ``{"score": eval accuracy in [0, 1], "train_accuracy", "eval_accuracy",
        "num_active_dims", "skipped_factors": [factor indices]}``.

    Raises:
        ValueError: On mismatched lengths, non-finite latents, ``batch_size < 2``, or no
            factor with a group of at least ``batch_size`` samples.
    """
    z = _check_latents(latents)
    v = _check_factors(factors, z.shape[0])
    mask = _check_mask(discrete_mask, v, num_bins)
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    rng = np.random.default_rng(seed)

    # Per factor: members of every group large enough, as (sorted index array, offsets).
    eligible: list[int] = []
    pools: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    skipped: list[int] = []
    for k in range(v.shape[1]):
        groups = _fixed_value_groups(v[:, k], bool(mask[k]), num_bins)
        sizes = np.bincount(groups)
        ok = sizes >= batch_size
        if sizes.size < 2 or not ok.any():
            skipped.append(k)
            continue
        order = np.argsort(groups, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)])
        good = np.flatnonzero(ok)
        eligible.append(k)
        pools[k] = (order, starts, good)
    if not eligible:
        raise ValueError(
            f"FactorVAE score: no factor has a fixed-value group with >= batch_size="
            f"{batch_size} samples (N={z.shape[0]}); lower batch_size or use more data"
        )

    global_var = z.var(axis=0, ddof=1)
    active = np.sqrt(global_var) > _CONSTANT_ATOL * (1.0 + np.abs(z).max(axis=0))
    result: dict[str, Any] = {
        "score": 0.0,
        "train_accuracy": 0.0,
        "eval_accuracy": 0.0,
        "num_active_dims": int(active.sum()),
        "skipped_factors": skipped,
    }
    if not active.any():
        return result
    za = z[:, active] / np.sqrt(global_var[active])  # local var / global var = var of this

    def votes(n: int) -> np.ndarray:
        table = np.zeros((v.shape[1], za.shape[1]), dtype=np.int64)
        chosen = rng.choice(np.asarray(eligible), size=n)
        idx = np.empty((n, batch_size), dtype=np.int64)
        for k in eligible:
            rows = np.flatnonzero(chosen == k)
            order, starts, good = pools[k]
            # Anchor ~ data distribution: a group is drawn proportionally to its size.
            sizes = (starts[good + 1] - starts[good]).astype(np.float64)
            groups = rng.choice(good, size=rows.size, p=sizes / sizes.sum())
            for row, g in zip(rows, groups):
                idx[row] = rng.choice(order[starts[g] : starts[g + 1]], batch_size, replace=False)
        for lo in range(0, n, 256):  # chunked to bound memory: (256, batch_size, D)
            local = za[idx[lo : lo + 256]].var(axis=1, ddof=1)
            np.add.at(table, (chosen[lo : lo + 256], np.argmin(local, axis=1)), 1)
        return table

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)  # latent dim -> factor
    cols = np.arange(za.shape[1])
    train_acc = train_votes[classifier, cols].sum() / train_votes.sum()
    eval_votes = votes(num_eval)
    eval_acc = eval_votes[classifier, cols].sum() / eval_votes.sum()
    result.update(
        score=float(eval_acc), train_accuracy=float(train_acc), eval_accuracy=float(eval_acc)
    )
    return result


# --------------------------------------------------------------------------------------------
# Entry point and table
# --------------------------------------------------------------------------------------------


def evaluate(
    encode_or_latents: EncodeFn | np.ndarray,
    data: FactorData,
    metrics: Iterable[str] = METRICS,
    seed: int = 0,
    *,
    factor_names: Sequence[str] | None = None,
    test_fraction: float = 0.2,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Score a representation with any subset of the metrics; JSON-plain output.

    Probes and DCI train on the same held-out-episode split (:func:`episode_split`); MIG and
    the FactorVAE score use all samples. Factors constant over the dataset are left out of
    MIG, DCI and FactorVAE and listed under ``"skipped_factors"``.

    Args:
        encode_or_latents: An :data:`EncodeFn` (applied to ``data.frames`` with
            :func:`encode_all`) or precomputed ``(T, D)`` latents.
        data: Frames, factors and episode ids.
        metrics: Any of ``"probe"``, ``"mig"``, ``"dci"``, ``"factor_vae"``.
        seed: Seed of the split and of all sampling.
        factor_names: Factors to score (base or column names); ``None`` scores all.
        test_fraction: Fraction of episodes held out for probes and DCI.
        batch_size: Encoding batch size.

    Returns:
        ``{"n_samples", "n_episodes", "latent_dim", "factors", "skipped_factors"}`` plus, per
        requested metric: ``"probe": {"per_factor": linear_probe output, "mean_r2",
        "mean_f1"}``, ``"mig": float``, ``"dci": dci output``, ``"factor_vae":
        factor_vae_score output`` (skipped factor indices replaced by names). Undefined
        numbers are ``None``.

    Raises:
        ValueError: On unknown metric names, missing factors or frames, mismatched lengths,
            or non-finite latents.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected any of {list(METRICS)}")
    columns, values, mask = data.factor_matrix(factor_names)
    if callable(encode_or_latents):
        if data.frames is None:
            raise ValueError("an encode function was given but FactorData.frames is None")
        latents = encode_all(encode_or_latents, data.frames, batch_size=batch_size)
    else:
        latents = encode_or_latents
    z = _check_latents(latents, data.num_samples)

    constant = _is_constant(values)
    out: dict[str, Any] = {
        "n_samples": data.num_samples,
        "n_episodes": int(np.unique(data.episode).size),
        "latent_dim": int(z.shape[1]),
        "factors": columns,
        "skipped_factors": {c: "constant over the dataset" for c, s in zip(columns, constant) if s},
    }
    keep = ~constant
    kept_cols = [c for c, k in zip(columns, keep) if k]
    v, m = values[:, keep], mask[keep]
    if "probe" in metrics:
        per = linear_probe(
            z, data, test_fraction=test_fraction, seed=seed, factor_names=factor_names
        )
        r2 = [
            r["score"] for r in per.values() if r["kind"] == "continuous" and r["score"] is not None
        ]
        f1 = [
            r["score"] for r in per.values() if r["kind"] == "discrete" and r["score"] is not None
        ]
        out["probe"] = {
            "per_factor": per,
            "mean_r2": float(np.mean(r2)) if r2 else None,
            "mean_f1": float(np.mean(f1)) if f1 else None,
            "test_fraction": test_fraction,
        }
    if v.shape[1] == 0 and any(x in metrics for x in ("mig", "dci", "factor_vae")):
        raise ValueError(f"all selected factors {columns} are constant; nothing to score")
    if "mig" in metrics:
        out["mig"] = mig(z, v, discrete_mask=m)
    if "dci" in metrics:
        tr, te = episode_split(data.episode, test_fraction, seed)
        out["dci"] = dci(z[tr], v[tr], z[te], v[te], discrete_mask=m, seed=seed)
        out["dci"]["factors"] = [kept_cols[i] for i in out["dci"].pop("factor_indices")]
    if "factor_vae" in metrics:
        fv = factor_vae_score(z, v, discrete_mask=m, seed=seed)
        fv["skipped_factors"] = [kept_cols[i] for i in fv["skipped_factors"]]
        out["factor_vae"] = fv
    return _to_plain(out)


def _fmt(x: Any, width: int = 8) -> str:
    """Right-aligned number (3 decimals) or '-' for missing."""
    if x is None:
        return "-".rjust(width)
    if isinstance(x, float):
        return f"{x:.3f}".rjust(width)
    return str(x).rjust(width)


def format_table(results: dict) -> str:
    """Render :func:`evaluate` output as a plain-text table (for ``reprl probe``).

    Args:
        results: Output of :func:`evaluate` (any subset of metrics).

    Returns:
        Multi-line text, no trailing newline.
    """
    lines: list[str] = []
    head = []
    for key, label in (("n_samples", "samples"), ("n_episodes", "episodes"), ("latent_dim", "D")):
        if key in results:
            head.append(f"{label}={results[key]}")
    lines.append("Representation evaluation" + (f"  ({', '.join(head)})" if head else ""))

    probe = results.get("probe")
    if probe:
        per = probe.get("per_factor", {})
        name_w = max([len("factor"), *(len(n) for n in per)])
        lines += ["", "Linear probes (held-out episodes; R^2 continuous, macro-F1 discrete)"]
        lines.append(
            f"{'factor'.ljust(name_w)}  {'kind':<10}  {'metric':<8}  {'score':>8}  "
            f"{'baseline':>8}  {'n_train':>7}  {'n_test':>6}  note"
        )
        for name, r in per.items():
            note = r.get("skipped", "") or r.get("note", "")
            if not note and r.get("unseen_test_classes"):
                note = f"{len(r['unseen_test_classes'])} class(es) unseen in training"
            row = (
                f"{name.ljust(name_w)}  {r['kind']:<10}  {r['metric']:<8}  {_fmt(r['score'])}  "
                f"{_fmt(r['baseline'])}  {_fmt(r['n_train'], 7)}  {_fmt(r['n_test'], 6)}  {note}"
            )
            lines.append(row.rstrip())
        lines.append(
            f"mean R^2 (continuous): {_fmt(probe.get('mean_r2'), 0)}   "
            f"mean F1 (discrete): {_fmt(probe.get('mean_f1'), 0)}"
        )

    rows: list[tuple[str, Any]] = []
    if "mig" in results:
        rows.append(("MIG", results["mig"]))
    if "dci" in results:
        d = results["dci"]
        method = d.get("importance", "")
        rows += [
            (f"DCI disentanglement ({method})", d.get("disentanglement")),
            ("DCI completeness", d.get("completeness")),
            ("DCI informativeness (test)", d.get("informativeness")),
        ]
    if "factor_vae" in results:
        f = results["factor_vae"]
        rows.append(("FactorVAE score", f.get("score")))
        rows.append(("FactorVAE active dims", f.get("num_active_dims")))
    if rows:
        w = max(len(r[0]) for r in rows)
        lines += ["", "Disentanglement"]
        lines += [f"{name.ljust(w)}  {_fmt(value)}" for name, value in rows]
        fv_skipped = results.get("factor_vae", {}).get("skipped_factors") or []
        if fv_skipped:
            lines.append(f"FactorVAE skipped (no group >= batch size): {', '.join(fv_skipped)}")

    skipped = results.get("skipped_factors") or {}
    if skipped:
        lines += ["", "Skipped factors: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    return "\n".join(lines)
