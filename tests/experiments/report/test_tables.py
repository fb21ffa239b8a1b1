"""Normalisation constants and per-mode tables without files (EvalRun objects in memory)."""

import math

import numpy as np
import pytest

from experiments.report import AGGREGATE_ENV, EvalRun, InputFile, compute_tables, result_rows

A, B = "reprl/A-v0", "reprl/B-v0"


def run(agent: str, seed: int, returns: dict[str, list[float]], det: bool = True) -> EvalRun:
    env = np.array([e for e, r in returns.items() for _ in r], dtype=object)
    rets = np.array([x for r in returns.values() for x in r])
    n = rets.size
    info = InputFile(path=None, sha256="")  # type: ignore[arg-type]
    steps = np.ones(n, dtype=np.int64)
    return EvalRun(agent, seed, info, info, env, np.arange(n), rets, steps, np.full(n, det), {})


def test_juggling_like_target_normalises_and_degenerate_range_is_na() -> None:
    # A: random -33, best 0 (a Juggling-like env): an agent at -16.5 scores 0.5.
    # B: best 5 equals the random mean 5: no range, n/a.
    runs = [
        run("random", 0, {A: [-34.0, -32.0], B: [5.0, 5.0]}),
        run("agent", 0, {A: [-16.5], B: [7.0]}),
        run("agent", 1, {A: [0.0], B: [7.0]}),
    ]
    t = compute_tables(runs, best_returns={A: 0.0, B: 5.0}, reps=50)["deterministic"]
    assert (t.normalisers[A].r_min, t.normalisers[A].r_max) == (-33.0, 0.0)
    assert t.normalised["agent"][A].seed_means == {0: 0.5, 1: 1.0}
    assert t.normalised["agent"][A].mean.point == pytest.approx(0.75)
    assert "no range to normalise by" in t.normalisers[B].problem
    assert B not in t.normalised["agent"] and t.targets == [A]
    rows = result_rows({"deterministic": t})
    na = next(r for r in rows if r["env_id"] == B and r["statistic"] == "normalised_mean")
    assert math.isnan(na["point"]) and "no range" in na["note"]


def test_reference_from_the_other_mode_and_unknown_best_return() -> None:
    # the random reference ran stochastic only: a uniform-random policy ignores the mode
    runs = [run("random", 0, {A: [1.0, 3.0]}, det=False), run("agent", 0, {A: [4.0], B: [1.0]})]
    t = compute_tables(runs, best_returns={A: 6.0, B: "R_max unknown: no such env"}, reps=20)
    det = t["deterministic"]
    assert det.normalisers[A].r_min == 2.0 and "stochastic evaluation" in det.normalisers[A].note
    assert det.normalised["agent"][A].mean.point == pytest.approx(0.5)
    assert det.left_out == {B: "no 'random' reference run evaluated on this env (R_min unknown)"}


def test_aggregate_drops_seeds_missing_on_a_target() -> None:
    runs = [
        run("random", 0, {A: [0.0], B: [0.0]}),
        run("agent", 0, {A: [1.0], B: [2.0]}),
        run("agent", 1, {A: [3.0]}),  # no B: left out of the aggregate
    ]
    t = compute_tables(runs, best_returns={A: 10.0, B: 10.0}, reps=20)["deterministic"]
    agg = t.aggregate["agent"]
    assert agg["num_seeds"] == 1 and agg["dropped_seeds"] == [1]
    assert agg["mean"].point == pytest.approx((0.1 + 0.2) / 2)
    assert AGGREGATE_ENV not in t.comparisons.get("agent", {})
