"""What ST-DIM and ATC share: InfoNCE worked out by hand, random shift as crops of a padded
frame, and the checks of pair batches, offsets and shift pads."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from envs.errors import ReprlError
from representations.base import InputSpec
from representations.contrastive import (
    check_offset,
    check_pairs,
    check_shift_pad,
    example_pairs,
    info_nce,
    random_shift,
)

SPEC = InputSpec.for_shape((3, 16, 16))


def test_info_nce_matches_a_hand_computed_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    loss, acc = info_nce(logits)
    # row 0 picks column 0: -log(e^2 / (e^2 + e^0)); row 1 picks column 1: -log(e^3 / (e + e^3))
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-2.0))) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(acc) == 1.0


def test_info_nce_is_log_b_at_chance_and_averages_leading_dims() -> None:
    b = 8
    loss, _ = info_nce(torch.zeros(5, 3, b, b))
    assert float(loss) == pytest.approx(math.log(b), rel=1e-6)
    wrong = torch.eye(b).roll(1, dims=1) * 10  # every row's best column is the next one
    loss, acc = info_nce(wrong)
    assert float(acc) == 0.0 and float(loss) > math.log(b)


def test_random_shift_gives_crops_of_the_edge_padded_frame() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 16, 16, generator=g)
    pad = 2
    out = random_shift(x, pad, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    padded = F.pad(x, (pad,) * 4, mode="replicate")
    shifts_seen = set()
    for b in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(out[b], padded[b, :, dy : dy + 16, dx : dx + 16])
        ]
        assert matches, f"image {b} is not a window of its padded frame"
        shifts_seen.add(matches[0])
    assert len(shifts_seen) > 1  # images get their own shifts
    again = random_shift(x, pad, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # seeded
    assert random_shift(x, 0) is x


def test_checks_name_what_is_needed() -> None:
    assert check_offset(3) == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ReprlError, match=r"offset: expected an integer k >= 1"):
            check_offset(bad)
    assert check_shift_pad(0, SPEC) == 0 and check_shift_pad(15, SPEC) == 15
    for bad in (-1, 16, 100, 2.0):
        with pytest.raises(ReprlError, match=r"shift_pad: expected an integer in \[0, 16\)"):
            check_shift_pad(bad, SPEC)


def test_pair_batches_are_checked() -> None:
    batch = example_pairs(SPEC, 4, torch.Generator().manual_seed(0))
    obs, nxt = check_pairs(batch, SPEC, "st_dim", 1)
    assert obs.shape == nxt.shape == (4, 3, 16, 16) and not torch.equal(obs, nxt)
    with pytest.raises(ReprlError, match=r"st_dim trains on pairs.*got \(4, 3, 16, 16\)"):
        check_pairs(batch["obs"], SPEC, "st_dim", 1)
    with pytest.raises(ReprlError, match=r"got keys \['obs'\]"):
        check_pairs({"obs": batch["obs"]}, SPEC, "st_dim", 1)
    with pytest.raises(ReprlError, match=r"different shapes"):
        check_pairs({"obs": batch["obs"], "next_obs": batch["obs"][:2]}, SPEC, "atc", 3)
    with pytest.raises(ReprlError, match=r"batch\['next_obs'\]: observation values"):
        check_pairs({"obs": batch["obs"], "next_obs": batch["obs"] * 255}, SPEC, "atc", 3)
    with pytest.raises(ReprlError, match=r"B >= 2; got B = 1"):
        check_pairs({k: v[:1] for k, v in batch.items()}, SPEC, "atc", 3)


@pytest.mark.parametrize("scheme", ["orthogonal", "kaiming"])
def test_relu_init_sets_the_papers_scales(scheme: str) -> None:
    from torch import nn

    from representations.blocks import ConvEncoder
    from representations.contrastive import relu_init_

    torch.manual_seed(0)
    enc = relu_init_(ConvEncoder((3, 64, 64)), scheme)
    fc = enc.fc.weight  # 256 x 1024
    if scheme == "orthogonal":  # rows orthogonal, each of norm sqrt(2)
        gram = fc @ fc.T
        torch.testing.assert_close(gram, 2.0 * torch.eye(256), atol=1e-4, rtol=0)
    else:  # N(0, 2 / fan_in)
        assert fc.std().item() == pytest.approx((2 / 1024) ** 0.5, rel=0.02)
    assert all(m.bias.abs().max().item() == 0 for m in enc.modules() if isinstance(m, nn.Conv2d))
    assert enc.convs[0].weight.is_contiguous(memory_format=torch.channels_last)  # kept
