"""Mutual information and MIG, against hand-worked numbers and sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from representations.metrics import (
    FactorData,
    discrete_entropy,
    discrete_mutual_info,
    evaluate,
    histogram_discretise,
    mig,
)
from tests.representations.metrics.synthetic import probe_scores


def test_duplicated_latents_have_no_mig_gap(data: FactorData, identity: np.ndarray) -> None:
    duplicated = np.concatenate([identity, identity], axis=1)
    results = evaluate(duplicated, data, metrics=("probe", "mig"))
    assert results["mig"] <= 0.1
    assert min(probe_scores(results).values()) >= 0.9
    assert "dci" not in results and "factor_vae" not in results


def test_mig_two_binary_factors_is_exactly_one() -> None:
    # All four combinations once: the factors are independent with one bit each.
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5)
    assert mig(factors.astype(float), factors, discrete_mask=[True, True]) == pytest.approx(
        1.0, abs=1e-12
    )
    # Both latents copy factor 0: no gap for factor 0, no information on factor 1.
    both = np.stack([factors[:, 0], factors[:, 0]], axis=1).astype(float)
    assert mig(both, factors, discrete_mask=[True, True]) == pytest.approx(0.0, abs=1e-12)


def test_mig_partial_gap_by_hand() -> None:
    # One binary factor y; latent 0 = y, latent 1 = [0, 1, 1, 1] pattern.
    y = np.array([0, 0, 1, 1] * 3)
    z = np.stack([y, np.array([0, 1, 1, 1] * 3)], axis=1).astype(float)
    # I(z1; y) with joint p(0,0)=p(0,1)=1/4, p(1,1)=1/2; p(y=0)=1/2, p(z1=1)=3/4.
    mi_z1 = 0.25 * math.log(2) + 0.25 * math.log(2 / 3) + 0.5 * math.log(4 / 3)
    expected = (math.log(2) - mi_z1) / math.log(2)
    assert mig(z, y, discrete_mask=[True]) == pytest.approx(expected, abs=1e-12)
    mi = discrete_mutual_info(z.astype(int), y[:, None])
    assert mi[:, 0] == pytest.approx([math.log(2), mi_z1], abs=1e-12)
    assert discrete_entropy(y[:, None]) == pytest.approx([math.log(2)])


def test_mutual_info_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 6, size=(500, 4))
    labels = np.stack([codes[:, 0] // 2, rng.integers(0, 3, 500), codes[:, 3]], axis=1)
    mi = discrete_mutual_info(codes, labels)
    expected = np.array(
        [[mutual_info_score(labels[:, k], codes[:, d]) for k in range(3)] for d in range(4)]
    )
    np.testing.assert_allclose(mi, expected, atol=1e-12)


def test_histogram_discretise_bins() -> None:
    x = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0]])
    np.testing.assert_array_equal(histogram_discretise(x, 2), [[0, 0], [1, 0], [1, 0]])
    assert histogram_discretise(np.random.default_rng(0).normal(size=(100, 3)), 20).max() == 19
