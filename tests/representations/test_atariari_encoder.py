"""The AtariARI encoder as an architecture of reprl's conv family (representations/blocks.py):
its layers and shapes as in the paper's NatureCNN, selectable by every method of the family,
and clear errors naming the expected and the given shape."""

import pytest
import torch

from envs.errors import ReprlError
from representations import make_representation
from representations.blocks import ConvDecoder, ConvEncoder
from representations.st_dim import ATARIARI_CONFIG

FULL = (1, 210, 160)


def test_layers_and_shapes_are_the_papers() -> None:
    enc = ConvEncoder(FULL, None, None, "atariari")
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    geometry = [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs]
    assert geometry == [(32, 8, 4, 0), (64, 4, 2, 0), (128, 4, 2, 0), (64, 3, 1, 0)]
    # sizes worked out by hand: floor((210 - 8) / 4) + 1 = 51, ... down to 9 x 6
    assert enc.feature_shapes == [(32, 51, 39), (64, 24, 18), (128, 11, 8), (64, 9, 6)]
    assert enc.fc is None and enc.out_dim == 64 * 9 * 6  # the method's head is their Linear
    assert enc(torch.rand(2, *FULL)).shape == (2, 3456)


@pytest.mark.parametrize("method", ["st_dim", "beta_vae", "cpc", "supervised", "atc"])
def test_every_method_of_the_family_encodes_full_frames_to_256(method: str) -> None:
    model = make_representation(
        method, input_shape=list(FULL), latent_dim=256, architecture="atariari"
    ).eval()
    assert model.config["architecture"] == "atariari"
    with torch.no_grad():
        z = model.encode(torch.rand(3, *FULL))
    assert z.shape == (3, 256)


def test_st_dim_local_features_are_the_third_convolution() -> None:
    model = make_representation("st_dim", **ATARIARI_CONFIG)
    assert model.local_shape == (128, 11, 8)  # their f5 = main[:6]
    loss, logs = model.loss({"obs": torch.rand(4, *FULL), "next_obs": torch.rand(4, *FULL)})
    assert torch.isfinite(loss) and logs["chance"] == 0.25


def test_the_vae_decoder_mirrors_it_back_to_full_frames() -> None:
    dec = ConvDecoder(FULL, 256, None, None, "atariari")
    assert dec(torch.zeros(2, 256)).shape == (2, *FULL)
    vae = make_representation(
        "beta_vae", input_shape=list(FULL), latent_dim=256, beta=1.0, architecture="atariari"
    )
    assert vae.decode(torch.zeros(1, 256)).shape == (1, *FULL)


def test_a_64x64_frame_is_refused_naming_both_shapes() -> None:
    enc = ConvEncoder(FULL, None, None, "atariari")
    with pytest.raises(
        ReprlError, match=r"expected input of shape \(B, 1, 210, 160\), got \(2, 1, 64, 64\)"
    ):
        enc(torch.rand(2, 1, 64, 64))
    with pytest.raises(ReprlError, match=r"made for full-size \(1, 210, 160\).*got \(1, 64, 64\)"):
        make_representation("st_dim", input_shape=[1, 64, 64], architecture="atariari")
    with pytest.raises(ReprlError, match="architecture: expected one of"):
        ConvEncoder((1, 64, 64), architecture="nature")
    with pytest.raises(ReprlError, match="4 convolutions, got 3 channels"):
        ConvEncoder(FULL, (32, 64, 64), None, "atariari")


def test_default_models_keep_their_checkpoint_config() -> None:
    """The field is left out while default: headers (and content keys) of old models stay."""
    model = make_representation("st_dim")
    assert "architecture" not in model.config
    assert model.config["channels"] == [32, 32, 64, 64] and model.config["hidden_dim"] == 256
    again = make_representation("st_dim", **model.config)
    assert again.config == model.config
