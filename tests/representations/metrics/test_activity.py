"""Active units (Burda et al. 2016), against variances worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from envs.errors import ReprlError
from representations.metrics import ACTIVE_THRESHOLD, collapse_warning, latent_activity


def test_counts_the_dimensions_whose_code_varies_more_than_the_threshold() -> None:
    # column variances (population): 1.0 (values -1, 1), 0.0 (constant), 0.0025 (+-0.05)
    z = np.array([[-1.0, 3.0, 0.05], [1.0, 3.0, -0.05]] * 5)
    a = latent_activity(z)
    assert a["active"] == 1 and a["latent_dim"] == 3 and a["frames"] == 10
    assert a["threshold"] == ACTIVE_THRESHOLD == 0.01
    np.testing.assert_allclose(a["variance"], [1.0, 0.0, 0.0025])
    assert latent_activity(z, threshold=0.001)["active"] == 2
    assert collapse_warning(a) is None


def test_a_constant_code_is_collapsed() -> None:
    a = latent_activity(np.full((50, 4), 0.3) + 1e-4 * np.arange(50)[:, None])
    assert a["active"] == 0
    msg = collapse_warning(a, "beta_vae at enc.safetensors")
    assert msg is not None and "beta_vae at enc.safetensors collapsed" in msg
    assert "none of its 4 latents" in msg and "\n" not in msg
    # codes that are not posterior means under a unit prior: no verdict
    assert collapse_warning(latent_activity(np.zeros((5, 2)), variational=False)) is None
    assert collapse_warning(None) is None


@pytest.mark.parametrize(
    ("latents", "threshold", "match"),
    [
        (np.zeros(5), 0.01, r"expected \(T >= 2, D\) codes, got shape \(5,\)"),
        (np.zeros((1, 3)), 0.01, r"got shape \(1, 3\)"),
        (np.array([[0.0], [np.nan]]), 0.01, "NaN"),
        (np.zeros((3, 2)), 0.0, "threshold: expected > 0, got 0.0"),
    ],
)
def test_bad_input_is_refused(latents: np.ndarray, threshold: float, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        latent_activity(latents, threshold)
