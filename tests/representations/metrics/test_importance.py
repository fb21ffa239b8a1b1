"""DCI: the importance-matrix scores, both importance variants."""

from __future__ import annotations

import numpy as np
import pytest

from representations.metrics import (
    FactorData,
    dci,
    dci_from_importance,
    evaluate,
)


def test_rotation_lowers_mig_and_dci(
    data: FactorData, factors: np.ndarray, results_identity: dict
) -> None:
    rng = np.random.default_rng(2)
    rotation, _ = np.linalg.qr(rng.standard_normal((factors.shape[1],) * 2))
    standardised = (factors - factors.mean(axis=0)) / factors.std(axis=0)
    results = evaluate(standardised @ rotation, data, metrics=("probe", "mig", "dci"))
    assert results["mig"] < results_identity["mig"] - 0.4
    assert results["dci"]["disentanglement"] < results_identity["dci"]["disentanglement"] - 0.4
    # A rotation loses nothing linear: continuous factors stay linearly decodable.
    per = results["probe"]["per_factor"]
    assert min(v["score"] for v in per.values() if v["kind"] == "continuous") >= 0.9


def test_lasso_importance_variant(factors: np.ndarray, identity: np.ndarray) -> None:
    mask = np.array([False, False, False, True, True])
    tr, te = np.arange(2400), np.arange(2400, factors.shape[0])
    ident = dci(
        identity[tr], factors[tr], identity[te], factors[te], discrete_mask=mask, importance="lasso"
    )
    rng = np.random.default_rng(3)
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    z = (factors - factors.mean(axis=0)) / factors.std(axis=0) @ rotation
    rot = dci(z[tr], factors[tr], z[te], factors[te], discrete_mask=mask, importance="lasso")
    assert ident["disentanglement"] >= 0.9
    assert rot["disentanglement"] < ident["disentanglement"] - 0.4
    assert np.asarray(ident["importance_matrix"]).shape == (5, 5)


def test_dci_from_importance_extremes() -> None:
    assert dci_from_importance(np.eye(4)) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((4, 4))) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert dci_from_importance(np.zeros((4, 4))) == (0.0, 0.0)
    # Each latent about one factor, but two latents per factor: disentangled, incomplete.
    dis, com = dci_from_importance(np.vstack([np.eye(2), np.eye(2)]))
    assert dis == pytest.approx(1.0) and com == pytest.approx(0.5)
