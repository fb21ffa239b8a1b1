"""ATC: the loss written out, the momentum target's update worked out by hand, no gradient
into the target, learning on pairs told apart by a small object, and bad arguments."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from envs.errors import ReprlError
from representations import make_representation
from representations.atc import ATC, PAPER_CONFIG
from tests.representations.config_round_trip import assert_config_round_trips
from tests.representations.test_st_dim import fit, moving_square_pairs

SMALL = {"input_shape": [1, 32, 32], "latent_dim": 8, "channels": [8, 16, 16], "hidden_dim": 32}


def test_loss_is_the_bilinear_cross_entropy_of_online_against_target() -> None:
    torch.manual_seed(0)
    model = make_representation("atc", **SMALL, shift_pad=0, projector_hidden=16)
    batch = model.example_batch(6, torch.Generator().manual_seed(1))
    total, logs = model.loss(batch)
    anchor = model.online(batch["obs"])
    anchor = anchor + model.predictor.mlp(anchor)  # the residual predictor
    logits = model.bilinear(anchor) @ model.target(batch["next_obs"]).T
    expected = F.cross_entropy(logits, torch.arange(6))
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["chance"] == pytest.approx(1 / 6)


def test_the_target_gets_no_gradient_and_follows_by_ema() -> None:
    torch.manual_seed(0)
    model = make_representation("atc", **SMALL, momentum_tau=0.25)
    before = copy.deepcopy(model.target.state_dict())
    total, _ = model.loss(model.example_batch(4))
    total.backward()
    assert all(p.grad is None for p in model.target.parameters())
    assert all(not p.requires_grad for p in model.requires_grad_(True).target.parameters())
    with torch.no_grad():
        for p in model.online.parameters():
            p.add_(1.0)
    model.after_step()
    online = model.online.state_dict()
    for k, v in model.target.state_dict().items():
        torch.testing.assert_close(v, 0.75 * before[k] + 0.25 * online[k])


def test_encode_is_the_online_encoder_without_augmentation() -> None:
    model = make_representation("atc", **SMALL).eval()
    x = torch.rand(3, 1, 32, 32)
    torch.testing.assert_close(model.encode(x), model.online(x))
    torch.testing.assert_close(model.encode(x), model.encode(x))


def test_it_learns_to_match_pairs_by_a_small_object() -> None:
    torch.manual_seed(0)
    model = make_representation("atc", **SMALL, shift_pad=1, momentum_tau=0.05)
    with torch.no_grad():
        before, _ = model.loss(moving_square_pairs(32, 1000))
    fit(model, 150)
    with torch.no_grad():
        after, logs = model.loss(moving_square_pairs(32, 1000))  # fresh pairs
    assert float(after) < float(before) - 0.5
    assert logs["acc"] > 3 * logs["chance"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": 0}, r"offset: expected an integer k >= 1"),
        ({"shift_pad": -1}, r"shift_pad: expected an integer in \[0, 32\)"),
        ({"shift_pad": 32}, r"shift_pad: expected an integer in \[0, 32\)"),
        ({"momentum_tau": 0.0}, r"momentum_tau: expected an EMA rate in \(0, 1\]"),
        ({"projector_hidden": 0}, r"projector_hidden: expected an integer >= 1"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ReprlError, match=message):
        ATC(**{**SMALL, **kwargs})


def test_paper_config_builds() -> None:
    model = ATC(**PAPER_CONFIG)
    assert model.latent_dim == 256 and model.pair_offset == 3 and model.shift_pad == 4


def test_config_round_trips_and_defaults_are_unchanged(tmp_path) -> None:
    assert ATC().config == {
        "input_shape": [3, 64, 64],
        "latent_dim": 32,
        "channels": [32, 32, 64, 64],
        "hidden_dim": 256,
        "offset": 3,
        "shift_pad": 4,
        "momentum_tau": 0.01,
        "projector_hidden": 512,
    }
    assert ATC(**PAPER_CONFIG).config == PAPER_CONFIG
    torch.manual_seed(0)
    model = ATC(offset=1, shift_pad=2, momentum_tau=1, projector_hidden=16, **SMALL)
    assert (model.pair_offset, model.shift_pad, model.momentum_tau) == (1, 2, 1.0)
    assert isinstance(model.config["momentum_tau"], float)
    model.after_step()  # the target follows; it is part of the checkpoint
    obs = model.example_batch(3, torch.Generator().manual_seed(1))["obs"]
    assert_config_round_trips(model, obs, tmp_path)
