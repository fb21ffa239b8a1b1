"""Active latent units: does a code vary with its input at all? (Burda et al. 2016)

A VAE whose KL term wins collapses to its prior: every input gets the same posterior mean and
the code carries no information. Burda et al. call a latent dimension *active* when the
variance of its code over the data exceeds 0.01 (for codes on the unit-Gaussian prior's scale).
An encoder with no active unit is collapsed, whatever its loss curve looks like: an agent on it
sees a constant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
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


def pretrain_curves(
    metrics_path: str | os.PathLike[str], keys: Sequence[str] = ("loss/kl", "loss/recon")
) -> dict[str, np.ndarray]:
    """Loss terms of a pretraining run over its steps, read from its ``metrics.jsonl``.

    Args:
        metrics_path: a run's ``metrics.jsonl`` (:mod:`representations.pretrain`), or its
            directory.
        keys: metric names to read (rows without one are skipped for that key).

    Returns:
        ``{"step": (N,) int, key: (N,) float}``, with NaN where a row lacks ``key``.

    Raises:
        ReprlError: the file is missing or has no row with a ``"step"``.
    """
    path = Path(metrics_path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise ReprlError(f"metrics: expected a pretraining metrics.jsonl, got {str(path)!r}")
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a half-written last line
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    if not rows:
        raise ReprlError(f"metrics: no rows with a step in {str(path)!r}")
    out = {"step": np.array([r["step"] for r in rows], dtype=np.int64)}
    for k in keys:
        out[k] = np.array([float(r.get(k, np.nan)) for r in rows], dtype=np.float64)
    return out


def plot_pretrain_curves(
    runs: Mapping[str, str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    keys: Sequence[str] = ("loss/kl", "loss/recon"),
    title: str | None = None,
) -> Path:
    """One small PNG of pretraining curves: a panel per key, a line per run (log y-axis).

    The KL panel is where a collapse shows: a KL that falls to ~0 nats while the
    reconstruction plateaus.

    Args:
        runs: legend label -> run directory or ``metrics.jsonl``.
        out: PNG path (parent folders are made).
        keys: metric names, one panel each (e.g. ``"loss/kl"``, ``"loss/recon"``).
        title: figure title.

    Returns:
        ``out`` as a Path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 2.9), dpi=80, squeeze=False)
    for label, run in runs.items():
        curves = pretrain_curves(run, keys)
        for ax, k in zip(axes[0], keys, strict=True):
            y = curves[k]
            ok = np.isfinite(y) & (y > 0)
            ax.plot(curves["step"][ok], y[ok], label=label, lw=1.2)
    for ax, k in zip(axes[0], keys, strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(k.removeprefix("loss/"), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0.0, 0.1, 1.0, 1.0))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
