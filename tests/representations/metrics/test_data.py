"""FactorData: factor columns, held-out-episode splits, batched encoding, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from envs.errors import ReprlError
from representations.metrics import (
    FactorData,
    encode_all,
    episode_split,
    evaluate,
    linear_probe,
)
from tests.representations.metrics.synthetic import probe_scores


def test_factor_columns_are_expanded(data: FactorData) -> None:
    names, values, mask = data.factor_matrix()
    assert names == ["ball_x[0]", "ball_x[1]", "paddle_y", "colour", "variant"]
    assert values.shape == (data.num_samples, 5)
    assert mask.tolist() == [False, False, False, True, True]
    assert data.factor_matrix(["ball_x"])[0] == ["ball_x[0]", "ball_x[1]"]
    assert data.factor_matrix(["ball_x[1]", "colour"])[0] == ["ball_x[1]", "colour"]


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


def test_no_factors_is_an_error(data: FactorData) -> None:
    empty = FactorData(frames=None, factors={}, episode=data.episode)
    with pytest.raises(ReprlError, match="no factors"):
        evaluate(np.zeros((data.num_samples, 2)), empty)
