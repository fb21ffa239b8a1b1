"""Active latent units: does a code vary with its input at all? (Burda et al. 2016)

A VAE whose KL term wins collapses to its prior: every input gets the same posterior mean and
the code carries no information. Burda et al. call a latent dimension *active* when the
variance of its code over the data exceeds 0.01 (for codes on the unit-Gaussian prior's scale).
An encoder with no active unit is collapsed, whatever its loss curve looks like: an agent on it
sees a constant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from envs.errors import ReprlError

ACTIVE_THRESHOLD = 0.01
"""Variance over the data above which a latent counts as active (Burda et al. 2016)."""


def latent_activity(
    latents: np.ndarray, threshold: float = ACTIVE_THRESHOLD, *, variational: bool = True
) -> dict[str, Any]:
    """How many latent dimensions vary over a set of codes.

    Args:
        latents: ``(T, D)`` codes of ``T >= 2`` frames (posterior means for a VAE).
        threshold: variance above which a dimension is active, > 0.
        variational: whether the codes are posterior means under a unit-Gaussian prior, where
            the threshold means something (recorded; :func:`collapse_warning` needs it).

    Returns:
        JSON-plain ``{"active": int in [0, D], "latent_dim": D, "threshold", "frames": T,
        "variational", "variance": [D floats, 4 significant digits]}``.

    Raises:
        ReprlError: ``latents`` is not 2-D with at least 2 rows, holds NaN or infinities, or
            ``threshold`` is not positive.
    """
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ReprlError(f"latents: expected (T >= 2, D) codes, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ReprlError("latents: expected finite codes, got NaN or infinite values")
    if not threshold > 0:
        raise ReprlError(f"threshold: expected > 0, got {threshold}")
    var = z.var(axis=0)
    return {
        "active": int((var > threshold).sum()),
        "latent_dim": int(z.shape[1]),
        "threshold": float(threshold),
        "frames": int(z.shape[0]),
        "variational": bool(variational),
        "variance": [float(f"{v:.4g}") for v in var],
    }


def collapse_warning(activity: Mapping[str, Any] | None, what: str = "the encoder") -> str | None:
    """A one-line warning if ``activity`` (of :func:`latent_activity`, variational codes) has no
    active unit.

    Returns:
        ``None`` when at least one latent is active, the codes are not variational or nothing
        is known.
    """
    if not activity or not activity.get("variational", True) or activity.get("active", 1) > 0:
        return None
    return (
        f"{what} collapsed: none of its {activity['latent_dim']} latents varies over "
        f"{activity['frames']} frames (variance <= {activity['threshold']:g}): its posterior "
        "fell back to the prior and an agent on it sees a near-constant input"
    )
