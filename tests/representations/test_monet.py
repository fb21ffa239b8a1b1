"""MONet: attention masks, the loss's terms, slot codes, checkpoints, and that it learns."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from envs.errors import ReprlError
from representations import MONet, load, make_representation
from representations.monet import PAPER_CONFIG

#: A tiny MONet for fast tests: 16x16 RGB, 3 slots of 4 latents.
TINY = {
    "input_shape": [3, 16, 16],
    "num_slots": 3,
    "slot_dim": 4,
    "unet_blocks": 3,
    "unet_channels": 8,
    "unet_mlp_dim": 32,
    "encoder_channels": [8, 8, 16],
    "encoder_hidden_dim": 32,
    "decoder_channels": [8, 8, 8],
}


def _tiny(**overrides: object) -> MONet:
    torch.manual_seed(0)
    return MONet(**{**TINY, **overrides})


def _rand(n: int = 4, shape: tuple[int, ...] = (3, 16, 16), seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


def _squares(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """``(n, 3, size, size)`` images of 1-2 coloured squares (side ``size // 4``) on black."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1.0]])
    side = size // 4
    x = torch.zeros(n, 3, size, size)
    for i in range(n):
        for _ in range(int(torch.randint(1, 3, (1,), generator=g))):
            r, c = torch.randint(0, size - side + 1, (2,), generator=g).tolist()
            colour = colours[int(torch.randint(0, len(colours), (1,), generator=g))]
            x[i, :, r : r + side, c : c + side] = colour[:, None, None]
    return x


def test_masks_are_a_partition_of_unity() -> None:
    model = _tiny().eval()
    x = _rand()
    with torch.no_grad():
        parts = model.decompose(x)
    masks, recons = parts["masks"], parts["recons"]
    assert masks.shape == (4, 3, 1, 16, 16) and recons.shape == (4, 3, 3, 16, 16)
    assert masks.min() >= 0 and masks.max() <= 1
    torch.testing.assert_close(masks.sum(dim=1), torch.ones(4, 1, 16, 16), atol=1e-5, rtol=0)
    assert recons.min() >= 0 and recons.max() <= 1
    torch.testing.assert_close(parts["reconstruction"], (masks * recons).sum(dim=1))
    assert parts["reconstruction"].shape == x.shape
    decoded = parts["decoded_masks"]
    assert decoded.shape == masks.shape
    torch.testing.assert_close(decoded.sum(dim=1), torch.ones(4, 1, 16, 16))
    torch.testing.assert_close(model.log_masks(x).exp(), masks[:, :, 0])


def test_masks_stay_finite_where_probabilities_underflow() -> None:
    model = _tiny(num_slots=4)
    with torch.no_grad():
        model.attention.head.bias.fill_(-200.0)  # sigmoid(-200) = 0 in float32
    x = _rand()
    log_m = model.log_masks(x)
    assert torch.isfinite(log_m).all()
    torch.testing.assert_close(
        log_m[:, :3], torch.full_like(log_m[:, :3], -200.0), rtol=0.1, atol=0
    )
    torch.testing.assert_close(log_m.exp().sum(dim=1), torch.ones(4, 16, 16))
    total, _ = model.loss({"obs": x})
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_loss_terms_and_gradients_reach_every_parameter() -> None:
    model = _tiny(beta=0.7, gamma=0.3).train()
    x = _rand()
    total, logs = model.loss({"obs": x}, generator=torch.Generator().manual_seed(1))
    assert set(logs) == {"loss", "recon", "kl", "mask_kl"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in logs.values())
    assert logs["loss"] == pytest.approx(
        logs["recon"] + 0.7 * logs["kl"] + 0.3 * logs["mask_kl"], rel=1e-5
    )
    assert logs["kl"] >= 0 and logs["mask_kl"] >= -1e-3
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert (p.grad != 0).any(), name


def test_loss_is_the_mixture_nll_with_background_sigma_on_slot_zero() -> None:
    model = _tiny()
    x = _rand(2)
    with torch.no_grad():
        _, logs = model.loss({"obs": x}, generator=torch.Generator().manual_seed(5))
        log_m = model.log_masks(x)
        mu, logvar = model.slot_posteriors(x, log_m)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
        recons, mask_logits = model.decode_slots(mu + eps * torch.exp(0.5 * logvar))
        sigma = torch.tensor([0.09, 0.11, 0.11]).view(1, 3, 1, 1, 1)
        # per pixel: sum_k m_k * prod_c N(x_c; x_kc, sigma_k), in probability space (float64)
        dens = torch.distributions.Normal(recons.double(), sigma.double())
        p_pixel = dens.log_prob(x.double().unsqueeze(1)).sum(dim=2).exp()  # (B, K, H, W)
        mixture = (log_m.double().exp() * p_pixel).sum(dim=1)
        recon = -mixture.log().sum() / 2
        q = log_m.exp().permute(0, 2, 3, 1)
        p_hat = mask_logits.softmax(dim=1).permute(0, 2, 3, 1)
        mask_kl = (q * (q.log() - p_hat.log())).sum() / 2
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / 2
    assert logs["recon"] == pytest.approx(float(recon), rel=1e-4)
    assert logs["mask_kl"] == pytest.approx(float(mask_kl), rel=1e-3, abs=1e-3)
    assert logs["kl"] == pytest.approx(float(kl), rel=1e-5)
    floor = 16 * 16 * 3 * math.log(0.09 * math.sqrt(2 * math.pi))  # every pixel exact, slot 0
    assert logs["recon"] > floor


def test_broadcast_decoder_first_layer_is_the_tiled_convolution() -> None:
    dec = _tiny().decoder
    z = torch.randn(5, 4)
    gh, gw = dec.grid_size
    tiled = torch.cat(
        [z[:, :, None, None].expand(5, 4, gh, gw), dec.coords.expand(5, -1, -1, -1)], 1
    )
    torch.testing.assert_close(dec.first_layer(z), dec.first(tiled), atol=1e-5, rtol=1e-5)
    assert dec(z).shape == (5, 4, 16, 16)  # 3 colour logits + 1 mask logit


def test_encode_is_slot_means_in_attention_order() -> None:
    model = _tiny().eval()
    x = _rand()
    with torch.no_grad():
        z = model.encode(x)
        assert torch.equal(z, model.encode(x))
        mu, _ = model.slot_posteriors(x, model.log_masks(x))
    assert z.shape == (4, 3 * 4) and model.latent_dim == 12
    assert torch.equal(z.view(4, 3, 4), mu)
    assert model.variational


def test_decode_composes_slots_with_decoded_masks() -> None:
    model = _tiny().eval()
    with torch.no_grad():
        img = model.decode(torch.randn(2, 12) * 10)
    assert img.shape == (2, 3, 16, 16) and img.min() >= 0 and img.max() <= 1
    with pytest.raises(ReprlError, match=r"expected \(B, 12\), got \(2, 8\)"):
        model.decode(torch.zeros(2, 8))


def test_channels_last_model_and_input_give_the_same_codes() -> None:
    model = _tiny().eval()
    x = _rand()
    with torch.no_grad():
        want = model.encode(x)
        model = model.to(memory_format=torch.channels_last)  # as pretraining may do
        got = model.encode(x.contiguous(memory_format=torch.channels_last))
        total, _ = model.loss({"obs": x.contiguous(memory_format=torch.channels_last)})
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(total)


def test_config_rebuilds_and_checkpoint_round_trip(tmp_path) -> None:
    model = _tiny(beta=0.25, sigma_fg=0.2).eval()
    rebuilt = MONet(**model.config)
    assert rebuilt.config == model.config and rebuilt.latent_dim == model.latent_dim
    assert make_representation("monet", **model.config).config == model.config
    path = tmp_path / "monet.safetensors"
    model.save(path)
    loaded = load(path, expected_method="monet")
    assert isinstance(loaded, MONet) and loaded.config == model.config
    x = _rand()
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))


def test_paper_config_builds() -> None:
    model = MONet(**PAPER_CONFIG).eval()
    assert model.config == PAPER_CONFIG
    assert model.latent_dim == 7 * 16 and model.input_spec.shape == (3, 64, 64)
    with torch.no_grad():
        assert model.encode(_rand(1, (3, 64, 64))).shape == (1, 112)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"num_slots": 1}, r"at least 2 slots \(one background, one object\), got 1"),
        ({"num_slots": 0}, "at least 2 slots"),
        ({"num_slots": 2.5}, "at least 2 slots"),
        ({"slot_dim": 0}, r"slot_dim: expected an integer >= 1, got 0"),
        ({"slot_dim": "four"}, r"slot_dim: expected an integer >= 1, got 'four'"),
        ({"beta": -1.0}, r"beta: expected a finite number >= 0, got -1.0"),
        ({"gamma": float("nan")}, "gamma: expected a finite number >= 0, got nan"),
        ({"sigma_bg": "wide"}, r"sigma_bg \(a pixel std\): expected a finite number > 0"),
        ({"sigma_fg": 0.0}, r"sigma_fg \(a pixel std\): expected a finite number > 0, got 0.0"),
        ({"encoder_channels": []}, "encoder_channels: expected a non-empty list"),
        ({"decoder_channels": [8, -1]}, r"decoder_channels: expected an integer >= 1, got -1"),
        ({"unet_blocks": 5}, r"down to 1 x 1; expected at least 2 x 2"),
        ({"input_shape": [2, 16, 16]}, "no default channel order"),
    ],
)
def test_rejects_bad_config(override: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        MONet(**{**TINY, **override})


def test_learns_to_reconstruct_coloured_squares() -> None:
    # 80 steps take about 3 s on 2 idle cores; across seeds 0-5, 60 steps already cut the
    # recon excess to 0.14-0.21 of its initial value and the pixel MSE to 0.15-0.29.
    torch.manual_seed(0)
    model = MONet(**TINY)
    x = _squares(64)
    # recon is the full Gaussian NLL (negative on a good fit): measure it above its floor,
    # every pixel reconstructed exactly by slot 0
    floor = 16 * 16 * 3 * math.log(model.sigma_bg * math.sqrt(2 * math.pi))

    def evaluate() -> tuple[float, float]:
        with torch.no_grad():
            _, logs = model.loss({"obs": x}, generator=torch.Generator().manual_seed(1))
            mse = F.mse_loss(model.decompose(x)["reconstruction"], x)
        return logs["recon"] - floor, float(mse)

    excess_before, mse_before = evaluate()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(2)
    for _ in range(80):
        batch = x[torch.randint(0, len(x), (16,), generator=g)]
        total, _ = model.loss({"obs": batch})
        opt.zero_grad()
        total.backward()
        opt.step()
    excess_after, mse_after = evaluate()
    assert excess_after < 0.4 * excess_before, (excess_before, excess_after)
    assert mse_after < 0.5 * mse_before, (mse_before, mse_after)


def test_pictures_show_masks_and_slot_reconstructions(tmp_path) -> None:
    """reprl pictures' decomposition grid: input, reconstruction, then a mask and a masked slot
    reconstruction per slot, one column per frame."""
    from PIL import Image

    from envs.exploration import collect
    from representations.analysis import pictures

    data = tmp_path / "d.h5"
    collect("reprl/BreakoutStandard-v0", 64, data, num_envs=4, progress=False)
    model = make_representation("monet", num_slots=3)
    written = pictures(model, data, tmp_path / "pics", num_frames=4, num_latents=2, scale=1)
    assert set(written) == {"reconstructions", "traversals", "decomposition"}
    with Image.open(written["decomposition"]) as im:
        rows = 2 + 2 * 3  # input, reconstruction, (mask, slot) per slot
        assert im.size == (4 * 65 + 1, rows * 65 + 1)


def test_hidden_norm_is_off_by_default_and_encodes_with_running_statistics() -> None:
    assert not any("hidden_norm" in k for k in _tiny().state_dict())
    torch.manual_seed(0)
    model = _tiny(hidden_norm=True)
    norm = model.encoder.hidden_norm
    before = norm.running_mean.clone()
    model.loss({"obs": _rand(4)})  # a training step: batch statistics, running update
    assert not torch.equal(norm.running_mean, before)
    x = _rand(3, seed=1)
    z = model.encode(x)  # the running statistics: a code does not depend on its batch
    torch.testing.assert_close(model.encode(x[:1]), z[:1])
    model.eval()
    torch.testing.assert_close(model.encode(x), z)


def test_slot_hidden_norm_is_off_by_default_and_in_no_old_config() -> None:
    model = _tiny()
    assert model.config["slot_hidden_norm"] is False and PAPER_CONFIG["slot_hidden_norm"] is False
    assert model.encoder.slot_hidden_norm is None
    assert not any("hidden_norm" in k for k in model.state_dict())
    old = {k: v for k, v in model.config.items() if k != "slot_hidden_norm"}  # a pre-option config
    assert MONet(**old).config == model.config


def test_slot_hidden_norm_standardises_each_slot_over_the_frames() -> None:
    # Worked by hand: the hidden units of slot k are normalised with the mean and (biased)
    # variance of slot k's rows over the B frames alone, not pooled over all B * K rows.
    model = _tiny(slot_hidden_norm=True).train()
    enc = model.encoder
    x = _rand(6)
    with torch.no_grad():
        log_m = model.log_masks(x)
        b, k = log_m.shape[:2]
        xs = x.unsqueeze(1).expand(b, k, *x.shape[1:]).flatten(0, 1)
        lm = log_m.flatten(0, 1).unsqueeze(1)
        flat, hidden, relu, head = enc.mlp
        h = hidden(flat(enc.convs(torch.cat([xs, lm], dim=1)))).view(b, k, -1)
        mean = h.mean(dim=0, keepdim=True)
        var = h.var(dim=0, unbiased=False, keepdim=True)
        by_hand = ((h - mean) / torch.sqrt(var + 1e-5)).flatten(0, 1)
        mu_hand = head(relu(by_hand)).chunk(2, dim=1)[0]
        pooled = (h - h.mean(dim=(0, 1))) / torch.sqrt(h.var(dim=(0, 1), unbiased=False) + 1e-5)
        mu_pooled = head(relu(pooled.flatten(0, 1))).chunk(2, dim=1)[0]
        mu, _ = enc(xs, lm, batch_stats=True)
    torch.testing.assert_close(mu, mu_hand, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(mu, mu_pooled, atol=1e-3)
    norm = enc.slot_hidden_norm
    assert norm.running_mean.shape == (3 * 32,)  # K slots x encoder_hidden_dim
    # one training-step update of the running mean (momentum 0.1), slot by slot
    torch.testing.assert_close(norm.running_mean.view(k, -1), 0.1 * mean[0], atol=1e-5, rtol=1e-4)


def test_slot_hidden_norm_trains_and_encodes_with_running_statistics(tmp_path) -> None:
    model = _tiny(slot_hidden_norm=True).train()
    total, logs = model.loss({"obs": _rand(4)})
    assert torch.isfinite(total) and set(logs) == {"loss", "recon", "kl", "mask_kl"}
    total.backward()
    assert model.encoder.slot_hidden_norm.weight.grad is not None
    x = _rand(3, seed=1)
    z = model.encode(x)  # running statistics: a frame's code does not depend on its batch
    torch.testing.assert_close(model.encode(x[:1]), z[:1])
    path = tmp_path / "m.safetensors"
    model.eval().save(path)
    loaded = load(path, expected_method="monet")
    assert loaded.config["slot_hidden_norm"] is True
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), z)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"slot_hidden_norm": "yes"}, r"slot_hidden_norm: expected true or false, got 'yes'"),
        ({"slot_hidden_norm": 1}, r"slot_hidden_norm: expected true or false, got 1"),
        (
            {"slot_hidden_norm": True, "hidden_norm": True},
            r"hidden_norm and slot_hidden_norm: expected at most one of them true, got both",
        ),
    ],
)
def test_slot_hidden_norm_rejects_bad_values(override: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        MONet(**{**TINY, **override})


def test_slot_hidden_norm_refuses_a_training_batch_of_one_frame() -> None:
    model = _tiny(slot_hidden_norm=True).train()
    with pytest.raises(ReprlError, match=r"expected at least 2 frames, got 1"):
        model.loss({"obs": _rand(1)})
    with torch.no_grad():  # evaluation (no gradient) uses the running statistics
        _, logs = model.loss({"obs": _rand(1)})
    assert math.isfinite(logs["loss"])


# -- encoder_mask_input, encoder_mean_frame, recalibrate_norm (off by default) ----------------

NEW_OPTIONS = {"encoder_mask_input": "log", "encoder_mean_frame": False, "recalibrate_norm": False}


def test_new_options_are_off_by_default_and_in_no_old_config() -> None:
    model = _tiny()
    assert {k: model.config[k] for k in NEW_OPTIONS} == NEW_OPTIONS
    assert {k: PAPER_CONFIG[k] for k in NEW_OPTIONS} == NEW_OPTIONS
    assert not any("mean_frame" in k for k in model.state_dict())  # old weights load as they were
    old = {k: v for k, v in model.config.items() if k not in NEW_OPTIONS}  # a pre-option config
    assert MONet(**old).config == model.config
    model.after_training(iter([{"obs": _rand(4)}]))  # a no-op without recalibrate_norm
    torch.manual_seed(0)
    same = MONet(**old)
    for (k, a), b in zip(model.state_dict().items(), same.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_mask_input_feeds_the_mask_not_its_log() -> None:
    # The "mask" encoder on log m gives exactly what the paper's encoder gives on m itself.
    paper = _tiny().encoder
    linear = _tiny(encoder_mask_input="mask").encoder
    linear.load_state_dict(paper.state_dict())
    x, m = _rand(2), torch.tensor([0.5, 0.25]).view(2, 1, 1, 1).expand(2, 1, 16, 16)
    with torch.no_grad():
        mu, lv = linear(x, m.log())
        mu_hand, lv_hand = paper(x, m)
        mu_log, _ = paper(x, m.log())
    torch.testing.assert_close(mu, mu_hand)
    torch.testing.assert_close(lv, lv_hand)
    assert not torch.allclose(mu, mu_log)


def test_mean_frame_is_the_running_average_of_training_batches() -> None:
    model = _tiny(encoder_mean_frame=True).train()
    torch.testing.assert_close(model.mean_frame, torch.zeros(3, 16, 16))
    # Two training batches with mean images 0.2 and 0.6 (by hand: the average is 0.4), then an
    # evaluation loss (no gradient) and one in eval mode, which leave it alone.
    first = torch.cat([torch.full((1, 3, 16, 16), 0.1), torch.full((1, 3, 16, 16), 0.3)])
    model.loss({"obs": first})
    torch.testing.assert_close(model.mean_frame, torch.full((3, 16, 16), 0.2))
    model.loss({"obs": torch.full((3, 3, 16, 16), 0.6)})
    torch.testing.assert_close(model.mean_frame, torch.full((3, 16, 16), 0.4))
    assert int(model.mean_frame_batches) == 2
    with torch.no_grad():
        model.loss({"obs": torch.ones(2, 3, 16, 16)})
    model.eval().loss({"obs": torch.ones(2, 3, 16, 16)})
    torch.testing.assert_close(model.mean_frame, torch.full((3, 16, 16), 0.4))


def test_mean_frame_is_subtracted_for_the_encoder_only(tmp_path) -> None:
    model = _tiny(encoder_mean_frame=True).eval()
    plain = _tiny().eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "mean_frame" not in k})
    with torch.no_grad():
        model.mean_frame.fill_(0.25)
        x = _rand(3)
        log_m = model.log_masks(x)
        torch.testing.assert_close(log_m, plain.log_masks(x))  # the attention sees x
        mu, _ = model.slot_posteriors(x, log_m)
        mu_hand, _ = plain.slot_posteriors(x - 0.25, log_m)
        torch.testing.assert_close(mu, mu_hand)
        z = model.encode(x)
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = load(path, expected_method="monet")
    torch.testing.assert_close(loaded.mean_frame, model.mean_frame)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), z)


def _hidden(model: MONet, x: torch.Tensor) -> torch.Tensor:
    """``(B, K, hidden)``: the encoder's hidden units before the batch norm."""
    enc = model.encoder
    log_m = model.log_masks(x)
    b, k = log_m.shape[:2]
    xs = x.unsqueeze(1).expand(b, k, *x.shape[1:]).flatten(0, 1)
    flat, hidden, _, _ = enc.mlp
    inputs = torch.cat([xs, log_m.flatten(0, 1).unsqueeze(1)], 1)
    return hidden(flat(enc.convs(inputs))).view(b, k, -1)


def test_recalibrate_averages_each_batch_statistics_under_the_final_weights() -> None:
    model = _tiny(slot_hidden_norm=True, recalibrate_norm=True).train()
    model.loss({"obs": _rand(4)})  # running statistics now hold one (stale) update
    model.eval()
    norm = model.encoder.slot_hidden_norm
    a, b, c = _rand(4, seed=1), _rand(4, seed=2), _rand(4, seed=3)
    with torch.no_grad():
        seen = model.recalibrate(iter([{"obs": a}, {"obs": b}, {"obs": c}]), frames=8)
        # by hand: equal-weight averages of the two batches' means and unbiased variances
        ha, hb = _hidden(model, a).flatten(1), _hidden(model, b).flatten(1)
    assert seen == 8 and not model.training and norm.momentum == 0.1
    torch.testing.assert_close(norm.running_mean, (ha.mean(0) + hb.mean(0)) / 2)
    torch.testing.assert_close(norm.running_var, (ha.var(0) + hb.var(0)) / 2)
    assert int(norm.num_batches_tracked) == 2


def test_after_training_recalibrates_only_with_the_option() -> None:
    for flag in (False, True):
        model = _tiny(hidden_norm=True, recalibrate_norm=flag).eval()
        x = _rand(4, seed=1)
        with torch.no_grad():
            model.after_training(iter([{"obs": x}] * 100))
            h = _hidden(model, x).flatten(0, 1)
        norm = model.encoder.hidden_norm  # pooled over B * K rows
        expected = h.mean(0) if flag else torch.zeros_like(h[0])
        torch.testing.assert_close(norm.running_mean, expected)
    assert _tiny(recalibrate_norm=True).recalibrate(iter([])) == 0  # no batch norm: nothing


@pytest.mark.parametrize(
    ("override", "match"),
    [
        (
            {"encoder_mask_input": "exp"},
            r"encoder_mask_input: expected one of 'log', 'mask', got 'exp'",
        ),
        ({"encoder_mask_input": None}, r"encoder_mask_input: expected one of .*, got None"),
        ({"encoder_mean_frame": "yes"}, r"encoder_mean_frame: expected true or false, got 'yes'"),
        ({"recalibrate_norm": 1}, r"recalibrate_norm: expected true or false, got 1"),
    ],
)
def test_new_options_reject_bad_values(override: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        MONet(**{**TINY, **override})


def test_recalibrate_rejects_bad_batches_and_frames() -> None:
    model = _tiny(slot_hidden_norm=True)
    with pytest.raises(ReprlError, match=r"recalibrate on\): expected an integer >= 2, got 1"):
        model.recalibrate(iter([{"obs": _rand(4)}]), frames=1)
    with pytest.raises(ReprlError, match=r"needs at least 2 frames, got 1"):
        model.recalibrate(iter([{"obs": _rand(1)}]))
    with pytest.raises(ReprlError, match=r"expected at least one batch to recalibrate on, got no"):
        model.recalibrate(iter([]))
    assert model.encoder.slot_hidden_norm.momentum == 0.1 and model.training
