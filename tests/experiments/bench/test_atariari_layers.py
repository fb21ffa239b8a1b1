"""``experiments.bench.atariari_layers``: the features it probes are the encoder's own, cut to
the frame box asked for."""

import numpy as np
import pytest
import torch

import representations
from envs.errors import ReprlError
from experiments.bench.atariari_layers import features


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return representations.make_representation(
        "st_dim", input_shape=(1, 210, 160), latent_dim=16, architecture="atariari"
    )


def test_every_layer_and_band_is_the_encoders_own(model) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (6, 210, 160, 1), dtype=np.uint8)
    out = features(model, frames, rows=(189, 193), cols=(0, 160), max_features=20_000, batch=4)
    shapes = model.encoder.feature_shapes
    x = model.to_model_input(torch.from_numpy(frames))
    with torch.inference_mode():
        np.testing.assert_allclose(out["code"], model.encode(x).numpy(), rtol=1e-5, atol=1e-6)
        for k, (c, h, w) in enumerate(shapes, start=1):
            fmap = model.encoder.conv_features(x, k).numpy()
            if c * h * w <= 20_000:
                np.testing.assert_allclose(out[f"conv{k}"], fmap.reshape(6, -1), atol=1e-6)
            else:
                assert f"conv{k}" not in out  # too big to probe
            # rows 189-193 of 210: the map's rows floor(189 h / 210) .. ceil(193 h / 210)
            top, bottom = (189 * h) // 210, min(h, -(-193 * h // 210))
            band = fmap[:, :, top:bottom].reshape(6, -1)
            np.testing.assert_allclose(out[f"conv{k}_band"], band, atol=1e-6)
    pixels = frames[:, 189:193].reshape(6, -1) / 255.0
    np.testing.assert_allclose(out["pixels_band"], pixels - pixels.mean(0), atol=1e-6)  # centred


def test_a_box_of_columns(model) -> None:
    frames = np.zeros((2, 210, 160, 1), np.uint8)
    out = features(model, frames, rows=(34, 194), cols=(140, 144), max_features=0)
    assert out["pixels_band"].shape == (2, 160 * 4)
    assert set(out) == {"code", "pixels_band"} | {f"conv{k}_band" for k in range(1, 5)}


def test_an_encoder_without_convolutions_is_refused() -> None:
    with pytest.raises(ReprlError, match="expected an encoder with convolutions"):
        features(object(), np.zeros((1, 8, 8, 1), np.uint8), (0, 8), (0, 8), 10)
