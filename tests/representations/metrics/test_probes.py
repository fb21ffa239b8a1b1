"""Linear probes: unseen classes and constant factors."""

from __future__ import annotations

import json

import numpy as np

from representations.metrics import (
    FactorData,
    episode_split,
    evaluate,
    format_table,
    linear_probe,
)


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
