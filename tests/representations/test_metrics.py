"""Sanity bounds for representation metrics on synthetic factors (no environment needed).

Following disentanglement_lib's metric tests: an identity representation scores high, a
constant one low, a duplicated latent space has no MIG gap, and a rotation of the identity
loses disentanglement while staying linearly decodable.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from representations.metrics import (
    FactorData,
    dci,
    dci_from_importance,
    discrete_entropy,
    discrete_mutual_info,
    encode_all,
    episode_split,
    evaluate,
    factor_vae_score,
    format_table,
    histogram_discretise,
    linear_probe,
    mig,
)

N_EPISODES = 40
EPISODE_LEN = 75
N_CLASSES = 5  # majority-class macro-F1 for 5 balanced classes is 2 / (5 * 6) ~ 0.07


def make_data(seed: int = 0) -> FactorData:
    """3 continuous factors (one (T, 2) array + one (T,)) and 2 discrete ones, independent."""
    rng = np.random.default_rng(seed)
    t = N_EPISODES * EPISODE_LEN
    return FactorData(
        frames=None,
        factors={
            "ball_x": rng.uniform(0.0, 1.0, size=(t, 2)),
            "paddle_y": rng.normal(0.0, 2.0, size=t),
            "colour": rng.integers(0, N_CLASSES, size=t),
            "variant": rng.integers(0, N_CLASSES, size=t),
        },
        episode=np.repeat(np.arange(N_EPISODES), EPISODE_LEN),
        discrete={"colour", "variant"},
    )


@pytest.fixture(scope="module")
def data() -> FactorData:
    return make_data()


@pytest.fixture(scope="module")
def factors(data: FactorData) -> np.ndarray:
    return data.factor_matrix()[1]


@pytest.fixture(scope="module")
def identity(factors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    return factors + 1e-3 * rng.standard_normal(factors.shape)


@pytest.fixture(scope="module")
def results_identity(identity: np.ndarray, data: FactorData) -> dict:
    return evaluate(identity, data)


def probe_scores(results: dict) -> dict[str, float]:
    return {k: v["score"] for k, v in results["probe"]["per_factor"].items()}


# --------------------------------------------------------------------------------------------
# Sanity bounds
# --------------------------------------------------------------------------------------------


def test_factor_columns_are_expanded(data: FactorData) -> None:
    names, values, mask = data.factor_matrix()
    assert names == ["ball_x[0]", "ball_x[1]", "paddle_y", "colour", "variant"]
    assert values.shape == (data.num_samples, 5)
    assert mask.tolist() == [False, False, False, True, True]
    assert data.factor_matrix(["ball_x"])[0] == ["ball_x[0]", "ball_x[1]"]
    assert data.factor_matrix(["ball_x[1]", "colour"])[0] == ["ball_x[1]", "colour"]


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


def test_duplicated_latents_have_no_mig_gap(data: FactorData, identity: np.ndarray) -> None:
    duplicated = np.concatenate([identity, identity], axis=1)
    results = evaluate(duplicated, data, metrics=("probe", "mig"))
    assert results["mig"] <= 0.1
    assert min(probe_scores(results).values()) >= 0.9
    assert "dci" not in results and "factor_vae" not in results


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


# --------------------------------------------------------------------------------------------
# Hand-worked mutual information and MIG
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Probes: episode split, unseen classes, constant factors
# --------------------------------------------------------------------------------------------


def test_episode_split_holds_out_whole_episodes(data: FactorData) -> None:
    train, test = episode_split(data.episode, test_fraction=0.25, seed=7)
    train_eps, test_eps = set(data.episode[train]), set(data.episode[test])
    assert train_eps.isdisjoint(test_eps)
    assert len(test_eps) == 10 and len(train_eps) == 30
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(data.num_samples))
    again = episode_split(data.episode, test_fraction=0.25, seed=7)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(episode_split(data.episode, 0.25, seed=8)[1], test)
    results = linear_probe(np.zeros((data.num_samples, 1)), data, test_fraction=0.25, seed=7)
    assert all(r["n_train"] == train.size and r["n_test"] == test.size for r in results.values())


def test_probe_handles_unseen_class_and_constant_factor(
    data: FactorData, identity: np.ndarray
) -> None:
    _, test = episode_split(data.episode, test_fraction=0.2, seed=0)
    colour = data.factors["colour"].copy()
    held_out_episode = data.episode[test][0]
    colour[data.episode == held_out_episode] = 99  # a class never seen in training
    odd = FactorData(
        frames=None,
        factors={"colour": colour, "lives": np.full(data.num_samples, 3.0)},
        episode=data.episode,
        discrete={"colour"},
    )
    latents = np.stack([colour, np.zeros_like(colour)], axis=1).astype(float)
    results = linear_probe(latents, odd, seed=0)
    assert results["colour"]["unseen_test_classes"] == [99]
    assert 0.0 <= results["colour"]["score"] < 1.0  # class 99 can never be predicted
    assert results["lives"]["score"] is None
    assert "constant" in results["lives"]["skipped"]
    full = evaluate(latents, odd)
    assert "lives" in full["skipped_factors"]
    json.dumps(full, allow_nan=False)
    assert "lives (constant over the dataset)" in format_table(full)


def test_factor_vae_skips_factor_without_large_groups() -> None:
    rng = np.random.default_rng(5)
    factors = np.stack([rng.integers(0, 4, 3000), np.arange(3000) % 1000], axis=1)
    latents = factors + 1e-3 * rng.standard_normal(factors.shape)
    result = factor_vae_score(latents, factors, discrete_mask=[True, True], num_train=200)
    assert result["skipped_factors"] == [1]  # 1000 classes of 3 samples each
    assert result["score"] >= 0.9


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def test_encode_all_batches_and_evaluate_with_callable() -> None:
    rng = np.random.default_rng(6)
    t = 600
    frames = rng.integers(0, 256, size=(t, 4, 4, 3), dtype=np.uint8)
    data = FactorData(
        frames=frames,
        factors={"red": frames[:, 0, 0, 0].astype(float), "green": frames[:, 0, 0, 1]},
        episode=np.repeat(np.arange(12), 50),
        discrete=set(),
    )
    batch_sizes: list[int] = []

    def encode(batch: np.ndarray) -> np.ndarray:
        batch_sizes.append(batch.shape[0])
        return batch[:, 0, 0, :].astype(np.float32) / 255.0

    latents = encode_all(encode, frames, batch_size=256)
    assert latents.shape == (t, 3) and latents.dtype == np.float32
    assert batch_sizes == [256, 256, 88]
    results = evaluate(encode, data, metrics=("probe", "mig"))
    assert min(probe_scores(results).values()) >= 0.99
    assert results["latent_dim"] == 3


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_missing_factor_names_expected_and_actual(data: FactorData, identity: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"paddle_x.*available factors.*ball_x\[0\]"):
        evaluate(identity, data, factor_names=["paddle_x"])
    with pytest.raises(ValueError, match="paddle_x"):
        linear_probe(identity, data, factor_names=["paddle_x"])


def test_no_factors_is_an_error(data: FactorData) -> None:
    empty = FactorData(frames=None, factors={}, episode=data.episode)
    with pytest.raises(ValueError, match="no factors"):
        evaluate(np.zeros((data.num_samples, 2)), empty)


def test_length_mismatches(data: FactorData, identity: np.ndarray, factors: np.ndarray) -> None:
    with pytest.raises(ValueError, match=rf"T={data.num_samples}.*got 100 rows"):
        evaluate(identity[:100], data)
    with pytest.raises(ValueError, match="length mismatch"):
        mig(identity[:100], factors)
    with pytest.raises(ValueError, match="length mismatch"):
        dci(identity, factors[:10], identity, factors)
    with pytest.raises(ValueError, match=r"factor 'x'.*T=10.*\(9,\)"):
        FactorData(frames=None, factors={"x": np.zeros(9)}, episode=np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="frames has 5"):
        FactorData(
            frames=np.zeros((5, 2, 2, 3), np.uint8),
            factors={"x": np.zeros(10)},
            episode=np.zeros(10, dtype=int),
        )


def test_nan_latents_are_rejected(data: FactorData, identity: np.ndarray) -> None:
    bad = identity.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*dimension\(s\) \[2\]"):
        evaluate(bad, data)
    with pytest.raises(ValueError, match="NaN"):
        encode_all(lambda f: np.full((len(f), 2), np.nan), np.zeros((3, 2, 2, 1), np.uint8))


def test_other_bad_input(data: FactorData, identity: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(identity, data, metrics=("probe", "sap"))
    with pytest.raises(ValueError, match="discrete names"):
        FactorData(frames=None, factors={"x": np.zeros(4)}, episode=np.arange(4), discrete={"y"})
    with pytest.raises(ValueError, match="at least 2 distinct episodes"):
        episode_split(np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="frames is None"):
        evaluate(lambda f: f, data)
    with pytest.raises(ValueError, match=r"expected \(4, D\)"):
        encode_all(lambda f: np.zeros(len(f)), np.zeros((4, 2, 2, 1), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_all(lambda f: f, np.zeros((4, 2, 2, 1), np.float32))
    with pytest.raises(ValueError, match="shape \\(N, D\\)"):
        mig(np.zeros(10), np.zeros((10, 1)))
