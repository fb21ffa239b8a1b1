"""The supervised upper bound and the random-init baseline (``steps: 0``): the pretraining loop
feeds the factors, the trained code carries them far better than an untrained one."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import representations as R
from envs.errors import ReprlError
from envs.exploration import collect
from envs.storage.dataset import FrameDataset
from representations.pretrain import PretrainConfig, factor_targets, pretrain

TINY = {"latent_dim": 8, "channels": [8, 8, 16, 16], "hidden_dim": 32}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sup") / "d.h5"
    collect("reprl/BreakoutJuggling-v0", 1200, out, num_envs=8, progress=False)
    return out


def test_factor_targets_are_standardised_where_defined(data: Path) -> None:
    ds = FrameDataset(data)
    t = factor_targets(ds)
    assert "paddle_x" in t.columns and "ball_x[1]" in t.columns
    assert t.values.shape == t.mask.shape == (len(ds), len(t.columns))
    for j in range(len(t.columns)):
        col = t.values[t.mask[:, j], j]
        assert abs(col.mean()) < 1e-4 and abs(col.std() - 1) < 1e-3
        assert (t.values[~t.mask[:, j], j] == 0).all()
    # an absent ball (x = -1) is masked, not scored as a position
    raw = ds.factors(["ball_x"])["ball_x"]
    np.testing.assert_array_equal(t.mask[:, t.columns.index("ball_x[1]")], raw[:, 1] != -1)
    with pytest.raises(ReprlError, match="targets: expected factor columns"):
        factor_targets(ds, ["brick_colour"])
    ds.close()


def test_iter_batches_index_points_at_the_frames(data: Path) -> None:
    ds = FrameDataset(data)
    for frames, index in ds.iter_batches(64, seed=3, return_index=True):
        np.testing.assert_array_equal(
            frames, ds.frames(np.sort(index))[np.argsort(np.argsort(index))]
        )
    ds.close()


def test_supervised_learns_the_factors_and_random_init_is_a_baseline(
    data: Path, tmp_path: Path
) -> None:
    base = dict(dataset=str(data), batch_size=32, log_every=50, lr=2e-3)
    sup = pretrain(
        PretrainConfig(method="supervised", model=TINY, out=str(tmp_path / "s"), steps=300, **base),
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an untrained model is not reported as collapsed
        rnd = pretrain(
            PretrainConfig(
                method="supervised", model=TINY, out=str(tmp_path / "r"), steps=0, **base
            ),
            progress=False,
        )
    trained, untrained = R.load(sup), R.load(rnd)
    assert trained.targets == untrained.targets and "paddle_x" in trained.targets
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == ""
    ds = FrameDataset(data)
    t = factor_targets(ds, trained.targets)
    x = torch.from_numpy(ds.frames(slice(0, 600)))

    def mse(model: R.Representation, column: str | None = None) -> float:
        model.eval()
        with torch.no_grad():
            pred = model.readout(model.encode(model.to_model_input(x)))
        err = (pred - torch.from_numpy(t.values[:600])) ** 2
        m = torch.from_numpy(t.mask[:600])
        if column is not None:
            j = t.columns.index(column)
            err, m = err[:, j], m[:, j]
        return float(err[m].mean())

    assert mse(trained) < 0.9 * mse(untrained)
    assert mse(trained, "paddle_x") < 0.3 * mse(untrained, "paddle_x")
    ds.close()


def test_supervised_refuses_a_batch_without_factors() -> None:
    model = R.make_representation("supervised", **TINY)
    with pytest.raises(ReprlError, match="supervised trains on frames with their factors"):
        model.loss({"obs": torch.rand(2, 3, 64, 64)})
    with pytest.raises(ReprlError, match="targets: expected a non-empty list"):
        R.make_representation("supervised", targets=[])


# --- objective: classification (AtariARI's supervised encoder) ---------------------------------


def test_classification_loss_by_hand() -> None:
    """Zero read-out weights: uniform logits, cross-entropy log(K) on every defined entry; a
    bias on one column's class 0 changes that column's terms as worked out here."""
    model = R.make_representation(
        "supervised", objective="classification", targets=["a", "b"], num_classes=4, **TINY
    )
    nn = torch.nn
    nn.init.zeros_(model.readout.weight)
    nn.init.zeros_(model.readout.bias)
    obs = torch.rand(3, 3, 64, 64)
    labels = torch.tensor([[0, 3], [1, 2], [2, 9]])  # 9: out of range but masked
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    batch = {"obs": obs, "targets": torch.zeros(3, 2), "mask": mask, "labels": labels}
    loss, info = model.loss(batch)
    assert float(loss) == pytest.approx(np.log(4), rel=1e-6)
    with torch.no_grad():
        model.readout.bias[0 * 4 + 0] = 1.0  # column "a": logits (1, 0, 0, 0) on every row
    loss, _ = model.loss(batch)
    z = np.log(np.e + 3)  # column a: -log p = z - 1 for label 0 (row 0), z for 1 and 2
    assert float(loss) == pytest.approx(((z - 1) + 2 * z + 2 * np.log(4)) / 5, rel=1e-6)
    assert 0.0 <= info["accuracy"] <= 1.0


def test_classification_refuses_labels_it_cannot_score() -> None:
    model = R.make_representation(
        "supervised", objective="classification", targets=["a"], num_classes=4, **TINY
    )
    obs = torch.rand(2, 3, 64, 64)
    batch = {"obs": obs, "targets": torch.zeros(2, 1), "mask": torch.ones(2, 1, dtype=bool)}
    with pytest.raises(ReprlError, match="expected batch key 'labels'"):
        model.loss(batch)
    with pytest.raises(ReprlError, match=r"labels of 'a': expected class ids in \[0, 4\)"):
        model.loss({**batch, "labels": torch.tensor([[1], [4]])})
    with pytest.raises(ReprlError, match="objective: expected one of"):
        R.make_representation("supervised", objective="ranking")
    with pytest.raises(ReprlError, match="num_classes: expected an integer >= 2"):
        R.make_representation("supervised", objective="classification", num_classes=1)
    # the default's checkpoint header is unchanged: no objective, no num_classes
    assert {"objective", "num_classes"}.isdisjoint(R.make_representation("supervised").config)


def test_classification_learns_from_the_recorded_values(data: Path, tmp_path: Path) -> None:
    """The pretraining loop feeds each column's recorded values as class ids; the heads learn
    the paddle far above chance, and a save/load keeps their predictions."""
    cfg = PretrainConfig(
        method="supervised",
        model={**TINY, "objective": "classification", "targets": ["paddle_x", "ball_y[0]"]},
        dataset=str(data),
        out=str(tmp_path / "c"),
        steps=300,
        batch_size=32,
        log_every=50,
        lr=2e-3,
    )
    model = R.load(pretrain(cfg, progress=False))
    ds = FrameDataset(data)
    raw = factor_targets(ds, model.targets).raw[:600]
    x = torch.from_numpy(ds.frames(slice(0, 600)))
    ds.close()
    model.eval()
    with torch.no_grad():
        logits = model.readout(model.encode(model.to_model_input(x))).view(600, 2, 256)
    pred = logits.argmax(-1).numpy()
    paddle = raw[:, 0].astype(np.int64)
    chance = np.bincount(paddle).max() / len(paddle)
    assert (pred[:, 0] == paddle).mean() > max(2 * chance, 0.2)  # exact paddle x, of 256
    reloaded = R.load(tmp_path / "c" / "encoder.safetensors")
    reloaded.eval()
    with torch.no_grad():
        again = reloaded.readout(reloaded.encode(reloaded.to_model_input(x)))
    torch.testing.assert_close(again.view(600, 2, 256), logits, rtol=0, atol=0)
