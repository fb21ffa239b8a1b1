"""The AtariARI probe (representations/metrics/atariari.py) against independent references:
sklearn's weighted F1, entropies worked out by hand, a separable dataset (F1 1) and shuffled
labels (about the majority classifier's score)."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from envs.errors import ReprlError
from representations.metrics import FactorData
from representations.metrics.atariari import (
    atariari_categories,
    atariari_probe,
    atariari_split,
    label_entropy,
    weighted_f1,
)


def episodes(n: int, length: int) -> np.ndarray:
    return np.repeat(np.arange(n), length)


def test_weighted_f1_is_sklearns_on_a_hand_made_example() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2, 7, 7, 7, 7])
    y_pred = np.array([0, 1, 0, 1, 2, 2, 7, 7, 0, 9])  # 9 never true: weighs 0
    # by hand: F1_0 = 2*(2/3)*(2/3)/(4/3) = 2/3 (support 3), F1_1 = 1/2 (2), F1_2 = 2/3 (1),
    # F1_7 = 2*1*(1/2)/(3/2) = 2/3 (4): (3*2/3 + 2*1/2 + 1*2/3 + 4*2/3) / 10
    by_hand = (2 + 1 + 2 / 3 + 8 / 3) / 10
    assert weighted_f1(y_true, y_pred) == pytest.approx(by_hand)
    assert weighted_f1(y_true, y_pred) == pytest.approx(
        f1_score(y_true, y_pred, average="weighted")
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        t, p = rng.integers(0, 12, 200), rng.integers(0, 12, 200)
        p[:100] = t[:100]
        assert weighted_f1(t, p) == pytest.approx(f1_score(t, p, average="weighted"))


def test_entropy_is_in_nats_and_the_filter_drops_below_0_6() -> None:
    # 1:1 -> ln 2 = 0.693 nats (kept); 3:1 -> 0.562 nats (dropped; it would be 0.811 bits)
    assert label_entropy(np.array([4, 4, 9, 9])) == pytest.approx(math.log(2))
    three_to_one = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert three_to_one == pytest.approx(0.5623, abs=1e-4)
    assert label_entropy(np.array([1, 1, 1, 0])) == pytest.approx(three_to_one)
    ep = episodes(8, 80)
    t = ep.size
    half = np.tile([4, 9], t // 2)
    quarter = np.tile([1, 1, 1, 0], t // 4)
    data = FactorData(None, {"a": half, "b": quarter}, ep, discrete={"a", "b"})
    x = np.eye(2)[half % 2] + 0.01 * np.random.default_rng(0).normal(size=(t, 2))
    out = atariari_probe(x, data, epochs=2)
    assert list(out["per_variable"]) == ["a"]
    assert out["dropped"] == {"b": pytest.approx(three_to_one)}
    assert out["per_variable"]["a"]["entropy"] == pytest.approx(math.log(2))


def separable(seed: int = 0) -> tuple[np.ndarray, FactorData]:
    """Two byte-valued variables, each read off its own one-hot block of the features."""
    rng = np.random.default_rng(seed)
    ep = episodes(40, 150)
    t = ep.size
    ball_x = rng.choice(np.arange(40, 48), t)  # 8 values, entropy ln 8
    skew = rng.choice([0, 0, 0, 3, 200], t)  # 60% zeros: a majority worth beating
    x = np.concatenate([np.eye(8)[ball_x - 40], np.eye(201)[skew][:, [0, 3, 200]]], 1)
    x = 10 * x + 0.05 * rng.normal(size=x.shape)
    return x, FactorData(None, {"ball_x": ball_x, "score": skew}, ep, discrete={"ball_x", "score"})


def test_a_separable_dataset_reaches_f1_one() -> None:
    x, data = separable()
    out = atariari_probe(x, data, device="cpu")
    assert out["per_variable"]["ball_x"]["f1"] == 1.0
    assert out["per_variable"]["score"]["f1"] == 1.0
    assert out["mean_f1"] == 1.0 and out["across_categories_f1"] == 1.0
    assert out["categories"] == {"small_object_localization": 1.0, "score_clock_lives_display": 1.0}
    assert out["majority"]["mean_f1"] < 0.5
    assert out["split"]["episodes"] == [28, 4, 8]  # 70/10/20 of 40 episodes
    assert out["split"]["frames"] == [4200, 600, 1200]


def test_shuffled_labels_score_about_the_majority() -> None:
    x, data = separable()
    rng = np.random.default_rng(1)
    shuffled = FactorData(
        None,
        {k: rng.permutation(v) for k, v in data.factors.items()},
        data.episode,
        discrete=data.discrete,
    )
    out = atariari_probe(x, shuffled)
    for name in ("ball_x", "score"):  # nothing to read: no better than the majority, near it
        r = out["per_variable"][name]
        assert r["majority_f1"] - 0.15 < r["f1"] < r["majority_f1"] + 0.1
    # the majority of "score" is 0 (60%): weighted F1 = 0.6 * 2 * 0.6 / 1.6 = 0.45
    assert out["per_variable"]["score"]["majority_f1"] == pytest.approx(0.45, abs=0.05)


def test_split_is_by_episode_drops_short_ones_and_test_duplicates() -> None:
    ep = np.concatenate([episodes(10, 70), np.full(64, 10)])  # the last one too short
    train, val, test = atariari_split(ep, seed=3)
    parts = [set(ep[p]) for p in (train, val, test)]
    assert [len(p) for p in parts] == [7, 1, 2] and 10 not in set().union(*parts)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    with pytest.raises(ReprlError, match="at least 4 episodes"):
        atariari_split(episodes(3, 100))
    x, data = separable()
    keys = np.arange(data.num_samples)
    _, _, te = atariari_split(data.episode, 0)
    tr, _, _ = atariari_split(data.episode, 0)
    keys[te[:7]] = keys[tr[0]]  # 7 test frames equal to a training frame
    out = atariari_probe(x, data, frame_keys=keys, epochs=1)
    assert out["split"]["test_duplicates_removed"] == 7
    assert out["split"]["frames"][2] == 1200 - 7


def test_labels_must_be_bytes_and_discrete() -> None:
    ep = episodes(8, 80)
    x = np.zeros((ep.size, 2))
    with pytest.raises(ReprlError, match=r"integers in \[0, 256\).*\['big'\]"):
        atariari_probe(x, FactorData(None, {"big": np.tile([0, 300], ep.size // 2)}, ep, {"big"}))
    with pytest.raises(ReprlError, match="none marked discrete"):
        atariari_probe(x, FactorData(None, {"pos": np.arange(ep.size) % 7}, ep))


def test_categories_follow_their_naming_rules() -> None:
    assert atariari_categories("ball_x") == ["small_object_localization"]
    assert atariari_categories("player_y") == ["agent_localization"]
    assert atariari_categories("enemy_x") == ["other_localization"]
    assert atariari_categories("player_score") == ["score_clock_lives_display"]
    assert atariari_categories("block_bit_map_3") == ["misc_keys"]
    assert atariari_categories("blocks_hit_count") == ["misc_keys"]
    assert atariari_categories("paddle_width") == []
