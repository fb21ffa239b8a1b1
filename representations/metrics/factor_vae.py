"""The FactorVAE disentanglement score (Kim & Mnih 2018), adapted to observational data (see
:func:`factor_vae_score` for the approximation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.errors import ReprlError
from representations.metrics.data import (
    _CONSTANT_ATOL,
    _check_factors,
    _check_latents,
    _check_mask,
)


def _fixed_value_groups(values: np.ndarray, discrete: bool, num_bins: int) -> np.ndarray:
    """Group ids ``(N,)`` of samples sharing a factor value (discrete) or quantile bin."""
    if discrete:
        return np.unique(values, return_inverse=True)[1]
    inner = np.linspace(0.0, 1.0, num_bins + 1)[1:-1]
    edges = np.unique(np.quantile(values, inner))
    return np.searchsorted(edges, values, side="right")


def factor_vae_score(
    latents: np.ndarray,
    factors: np.ndarray,
    *,
    discrete_mask: Sequence[bool] | np.ndarray | None = None,
    num_bins: int = 20,
    batch_size: int = 64,
    num_train: int = 2000,
    num_eval: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """FactorVAE disentanglement score (Kim & Mnih 2018) on observational data.

    The original metric asks a simulator for a batch in which one factor is fixed and the
    others are resampled, takes the latent dimension with the smallest variance (normalised
    by its global variance) and votes "(factor, dimension)"; a majority-vote classifier
    dimension -> factor is trained on ``num_train`` votes and its accuracy on ``num_eval``
    fresh votes is the score.

    Approximation (no simulator): a batch with factor ``k`` "fixed" is ``batch_size``
    samples drawn without replacement from the dataset samples that share ``k``'s value
    (discrete factors) or its quantile bin out of ``num_bins`` (continuous factors: fixed
    only up to the bin width). The group is picked by drawing an anchor sample uniformly,
    i.e. with the empirical factor distribution. The other factors in a batch therefore
    follow their empirical distribution *conditional* on the fixed value rather than an
    independent prior: factors correlated in the data (e.g. by the exploration policy) can
    make the wrong dimension look fixed. Train and eval votes come from the same dataset
    (fresh random batches); the classifier has only ``D`` parameters. Groups smaller than
    ``batch_size`` are never drawn; factors without such a group (or constant) are skipped.
    Collapsed latent dimensions (zero variance) are pruned; if none remain the score is 0,
    as in disentanglement_lib.

    Args:
        latents: ``(N, D)`` latents.
        factors: ``(N, K)`` factors.
        discrete_mask: ``(K,)`` bools marking categorical factors; ``None`` treats factors
            with at most ``num_bins`` distinct values as categorical.
        num_bins: Quantile bins used to "fix" a continuous factor.
        batch_size: Samples per vote.
        num_train: Votes used to build the majority-vote classifier.
        num_eval: Votes used to score it.
        seed: Seed of all sampling.

    Returns:
        ``{"score": eval accuracy in [0, 1], "train_accuracy", "eval_accuracy",
        "num_active_dims", "skipped_factors": [factor indices]}``.

    Raises:
        ReprlError: On mismatched lengths, non-finite latents, ``batch_size < 2``, or no
            factor with a group of at least ``batch_size`` samples.
    """
    z = _check_latents(latents)
    v = _check_factors(factors, z.shape[0])
    mask = _check_mask(discrete_mask, v, num_bins)
    if batch_size < 2:
        raise ReprlError(f"batch_size must be >= 2, got {batch_size}")
    rng = np.random.default_rng(seed)

    # Per factor: members of every group large enough, as (sorted index array, offsets).
    eligible: list[int] = []
    pools: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    skipped: list[int] = []
    for k in range(v.shape[1]):
        groups = _fixed_value_groups(v[:, k], bool(mask[k]), num_bins)
        sizes = np.bincount(groups)
        ok = sizes >= batch_size
        if sizes.size < 2 or not ok.any():
            skipped.append(k)
            continue
        order = np.argsort(groups, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)])
        good = np.flatnonzero(ok)
        eligible.append(k)
        pools[k] = (order, starts, good)
    if not eligible:
        raise ReprlError(
            f"FactorVAE score: no factor has a fixed-value group with >= batch_size="
            f"{batch_size} samples (N={z.shape[0]}); lower batch_size or use more data"
        )

    global_var = z.var(axis=0, ddof=1)
    active = np.sqrt(global_var) > _CONSTANT_ATOL * (1.0 + np.abs(z).max(axis=0))
    result: dict[str, Any] = {
        "score": 0.0,
        "train_accuracy": 0.0,
        "eval_accuracy": 0.0,
        "num_active_dims": int(active.sum()),
        "skipped_factors": skipped,
    }
    if not active.any():
        return result
    za = z[:, active] / np.sqrt(global_var[active])  # local var / global var = var of this

    def votes(n: int) -> np.ndarray:
        table = np.zeros((v.shape[1], za.shape[1]), dtype=np.int64)
        chosen = rng.choice(np.asarray(eligible), size=n)
        idx = np.empty((n, batch_size), dtype=np.int64)
        for k in eligible:
            rows = np.flatnonzero(chosen == k)
            order, starts, good = pools[k]
            # Anchor ~ data distribution: a group is drawn proportionally to its size.
            sizes = (starts[good + 1] - starts[good]).astype(np.float64)
            groups = rng.choice(good, size=rows.size, p=sizes / sizes.sum())
            for row, g in zip(rows, groups):
                idx[row] = rng.choice(order[starts[g] : starts[g + 1]], batch_size, replace=False)
        for lo in range(0, n, 256):  # chunked to bound memory: (256, batch_size, D)
            local = za[idx[lo : lo + 256]].var(axis=1, ddof=1)
            np.add.at(table, (chosen[lo : lo + 256], np.argmin(local, axis=1)), 1)
        return table

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)  # latent dim -> factor
    cols = np.arange(za.shape[1])
    train_acc = train_votes[classifier, cols].sum() / train_votes.sum()
    eval_votes = votes(num_eval)
    eval_acc = eval_votes[classifier, cols].sum() / eval_votes.sum()
    result.update(
        score=float(eval_acc), train_accuracy=float(train_acc), eval_accuracy=float(eval_acc)
    )
    return result
