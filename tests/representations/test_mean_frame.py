"""The encoders' ``mean_frame`` input centring (representations/blocks.py ``MeanFrame``), fitted
by the pretraining loop on the dataset's mean image, and the AtariARI architecture's own
initialisation (orthogonal, gain sqrt(2), zero biases, as their ``init_``)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import representations as R
from envs.errors import ReprlError
from envs.exploration import collect
from envs.storage.dataset import FrameDataset
from representations import make_representation
from representations.blocks import ConvEncoder, MeanFrame
from representations.pretrain import PretrainConfig, fit_mean_frames, pretrain

FAMILY = ["beta_vae", "cpc", "supervised", "st_dim", "atc", "dae"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mean") / "d.h5"
    collect("reprl/BreakoutStandard-v0", 300, out, num_envs=4, progress=False)
    return out


def dataset_mean(path: Path) -> torch.Tensor:
    """The mean image of every frame, ``(C, H, W)`` in [0, 1], computed with numpy."""
    with closing(FrameDataset(path)) as ds:
        frames = ds.frames(np.arange(len(ds))).astype(np.float64) / 255.0
    return torch.from_numpy(frames.mean(axis=0).transpose(2, 0, 1)).float()


def test_the_encoder_sees_the_frame_minus_the_fitted_mean() -> None:
    torch.manual_seed(0)
    centred = ConvEncoder((3, 64, 64), mean_frame=True).eval()
    plain = ConvEncoder((3, 64, 64)).eval()
    plain.load_state_dict({k: v for k, v in centred.state_dict().items() if "center" not in k})
    mean = torch.rand(3, 64, 64)
    x = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        before = centred(x)
        torch.testing.assert_close(before, plain(x))  # unfitted: the identity
        centred.center.fit(mean)
        torch.testing.assert_close(centred(x), plain(x - mean))
        torch.testing.assert_close(
            centred.conv_features(x, 2), plain.conv_features(x - mean, 2)
        )  # ST-DIM's local features see the centred frame too


def test_a_mean_of_another_shape_or_range_is_refused() -> None:
    center = MeanFrame((1, 4, 4))
    with pytest.raises(ReprlError, match=r"expected shape \(1, 4, 4\), got \(3, 4, 4\)"):
        center.fit(torch.zeros(3, 4, 4))
    with pytest.raises(ReprlError, match=r"expected values in \[0, 1\]"):
        center.fit(torch.full((1, 4, 4), 2.0))


@pytest.mark.parametrize("method", FAMILY)
def test_the_option_is_off_by_default_and_stored_when_on(method: str) -> None:
    plain = make_representation(method)
    assert "mean_frame" not in plain.config  # earlier checkpoints' headers stay the same
    assert not [k for k in plain.state_dict() if "center" in k]
    centred = make_representation(method, mean_frame=True)
    assert centred.config["mean_frame"] is True
    assert [k for k in centred.state_dict() if k.endswith("center.mean")]
    with pytest.raises(ReprlError, match="mean_frame: expected true or false, got 'yes'"):
        make_representation(method, mean_frame="yes")


def test_cpc_refuses_a_mean_frame_for_its_resnet_encoder() -> None:
    with pytest.raises(ReprlError, match="mean_frame: only for encoder 'conv'"):
        make_representation("cpc", encoder="resnet", mean_frame=True)


def test_fit_mean_frames_sets_every_copy_to_the_datasets_mean(data: Path) -> None:
    model = make_representation("atc", mean_frame=True)
    with closing(FrameDataset(data)) as ds:
        assert fit_mean_frames(model, ds) == len(ds)
        assert fit_mean_frames(make_representation("atc"), ds) == 0  # nothing to fit
    expected = dataset_mean(data)
    for name in ("online", "target"):  # the momentum copy sees the same input
        center = getattr(model, name)[0].center
        torch.testing.assert_close(center.mean, expected, atol=1e-6, rtol=0)


def test_fit_mean_frames_leaves_a_nested_representations_own_mean(data: Path) -> None:
    # beta-VAE_DAE's frozen DAE was fitted on its own training data: refitting it would change
    # the perceptual space the beta-VAE is measured in
    dae = make_representation("dae", mean_frame=True)
    dae_mean = torch.full((3, 64, 64), 0.25)
    dae.encoder.center.fit(dae_mean)
    model = make_representation("beta_vae_dae", dae=dae, mean_frame=True)
    with closing(FrameDataset(data)) as ds:
        assert fit_mean_frames(model, ds) == len(ds)
    torch.testing.assert_close(model.encoder.center.mean, dataset_mean(data), atol=1e-6, rtol=0)
    assert torch.equal(model.dae.encoder.center.mean, dae_mean)


@pytest.mark.parametrize("steps", [0, 2])
def test_pretraining_fits_the_mean_and_the_checkpoint_keeps_it(
    data: Path, tmp_path: Path, steps: int
) -> None:
    cfg = PretrainConfig(
        method="st_dim",
        model={"latent_dim": 8, "mean_frame": True},
        dataset=str(data),
        out=str(tmp_path / "run"),
        steps=steps,
        batch_size=8,
    )
    model = R.load(pretrain(cfg, progress=False), expected_method="st_dim").eval()
    # a buffer: the optimiser never moves it, and the untrained baseline (steps 0) has it too
    torch.testing.assert_close(model.encoder.center.mean, dataset_mean(data), atol=1e-6, rtol=0)
    with closing(FrameDataset(data)) as ds:
        x = model.to_model_input(torch.from_numpy(ds.frames(np.arange(6))))
    again = R.load(tmp_path / "run" / "encoder.safetensors").eval()
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), again.encode(x), atol=0, rtol=0)


@pytest.mark.parametrize(
    ("method", "head"), [("cpc", "to_latent"), ("supervised", "code"), ("dae", "bottleneck")]
)
def test_the_atariari_architecture_starts_as_the_papers_init(method: str, head: str) -> None:
    torch.manual_seed(0)
    model = make_representation(
        method, input_shape=[1, 210, 160], latent_dim=256, architecture="atariari"
    )
    w = getattr(model, head).weight  # 256 x 3456: their final Linear, rows orthogonal
    torch.testing.assert_close(w @ w.T, 2.0 * torch.eye(256), atol=1e-3, rtol=0)
    layers = [m for m in model.encoder.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(m.bias.abs().max().item() == 0 for m in layers)
    first = model.encoder.convs[0].weight.detach().flatten(1)  # 32 x 64
    torch.testing.assert_close(first @ first.T, 2.0 * torch.eye(32), atol=1e-4, rtol=0)
    # the DARLA architecture keeps torch's default (uniform weights, non-zero biases)
    darla = make_representation(method)
    assert darla.encoder.convs[0].bias.abs().max().item() > 0
