"""IQM (scipy's trim_mean) and stratified-bootstrap intervals (definitions of rliable)."""

import numpy as np
import pytest
import scipy.stats

from envs.errors import ReprlError
from experiments import stats
from experiments.stats import bootstrap


def test_iqm_hand_worked() -> None:
    # 8 scores: int(0.25 * 8) = 2 cut from each end -> mean(3, 4, 5, 6) = 4.5
    assert stats.iqm(np.arange(1, 9)) == 4.5
    assert stats.iqm(np.arange(1, 9).reshape(4, 2)) == 4.5  # flattened runs x tasks
    # 3 scores: int(0.75) = 0, nothing is cut
    assert stats.iqm([1.0, 2.0, 9.0]) == 4.0
    # 5 scores: one cut from each end
    assert stats.iqm([100.0, 1.0, 2.0, 3.0, -100.0]) == 2.0


@pytest.mark.parametrize("shape", [(1,), (3,), (4, 1), (7, 3), (10, 5), (9, 2)])
def test_iqm_matches_scipy_trim_mean(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(sum(shape)).normal(size=shape)
    assert stats.iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None))
    for axis in range(x.ndim):
        np.testing.assert_allclose(stats.iqm(x, axis=axis), scipy.stats.trim_mean(x, 0.25, axis))


def test_aggregate_definitions() -> None:
    s = np.array([[1.0, 10.0, 0.2], [3.0, 20.0, 0.4]])  # (runs=2, tasks=3)
    out = stats.aggregate(s, stats.METRICS, gamma=1.0)
    task_means = [2.0, 15.0, 0.3]
    assert out["mean"] == pytest.approx(np.mean(task_means))
    assert out["median"] == pytest.approx(2.0)
    assert out["iqm"] == pytest.approx(scipy.stats.trim_mean(s, 0.25, axis=None))
    # gamma - mean(min(s, gamma)) = 1 - mean(1, 1, .2, 1, 1, .4)
    assert out["optimality_gap"] == pytest.approx(1 - np.mean([1, 1, 0.2, 1, 1, 0.4]))


def test_ci_contains_point_and_is_reproducible() -> None:
    s = np.random.default_rng(0).normal(5.0, 2.0, size=(10, 4))
    for metric in ("mean", "median", "iqm"):
        point = stats.aggregate(s, [metric])[metric]
        lo, hi = stats.stratified_bootstrap_ci(s, metric, reps=1000, seed=1)
        assert lo < point < hi
        assert (lo, hi) == stats.stratified_bootstrap_ci(s, metric, reps=1000, seed=1)
    assert stats.stratified_bootstrap_ci(s, "mean", reps=1000, seed=2) != (
        stats.stratified_bootstrap_ci(s, "mean", reps=1000, seed=1)
    )


def test_ci_degenerate_for_constant_data_and_single_run() -> None:
    assert stats.stratified_bootstrap_ci(np.full((6, 3), 2.5), "iqm", reps=200) == (2.5, 2.5)
    one = np.array([[1.0, 7.0]])  # one run: no error estimate, the interval is the point
    assert stats.stratified_bootstrap_ci(one, "mean", reps=200) == (4.0, 4.0)
    est = stats.estimates(one, ("mean", "iqm"), reps=200)
    assert est["mean"] == (4.0, 4.0, 4.0) and est["iqm"] == (4.0, 4.0, 4.0)


def test_ci_narrows_with_more_runs() -> None:
    rng = np.random.default_rng(3)
    widths = []
    for runs in (5, 50, 500):
        lo, hi = stats.stratified_bootstrap_ci(rng.normal(size=(runs, 3)), "mean", reps=1000)
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # sd of the mean over 3 tasks of 500 runs: 1 / sqrt(1500); 95% width ~ 3.92 sd
    assert widths[2] == pytest.approx(3.92 / np.sqrt(1500), rel=0.25)


def test_stratification_keeps_runs_per_task() -> None:
    idx = stats.stratified_bootstrap_indices(4, 3, reps=50, rng=0)
    assert idx.shape == (50, 4, 3) and idx.min() >= 0 and idx.max() < 4
    # scores encode (task, run): 100 * task + run; every replicate must keep each task's column
    # made only of that task's runs, exactly num_runs of them.
    scores = 100.0 * np.arange(3)[None, :] + np.arange(4)[:, None]
    seen: list[np.ndarray] = []

    def record(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        return batch.mean(axis=(-2, -1))

    stats.bootstrap_distribution(scores, record, reps=300, seed=0)
    batch = np.concatenate(seen)
    assert batch.shape == (300, 4, 3)
    np.testing.assert_array_equal(batch // 100, np.broadcast_to(np.arange(3), batch.shape))
    assert set(np.unique(batch % 100)) == {0, 1, 2, 3}
    # the resampled run indices are the generator's, task by task
    expected = stats.stratified_bootstrap_indices(4, 3, reps=300, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(batch % 100, expected)


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    s = np.random.default_rng(0).normal(size=(7, 3))
    whole = stats.bootstrap_distribution(s, "iqm", reps=500, seed=4)["iqm"]
    monkeypatch.setattr(bootstrap, "_MAX_ELEMENTS", 50)
    chunked = stats.bootstrap_distribution(s, "iqm", reps=500, seed=4)["iqm"]
    np.testing.assert_array_equal(whole, chunked)


def test_basic_interval_reflects_percentile() -> None:
    s = np.random.default_rng(5).exponential(size=(12, 2))
    point = stats.aggregate(s, ["mean"])["mean"]
    lo, hi = stats.stratified_bootstrap_ci(s, "mean", reps=500, seed=0)
    blo, bhi = stats.stratified_bootstrap_ci(s, "mean", reps=500, seed=0, method="basic")
    assert blo == pytest.approx(2 * point - hi) and bhi == pytest.approx(2 * point - lo)
    with pytest.raises(ValueError, match="method"):
        stats.stratified_bootstrap_ci(s, "mean", reps=10, method="bca")


def test_interval_estimates_per_agent_and_order_independent() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(5, 3)), rng.normal(1.0, size=(8, 3))
    out = stats.interval_estimates({"a": a, "b": b}, ("mean", "iqm"), reps=300, seed=0)
    assert set(out) == {"a", "b"} and set(out["a"]) == {"mean", "iqm"}
    for agent, s in (("a", a), ("b", b)):
        point, lo, hi = out[agent]["iqm"]
        assert point == pytest.approx(stats.iqm(s)) and lo <= point <= hi
    alone = stats.interval_estimates({"b": b}, ("mean", "iqm"), reps=300, seed=0)
    assert alone["b"] == out["b"]


def test_seed_means_and_cell_estimates() -> None:
    returns = np.array([1.0, 3.0, 10.0, 20.0, 5.0, 5.0])
    seeds = np.array([0, 0, 2, 2, 1, 1])
    uniq, means = stats.seed_means(returns, seeds)
    np.testing.assert_array_equal(uniq, [0, 1, 2])
    np.testing.assert_array_equal(means, [2.0, 5.0, 15.0])
    est = stats.cell_estimates(returns, seeds, ("mean", "iqm"), reps=500)
    assert est["mean"].point == pytest.approx(22.0 / 3)
    assert est["iqm"].point == pytest.approx(22.0 / 3)  # 3 seeds: nothing trimmed
    assert 2.0 <= est["mean"].low <= est["mean"].point <= est["mean"].high <= 15.0


def test_bad_inputs() -> None:
    with pytest.raises(ReprlError, match="NaN"):
        stats.stratified_bootstrap_ci(np.array([[1.0, np.nan]]), "mean")
    with pytest.raises(ValueError, match="statistic"):
        stats.aggregate(np.ones((2, 2)), ["mode"])
    with pytest.raises(ValueError, match="shape"):
        stats.aggregate(np.ones((2, 2, 2)))
