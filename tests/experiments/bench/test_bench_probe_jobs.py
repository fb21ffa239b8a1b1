"""The probe-jobs benchmark's comparison of two runs' records, worked out by hand."""

import math

from experiments.bench.bench_probe_jobs import _max_diff


def test_the_largest_number_difference_is_found_at_any_depth() -> None:
    a = {"f1": 0.5, "per": {"x": [0.25, 1.0], "name": "x"}, "n": 3}
    b = {"f1": 0.5, "per": {"x": [0.2, 1.0], "name": "x"}, "n": 3}
    assert math.isclose(_max_diff(a, b), 0.05)
    assert _max_diff(a, a) == 0.0
    assert _max_diff({"v": float("nan")}, {"v": float("nan")}) == 0.0


def test_records_that_differ_beyond_numbers_are_infinitely_apart() -> None:
    assert math.isinf(_max_diff({"a": 1}, {"b": 1}))
    assert math.isinf(_max_diff([1, 2], [1]))
    assert math.isinf(_max_diff({"s": "x"}, {"s": "y"}))
    assert math.isinf(_max_diff({"v": True}, {"v": False}))
