"""Synthetic factors for the metric tests (no environment needed).

Following disentanglement_lib's metric tests: an identity representation scores high, a
constant one low, a duplicated latent space has no MIG gap, and a rotation of the identity
loses disentanglement while staying linearly decodable.
"""

from __future__ import annotations

import numpy as np

from representations.metrics import FactorData

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


def probe_scores(results: dict) -> dict[str, float]:
    """Factor column -> probe score of :func:`representations.metrics.evaluate` output."""
    return {k: v["score"] for k, v in results["probe"]["per_factor"].items()}
