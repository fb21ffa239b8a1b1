"""MONet's configuration dataclass and its anti-collapse options: free bits, KL warm-up and the
encoder's std-scaled input (all off by default; checkpoints written before them load as they
were)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from envs.errors import ReprlError
from representations import MONet, load
from representations.monet import PAPER_CONFIG, STD_FLOOR, MONetConfig
from tests.representations.config_round_trip import assert_config_round_trips
from tests.representations.test_monet import TINY, _rand, _tiny

#: The options of this file, at their defaults (every earlier checkpoint's values).
REMEDIES = {"encoder_std_frame": False, "free_bits": 0.0, "kl_warmup_steps": 0}


def test_config_is_a_frozen_dataclass_with_the_paper_config() -> None:
    cfg = MONetConfig(**PAPER_CONFIG)
    assert cfg.to_dict() == PAPER_CONFIG and MONet(**PAPER_CONFIG).cfg == cfg
    assert cfg.encoder_channels == (32, 32, 64, 64) and cfg.input_shape == (3, 64, 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.beta = 1.0  # type: ignore[misc]
    model = _tiny(beta=0.25)
    assert model.cfg == MONetConfig(**{**TINY, "beta": 0.25})
    assert list(model.config) == [f.name for f in dataclasses.fields(MONetConfig)]


def test_config_round_trips_with_every_remedy_on(tmp_path) -> None:
    model = _tiny(
        encoder_mean_frame=True, encoder_std_frame=True, free_bits=0.25, kl_warmup_steps=10
    )
    model.train().loss({"obs": _rand(4)})  # buffers away from their initial values
    assert_config_round_trips(model, _rand(3), tmp_path)


def test_remedies_are_off_by_default_and_an_old_checkpoint_loads_unchanged(tmp_path) -> None:
    model = _tiny(encoder_mean_frame=True).eval()
    assert {k: model.config[k] for k in REMEDIES} == REMEDIES
    assert {k: PAPER_CONFIG[k] for k in REMEDIES} == REMEDIES
    names = set(model.state_dict())
    assert not any("square_frame" in k or "kl_step" in k for k in names)
    # A checkpoint written before the options: its header's config lacks them.
    old = {k: v for k, v in model.config.items() if k not in REMEDIES}
    model.config = old
    path = tmp_path / "old.safetensors"
    model.save(path)
    back = load(path, expected_method="monet")
    assert back.config == {**old, **REMEDIES} and set(back.state_dict()) == names
    x = _rand(3)
    with torch.no_grad():
        torch.testing.assert_close(back.encode(x), model.encode(x), rtol=0, atol=0)


def test_free_bits_objective_is_the_floored_per_latent_batch_mean_by_hand() -> None:
    model = _tiny(free_bits=0.25)
    # B = 2 frames, K = 1 slot, D = 3 latents; KL of one latent = (mu^2 + e^lv - 1 - lv) / 2.
    mu = torch.tensor([[[0.0, 1.0, 0.2]], [[0.0, 1.0, 0.4]]])
    logvar = torch.zeros(2, 1, 3)
    # per-latent batch means: 0, 0.5, (0.02 + 0.08) / 2 = 0.05 -> floored: 0.25, 0.5, 0.25
    torch.testing.assert_close(model.kl_objective(mu, logvar), torch.tensor(1.0))
    plain = _tiny()  # no floor: 0 + 0.5 + 0.05
    torch.testing.assert_close(plain.kl_objective(mu, logvar), torch.tensor(0.55))


def test_free_bits_enter_the_loss_and_the_true_kl_is_logged() -> None:
    base, floored = _tiny().eval(), _tiny(free_bits=2.0).eval()
    x, g = _rand(3), torch.Generator().manual_seed(1)
    total, logs = floored.loss({"obs": x}, generator=g)
    _, plain = base.loss({"obs": x}, generator=torch.Generator().manual_seed(1))
    assert logs["kl"] == pytest.approx(plain["kl"]) and "kl_objective" not in plain
    assert logs["kl_objective"] >= 2.0 * floored.latent_dim - 1e-4
    expected = logs["recon"] + 0.5 * logs["kl_objective"] + 0.5 * logs["mask_kl"]
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)


def test_kl_warmup_weight_rises_linearly_over_training_steps_only() -> None:
    model = _tiny(kl_warmup_steps=4, beta=0.5).train()
    assert [model.kl_weight(t) for t in (0, 1, 4, 9)] == [0.0, 0.125, 0.5, 0.5]
    weights = []
    for _ in range(3):
        _, logs = model.loss({"obs": _rand(2)})
        weights.append(logs["kl_weight"])
    assert weights == [0.0, 0.125, 0.25] and int(model.kl_step) == 3
    with torch.no_grad():  # evaluation losses leave the counter alone
        model.loss({"obs": _rand(2)})
    model.eval().loss({"obs": _rand(2)})
    assert int(model.kl_step) == 3 and model.kl_weight() == 0.375
    assert "kl_weight" not in _tiny().loss({"obs": _rand(2)})[1]
    # at weight 0 the loss is the reconstruction and the mask KL alone
    fresh = _tiny(kl_warmup_steps=4).train()
    total, logs = fresh.loss({"obs": _rand(2)})
    assert float(total.detach()) == pytest.approx(logs["recon"] + 0.5 * logs["mask_kl"], rel=1e-6)


def test_std_frame_is_estimated_like_the_mean_frame_and_scales_the_encoder_input() -> None:
    model = _tiny(encoder_mean_frame=True, encoder_std_frame=True).train()
    # One batch of the values 0.2 and 0.6 at every pixel: mean 0.4, std 0.2 by hand.
    batch = torch.cat([torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.6)])
    model.loss({"obs": batch})
    torch.testing.assert_close(model.mean_frame, torch.full((3, 16, 16), 0.4))
    torch.testing.assert_close(model.square_frame, torch.full((3, 16, 16), 0.2))
    torch.testing.assert_close(model.std_frame(), torch.full((3, 16, 16), 0.2))
    x = torch.full((1, 3, 16, 16), 0.9)
    expected = torch.full((1, 3, 16, 16), 0.5 / (0.2 + STD_FLOOR))
    torch.testing.assert_close(model.encoder_input(x), expected)
    # a pixel that never changes has std 0: its difference is divided by the floor only
    model.square_frame.copy_(model.mean_frame.pow(2))
    torch.testing.assert_close(model.encoder_input(x), torch.full_like(x, 0.5 / STD_FLOOR))
    # what the encoder gets is exactly that input (the attention still sees the image)
    plain = _tiny().eval()
    plain.load_state_dict(
        {k: v for k, v in model.state_dict().items() if "frame" not in k}, strict=True
    )
    model.eval()
    with torch.no_grad():
        log_m = model.log_masks(x)
        torch.testing.assert_close(log_m, plain.log_masks(x))
        mu, _ = model.slot_posteriors(x, log_m)
        mu_hand, _ = plain.slot_posteriors(model.encoder_input(x), log_m)
    torch.testing.assert_close(mu, mu_hand)
    assert math.isfinite(float(model.loss({"obs": x})[0].detach()))


@pytest.mark.parametrize(
    ("override", "match"),
    [
        (
            {"free_bits": -0.25},
            r"free_bits \(nats per slot latent\): expected a finite number >= 0, got -0.25",
        ),
        ({"free_bits": float("inf")}, r"free_bits .*expected a finite number >= 0, got inf"),
        ({"kl_warmup_steps": -1}, r"kl_warmup_steps: expected an integer >= 0, got -1"),
        ({"kl_warmup_steps": 2.5}, r"kl_warmup_steps: expected an integer >= 0, got 2.5"),
        (
            {"encoder_std_frame": "yes", "encoder_mean_frame": True},
            r"encoder_std_frame: expected true or false, got 'yes'",
        ),
        (
            {"encoder_std_frame": True},
            r"encoder_std_frame: .*expected encoder_mean_frame true with it, got false",
        ),
    ],
)
def test_remedies_reject_bad_values(override: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        MONet(**{**TINY, **override})
    with pytest.raises(ReprlError, match=match):  # the dataclass checks them itself
        MONetConfig(**{**TINY, **override})
