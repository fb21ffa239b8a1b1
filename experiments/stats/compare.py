"""Comparing agents: min-max normalised scores, differences and the probability of improvement.

Definitions (Agarwal et al. 2021 and ``rliable``; scores are ``(num_runs, num_tasks)``):

- Min-max normalisation: ``(R - R_min) / (R_max - R_min)``, 0 at the reference ``R_min`` (e.g.
  a uniform-random policy), 1 at ``R_max`` (e.g. the best attainable return). It is undefined
  when ``R_max - R_min`` is not clearly positive (:func:`normalisation_problem` says why).
- Difference of means ``X - Y``: mean over tasks of the per-task mean over runs of ``X`` minus
  the same of ``Y``. *Paired* when run ``i`` of ``X`` and of ``Y`` share something (a training
  seed): the per-run differences ``X[i, m] - Y[i, m]`` are resampled (stratified bootstrap of
  the difference matrix). *Unpaired* otherwise: ``X`` and ``Y`` are resampled independently
  (rliable's ``StratifiedIndependentBootstrap``).
- Probability of improvement ``P(X > Y)`` (rliable ``probability_of_improvement``): per task,
  the Mann-Whitney U statistic of X's runs against Y's runs divided by ``n * m``, i.e. the
  fraction of (x, y) pairs with ``x > y``, ties counting 1/2; then the mean over tasks. 0.5
  means no difference; its interval resamples ``X`` and ``Y`` independently within each task.

Intervals are percentile intervals of the bootstrap distribution. Where a sample has a single
run, nothing can estimate its spread and the interval is ``(nan, nan)`` (the point stays).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from envs.errors import ReprlError
from experiments.stats import bootstrap as _b
from experiments.stats.bootstrap import Estimate, SeedLike

#: Relative width below which ``R_max - R_min`` counts as zero (see normalisation_problem).
DEGENERATE_RANGE = 1e-6


def normalisation_problem(low: float, high: float) -> str | None:
    """Why ``(R - low) / (high - low)`` is not a usable score, or ``None`` if it is.

    Args:
        low: ``R_min``, e.g. the mean return of a uniform-random policy.
        high: ``R_max``, e.g. the best attainable return.

    Returns:
        ``None`` if ``high - low > DEGENERATE_RANGE * max(1, |low|, |high|)``; otherwise a
        sentence naming both constants.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"R_min {low:g} or R_max {high:g} is not finite"
    if high < low:
        return f"the best return R_max {high:g} is below the random reference R_min {low:g}"
    if high - low <= DEGENERATE_RANGE * max(1.0, abs(low), abs(high)):
        return f"R_max {high:g} equals R_min {low:g}: no range to normalise by"
    return None


def min_max_normalise(x: np.ndarray | float, low: float, high: float) -> np.ndarray | float:
    """``(x - low) / (high - low)``: 0 at ``low``, 1 at ``high``.

    Args:
        x: returns of any shape.
        low: ``R_min``.
        high: ``R_max``.

    Returns:
        Normalised scores, same shape as ``x`` (a float for a scalar).

    Raises:
        ReprlError: If the range is degenerate (see :func:`normalisation_problem`).
    """
    problem = normalisation_problem(low, high)
    if problem is not None:
        raise ReprlError(f"min-max normalisation: expected R_max > R_min, got {problem}")
    out = (np.asarray(x, dtype=np.float64) - low) / (high - low)
    return float(out) if np.ndim(out) == 0 else out


def _two_sample(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _b._check_scores(x), _b._check_scores(y)
    if a.shape[1] != b.shape[1]:
        raise ReprlError(
            f"scores: expected the same number of tasks, got {a.shape[1]} and {b.shape[1]}"
        )
    return a, b


def _streams(seed: SeedLike) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators (one per sample), so chunking never changes the draws."""
    if isinstance(seed, np.random.Generator):
        gx, gy = seed.spawn(2)
        return gx, gy
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    sx, sy = seq.spawn(2)
    return np.random.default_rng(sx), np.random.default_rng(sy)


def two_sample_bootstrap_distribution(
    x: np.ndarray,
    y: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    reps: int = 2000,
    seed: SeedLike = 0,
) -> np.ndarray:
    """Values of a two-sample statistic on independent stratified resamples of ``x`` and ``y``.

    Args:
        x: ``(n, num_tasks)`` scores of X.
        y: ``(m, num_tasks)`` scores of Y.
        statistic: batched ``((..., n, T), (..., m, T)) -> (...)``.
        reps: replicates.
        seed: seed or generator; the result does not depend on the chunk size.

    Returns:
        ``(reps,)`` float64.
    """
    a, b = _two_sample(x, y)
    if reps < 1:
        raise ReprlError(f"reps: expected >= 1, got {reps}")
    (n, t), m = a.shape, b.shape[0]
    gx, gy = _streams(seed)
    chunk = max(1, _b._MAX_ELEMENTS // (n * m * t))
    cols = np.arange(t)
    out = []
    for start in range(0, reps, chunk):
        c = min(chunk, reps - start)
        ia = _b.stratified_bootstrap_indices(n, t, c, gx)
        ib = _b.stratified_bootstrap_indices(m, t, c, gy)
        out.append(np.asarray(statistic(a[ia, cols], b[ib, cols]), dtype=np.float64).ravel())
    return np.concatenate(out)


def _mean_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.mean(axis=-2).mean(axis=-1) - b.mean(axis=-2).mean(axis=-1)


def _poi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched P(X > Y): ``(..., n, T), (..., m, T) -> (...)``."""
    xa, yb = a[..., :, None, :], b[..., None, :, :]
    per_task = (xa > yb).mean(axis=(-3, -2)) + 0.5 * (xa == yb).mean(axis=(-3, -2))
    return per_task.mean(axis=-1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's ``P(X > Y)``: mean over tasks of ``U / (n * m)`` (ties count 1/2).

    Example: ``x = [[3], [1]]``, ``y = [[2], [1]]``: pairs (3,2) 1, (3,1) 1, (1,2) 0,
    (1,1) 1/2, so ``P = 2.5 / 4 = 0.625``.

    Args:
        x: ``(n, num_tasks)`` scores of X (a 1-D array is one task).
        y: ``(m, num_tasks)`` scores of Y.

    Returns:
        A probability in ``[0, 1]``.
    """
    a, b = _two_sample(x, y)
    return float(_poi(a, b))


def _interval(point: float, dist: np.ndarray, confidence: float) -> Estimate:
    lo, hi = _b._interval(point, dist, confidence, "percentile")
    return Estimate(point, lo, hi)


def probability_of_improvement_estimate(
    x: np.ndarray,
    y: np.ndarray,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
) -> Estimate:
    """:func:`probability_of_improvement` with an independent stratified-bootstrap interval.

    Args:
        x: ``(n, num_tasks)`` scores of X.
        y: ``(m, num_tasks)`` scores of Y.
        reps: replicates.
        confidence: coverage.
        seed: seed or generator.

    Returns:
        ``Estimate(point, low, high)``; ``low``, ``high`` are nan if ``n`` or ``m`` is 1.
    """
    a, b = _two_sample(x, y)
    point = float(_poi(a, b))
    if min(a.shape[0], b.shape[0]) < 2:
        return Estimate(point, math.nan, math.nan)
    dist = two_sample_bootstrap_distribution(a, b, _poi, reps=reps, seed=seed)
    return _interval(point, dist, confidence)


def difference_estimate(
    x: np.ndarray,
    y: np.ndarray,
    *,
    paired: bool,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
) -> Estimate:
    """Mean of X minus mean of Y (mean over tasks of the mean over runs), with its interval.

    Args:
        x: ``(n, num_tasks)`` scores of X.
        y: ``(m, num_tasks)`` scores of Y; with ``paired``, ``m == n`` and row ``i`` of both
            is the same seed.
        paired: resample the per-run differences ``x - y`` (stratified bootstrap) instead of
            ``x`` and ``y`` independently.
        reps: replicates.
        confidence: coverage.
        seed: seed or generator.

    Returns:
        ``Estimate(point, low, high)``; ``low``, ``high`` are nan if a sample has one run.

    Raises:
        ReprlError: If ``paired`` and the shapes differ.
    """
    a, b = _two_sample(x, y)
    point = float(_mean_difference(a, b))
    if paired:
        if a.shape != b.shape:
            raise ReprlError(
                f"paired difference: expected scores of equal shape, got {a.shape} and {b.shape}"
            )
        if a.shape[0] < 2:
            return Estimate(point, math.nan, math.nan)
        dist = _b.bootstrap_distribution(a - b, "mean", reps=reps, seed=seed)["mean"]
        return _interval(point, dist, confidence)
    if min(a.shape[0], b.shape[0]) < 2:
        return Estimate(point, math.nan, math.nan)
    dist = two_sample_bootstrap_distribution(a, b, _mean_difference, reps=reps, seed=seed)
    return _interval(point, dist, confidence)


__all__ = [
    "DEGENERATE_RANGE",
    "difference_estimate",
    "min_max_normalise",
    "normalisation_problem",
    "probability_of_improvement",
    "probability_of_improvement_estimate",
    "two_sample_bootstrap_distribution",
]
