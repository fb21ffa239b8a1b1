"""beta-VAE / beta-VAE_DAE losses, the denoising autoencoder's occlusion noise, conv blocks."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from envs.errors import ReprlError
from representations import (
    BetaVAE,
    BetaVAEDAE,
    DenoisingAutoencoder,
    gaussian_kl,
    load,
    make_representation,
    occlude,
    occlusion_masks,
)
from representations.beta_vae import LOGVAR_BOUND
from representations.blocks import ConvDecoder, ConvEncoder, conv_feature_shapes
from tests.representations.config_round_trip import assert_config_round_trips

SMALL = {"input_shape": (1, 16, 16), "channels": (8, 8, 16, 16), "hidden_dim": 32}


def _shapes_batch(n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    """``(n, 1, size, size)`` images of one bright square each, in ``[0, 1]``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        r, c = torch.randint(0, size - 4, (2,), generator=g).tolist()
        x[i, 0, r : r + 4, c : c + 4] = 1.0
    return x


def test_kl_zero_at_prior() -> None:
    zeros = torch.zeros(2, 5)
    assert torch.equal(gaussian_kl(zeros, zeros), torch.zeros(2))


def test_kl_hand_worked() -> None:
    # dim 0: mu=1, var=1 -> 0.5 * (1 + 1 - 1 - 0) = 0.5
    # dim 1: mu=0, var=2 -> 0.5 * (0 + 2 - 1 - ln 2) = 0.5 - 0.5 ln 2
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    expected = 0.5 + 0.5 - 0.5 * math.log(2.0)
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(1, 2), torch.ones(1, 2))
    closed = torch.distributions.kl_divergence(q, p).sum(dim=1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), closed)


def test_loss_kl_matches_posterior() -> None:
    torch.manual_seed(0)
    vae = BetaVAE(latent_dim=4, beta=2.5, **SMALL)
    x = _shapes_batch(4)
    _, logs = vae.loss({"obs": x}, generator=torch.Generator().manual_seed(1))
    mu, logvar = vae.posterior(x)
    assert logs["kl"] == pytest.approx(gaussian_kl(mu, logvar).mean().item(), rel=1e-5)
    assert logs["loss"] == pytest.approx(logs["recon"] + 2.5 * logs["kl"], rel=1e-5)


@pytest.mark.parametrize("raw", [1e4, -1e4, 1e30, -1e30])
def test_extreme_logvar_stays_finite(raw: float) -> None:
    torch.manual_seed(0)
    vae = BetaVAE(latent_dim=4, **SMALL)
    with torch.no_grad():
        vae.head.bias[vae.latent_dim :] = raw  # the logvar half of the head
    x = _shapes_batch(4)
    _, logvar = vae.posterior(x)
    assert logvar.abs().max() <= LOGVAR_BOUND
    total, _ = vae.loss({"obs": x})
    assert torch.isfinite(total)
    total.backward()
    for p in vae.parameters():
        assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_optimisation_reduces_loss(likelihood: str) -> None:
    torch.manual_seed(0)
    vae = BetaVAE(latent_dim=4, beta=1.0, likelihood=likelihood, **SMALL)
    x = _shapes_batch(8)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)

    def evaluate() -> float:
        with torch.no_grad():
            return vae.loss({"obs": x}, generator=torch.Generator().manual_seed(123))[0].item()

    before = evaluate()
    for _ in range(40):
        opt.zero_grad()
        vae.loss({"obs": x})[0].backward()
        opt.step()
    after = evaluate()
    assert after < 0.8 * before, (before, after)


def test_decode_in_unit_range_and_encode_is_posterior_mean() -> None:
    vae = BetaVAE(latent_dim=4, **SMALL).eval()
    x = _shapes_batch(3)
    assert torch.equal(vae.encode(x), vae.posterior(x)[0])
    img = vae.decode(torch.randn(5, 4) * 100)
    assert img.shape == (5, 1, 16, 16) and img.min() >= 0 and img.max() <= 1
    assert vae.reconstruct(x).shape == x.shape
    with pytest.raises(ValueError, match=r"expected \(B, 4\), got \(5, 3\)"):
        vae.decode(torch.zeros(5, 3))


def test_dae_reconstruction_uses_frozen_dae() -> None:
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=8, **SMALL)
    vae = BetaVAE(latent_dim=4, reconstruction="dae", dae=dae, **SMALL)
    assert vae.dae is not dae  # a copy: the caller's DAE stays trainable
    assert all(p.requires_grad for p in dae.parameters())
    vae.requires_grad_(True)  # e.g. a fine-tuning wrapper unfreezing "everything"
    assert all(not p.requires_grad for p in vae.dae.parameters())
    frozen = {k: v.clone() for k, v in vae.dae.state_dict().items()}
    vae_before = {k: v.clone() for k, v in vae.state_dict().items() if not k.startswith("dae.")}

    x = _shapes_batch(4)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    vae.train()
    assert not vae.dae.training
    total, logs = vae.loss({"obs": x})
    total.backward()
    opt.step()

    for k, v in vae.dae.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    changed = [k for k, v in vae.state_dict().items() if k in vae_before]
    assert any(not torch.equal(vae.state_dict()[k], vae_before[k]) for k in changed)
    # The reconstruction term is the squared distance in the DAE's feature space.
    with torch.no_grad():
        mu, logvar = vae.posterior(x)
        g = torch.Generator().manual_seed(5)
        _, logs = vae.loss({"obs": x}, generator=g)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
        x_hat = vae.decode(mu + eps * torch.exp(0.5 * logvar))
        recon = (vae.dae.features(x_hat) - vae.dae.features(x)).pow(2).sum() / 4
    assert logs["recon"] == pytest.approx(recon.item(), rel=1e-5)


def test_dae_from_checkpoint_path_and_registry_name(tmp_path) -> None:
    dae = DenoisingAutoencoder(latent_dim=8, **SMALL)
    path = tmp_path / "dae.safetensors"
    dae.save(path)
    vae = make_representation("beta_vae_dae", latent_dim=4, dae=str(path), **SMALL)
    assert isinstance(vae, BetaVAEDAE) and vae.reconstruction == "dae"
    for k, v in dae.state_dict().items():
        assert torch.equal(vae.dae.state_dict()[k], v)
    with pytest.raises(ValueError, match="expected reconstruction='dae', got 'pixel'"):
        make_representation("beta_vae_dae", reconstruction="pixel")
    with pytest.raises(ValueError, match="only used with reconstruction='dae'"):
        BetaVAE(dae=dae)
    with pytest.raises(ValueError, match="dae input_spec"):
        BetaVAE(reconstruction="dae", dae=dae)  # 16x16 grey DAE for a 64x64 RGB VAE


def test_occlusion_zeros_pixels_and_is_reproducible() -> None:
    x = torch.rand(6, 3, 32, 32) * 0.5 + 0.5  # no zeros before occlusion
    noise = {"num_masks": 2, "mask_size": (0.2, 0.4)}
    a, mask_a = occlude(x, **noise, generator=torch.Generator().manual_seed(7))
    b, mask_b = occlude(x, **noise, generator=torch.Generator().manual_seed(7))
    _, mask_c = occlude(x, **noise, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and torch.equal(mask_a, mask_b)
    assert not torch.equal(mask_a, mask_c)
    assert mask_a.shape == (6, 32, 32)
    assert mask_a.flatten(1).any(dim=1).all()  # every image has occluded pixels
    frac = mask_a.float().mean().item()
    assert 0.0 < frac < 0.5
    assert (a == 0).all(dim=1).eq(mask_a).all()  # zeros exactly where masked, all channels
    assert torch.equal(a[~mask_a.unsqueeze(1).expand_as(a)], x[~mask_a.unsqueeze(1).expand_as(x)])
    # each rectangle's side lies within the requested fraction of the image (6..13 of 32 px)
    single = occlusion_masks(50, 32, 32, num_masks=1, mask_size=(0.2, 0.4))
    rows = single.any(dim=2).sum(dim=1)
    cols = single.any(dim=1).sum(dim=1)
    assert rows.min() >= 6 and rows.max() <= 13 and cols.min() >= 6 and cols.max() <= 13
    assert not occlusion_masks(2, 8, 8, num_masks=0).any()


def test_dae_loss_reconstructs_clean_image() -> None:
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=8, num_masks=1, mask_size=(0.25, 0.5), **SMALL)
    x = _shapes_batch(4)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    t1, logs = dae.loss({"obs": x}, generator=g1)
    t2, _ = dae.loss({"obs": x}, generator=g2)
    assert torch.equal(t1, t2) and 0 < logs["occluded_frac"] < 1
    noisy, _ = occlude(
        x, num_masks=1, mask_size=(0.25, 0.5), generator=torch.Generator().manual_seed(3)
    )
    logits = dae.decoder(dae.encode(noisy))
    target = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 4
    torch.testing.assert_close(t1, target)  # target is the clean image, input the occluded one
    feats = dae.features(x)
    assert feats.shape == (4, *dae.feature_shape) == (4, 16, 1, 1)


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 84, 84), (3, 63, 50), (1, 16, 16)])
def test_blocks_sizes_from_dummy_pass(shape: tuple[int, int, int]) -> None:
    enc = ConvEncoder(shape)
    dec = ConvDecoder(shape, latent_dim=5)
    x = torch.rand(2, *shape)
    assert enc(x).shape == (2, 256)
    assert enc.conv_features(x).shape == (2, *enc.feature_shape)
    assert dec(torch.randn(2, 5)).shape == (2, *shape)
    assert conv_feature_shapes(shape)[-1] == enc.feature_shape
    with pytest.raises(ValueError, match="at least 16 x 16"):
        ConvEncoder((3, 15, 64))


def test_memory_format_does_not_change_results() -> None:
    torch.manual_seed(0)
    vae = BetaVAE(latent_dim=4, **SMALL).eval()
    assert vae.encoder.convs[0].weight.is_contiguous(memory_format=torch.channels_last)
    frames = torch.randint(0, 256, (3, 16, 16, 1), dtype=torch.uint8)
    x = vae.to_model_input(frames)
    want = vae.encode(x)
    torch.testing.assert_close(vae.encode(x.contiguous()), want, rtol=1e-5, atol=1e-5)
    vae.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(vae.encode(x), want, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(vae.loss({"obs": x})[0])


def _conv_features_by_hand(dae: DenoisingAutoencoder, x: torch.Tensor, layer: int) -> torch.Tensor:
    """The DAE's encoder run conv by conv (4x4, stride 2, padding 1, ReLU) up to ``layer``."""
    convs = [m for m in dae.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    h = x
    for conv in convs[:layer]:
        h = torch.relu(F.conv2d(h, conv.weight, conv.bias, stride=2, padding=1))
    return h


def test_dae_layer_selects_the_perceptual_space() -> None:
    """The reconstruction term is the squared feature distance at DAE conv ``dae_layer``."""
    small = {"input_shape": (3, 32, 32), "latent_dim": 4, "channels": (4, 4, 8, 8)}
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(hidden_dim=16, **small)
    vae = BetaVAEDAE(dae=dae, dae_layer=2, hidden_dim=16, **small)
    assert vae.config["dae_layer"] == 2
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    recon = {}
    for layer in (2, 3, None):
        vae.cfg = dataclasses.replace(vae.cfg, dae_layer=layer)  # same weights, other layer
        with torch.no_grad():
            _, terms = vae.loss({"obs": x}, generator=torch.Generator().manual_seed(7))
            mu, logvar = vae.posterior(x)
            eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(7))
            x_hat = vae.decode(mu + eps * torch.exp(0.5 * logvar))
            n = 4 if layer is None else layer
            diff = _conv_features_by_hand(dae, x_hat, n) - _conv_features_by_hand(dae, x, n)
        assert terms["recon"] == pytest.approx(diff.pow(2).sum().item() / 3, rel=1e-5), layer
        recon[layer] = terms["recon"]
    assert len({round(v, 6) for v in recon.values()}) == 3, recon  # the layer matters
    with pytest.raises(ValueError, match=r"dae_layer: expected 1\.\.4"):
        BetaVAEDAE(dae=dae, dae_layer=5, hidden_dim=16, **small)


def test_beta_vae_dae_is_a_beta_vae_with_dae_reconstruction() -> None:
    """One constructor: beta_vae_dae takes BetaVAE's arguments and records the same config."""
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=8, **SMALL)
    a = BetaVAEDAE(latent_dim=4, dae=dae, beta=2.0, **SMALL)
    b = BetaVAE(latent_dim=4, dae=dae, beta=2.0, reconstruction="dae", **SMALL)
    assert a.config == b.config and a.config["reconstruction"] == "dae"
    assert BetaVAEDAE(**a.config).config == a.config  # a checkpoint's config rebuilds it
    assert BetaVAE(**SMALL).reconstruction == "pixel"
    with pytest.raises(ReprlError, match="beta_vae_dae: expected reconstruction='dae'"):
        BetaVAEDAE(reconstruction="pixel", **SMALL)
    with pytest.raises(ReprlError, match=r"unknown config keys \['betta'\]"):
        make_representation("beta_vae_dae", betta=4)


def test_a_beta_vae_dae_checkpoint_of_0_1_0_loads_and_encodes_the_same() -> None:
    """Made on main at 0.1.0, when BetaVAEDAE repeated BetaVAE's parameters."""
    fixtures = Path(__file__).parent / "fixtures"
    model = load(fixtures / "beta_vae_dae_v0.1.0.st", expected_method="beta_vae_dae")
    assert isinstance(model, BetaVAEDAE) and model.dae_layer == 2
    expected = np.load(fixtures / "beta_vae_dae_v0.1.0_expected.npz")
    with torch.no_grad():
        z = model.encode(torch.as_tensor(expected["obs"]))
    np.testing.assert_allclose(z.numpy(), expected["latents"], rtol=1e-5, atol=1e-6)


# -- anti-collapse remedies: KL warm-up, free bits, normalised DAE features --------------------


def test_kl_warmup_weight_by_hand_and_counter() -> None:
    vae = BetaVAE(latent_dim=4, beta=2.0, kl_warmup_steps=4, **SMALL)
    # beta * min(1, t / 4): 0, 0.5, 1.0, 1.5, 2.0, then 2.0
    assert [vae.kl_weight(t) for t in (0, 1, 2, 3, 4, 10)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    x = _shapes_batch(4)
    weights = []
    for _ in range(3):
        _, logs = vae.loss({"obs": x}, generator=torch.Generator().manual_seed(0))
        weights.append(logs["kl_weight"])
        assert logs["loss"] == pytest.approx(logs["recon"] + logs["kl_weight"] * logs["kl"])
    assert weights == [0.0, 0.5, 1.0]
    assert int(vae.kl_step) == 3
    vae.eval()  # evaluation calls are not training steps
    _, logs = vae.loss({"obs": x})
    with torch.no_grad():
        vae.train()
        vae.loss({"obs": x})
    assert logs["kl_weight"] == 1.5 and int(vae.kl_step) == 3
    assert BetaVAE(latent_dim=4, beta=2.0, **SMALL).kl_weight(0) == 2.0  # no warm-up


def test_free_bits_gradient_is_zero_below_the_floor() -> None:
    vae = BetaVAE(latent_dim=2, free_bits=0.5, **SMALL)
    # latent 0: KL 0.5 * 0.1^2 = 0.005 < 0.5 (free); latent 1: 0.5 * 2^2 = 2 > 0.5
    mu = torch.tensor([[0.1, 2.0], [0.1, 2.0]], requires_grad=True)
    logvar = torch.zeros(2, 2, requires_grad=True)
    objective = vae.kl_objective(mu, logvar)
    assert objective.item() == pytest.approx(0.5 + 2.0)
    objective.backward()
    assert torch.equal(mu.grad[:, 0], torch.zeros(2)) and torch.equal(
        logvar.grad[:, 0], torch.zeros(2)
    )
    torch.testing.assert_close(mu.grad[:, 1], torch.tensor([1.0, 1.0]))  # d(mean mu^2 / 2)
    plain = BetaVAE(latent_dim=2, **SMALL).kl_objective(mu, logvar)
    assert plain.item() == pytest.approx(gaussian_kl(mu, logvar).mean().item())
    x = _shapes_batch(4)
    _, logs = vae.loss({"obs": x})
    assert logs["kl_objective"] >= 2 * 0.5 and logs["kl"] < logs["kl_objective"]


def _scaled_dae(scale: float) -> DenoisingAutoencoder:
    """A fresh DAE whose last convolution's output is multiplied by ``scale`` (ReLU: exact)."""
    torch.manual_seed(3)
    dae = DenoisingAutoencoder(latent_dim=8, **SMALL)
    last = [m for m in dae.encoder.convs if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(scale)
        last.bias.mul_(scale)
    return dae


def test_normalized_features_count_in_units_of_their_variance() -> None:
    x = _shapes_batch(8)
    recons = []
    for scale in (1.0, 1e-2):
        torch.manual_seed(0)
        vae = BetaVAE(reconstruction="dae", dae=_scaled_dae(scale), latent_dim=4, **SMALL)
        _, raw = vae.loss({"obs": x}, generator=torch.Generator().manual_seed(1))
        torch.manual_seed(0)
        vae = BetaVAE(
            reconstruction="dae",
            dae=_scaled_dae(scale),
            latent_dim=4,
            normalize_features=True,
            **SMALL,
        )
        _, logs = vae.loss({"obs": x}, generator=torch.Generator().manual_seed(1))
        var = vae.dae.features(x).var(dim=0).mean().item()
        assert logs["feature_var"] == pytest.approx(var, rel=1e-5)  # the first batch sets it
        assert logs["recon"] == pytest.approx(raw["recon"] / var, rel=1e-4)
        recons.append(logs["recon"])
    # the raw error scales with scale ** 2, the normalised one does not
    assert recons[0] == pytest.approx(recons[1], rel=1e-3)
    vae.loss({"obs": _shapes_batch(8, seed=5)})  # a running average afterwards
    assert float(vae.feature_var) != pytest.approx(var, rel=1e-6, abs=0.0)
    with pytest.raises(ValueError, match="only used with reconstruction='dae'"):
        BetaVAE(normalize_features=True, **SMALL)


def test_remedy_defaults_keep_the_old_state_dict_and_config_round_trip(tmp_path) -> None:
    old = BetaVAE(latent_dim=4, **SMALL)
    assert "kl_step" not in old.state_dict() and "feature_var" not in old.state_dict()
    vae = BetaVAE(
        reconstruction="dae",
        latent_dim=4,
        normalize_features=True,
        kl_warmup_steps=5,
        free_bits=0.1,
        **SMALL,
    )
    vae.loss({"obs": _shapes_batch(4)})
    vae.save(tmp_path / "v.safetensors")
    back = load(tmp_path / "v.safetensors")
    assert int(back.kl_step) == 1 and float(back.feature_var) == float(vae.feature_var)
    assert back.config == vae.config
    for bad, match in (
        ({"kl_warmup_steps": -1}, "kl_warmup_steps"),
        ({"free_bits": -0.1}, "free_bits"),
        (
            {"reconstruction": "dae", "normalize_features": True, "feature_var_momentum": 1.0},
            "feature_var_momentum",
        ),
    ):
        with pytest.raises(ValueError, match=match):
            BetaVAE(**bad, **SMALL)


def _wall_scenes(n: int, seed: int) -> torch.Tensor:
    """``(n, 1, 16, 16)`` frames like Breakout's: a static wall and one moving 4x4 square."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 16, 16)
    x[:, :, :4] = 0.6
    rows = torch.randint(5, 12, (n,), generator=g)
    cols = torch.randint(0, 12, (n,), generator=g)
    for i in range(n):
        x[i, 0, rows[i] : rows[i] + 4, cols[i] : cols[i] + 4] = 1.0
    return x


def _active_after_training(**kwargs) -> int:
    from representations.metrics.activity import latent_activity

    torch.manual_seed(0)
    vae = BetaVAE(latent_dim=6, beta=1.0, **kwargs, **SMALL)
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    for step in range(300):
        total, _ = vae.loss({"obs": _wall_scenes(32, step)})
        opt.zero_grad()
        total.backward()
        opt.step()
    vae.eval()
    with torch.no_grad():
        z = vae.encode(_wall_scenes(256, 999)).numpy()
    return latent_activity(z)["active"]


def test_hidden_norm_keeps_latents_where_the_plain_encoder_collapses() -> None:
    # The frames differ in a few pixels: the plain encoder's mu barely depends on them and the
    # KL takes it to the prior; normalised hidden units bring the difference to unit scale.
    assert _active_after_training() == 0
    assert _active_after_training(hidden_norm=True) >= 4


def test_hidden_norm_codes_use_running_statistics() -> None:
    assert not any("hidden_norm" in k for k in BetaVAE(latent_dim=4, **SMALL).state_dict())
    torch.manual_seed(0)
    vae = BetaVAE(latent_dim=4, hidden_norm=True, **SMALL)
    before = vae.hidden_norm.running_mean.clone()
    vae.loss({"obs": _wall_scenes(8, 0)})  # a training step: batch statistics, running update
    assert not torch.equal(vae.hidden_norm.running_mean, before)
    x = _wall_scenes(6, 1)
    z = vae.encode(x)  # training mode, but the running statistics: batch-independent
    torch.testing.assert_close(vae.encode(x[:1]), z[:1])
    vae.eval()
    torch.testing.assert_close(vae.encode(x), z)


def test_pretrain_curves_read_metrics_and_plot(tmp_path) -> None:
    from representations.metrics.activity import plot_pretrain_curves, pretrain_curves

    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": 50, "loss/kl": 2.0, "loss/recon": 9.0}, {"step": 100, "loss/recon": 7.0}]
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"step": 15'  # a half-written line
    (run / "metrics.jsonl").write_text(text)
    curves = pretrain_curves(run)
    assert curves["step"].tolist() == [50, 100] and curves["loss/recon"].tolist() == [9.0, 7.0]
    assert curves["loss/kl"][0] == 2.0 and np.isnan(curves["loss/kl"][1])
    png = plot_pretrain_curves({"a": run}, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="metrics"):
        pretrain_curves(tmp_path / "missing")


_DEFAULT_CONFIG = {
    "input_shape": [3, 64, 64],
    "latent_dim": 32,
    "beta": 4.0,
    "likelihood": "bernoulli",
    "gaussian_sigma": 0.1,
    "reconstruction": "pixel",
    "dae": None,
    "channels": [32, 32, 64, 64],
    "hidden_dim": 256,
    "dae_layer": None,
    "normalize_features": False,
    "feature_var_momentum": 0.99,
    "kl_warmup_steps": 0,
    "free_bits": 0.0,
    "hidden_norm": False,
}


def test_config_round_trips_and_defaults_are_unchanged(tmp_path) -> None:
    assert BetaVAE().config == _DEFAULT_CONFIG
    dae_default = {
        **_DEFAULT_CONFIG,
        "reconstruction": "dae",
        "dae": DenoisingAutoencoder().config,
    }
    assert BetaVAEDAE().config == dae_default
    # the variant takes the same arguments, annotated as the base's (check_config lists them)
    assert inspect.signature(BetaVAEDAE) == inspect.signature(BetaVAE)
    assert "hidden_norm: 'bool' = False" in str(inspect.signature(BetaVAEDAE))
    torch.manual_seed(0)
    vae = BetaVAE(latent_dim=4, kl_warmup_steps=3, free_bits=0.1, hidden_norm=True, **SMALL)
    assert vae.use_hidden_norm and vae.cfg.reconstruction == "pixel" and vae.cfg.dae is None
    vae.loss({"obs": _shapes_batch(4)})  # moves kl_step and the batch norm's statistics
    assert_config_round_trips(vae, _shapes_batch(3, seed=1), tmp_path)


def test_dae_of_any_form_is_kept_as_its_config(tmp_path) -> None:
    """A DAE module, checkpoint path or config dict: ``cfg.dae`` and the header hold its
    config (as before), the weights the ``dae.`` tensors; ``dae_layer`` keeps the path."""
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=4, **SMALL)
    dae.save(tmp_path / "dae.safetensors")
    for source in (dae, tmp_path / "dae.safetensors", str(tmp_path / "dae.safetensors")):
        torch.manual_seed(1)
        model = BetaVAEDAE(dae=source, dae_layer=2, normalize_features=True, latent_dim=4, **SMALL)
        assert model.cfg.dae == dae.config and model.config["dae"] == dae.config
        assert model.config["dae"] is not dae.config  # a copy, not the DAE's own dict
        for k, v in dae.state_dict().items():
            assert torch.equal(model.state_dict()[f"dae.{k}"], v)
        model.loss({"obs": _shapes_batch(4)})  # sets feature_var
        assert_config_round_trips(model, _shapes_batch(3, seed=1), tmp_path)
    fresh = BetaVAE(reconstruction="dae", dae=dict(dae.config), latent_dim=4, **SMALL)
    assert fresh.config == {**model.config, "normalize_features": False, "dae_layer": None}
