"""Point estimates (mean, median, IQM) and stratified-bootstrap confidence intervals.

Definitions follow Agarwal et al. (2021), "Deep RL at the Edge of the Statistical Precipice",
and their ``rliable`` package (``rliable/metrics.py``, ``rliable/library.py``):

- Scores are a matrix ``(num_runs, num_tasks)``: ``scores[n, m]`` is the score of run ``n``
  (a training seed) on task ``m`` (an environment).
- ``mean``: mean over tasks of the per-task mean over runs (rliable ``aggregate_mean``).
- ``median``: median over tasks of the per-task mean over runs (``aggregate_median``).
- ``iqm``: interquartile mean, the 25%-trimmed mean of all ``num_runs * num_tasks`` scores
  flattened (``aggregate_iqm`` = ``scipy.stats.trim_mean(scores, 0.25, axis=None)``): with
  ``n`` scores, ``int(0.25 * n)`` are cut from each end of the sorted scores. With fewer than
  four scores nothing is cut and the IQM equals the mean.
- ``optimality_gap``: ``gamma - mean(min(scores, gamma))`` (``aggregate_optimality_gap``); only
  meaningful for normalised scores.
- Stratified bootstrap (rliable ``StratifiedBootstrap`` with ``task_bootstrap=False``): each
  bootstrap replicate draws, independently for every task, ``num_runs`` runs with replacement
  from that task's own column. Every task keeps exactly ``num_runs`` scores in every replicate,
  so the aggregate never drifts towards tasks that happened to be drawn more often.
- Intervals are percentile intervals by default (rliable's ``get_interval_estimates`` default,
  via ``arch``): the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
  bootstrap distribution (linear interpolation between order statistics). ``basic``
  (reflected percentile) intervals are offered too.

Small samples, honestly: the bootstrap only knows the runs it is given. With a single run per
task every replicate equals the data, so the interval collapses to the point estimate: that is
not certainty, it is the absence of an error estimate (reports should print the number of
seeds next to every interval). With 2-5 runs, percentile intervals are known to be too narrow
(they under-cover the nominal 95%); treat them as a lower bound on the uncertainty.

Everything here is vectorised numpy (the trimmed mean is ``scipy.stats.trim_mean``): the
resampling draws one index array of shape ``(reps, num_runs, num_tasks)`` (in chunks that bound
memory) and evaluates the statistic on the whole batch of replicates at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import scipy.stats

from envs.errors import ReprlError

#: Names accepted wherever a statistic is expected.
METRICS: tuple[str, ...] = ("mean", "median", "iqm", "optimality_gap")

#: Bound on ``chunk_reps * num_runs * num_tasks`` elements resampled at once (~32 MB float64).
_MAX_ELEMENTS = 1 << 22

Statistic = str | Callable[[np.ndarray], np.ndarray]
SeedLike = int | np.random.SeedSequence | np.random.Generator


class Estimate(NamedTuple):
    """A point estimate and its confidence interval (a plain ``(point, low, high)`` tuple)."""

    point: float
    low: float
    high: float


# --- point estimates -------------------------------------------------------------------------
def trimmed_mean(x: np.ndarray, proportion: float, axis: int | None = None) -> np.ndarray | float:
    """Mean after cutting ``int(proportion * n)`` values from each end (``scipy.stats.trim_mean``).

    Args:
        x: array of any shape; NaNs are not allowed.
        proportion: fraction cut from each end, in ``[0, 0.5)``.
        axis: axis along which to trim; ``None`` flattens ``x`` first.

    Returns:
        ``x`` reduced along ``axis`` (a float when ``axis`` is None and ``x`` has no other axes).

    Raises:
        ReprlError: If the trimmed axis is empty or ``proportion`` is out of range.
    """
    if not 0.0 <= proportion < 0.5:
        raise ReprlError(f"proportion: expected 0 <= p < 0.5, got {proportion}")
    a = np.asarray(x, dtype=np.float64)
    if (a.size if axis is None else a.shape[axis]) == 0:
        raise ReprlError("trimmed_mean: expected at least one value, got an empty array")
    out = scipy.stats.trim_mean(a, proportion, axis=axis)
    return float(out) if np.ndim(out) == 0 else np.asarray(out)


def iqm(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the 25%-trimmed mean (rliable ``aggregate_iqm``).

    Example: ``iqm(np.arange(1, 9))`` cuts 1, 2 and 7, 8 and returns ``mean(3..6) = 4.5``.

    Args:
        x: scores of any shape, e.g. ``(num_runs, num_tasks)``.
        axis: axis to reduce; ``None`` (rliable's choice) uses all scores flattened.

    Returns:
        The IQM (a float for ``axis=None``).
    """
    return trimmed_mean(x, 0.25, axis=axis)


def _batched_mean(s: np.ndarray) -> np.ndarray:
    return s.mean(axis=-2).mean(axis=-1)


def _batched_median(s: np.ndarray) -> np.ndarray:
    return np.median(s.mean(axis=-2), axis=-1)


def _batched_iqm(s: np.ndarray) -> np.ndarray:
    flat = s.reshape(*s.shape[:-2], s.shape[-2] * s.shape[-1])
    return np.asarray(trimmed_mean(flat, 0.25, axis=-1))


def _make_optimality_gap(gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    def gap(s: np.ndarray) -> np.ndarray:
        return gamma - np.minimum(s, gamma).mean(axis=(-2, -1))

    return gap


def _resolve(statistic: Statistic, gamma: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """A batched statistic: ``(..., num_runs, num_tasks) -> (...)``."""
    if callable(statistic):
        return statistic
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "mean": _batched_mean,
        "median": _batched_median,
        "iqm": _batched_iqm,
        "optimality_gap": _make_optimality_gap(gamma),
    }
    if statistic not in table:
        raise ReprlError(
            f"statistic: expected one of {list(table)} or a callable, got {statistic!r}"
        )
    return table[statistic]


def _check_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ReprlError(f"scores: expected shape (num_runs, num_tasks), got {s.shape}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ReprlError(f"scores: expected at least one run and one task, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ReprlError("scores: NaN or infinite values (every run must have every task)")
    return s


def aggregate(
    scores: np.ndarray, metrics: Sequence[str] = ("mean", "median", "iqm"), *, gamma: float = 1.0
) -> dict[str, float]:
    """Point estimates of aggregate metrics over runs and tasks.

    Args:
        scores: ``(num_runs, num_tasks)`` float scores (a 1-D array is one task).
        metrics: names from :data:`METRICS`.
        gamma: threshold of ``optimality_gap``.

    Returns:
        ``{metric: value}``.
    """
    s = _check_scores(scores)
    return {m: float(_resolve(m, gamma)(s)) for m in metrics}


# --- bootstrap -------------------------------------------------------------------------------
def _rng(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def stratified_bootstrap_indices(
    num_runs: int, num_tasks: int, reps: int, rng: SeedLike = 0
) -> np.ndarray:
    """Run indices of a stratified bootstrap: ``num_runs`` draws per task, per replicate.

    Args:
        num_runs: runs per task.
        num_tasks: tasks (the strata).
        reps: bootstrap replicates.
        rng: seed or generator.

    Returns:
        ``(reps, num_runs, num_tasks)`` int64 in ``[0, num_runs)``: replicate ``r`` uses
        ``scores[idx[r, :, m], m]`` as task ``m``'s runs, so each task is resampled only from
        itself and keeps exactly ``num_runs`` scores.
    """
    return _rng(rng).integers(0, num_runs, size=(reps, num_runs, num_tasks))


def bootstrap_distribution(
    scores: np.ndarray,
    statistics: Mapping[str, Statistic] | Statistic,
    *,
    reps: int = 2000,
    seed: SeedLike = 0,
    gamma: float = 1.0,
) -> dict[str, np.ndarray]:
    """Values of statistics on stratified-bootstrap replicates of ``scores``.

    All statistics see the same replicates. Replicates are drawn in chunks of at most
    ``2**22 / (num_runs * num_tasks)`` so memory stays bounded; the result depends only on
    ``seed`` and the shape of ``scores``.

    Args:
        scores: ``(num_runs, num_tasks)`` float scores.
        statistics: ``{name: statistic}`` or a single statistic; a statistic is a name from
            :data:`METRICS` or a batched callable ``(..., num_runs, num_tasks) -> (...)``.
        reps: number of replicates.
        seed: seed or generator of the resampling.
        gamma: threshold of ``optimality_gap``.

    Returns:
        ``{name: (reps,) float64}`` (name ``"statistic"`` for a single unnamed statistic).
    """
    s = _check_scores(scores)
    if reps < 1:
        raise ReprlError(f"reps: expected >= 1, got {reps}")
    if not isinstance(statistics, Mapping):
        statistics = {statistics if isinstance(statistics, str) else "statistic": statistics}
    fns = {k: _resolve(v, gamma) for k, v in statistics.items()}
    num_runs, num_tasks = s.shape
    rng = _rng(seed)
    chunk = max(1, _MAX_ELEMENTS // (num_runs * num_tasks))
    out: dict[str, list[np.ndarray]] = {k: [] for k in fns}
    cols = np.arange(num_tasks)
    for start in range(0, reps, chunk):
        idx = stratified_bootstrap_indices(num_runs, num_tasks, min(chunk, reps - start), rng)
        resampled = s[idx, cols]  # (chunk, num_runs, num_tasks)
        for k, fn in fns.items():
            out[k].append(np.asarray(fn(resampled), dtype=np.float64).reshape(-1))
    return {k: np.concatenate(v) for k, v in out.items()}


def _interval(
    point: float, dist: np.ndarray, confidence: float, method: str
) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ReprlError(f"confidence: expected 0 < c < 1, got {confidence}")
    tail = (1.0 - confidence) / 2.0
    lo_q, hi_q = np.quantile(dist, [tail, 1.0 - tail])
    if method == "percentile":
        return float(lo_q), float(hi_q)
    if method == "basic":
        return float(2.0 * point - hi_q), float(2.0 * point - lo_q)
    raise ReprlError(f"method: expected 'percentile' or 'basic', got {method!r}")


def stratified_bootstrap_ci(
    scores: np.ndarray,
    statistic: Statistic = "mean",
    reps: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
    method: str = "percentile",
    *,
    gamma: float = 1.0,
) -> tuple[float, float]:
    """Confidence interval of an aggregate statistic by stratified bootstrap over runs.

    Runs are resampled with replacement independently within each task (see
    :func:`stratified_bootstrap_indices`). With a single run the interval is ``(point, point)``:
    no error estimate is possible, which is not the same as no error.

    Args:
        scores: ``(num_runs, num_tasks)`` float scores (a 1-D array is one task).
        statistic: a name from :data:`METRICS` or a batched callable
            ``(..., num_runs, num_tasks) -> (...)``.
        reps: bootstrap replicates.
        confidence: coverage, e.g. 0.95.
        seed: seed or generator; the same seed gives the same interval.
        method: ``percentile`` (rliable's default) or ``basic``.
        gamma: threshold of ``optimality_gap``.

    Returns:
        ``(low, high)``.
    """
    s = _check_scores(scores)
    point = float(_resolve(statistic, gamma)(s))
    if s.shape[0] == 1:
        return point, point
    dist = bootstrap_distribution(s, {"s": statistic}, reps=reps, seed=seed, gamma=gamma)["s"]
    return _interval(point, dist, confidence, method)


def estimates(
    scores: np.ndarray,
    metrics: Iterable[str] = ("mean", "iqm"),
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
    method: str = "percentile",
    gamma: float = 1.0,
) -> dict[str, Estimate]:
    """Point estimates and stratified-bootstrap intervals of several metrics on one score matrix.

    Args:
        scores: ``(num_runs, num_tasks)`` float scores (a 1-D array is one task).
        metrics: names from :data:`METRICS`; all use the same replicates.
        reps: bootstrap replicates.
        confidence: coverage.
        seed: seed or generator.
        method: ``percentile`` or ``basic``.
        gamma: threshold of ``optimality_gap``.

    Returns:
        ``{metric: Estimate(point, low, high)}``; ``low == high == point`` for a single run.
    """
    s = _check_scores(scores)
    metrics = list(metrics)
    points = {m: float(_resolve(m, gamma)(s)) for m in metrics}
    if s.shape[0] == 1:
        return {m: Estimate(p, p, p) for m, p in points.items()}
    dists = bootstrap_distribution(s, {m: m for m in metrics}, reps=reps, seed=seed, gamma=gamma)
    return {
        m: Estimate(points[m], *_interval(points[m], dists[m], confidence, method)) for m in metrics
    }


def interval_estimates(
    score_dict: Mapping[str, np.ndarray],
    metrics: Iterable[str] = ("mean", "median", "iqm"),
    reps: int = 2000,
    seed: int = 0,
    *,
    confidence: float = 0.95,
    method: str = "percentile",
    gamma: float = 1.0,
) -> dict[str, dict[str, Estimate]]:
    """rliable's ``get_interval_estimates`` for several agents and metrics.

    Each agent's resampling is seeded by ``seed`` and the agent's name, so an agent's
    interval does not change when other agents are added or reordered.

    Args:
        score_dict: ``{agent: (num_runs, num_tasks) scores}``; agents may differ in num_runs.
        metrics: names from :data:`METRICS`.
        reps: bootstrap replicates.
        seed: base seed.
        confidence: coverage.
        method: ``percentile`` or ``basic``.
        gamma: threshold of ``optimality_gap``.

    Returns:
        ``{agent: {metric: Estimate(point, low, high)}}``.
    """
    metrics = list(metrics)
    return {
        agent: estimates(
            scores,
            metrics,
            reps=reps,
            confidence=confidence,
            seed=keyed_seed(seed, agent),
            method=method,
            gamma=gamma,
        )
        for agent, scores in score_dict.items()
    }


def keyed_seed(seed: int, *keys: object) -> np.random.SeedSequence:
    """A seed derived from ``seed`` and keys (stable across runs and Python processes).

    Args:
        seed: base seed.
        *keys: values whose ``str`` names the stream, e.g. an agent and an env id.

    Returns:
        A ``SeedSequence`` usable as ``seed`` anywhere in this module.
    """
    return np.random.SeedSequence([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


# --- per-(agent, env) cells: runs are seeds --------------------------------------------------
def seed_means(returns: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean episode return per seed.

    Args:
        returns: ``(num_episodes,)`` episode returns.
        seeds: ``(num_episodes,)`` integer training seed of each episode.

    Returns:
        ``(unique_seeds (num_seeds,), means (num_seeds,))``, seeds ascending.
    """
    r = np.asarray(returns, dtype=np.float64).ravel()
    sd = np.asarray(seeds).ravel()
    if r.shape != sd.shape:
        raise ReprlError(f"returns {r.shape} and seeds {sd.shape} must have the same length")
    if r.size == 0:
        raise ReprlError("seed_means: no episodes")
    uniq, inv = np.unique(sd, return_inverse=True)
    sums = np.bincount(inv, weights=r, minlength=uniq.size)
    counts = np.bincount(inv, minlength=uniq.size)
    return uniq, sums / counts


def cell_estimates(
    returns: np.ndarray,
    seeds: np.ndarray,
    metrics: Iterable[str] = ("mean", "iqm"),
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
    method: str = "percentile",
) -> dict[str, Estimate]:
    """Estimates for one agent on one env, with seeds as runs.

    Episode returns are first averaged per training seed; the seeds' means form a
    ``(num_seeds, 1)`` score matrix (one task), and the bootstrap resamples seeds. The
    episodes within a seed are treated as a precise measurement of that seed's policy; the
    spread between seeds (the quantity that matters for "would this hold with other seeds")
    is what the interval reflects. One seed gives ``low == high == point``.

    Args:
        returns: ``(num_episodes,)`` episode returns.
        seeds: ``(num_episodes,)`` training seed of each episode.
        metrics: names from :data:`METRICS` (``iqm`` is then over seeds: with fewer than four
            seeds nothing is trimmed and it equals the mean).
        reps: bootstrap replicates.
        confidence: coverage.
        seed: seed or generator of the resampling.
        method: ``percentile`` or ``basic``.

    Returns:
        ``{metric: Estimate(point, low, high)}``.
    """
    _, means = seed_means(returns, seeds)
    return estimates(
        means[:, None], metrics, reps=reps, confidence=confidence, seed=seed, method=method
    )


__all__ = [
    "METRICS",
    "Estimate",
    "SeedLike",
    "Statistic",
    "aggregate",
    "bootstrap_distribution",
    "cell_estimates",
    "estimates",
    "interval_estimates",
    "iqm",
    "keyed_seed",
    "seed_means",
    "stratified_bootstrap_ci",
    "stratified_bootstrap_indices",
    "trimmed_mean",
]
