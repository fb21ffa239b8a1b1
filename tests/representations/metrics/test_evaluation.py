"""evaluate() and format_table(): identity high, constant low, JSON-plain output, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.errors import ReprlError
from representations.metrics import (
    FactorData,
    dci,
    encode_all,
    episode_split,
    evaluate,
    format_table,
    linear_probe,
    mig,
)
from tests.representations.metrics.synthetic import probe_scores


def test_identity_scores_high(results_identity: dict) -> None:
    scores = probe_scores(results_identity)
    assert set(scores) == {"ball_x[0]", "ball_x[1]", "paddle_y", "colour", "variant"}
    assert min(scores.values()) >= 0.9, scores
    per = results_identity["probe"]["per_factor"]
    assert per["paddle_y"]["kind"] == "continuous" and per["paddle_y"]["metric"] == "r2"
    assert per["colour"]["kind"] == "discrete" and per["colour"]["metric"] == "macro_f1"
    assert results_identity["mig"] >= 0.9
    assert results_identity["dci"]["disentanglement"] >= 0.9
    assert results_identity["dci"]["completeness"] >= 0.9
    assert results_identity["dci"]["informativeness"] >= 0.9
    assert results_identity["factor_vae"]["score"] >= 0.9
    assert results_identity["dci"]["factors"] == list(scores)


def test_evaluate_output_is_json_plain_and_printable(results_identity: dict) -> None:
    text = json.dumps(results_identity, allow_nan=False)
    assert json.loads(text) == results_identity
    table = format_table(results_identity)
    for needle in ("ball_x[0]", "colour", "MIG", "DCI disentanglement", "FactorVAE score"):
        assert needle in table
    # A partial result (one metric) is printable too.
    assert "MIG" in format_table({"mig": 0.5})


def test_constant_representation_scores_low(data: FactorData) -> None:
    results = evaluate(np.full((data.num_samples, 6), 0.3), data)
    scores = probe_scores(results)
    assert max(scores.values()) <= 0.2, scores
    assert results["mig"] <= 0.2
    assert results["dci"]["disentanglement"] <= 0.2
    assert results["dci"]["completeness"] <= 0.2
    assert results["factor_vae"]["score"] <= 0.2
    assert results["factor_vae"]["num_active_dims"] == 0
    # The probe of a constant representation is the no-information baseline.
    for entry in results["probe"]["per_factor"].values():
        assert entry["score"] == pytest.approx(entry["baseline"], abs=1e-6)


def test_missing_factor_names_expected_and_actual(data: FactorData, identity: np.ndarray) -> None:
    with pytest.raises(ReprlError, match=r"paddle_x.*available factors.*ball_x\[0\]"):
        evaluate(identity, data, factor_names=["paddle_x"])
    with pytest.raises(ReprlError, match="paddle_x"):
        linear_probe(identity, data, factor_names=["paddle_x"])


def test_length_mismatches(data: FactorData, identity: np.ndarray, factors: np.ndarray) -> None:
    with pytest.raises(ReprlError, match=rf"T={data.num_samples}.*got 100 rows"):
        evaluate(identity[:100], data)
    with pytest.raises(ReprlError, match="length mismatch"):
        mig(identity[:100], factors)
    with pytest.raises(ReprlError, match="length mismatch"):
        dci(identity, factors[:10], identity, factors)
    with pytest.raises(ReprlError, match=r"factor 'x'.*T=10.*\(9,\)"):
        FactorData(frames=None, factors={"x": np.zeros(9)}, episode=np.zeros(10, dtype=int))
    with pytest.raises(ReprlError, match="frames has 5"):
        FactorData(
            frames=np.zeros((5, 2, 2, 3), np.uint8),
            factors={"x": np.zeros(10)},
            episode=np.zeros(10, dtype=int),
        )


def test_nan_latents_are_rejected(data: FactorData, identity: np.ndarray) -> None:
    bad = identity.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ReprlError, match=r"NaN.*dimension\(s\) \[2\]"):
        evaluate(bad, data)
    with pytest.raises(ReprlError, match="NaN"):
        encode_all(lambda f: np.full((len(f), 2), np.nan), np.zeros((3, 2, 2, 1), np.uint8))


def test_other_bad_input(data: FactorData, identity: np.ndarray) -> None:
    with pytest.raises(ReprlError, match="unknown metric"):
        evaluate(identity, data, metrics=("probe", "sap"))
    with pytest.raises(ReprlError, match="discrete names"):
        FactorData(frames=None, factors={"x": np.zeros(4)}, episode=np.arange(4), discrete={"y"})
    with pytest.raises(ReprlError, match="at least 2 distinct episodes"):
        episode_split(np.zeros(10, dtype=int))
    with pytest.raises(ReprlError, match="frames is None"):
        evaluate(lambda f: f, data)
    with pytest.raises(ReprlError, match=r"expected \(4, D\)"):
        encode_all(lambda f: np.zeros(len(f)), np.zeros((4, 2, 2, 1), np.uint8))
    with pytest.raises(ReprlError, match="uint8"):
        encode_all(lambda f: f, np.zeros((4, 2, 2, 1), np.float32))
    with pytest.raises(ReprlError, match="shape \\(N, D\\)"):
        mig(np.zeros(10), np.zeros((10, 1)))
