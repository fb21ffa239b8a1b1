"""Statistics of RL results, as rliable defines them (Agarwal et al. 2021).

- :mod:`experiments.stats.bootstrap`: mean, median, IQM (``scipy.stats.trim_mean``),
  optimality gap, and stratified-bootstrap percentile intervals over runs (hand-written:
  rliable pins an old ``arch``); per-(agent, env) cells with training seeds as the runs.
- :mod:`experiments.stats.compare`: min-max normalised scores, paired and unpaired differences,
  and the probability of improvement ``P(X > Y)``, each with its bootstrap interval.

Everything is importable from here: ``from experiments import stats; stats.iqm(x)``.
"""

from experiments.stats.bootstrap import (
    METRICS,
    Estimate,
    SeedLike,
    Statistic,
    aggregate,
    bootstrap_distribution,
    cell_estimates,
    estimates,
    interval_estimates,
    iqm,
    keyed_seed,
    seed_means,
    stratified_bootstrap_ci,
    stratified_bootstrap_indices,
    trimmed_mean,
)
from experiments.stats.compare import (
    DEGENERATE_RANGE,
    difference_estimate,
    min_max_normalise,
    normalisation_problem,
    probability_of_improvement,
    probability_of_improvement_estimate,
    two_sample_bootstrap_distribution,
)

__all__ = [
    "DEGENERATE_RANGE",
    "METRICS",
    "Estimate",
    "SeedLike",
    "Statistic",
    "aggregate",
    "bootstrap_distribution",
    "cell_estimates",
    "difference_estimate",
    "estimates",
    "interval_estimates",
    "iqm",
    "keyed_seed",
    "min_max_normalise",
    "normalisation_problem",
    "probability_of_improvement",
    "probability_of_improvement_estimate",
    "seed_means",
    "stratified_bootstrap_ci",
    "stratified_bootstrap_indices",
    "trimmed_mean",
    "two_sample_bootstrap_distribution",
]
