"""ST-DIM: the loss against the reference code's loop over cells, chance at constant features,
learning on pairs whose only change is a small moving object, and bad arguments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from envs.errors import ReprlError
from representations import make_representation
from representations.st_dim import PAPER_CONFIG, STDIM
from tests.representations.config_round_trip import assert_config_round_trips

SMALL = {"input_shape": [1, 32, 32], "latent_dim": 8, "channels": [8, 16, 16], "hidden_dim": 32}


def reference_loss(model: STDIM, obs: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
    """``atariari/methods/stdim.py``'s two loops over the cells, written out."""
    z_t, local_t = model._features(obs)
    _, local_next = model._features(nxt)
    n, _, sy, sx = local_next.shape
    target = torch.arange(n)
    loss1 = loss2 = 0.0
    for y in range(sy):
        for x in range(sx):
            positive = local_next[:, :, y, x]
            loss1 = loss1 + F.cross_entropy(model.global_local(z_t) @ positive.T, target)
            pred = model.local_local(local_t[:, :, y, x])
            loss2 = loss2 + F.cross_entropy(pred @ positive.T, target)
    return loss1 / (sx * sy) + loss2 / (sx * sy)


def test_loss_equals_the_reference_loops() -> None:
    torch.manual_seed(0)
    model = make_representation("st_dim", **SMALL)
    batch = model.example_batch(6, torch.Generator().manual_seed(1))
    total, logs = model.loss(batch)
    reference = float(reference_loss(model, **_args(batch)).detach())
    assert float(total.detach()) == pytest.approx(reference, rel=1e-5)
    assert logs["loss"] == pytest.approx(logs["global_local"] + logs["local_local"], rel=1e-6)
    assert logs["chance"] == pytest.approx(1 / 6)
    assert model.local_shape == (16, 4, 4)  # the third convolution at 32 x 32


def _args(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"obs": batch["obs"], "nxt": batch["next_obs"]}


def test_constant_features_score_chance_in_both_terms() -> None:
    model = make_representation("st_dim", **SMALL)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    total, logs = model.loss(model.example_batch(5, torch.Generator().manual_seed(0)))
    assert logs["global_local"] == pytest.approx(math.log(5), rel=1e-6)
    assert float(total.detach()) == pytest.approx(2 * math.log(5), rel=1e-6)


def moving_square_pairs(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Frame t: a 3 x 3 square at a random place; frame t + 1: the same square one pixel right.
    The rest of the frame is the same in every pair: only the small object tells pairs apart."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.randint(0, 29, (n,), generator=g)
    xs = torch.randint(0, 28, (n,), generator=g)
    obs = torch.full((n, 1, 32, 32), 0.2)
    nxt = obs.clone()
    for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
        obs[i, 0, y : y + 3, x : x + 3] = 1.0
        nxt[i, 0, y : y + 3, x + 1 : x + 4] = 1.0
    return {"obs": obs, "next_obs": nxt}


def fit(model, steps: int, lr: float = 3e-3) -> None:
    """``steps`` Adam steps on fresh moving-square pairs, with the method's after-step hook."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        loss, _ = model.loss(moving_square_pairs(32, step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_step()


def test_it_learns_to_match_pairs_by_a_small_object() -> None:
    """On fresh pairs the loss falls well below its untrained value, and the local-local term
    tells pairs apart far above chance (most cells are background, identical in every pair:
    they stay at chance by construction, which bounds the averaged accuracies)."""
    torch.manual_seed(0)
    model = make_representation("st_dim", **SMALL)
    with torch.no_grad():
        before, _ = model.loss(moving_square_pairs(32, 1000))
    fit(model, 80)
    with torch.no_grad():
        after, logs = model.loss(moving_square_pairs(32, 1000))  # fresh pairs
    assert float(after) < float(before) - 1.0
    assert logs["acc_local_local"] > 5 * logs["chance"]
    assert logs["acc_global_local"] > logs["chance"]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ReprlError, match=r"offset: expected an integer k >= 1"):
        STDIM(offset=0)
    with pytest.raises(
        ReprlError, match=r"local_layer: expected a convolution of the encoder, 1..4"
    ):
        STDIM(local_layer=5)
    with pytest.raises(ReprlError, match=r"st_dim trains on pairs"):
        STDIM(**SMALL).loss({"obs": torch.rand(4, 1, 32, 32)})


def test_paper_config_builds() -> None:
    model = STDIM(**PAPER_CONFIG)
    assert model.latent_dim == 256 and model.local_shape[0] == 128
    assert model.pair_offset == 1


def test_config_round_trips_and_defaults_are_unchanged(tmp_path) -> None:
    assert STDIM().config == {
        "input_shape": [3, 64, 64],
        "latent_dim": 32,
        "channels": [32, 32, 64, 64],
        "hidden_dim": 256,
        "local_layer": 3,
        "offset": 1,
    }
    assert STDIM(**PAPER_CONFIG).config == PAPER_CONFIG
    torch.manual_seed(0)
    model = STDIM(local_layer=2, offset=2, **SMALL)
    assert model.pair_offset == 2 and model.local_layer == 2 and model.cfg.channels == (8, 16, 16)
    obs = model.example_batch(3, torch.Generator().manual_seed(1))["obs"]
    assert_config_round_trips(model, obs, tmp_path)
