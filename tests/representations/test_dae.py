"""The denoising autoencoder's bottleneck normalisation: the cure of its mean-image plateau."""

from __future__ import annotations

import torch

from representations import DenoisingAutoencoder, load
from representations.dae import occlude

SMALL = {"input_shape": (1, 16, 16), "channels": (8, 8, 16, 16), "hidden_dim": 32}


def _scenes(n: int, seed: int) -> torch.Tensor:
    """``(n, 1, 16, 16)`` frames like Breakout's: a static wall and one moving 2x2 ball."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 16, 16)
    x[:, :, :4] = 0.6
    rows = torch.randint(5, 14, (n,), generator=g)
    cols = torch.randint(0, 14, (n,), generator=g)
    for i in range(n):
        x[i, 0, rows[i] : rows[i] + 2, cols[i] : cols[i] + 2] = 1.0
    return x


def test_default_keeps_the_old_state_dict_and_norm_round_trips(tmp_path) -> None:
    assert not any("code_norm" in k for k in DenoisingAutoencoder(**SMALL).state_dict())
    dae = DenoisingAutoencoder(latent_dim=4, bottleneck_norm=True, **SMALL)
    assert {"code_norm.running_mean", "code_norm.running_var"} <= set(dae.state_dict())
    dae.loss({"obs": _scenes(8, 0)})
    dae.save(tmp_path / "d.safetensors")
    back = load(tmp_path / "d.safetensors")
    torch.testing.assert_close(back.code_norm.running_mean, dae.code_norm.running_mean)
    assert back.config["bottleneck_norm"] is True


def test_normalised_code_is_deterministic_and_what_the_decoder_sees() -> None:
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=4, num_masks=0, bottleneck_norm=True, **SMALL)
    for s in range(3):
        dae.loss({"obs": _scenes(16, s)})  # moves the running statistics
    x = _scenes(5, 7)
    z_train = dae.encode(x)
    dae.eval()
    z_eval = dae.encode(x)
    torch.testing.assert_close(z_train, z_eval)  # running statistics in either mode
    raw = dae.bottleneck(dae.encoder(x))
    norm = dae.code_norm
    expected = (raw - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
    torch.testing.assert_close(z_eval, expected)
    assert dae.encode(x[:1]).shape == (1, 4)  # one frame: no batch statistics needed


def _trained(bottleneck_norm: bool) -> tuple[float, float, float]:
    """(squared error, the mean frame's, reconstruction variance over frames) after 500 steps."""
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=8, num_masks=0, bottleneck_norm=bottleneck_norm, **SMALL)
    opt = torch.optim.Adam(dae.parameters(), lr=2e-3)
    for step in range(500):
        total, _ = dae.loss({"obs": _scenes(32, step)})
        opt.zero_grad()
        total.backward()
        opt.step()
    dae.eval()
    x = _scenes(256, 999)
    with torch.no_grad():
        rec = dae.decode(dae.encode(x))
    n = x.shape[0]
    sse = float((rec - x).pow(2).sum()) / n
    mean_sse = float((x.mean(dim=0) - x).pow(2).sum()) / n
    return sse, mean_sse, float(rec.var(dim=0).sum())


def test_bottleneck_norm_leaves_the_mean_image_plateau() -> None:
    # A static wall and a 2x2 ball: the code barely depends on the frame, so without the
    # normalisation the decoder draws the mean frame; with it the ball is drawn.
    sse, mean_sse, var = _trained(bottleneck_norm=False)
    assert sse >= 0.99 * mean_sse and var < 0.01
    sse, mean_sse, var = _trained(bottleneck_norm=True)
    assert sse < 0.9 * mean_sse and var > 0.3


def test_the_atariari_architecture_reconstructs_full_frames() -> None:
    # beta-VAE_DAE's perceptual net on AtariARI's 210 x 160 grayscale frames
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(input_shape=(1, 210, 160), architecture="atariari")
    assert dae.config["channels"] == [32, 64, 128, 64] and dae.config["architecture"] == "atariari"
    x = torch.rand(2, 1, 210, 160)
    with torch.no_grad():
        assert dae.decode(dae.encode(x)).shape == x.shape
        assert dae.features(x, 2).shape == (2, 64, 24, 18)  # conv2: 64@4x4/2 of conv1's 51x39
    loss, logs = dae.loss({"obs": x})
    loss.backward()
    assert all(p.grad is not None for p in dae.parameters())
    assert logs["recon"] > 0


def test_encode_standardises_with_the_clean_frames_statistics() -> None:
    # The running statistics come from the clean frames' codes (encode's input), not from the
    # occluded training batches, whose codes the occluders dominate.
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=4, bottleneck_norm=True, mask_size=(0.3, 0.6), **SMALL)
    x = _scenes(64, 3)
    with torch.no_grad():
        for _ in range(150):  # no optimiser step: the statistics settle at this batch's
            dae.loss({"obs": x})
        clean = dae.bottleneck(dae.encoder(x))
        noisy = dae.bottleneck(dae.encoder(occlude(x, num_masks=3, mask_size=(0.3, 0.6))[0]))
    norm = dae.code_norm
    torch.testing.assert_close(norm.running_mean, clean.mean(0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(norm.running_var, clean.var(0), atol=1e-6, rtol=1e-4)
    assert not torch.allclose(noisy.var(0), clean.var(0), rtol=0.2)  # the test can tell them apart
    want = (clean - clean.mean(0)) / torch.sqrt(clean.var(0) + norm.eps)
    torch.testing.assert_close(dae.encode(x), want, atol=3e-3, rtol=1e-2)


def test_the_decoder_trains_on_the_occluded_batch_standardised_by_itself() -> None:
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=4, bottleneck_norm=True, **SMALL)
    x = _scenes(16, 1)
    g = torch.Generator().manual_seed(5)
    noisy, _ = occlude(x, num_masks=dae.num_masks, mask_size=dae.mask_size, generator=g)
    code = dae.bottleneck(dae.encoder(noisy))
    standard = (code - code.mean(0)) / torch.sqrt(code.var(0, unbiased=False) + 1e-5)
    want = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            dae.decoder(standard), x, reduction="sum"
        )
        / x.shape[0]
    )
    got, _ = dae.loss({"obs": x}, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, want)
    dae.eval()  # eval mode: the same batch statistics, the running ones untouched
    before = dae.code_norm.running_mean.clone()
    got, _ = dae.loss({"obs": x}, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(dae.code_norm.running_mean, before)
