"""CPC: the InfoNCE loss against a hand-written one, its checks of the batch, codes and
contexts, checkpoints, the paper config, and that it learns predictable motion."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import representations as R
from envs.errors import ReprlError
from representations.cpc import CPC, PAPER_CONFIG
from tests.representations.config_round_trip import assert_config_round_trips

SHAPE = [3, 16, 16]
TINY = dict(
    input_shape=SHAPE,
    latent_dim=8,
    context_dim=12,
    prediction_steps=2,
    sequence_length=5,
    channels=[8, 8, 16],
    hidden_dim=32,
)


def tiny(**kw) -> CPC:
    torch.manual_seed(0)
    return CPC(**{**TINY, **kw})


def seqs(b: int, n: int, seed: int = 0, shape=SHAPE) -> torch.Tensor:
    return torch.rand((b, n, *shape), generator=torch.Generator().manual_seed(seed))


def moving_squares(b: int, n: int, g: torch.Generator, size: int = 16, side: int = 3):
    """``(b, n, 3, size, size)``: a white ``side``-pixel square on black, moving at a constant
    velocity (each axis -2, -1, 1 or 2 pixels per frame, wrapping around the edges) from a
    random position; positions and velocities are drawn per sequence."""
    pos = torch.randint(0, size, (b, 2), generator=g)
    vel = torch.tensor([-2, -1, 1, 2])[torch.randint(0, 4, (b, 2), generator=g)]
    p = (pos[:, None] + vel[:, None] * torch.arange(n)[None, :, None]) % size  # (b, n, 2)
    grid = torch.arange(size)
    rows = ((grid - p[..., :1]) % size < side).float()  # (b, n, size)
    cols = ((grid - p[..., 1:]) % size < side).float()
    img = rows[..., :, None] * cols[..., None, :]
    return img[:, :, None].expand(b, n, 3, size, size).contiguous()


def test_registered_and_sequence_kind() -> None:
    assert R.get_class("cpc") is CPC
    model = R.make_representation("cpc")
    assert model.batch_kind == "sequences" and model.sequence_length == 12
    assert R.BetaVAE.batch_kind == "frames"
    assert model.variational is False
    assert model.example_batch(2)["seq"].shape == (2, 12, 3, 64, 64)


@pytest.mark.parametrize("min_context", [1, 2])
def test_loss_is_infonce_over_every_code_of_the_batch(min_context: int) -> None:
    """Loops over (sequence, time, step) with the candidates spelled out: all B * L codes."""
    model = tiny(min_context=min_context).eval()
    b, n, k_max = 2, 4, 2
    x = seqs(b, n)
    with torch.no_grad():
        total, logs = model.loss({"seq": x})
        z = model.encode(x.flatten(0, 1)).view(b, n, -1)
        c = model.context(x)
        w = model.predictors.weight.view(k_max, model.latent_dim, model.context_dim)
        candidates = [(bb, tt) for bb in range(b) for tt in range(n)]
        per_k, acc = [], {}
        for k in range(1, k_max + 1):
            ces, hits = [], []
            for bb in range(b):
                for t in range(min_context - 1, n - k):
                    pred = w[k - 1] @ c[bb, t]
                    scores = torch.stack([z[b2, t2] @ pred for b2, t2 in candidates])
                    target = candidates.index((bb, t + k))
                    ces.append(-F.log_softmax(scores, 0)[target])
                    hits.append(float(int(scores.argmax()) == target))
            per_k.append(torch.stack(ces).mean())
            acc[f"acc_k{k}"] = sum(hits) / len(hits)
    torch.testing.assert_close(total, torch.stack(per_k).mean())
    assert logs["loss"] == pytest.approx(float(total), rel=1e-6)
    assert logs["chance"] == 1 / 8  # worked by hand: 2 sequences x 4 frames = 8 candidates
    for key, value in acc.items():
        assert logs[key] == pytest.approx(value) and 0.0 <= logs[key] <= 1.0
    assert set(logs) == {"loss", "acc_k1", "acc_k2", "chance"}


def test_loss_backpropagates_to_every_parameter() -> None:
    model = tiny().train()
    total, _ = model.loss({"seq": seqs(3, 5)})
    assert torch.isfinite(total) and total > 0
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert (p.grad != 0).any(), name


def test_an_untrained_model_is_near_chance() -> None:
    model = tiny()
    _, logs = model.loss({"seq": seqs(4, 5)})
    assert logs["chance"] == 1 / 20
    # with near-equal scores the loss is about log(#candidates)
    assert abs(logs["loss"] - math.log(20)) < 1.0


def test_context_is_causal_and_encode_gives_frame_codes() -> None:
    model = tiny().eval()
    x = seqs(2, 5)
    y = x.clone()
    y[:, 3] = 1.0 - y[:, 3]  # change frame 3 only
    with torch.no_grad():
        cx, cy = model.context(x), model.context(y)
        assert cx.shape == (2, 5, 12)
        torch.testing.assert_close(cx[:, :3], cy[:, :3])  # the past does not see the future
        assert not torch.allclose(cx[:, 3:], cy[:, 3:])
        z = model.encode(x[:, 0])
        assert z.shape == (2, 8) and torch.equal(z, model.encode(x[:, 0]))


BAD_BATCHES = {
    "frames": (lambda: {"obs": seqs(2, 5)[:, 0]}, r"batch\['obs'\] of shape \(2, 3, 16, 16\)"),
    "four_d_seq": (lambda: {"seq": seqs(2, 5)[:, 0]}, r"got batch\['seq'\] of shape \(2, 3, 16"),
    "bare_tensor": (lambda: seqs(2, 5), r"got a bare tensor of shape \(2, 5, 3, 16, 16\)"),
    "too_short": (lambda: {"seq": seqs(2, 2)}, r"L >= .* = 3; got L = 2"),
    "image_shape": (lambda: {"seq": seqs(2, 5, shape=[3, 8, 8])}, r"\(C, H, W\) = \(3, 8, 8\)"),
    "range": (lambda: {"seq": seqs(2, 5) * 255}, r"frames: observation values"),
    "dtype": (lambda: {"seq": seqs(2, 5).double()}, r"frames: observation dtype"),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_bad_batches_name_what_cpc_needs(case: str) -> None:
    make, match = BAD_BATCHES[case]
    with pytest.raises(ReprlError, match=match) as info:
        tiny().loss(make())
    if case not in ("range", "dtype"):
        assert "CPC trains on sequences: batch['seq'] of shape (B, L, C, H, W)" in str(info.value)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"sequence_length": 2}, r"sequence_length: expected at least .* = 3, got 2"),
        ({"prediction_steps": 0}, "prediction_steps: expected an integer >= 1"),
        ({"min_context": 0}, "min_context: expected an integer >= 1"),
        ({"encoder": "vit"}, "encoder: expected one of"),
        ({"encoder": "resnet"}, "hidden_dim: only used by encoder='conv'"),
        ({"encoder": "resnet", "hidden_dim": None, "channels": [4] * 5}, "at least 32 x 32"),
    ],
)
def test_invalid_configs_are_refused(kw: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        tiny(**kw)


def test_checkpoint_round_trip_keeps_codes_and_contexts(tmp_path) -> None:
    model = tiny(encoder="resnet", hidden_dim=None, blocks_per_stage=1).eval()
    with torch.no_grad():  # the zero-initialised residual convs: make them matter
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.save(tmp_path / "cpc.safetensors")
    loaded = R.load(tmp_path / "cpc.safetensors", expected_method="cpc")
    assert loaded.config == model.config and type(loaded)(**loaded.config).config == model.config
    x = seqs(2, 5)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x[:, 0]), model.encode(x[:, 0]))
        assert torch.equal(loaded.context(x), model.context(x))


def test_config_round_trips_and_defaults_are_unchanged(tmp_path) -> None:
    assert CPC().config == {
        "input_shape": [3, 64, 64],
        "latent_dim": 32,
        "context_dim": 64,
        "prediction_steps": 4,
        "sequence_length": 12,
        "min_context": 1,
        "encoder": "conv",
        "channels": [32, 32, 64, 64],
        "hidden_dim": 256,  # None resolved
        "blocks_per_stage": 1,
    }
    model = tiny(min_context=2, prediction_steps=3, sequence_length=6)
    assert (model.min_sequence_length, model.sequence_length, model.context_dim) == (5, 6, 12)
    assert_config_round_trips(model, seqs(2, 6)[:, 0], tmp_path)
    resnet = tiny(encoder="resnet", hidden_dim=None, channels=[4, 8], blocks_per_stage=0)
    assert resnet.config["hidden_dim"] is None and resnet.cfg.channels == (4, 8)
    assert_config_round_trips(resnet, seqs(2, 5)[:, 0], tmp_path)


def test_paper_config_builds_and_runs() -> None:
    torch.manual_seed(0)
    model = R.make_representation("cpc", **PAPER_CONFIG)
    assert model.config == {**PAPER_CONFIG, "input_shape": [3, 64, 64]}
    assert model.latent_dim == 512 and model.prediction_steps == 5
    assert sum(p.numel() for p in model.parameters()) > 5_000_000  # a ResNet, not the toy
    with torch.no_grad():
        total, logs = model.loss({"seq": seqs(1, 6, shape=[3, 64, 64])})
    assert torch.isfinite(total) and logs["chance"] == 1 / 6


def test_it_learns_to_predict_motion() -> None:
    """A square moving at a constant velocity: after 600 steps the context picks the
    next frame out of all 128 codes of a batch far more often than chance (1/128)."""
    torch.manual_seed(0)
    model = CPC(
        input_shape=SHAPE,
        latent_dim=16,
        context_dim=32,
        prediction_steps=2,
        sequence_length=8,
        channels=[16, 32, 32],
        hidden_dim=64,
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        _, before = model.loss({"seq": moving_squares(16, 8, g)})
    for _ in range(600):
        total, _ = model.loss({"seq": moving_squares(16, 8, g)})
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        held_out = torch.Generator().manual_seed(99)
        logs = [model.loss({"seq": moving_squares(16, 8, held_out)})[1] for _ in range(4)]
    acc1 = sum(x["acc_k1"] for x in logs) / len(logs)
    chance = logs[0]["chance"]
    assert chance == 1 / 128
    assert before["acc_k1"] < 3 * chance
    assert acc1 > 5 * chance, (acc1, chance)
