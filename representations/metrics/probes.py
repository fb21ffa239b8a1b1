"""Linear probes (AtariARI-style, Anand et al. 2019): how linearly decodable each factor is.

One linear model per factor is fitted on latents from training episodes and scored on held-out
episodes: ridge regression scored by R^2 for continuous factors, multinomial logistic
regression scored by macro-F1 for discrete ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score

from representations.metrics.data import (
    FactorData,
    _check_latents,
    _is_constant,
    _r2,
    _standardise,
    _to_plain,
    episode_split,
)


def linear_probe(
    latents: np.ndarray,
    data: FactorData,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    factor_names: Sequence[str] | None = None,
    ridge_alpha: float = 1.0,
    logistic_c: float = 1.0,
    max_iter: int = 1000,
) -> dict[str, dict]:
    """Fit one linear probe per factor on training episodes; score on held-out episodes.

    Latents are standardised with training-split statistics. Continuous factors: ridge
    regression (``ridge_alpha``), scored by R^2 on the test split (unbounded below; 0 is the
    test-mean predictor). Discrete factors: multinomial logistic regression (``logistic_c``),
    scored by macro-F1 over the classes that occur in the test labels or predictions.

    Args:
        latents: ``(T, D)`` latents, one row per sample of ``data``.
        data: Factors and episode ids.
        test_fraction: Fraction of episodes held out for testing (see :func:`episode_split`).
        seed: Seed of the episode split.
        factor_names: Factors to probe (base or column names); ``None`` probes all.
        ridge_alpha: L2 strength of the ridge regression, on standardised latents.
        logistic_c: Inverse L2 strength of the logistic regression.
        max_iter: Iteration cap of the logistic-regression solver.

    Returns:
        Column name -> ``{"kind": "continuous" | "discrete", "metric": "r2" | "macro_f1",
        "score": float | None, "baseline": float | None, "n_train": int, "n_test": int}``.
        ``baseline`` is the score of a predictor that ignores the latents (training mean,
        or training majority class). Discrete entries also hold ``"n_classes"`` and
        ``"unseen_test_classes"`` (labels present in test but never in training; the probe
        cannot predict them, so they count with F1 = 0). A factor that cannot be probed
        (constant; a single training class; continuous and constant in the test split) has
        ``score=None`` and a ``"skipped"`` reason.

    Raises:
        ReprlError: On missing factors, mismatched lengths, non-finite latents, or fewer
            than two episodes.
    """
    columns, values, mask = data.factor_matrix(factor_names)
    x = _check_latents(latents, data.num_samples)
    train_idx, test_idx = episode_split(data.episode, test_fraction, seed)
    x_train, x_test = _standardise(x[train_idx], x[test_idx])
    n_train, n_test = int(train_idx.size), int(test_idx.size)
    results: dict[str, dict] = {}

    constant_all = _is_constant(values)
    constant_train = _is_constant(values[train_idx])
    constant_test = _is_constant(values[test_idx])

    def skipped(kind: str, reason: str) -> dict:
        return {
            "kind": kind,
            "metric": "macro_f1" if kind == "discrete" else "r2",
            "score": None,
            "baseline": None,
            "n_train": n_train,
            "n_test": n_test,
            "skipped": reason,
        }

    # Continuous factors: one multi-output ridge fit (independent per output).
    cont = [j for j in range(len(columns)) if not mask[j]]
    fit_cont: list[int] = []
    for j in cont:
        if constant_all[j]:
            results[columns[j]] = skipped("continuous", "constant over the dataset")
        elif constant_train[j]:
            results[columns[j]] = skipped("continuous", "constant in the training split")
        elif constant_test[j]:
            results[columns[j]] = skipped(
                "continuous", "constant in the test split (R^2 undefined)"
            )
        else:
            fit_cont.append(j)
    if fit_cont:
        y_train, y_test = values[train_idx][:, fit_cont], values[test_idx][:, fit_cont]
        model = Ridge(alpha=ridge_alpha).fit(x_train, y_train)
        pred = model.predict(x_test).reshape(y_test.shape)
        scores = _r2(y_test, pred)
        baselines = _r2(y_test, np.broadcast_to(y_train.mean(axis=0), y_test.shape))
        for col, j in enumerate(fit_cont):
            results[columns[j]] = {
                "kind": "continuous",
                "metric": "r2",
                "score": float(scores[col]),
                "baseline": float(baselines[col]),
                "n_train": n_train,
                "n_test": n_test,
            }

    # Discrete factors: one multinomial logistic regression each.
    for j in (j for j in range(len(columns)) if mask[j]):
        if constant_all[j]:
            results[columns[j]] = skipped("discrete", "constant over the dataset")
            continue
        y_train, y_test = values[train_idx, j], values[test_idx, j]
        train_classes = np.unique(y_train)
        if train_classes.size < 2:
            results[columns[j]] = skipped("discrete", "a single class in the training split")
            continue
        clf = LogisticRegression(C=logistic_c, max_iter=max_iter)
        clf.fit(x_train, y_train)
        pred = clf.predict(x_test)
        unseen = np.setdiff1d(np.unique(y_test), train_classes)
        values_, counts = np.unique(y_train, return_counts=True)
        majority = np.full_like(y_test, values_[np.argmax(counts)])
        results[columns[j]] = {
            "kind": "discrete",
            "metric": "macro_f1",
            "score": float(f1_score(y_test, pred, average="macro", zero_division=0)),
            "baseline": float(f1_score(y_test, majority, average="macro", zero_division=0)),
            "n_train": n_train,
            "n_test": n_test,
            "n_classes": int(np.unique(values[:, j]).size),
            "unseen_test_classes": _to_plain(unseen),
        }
    return {c: results[c] for c in columns}
