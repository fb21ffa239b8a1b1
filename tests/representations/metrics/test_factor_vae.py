"""The FactorVAE score on observational data."""

from __future__ import annotations

import numpy as np

from representations.metrics import (
    factor_vae_score,
)


def test_factor_vae_skips_factor_without_large_groups() -> None:
    rng = np.random.default_rng(5)
    factors = np.stack([rng.integers(0, 4, 3000), np.arange(3000) % 1000], axis=1)
    latents = factors + 1e-3 * rng.standard_normal(factors.shape)
    result = factor_vae_score(latents, factors, discrete_mask=[True, True], num_train=200)
    assert result["skipped_factors"] == [1]  # 1000 classes of 3 samples each
    assert result["score"] >= 0.9
