"""One entry point running any subset of the metrics on one split, with JSON-plain output."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from envs.errors import ReprlError
from representations.metrics.data import (
    EncodeFn,
    FactorData,
    _check_latents,
    _is_constant,
    _to_plain,
    encode_all,
    episode_split,
)
from representations.metrics.factor_vae import factor_vae_score
from representations.metrics.importance import dci
from representations.metrics.information import mig
from representations.metrics.probes import linear_probe

METRICS: tuple[str, ...] = ("probe", "mig", "dci", "factor_vae")
"""Names accepted by :func:`evaluate`'s ``metrics`` argument."""


def evaluate(
    encode_or_latents: EncodeFn | np.ndarray,
    data: FactorData,
    metrics: Iterable[str] = METRICS,
    seed: int = 0,
    *,
    factor_names: Sequence[str] | None = None,
    test_fraction: float = 0.2,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Score a representation with any subset of the metrics; JSON-plain output.

    Probes and DCI train on the same held-out-episode split (:func:`episode_split`); MIG and
    the FactorVAE score use all samples. Factors constant over the dataset are left out of
    MIG, DCI and FactorVAE and listed under ``"skipped_factors"``.

    Args:
        encode_or_latents: An :data:`EncodeFn` (applied to ``data.frames`` with
            :func:`encode_all`) or precomputed ``(T, D)`` latents.
        data: Frames, factors and episode ids.
        metrics: Any of ``"probe"``, ``"mig"``, ``"dci"``, ``"factor_vae"``.
        seed: Seed of the split and of all sampling.
        factor_names: Factors to score (base or column names); ``None`` scores all.
        test_fraction: Fraction of episodes held out for probes and DCI.
        batch_size: Encoding batch size.

    Returns:
        ``{"n_samples", "n_episodes", "latent_dim", "factors", "skipped_factors"}`` plus, per
        requested metric: ``"probe": {"per_factor": linear_probe output, "mean_r2",
        "mean_f1"}``, ``"mig": float``, ``"dci": dci output``, ``"factor_vae":
        factor_vae_score output`` (skipped factor indices replaced by names). Undefined
        numbers are ``None``.

    Raises:
        ReprlError: On unknown metric names, missing factors or frames, mismatched lengths,
            or non-finite latents.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ReprlError(f"unknown metric(s) {unknown}; expected any of {list(METRICS)}")
    columns, values, mask = data.factor_matrix(factor_names)
    if callable(encode_or_latents):
        if data.frames is None:
            raise ReprlError("an encode function was given but FactorData.frames is None")
        latents = encode_all(encode_or_latents, data.frames, batch_size=batch_size)
    else:
        latents = encode_or_latents
    z = _check_latents(latents, data.num_samples)

    constant = _is_constant(values)
    out: dict[str, Any] = {
        "n_samples": data.num_samples,
        "n_episodes": int(np.unique(data.episode).size),
        "latent_dim": int(z.shape[1]),
        "factors": columns,
        "skipped_factors": {c: "constant over the dataset" for c, s in zip(columns, constant) if s},
    }
    keep = ~constant
    kept_cols = [c for c, k in zip(columns, keep) if k]
    v, m = values[:, keep], mask[keep]
    if "probe" in metrics:
        per = linear_probe(
            z, data, test_fraction=test_fraction, seed=seed, factor_names=factor_names
        )
        r2 = [
            r["score"] for r in per.values() if r["kind"] == "continuous" and r["score"] is not None
        ]
        f1 = [
            r["score"] for r in per.values() if r["kind"] == "discrete" and r["score"] is not None
        ]
        out["probe"] = {
            "per_factor": per,
            "mean_r2": float(np.mean(r2)) if r2 else None,
            "mean_f1": float(np.mean(f1)) if f1 else None,
            "test_fraction": test_fraction,
        }
    if v.shape[1] == 0 and any(x in metrics for x in ("mig", "dci", "factor_vae")):
        raise ReprlError(f"all selected factors {columns} are constant; nothing to score")
    if "mig" in metrics:
        out["mig"] = mig(z, v, discrete_mask=m)
    if "dci" in metrics:
        tr, te = episode_split(data.episode, test_fraction, seed)
        out["dci"] = dci(z[tr], v[tr], z[te], v[te], discrete_mask=m, seed=seed)
        out["dci"]["factors"] = [kept_cols[i] for i in out["dci"].pop("factor_indices")]
    if "factor_vae" in metrics:
        fv = factor_vae_score(z, v, discrete_mask=m, seed=seed)
        fv["skipped_factors"] = [kept_cols[i] for i in fv["skipped_factors"]]
        out["factor_vae"] = fv
    return _to_plain(out)
