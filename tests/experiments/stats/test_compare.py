"""Normalised scores, differences and the probability of improvement, on hand-worked examples."""

import math

import numpy as np
import pytest
import scipy.stats

from envs.errors import ReprlError
from experiments import stats
from experiments.stats import bootstrap


def test_min_max_normalisation() -> None:
    # Juggling-like: random -33, best 0
    np.testing.assert_allclose(
        stats.min_max_normalise([-33.0, -16.5, 0.0], -33.0, 0.0), [0, 0.5, 1]
    )
    assert stats.min_max_normalise(7.0, 2.0, 12.0) == pytest.approx(0.5)
    assert stats.normalisation_problem(-33.0, 0.0) is None
    assert "no range" in stats.normalisation_problem(2.0, 2.0 + 1e-9)
    assert "below the random reference" in stats.normalisation_problem(3.0, 1.0)
    assert "not finite" in stats.normalisation_problem(math.nan, 1.0)
    with pytest.raises(ReprlError, match="expected R_max > R_min"):
        stats.min_max_normalise(1.0, 5.0, 5.0)


def test_probability_of_improvement_hand_worked() -> None:
    # pairs (3,2) 1, (3,1) 1, (1,2) 0, (1,1) 1/2 -> 2.5 / 4
    assert stats.probability_of_improvement([[3.0], [1.0]], [[2.0], [1.0]]) == 0.625
    # a second task where both are equal contributes 1/2: (0.625 + 0.5) / 2
    x, y = np.array([[3.0, 0.0], [1.0, 0.0]]), np.array([[2.0, 0.0], [1.0, 0.0]])
    assert stats.probability_of_improvement(x, y) == 0.5625
    assert stats.probability_of_improvement(y, x) == 1 - 0.5625
    # rliable: scipy's Mann-Whitney U ("greater") / (n * m), averaged over tasks
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, size=(5, 3)).astype(float), rng.integers(0, 4, size=(4, 3))
    u = [
        scipy.stats.mannwhitneyu(a[:, k], b[:, k], alternative="greater").statistic
        for k in range(3)
    ]
    assert stats.probability_of_improvement(a, b) == pytest.approx(np.mean(u) / 20)


def test_probability_of_improvement_interval() -> None:
    x = np.array([[0.8], [0.9], [1.0]])
    y = np.array([[0.5], [0.6], [0.7]])
    est = stats.probability_of_improvement_estimate(x, y, reps=300, seed=1)
    assert est == (1.0, 1.0, 1.0)  # every resample keeps every x above every y
    # y + 0.25 = (0.75, 0.85, 0.95): 0.8 beats 1 of them, 0.9 beats 2, 1.0 beats 3 -> 6 / 9
    est = stats.probability_of_improvement_estimate(x, y + 0.25, reps=300, seed=1)
    assert est.point == pytest.approx(6 / 9) and 0.0 <= est.low < est.point < est.high <= 1.0
    one = stats.probability_of_improvement_estimate(x[:1], y, reps=300)
    assert one.point == 1.0 and math.isnan(one.low) and math.isnan(one.high)


def test_paired_difference_hand_worked() -> None:
    # per-seed differences [[1, 2], [2, 3]]: mean over tasks of means over seeds = 2
    x, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 0.0], [1.0, 1.0]])
    est = stats.difference_estimate(x, y, paired=True, reps=500, seed=0)
    assert est.point == 2.0
    # a resample of task 0 has mean in {1, 1.5, 2}, of task 1 in {2, 2.5, 3}: within [1.5, 2.5]
    assert 1.5 <= est.low < 2.0 < est.high <= 2.5
    with pytest.raises(ReprlError, match="equal shape"):
        stats.difference_estimate(x, y[:1], paired=True)


def test_pairing_removes_the_shared_seed_variance() -> None:
    # x is y + 1 on every seed, but the seeds differ by 10: paired, the difference is exactly 1
    y = np.array([[0.0], [10.0], [20.0]])
    paired = stats.difference_estimate(y + 1, y, paired=True, reps=500, seed=0)
    assert paired == (1.0, 1.0, 1.0)
    unpaired = stats.difference_estimate(y + 1, y, paired=False, reps=500, seed=0)
    assert unpaired.point == 1.0 and unpaired.low < -5.0 and unpaired.high > 7.0
    # unpaired with different run counts: mean(1, 3) - mean(0, 2, 4) = 0, within [-3, 3]
    est = stats.difference_estimate([[1.0], [3.0]], [[0.0], [2.0], [4.0]], paired=False, reps=500)
    assert est.point == 0.0 and -3.0 <= est.low < 0.0 < est.high <= 3.0
    single = stats.difference_estimate([[1.0]], [[0.0], [2.0]], paired=False)
    assert single.point == 0.0 and math.isnan(single.low)


def test_two_sample_bootstrap_is_independent_of_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))

    def stat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a.mean(axis=(-2, -1)) - b.mean(axis=(-2, -1))

    whole = stats.two_sample_bootstrap_distribution(x, y, stat, reps=200, seed=3)
    monkeypatch.setattr(bootstrap, "_MAX_ELEMENTS", 60)
    chunked = stats.two_sample_bootstrap_distribution(x, y, stat, reps=200, seed=3)
    np.testing.assert_array_equal(whole, chunked)
    with pytest.raises(ReprlError, match="same number of tasks"):
        stats.probability_of_improvement(x, y[:, :1])
