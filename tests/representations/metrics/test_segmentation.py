"""Adjusted Rand index against scikit-learn and worked-by-hand examples; masks to slot ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from envs.errors import ReprlError
from representations.metrics import segmentation
from representations.metrics.segmentation import (
    adjusted_rand_index,
    adjusted_rand_index_per_image,
    masks_to_ids,
)


@pytest.mark.parametrize(("n_true", "n_pred"), [(2, 2), (3, 7), (6, 2), (1, 4)])
def test_matches_sklearn_per_image_on_random_labelings(n_true: int, n_pred: int) -> None:
    rng = np.random.default_rng(n_true * 10 + n_pred)
    true = rng.integers(0, n_true, size=(6, 9, 11))
    pred = rng.integers(0, n_pred, size=(6, 9, 11))
    pred[:3] = (true[:3] + rng.integers(0, 2, size=true[:3].shape)) % max(n_pred, 1)  # agreeing
    want = [adjusted_rand_score(t.ravel(), p.ravel()) for t, p in zip(true, pred)]
    np.testing.assert_allclose(adjusted_rand_index_per_image(true, pred), want, atol=1e-12)
    assert adjusted_rand_index(true, pred) == pytest.approx(np.mean(want), abs=1e-12)


def test_matches_sklearn_with_ignored_background() -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, size=(5, 8, 8))
    pred = rng.integers(0, 3, size=(5, 8, 8))
    want = [adjusted_rand_score(t[t != 0], p[t != 0]) for t, p in zip(true, pred)]
    np.testing.assert_allclose(adjusted_rand_index_per_image(true, pred, ignore=0), want)


def test_identical_partitions_up_to_relabelling_score_one() -> None:
    rng = np.random.default_rng(1)
    true = rng.integers(0, 5, size=(4, 10, 10))
    relabel = np.array([17, -3, 4, 99, 0])  # a bijection of the label values
    assert adjusted_rand_index(true, relabel[true]) == pytest.approx(1.0)
    assert adjusted_rand_index(true[0], relabel[true[0]]) == pytest.approx(1.0)  # (H, W)


def test_foreground_ari_worked_by_hand() -> None:
    # 0 is the background; two objects, 1 and 2.
    true = np.array([[0, 0, 1, 1], [0, 0, 2, 2]])
    pred = np.array([[5, 5, 5, 5], [5, 5, 7, 7]])  # object 1 merged with the background
    # All 8 pixels: table t0-p5: 4, t1-p5: 2, t2-p7: 2. index = C(4)+C(2)+C(2) = 8,
    # rows = C(4)+C(2)+C(2) = 8, cols = C(6)+C(2) = 16, C(8) = 28: expected = 8 * 16 / 28
    # = 32/7, maximum = 12, ARI = (8 - 32/7) / (12 - 32/7) = 6/13.
    assert adjusted_rand_index(true, pred) == pytest.approx(6 / 13)
    # Foreground only: objects 1 (p5, p5) and 2 (p7, p7) are told apart perfectly.
    assert adjusted_rand_index(true, pred, ignore=0) == pytest.approx(1.0)
    # Split object 1 across the two predicted ids: table t1: (p5 1, p7 1), t2: (p7 2);
    # index = 1, rows = 2, cols = C(1)+C(3) = 3, C(4) = 6: expected = 1, maximum = 2.5 -> 0.
    pred_split = np.array([[5, 5, 5, 7], [5, 5, 7, 7]])
    assert adjusted_rand_index(true, pred_split, ignore=0) == pytest.approx(0.0, abs=1e-12)


def test_degenerate_images() -> None:
    one = np.zeros((1, 4, 4), dtype=np.int64)
    # one cluster in both (denominator 0): identical partitions, defined as 1.0
    assert adjusted_rand_index(one, one + 3) == 1.0
    assert adjusted_rand_score(one.ravel(), one.ravel() + 3) == 1.0
    # every pixel its own cluster in both: also identical, 1.0
    singletons = np.arange(16).reshape(1, 4, 4)
    assert adjusted_rand_index(singletons, singletons[:, ::-1]) == 1.0
    # one cluster against several: 0.0
    assert adjusted_rand_index(one, singletons) == pytest.approx(0.0)
    # an image that is all background has no foreground ARI: skipped in the mean
    objects = np.array([[0, 1, 1, 2], [0, 1, 1, 2], [0, 0, 2, 2], [0, 0, 2, 2]])
    true = np.stack([np.zeros((4, 4), np.int64), objects])
    pred = np.stack([np.ones((4, 4), np.int64), objects + 1])
    per = adjusted_rand_index_per_image(true, pred, ignore=0)
    assert np.isnan(per[0]) and per[1] == pytest.approx(1.0)
    assert adjusted_rand_index(true, pred, ignore=0) == pytest.approx(1.0)
    with pytest.raises(ReprlError, match="ignored true label 0"):
        adjusted_rand_index(true[:1], pred[:1], ignore=0)


def test_per_image_loop_matches_vectorised(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    true = rng.integers(0, 6, size=(7, 6, 5))
    pred = rng.integers(0, 4, size=(7, 6, 5))
    true[2] = 0  # all background in one image
    vectorised = adjusted_rand_index_per_image(true, pred, ignore=0)
    monkeypatch.setattr(segmentation, "_MAX_TABLE", 0)
    looped = adjusted_rand_index_per_image(true, pred, ignore=0)
    np.testing.assert_allclose(looped, vectorised, equal_nan=True)


def test_accepts_torch_tensors() -> None:
    rng = np.random.default_rng(4)
    true = rng.integers(0, 3, size=(2, 5, 5))
    pred = rng.integers(0, 3, size=(2, 5, 5))
    want = adjusted_rand_index(true, pred)
    assert adjusted_rand_index(torch.from_numpy(true), torch.from_numpy(pred)) == want


@pytest.mark.parametrize(
    ("true", "pred", "match"),
    [
        (np.zeros((2, 4, 4), int), np.zeros((2, 4, 5), int), r"same shape, got \(2, 4, 4\)"),
        (np.zeros(16, int), np.zeros(16, int), r"\(H, W\) or \(N, H, W\), got shape \(16,\)"),
        (np.zeros((4, 4)), np.zeros((4, 4), int), "true_ids: expected integer labels"),
    ],
)
def test_rejects_bad_label_maps(true: np.ndarray, pred: np.ndarray, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        adjusted_rand_index(true, pred)


def test_masks_to_ids() -> None:
    masks = torch.zeros(2, 3, 1, 2, 2)
    masks[0, 0, 0] = torch.tensor([[0.6, 0.2], [0.1, 0.5]])
    masks[0, 1, 0] = torch.tensor([[0.3, 0.7], [0.1, 0.5]])  # ties at (1, 1) go to slot 0
    masks[0, 2, 0] = 1 - masks[0, 0, 0] - masks[0, 1, 0]
    masks[1, 2] = 1.0
    ids = masks_to_ids(masks)
    assert ids.dtype == np.int64 and ids.shape == (2, 2, 2)
    np.testing.assert_array_equal(ids[0], [[0, 1], [2, 0]])
    np.testing.assert_array_equal(ids[1], 2)
    np.testing.assert_array_equal(masks_to_ids(masks[:, :, 0].numpy()), ids)  # (B, K, H, W)
    with pytest.raises(ReprlError, match=r"got shape \(2, 3, 2, 2, 2\)"):
        masks_to_ids(np.zeros((2, 3, 2, 2, 2)))
    with pytest.raises(ReprlError, match=r"got shape \(3, 2, 2\)"):
        masks_to_ids(np.zeros((3, 2, 2)))
