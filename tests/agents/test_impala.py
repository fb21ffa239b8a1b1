"""ImpalaCNN (the Procgen paper's IMPALA-CNN) and PROCGEN_PPO (train-procgen's PPO settings)."""

from __future__ import annotations

import dataclasses
import inspect
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from torch import nn

import envs
from agents import PROCGEN_PPO, ImpalaCNN, PPOHyperparams, check_ppo_batch, make_agent
from agents.impala import ResidualBlock
from envs.errors import ReprlError

ENV_ID = "reprl/BreakoutStandard-v0"


def _space(shape=(3, 64, 64), low=0, high=255, dtype=np.uint8) -> gym.spaces.Box:
    return gym.spaces.Box(low, high, shape, dtype)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- architecture


def test_parameter_count_worked_out_by_hand() -> None:
    # A 3x3 conv from i to o channels holds 9*i*o weights + o biases.
    # Stack 1 (3 -> 16):  conv 9*3*16 + 16 = 448;  4 residual convs 4 * (9*16*16 + 16) = 9280
    # Stack 2 (16 -> 32): conv 9*16*32 + 32 = 4640; 4 residual convs 4 * (9*32*32 + 32) = 36992
    # Stack 3 (32 -> 32): conv 9*32*32 + 32 = 9248; 4 residual convs                 = 36992
    # 64 -> 32 -> 16 -> 8: Linear(32*8*8 = 2048 -> 256) = 2048*256 + 256 = 524544
    by_hand = (448 + 9280) + (4640 + 36992) + (9248 + 36992) + 524544
    assert by_hand == 622144
    assert _n_params(ImpalaCNN(_space((3, 64, 64)))) == by_hand
    # 4 stacked grayscale frames: only the first conv grows, by 9 * 1 * 16 weights.
    assert _n_params(ImpalaCNN(_space((4, 64, 64)))) == by_hand + 9 * 16


def test_output_is_b_by_256_and_non_negative() -> None:
    torch.manual_seed(0)
    cnn = ImpalaCNN(_space((3, 64, 64)))
    assert cnn.features_dim == 256
    x = torch.rand(5, 3, 64, 64)  # SB3's preprocessed images: float32 in [0, 1]
    out = cnn(x)
    assert out.shape == (5, 256) and out.dtype == torch.float32
    assert (out >= 0).all() and (out > 0).any()
    out.sum().backward()
    assert all(p.grad is not None for p in cnn.parameters())


@pytest.mark.parametrize(
    ("shape", "sizes"),
    [((3, 64, 64), [(32, 32), (16, 16), (8, 8)]), ((1, 63, 50), [(32, 25), (16, 13), (8, 7)])],
)
def test_each_stack_halves_height_and_width_rounding_up(shape, sizes) -> None:
    cnn = ImpalaCNN(_space(shape), features_dim=8)
    x = torch.rand(2, *shape)
    got = []
    for stack in cnn.stacks:
        x = stack(x)
        got.append(tuple(x.shape[1:]))
    assert got == [(c, h, w) for c, (h, w) in zip((16, 32, 32), sizes)]
    h, w = sizes[-1]
    assert cnn.head[2].in_features == 32 * h * w and cnn.head[2].out_features == 8


def test_channels_and_features_dim_are_configurable() -> None:
    cnn = ImpalaCNN(_space((3, 64, 64)), features_dim=10, channels=(4, 6))
    assert [s.conv.out_channels for s in cnn.stacks] == [4, 6]
    assert cnn(torch.rand(2, 3, 64, 64)).shape == (2, 10)
    assert cnn.head[2].in_features == 6 * 16 * 16


def test_residual_block_is_relu_conv_relu_conv_plus_identity() -> None:
    torch.manual_seed(0)
    block = ResidualBlock(4)
    x = torch.randn(2, 4, 5, 5)  # negative inputs too: the skip must carry them unrectified
    expected = x + block.conv1(torch.relu(block.conv0(torch.relu(x))))
    torch.testing.assert_close(block(x), expected)
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv1.bias.zero_()
    torch.testing.assert_close(block(x), x)


_BAD = [
    (
        gym.spaces.Discrete(3),
        {},
        r"expected images Box\(0, 255, \(C, H, W\), uint8\), got Discrete",
    ),
    (_space((64, 64)), {}, r"expected 3-D images .*got 2-D shape \(64, 64\)"),
    (_space((1, 3, 64, 64)), {}, r"expected 3-D images .*got 4-D shape \(1, 3, 64, 64\)"),
    (_space(low=0.0, high=1.0, dtype=np.float32), {}, r"uint8 .*got float32 in \[0.0, 1.0\]"),
    (_space(high=1), {}, r"expected uint8 images in \[0, 255\].*got uint8 in \[0, 1\]"),
    (_space((64, 64, 3)), {}, r"expected channels-first .*got channels-last \(64, 64, 3\)"),
    (_space(), {"channels": ()}, r"channels: expected a non-empty sequence .*got \(\)"),
    (_space(), {"channels": (16, 0)}, r"channels: expected .*ints >= 1, got \(16, 0\)"),
    (_space(), {"features_dim": 0}, r"features_dim: expected an int >= 1, got 0"),
    (_space(), {"features_dim": 2.5}, r"features_dim: expected an int >= 1, got 2.5"),
]


@pytest.mark.parametrize(("space", "kwargs", "match"), _BAD)
def test_bad_spaces_and_arguments_are_refused(space, kwargs, match) -> None:
    with pytest.raises(ReprlError, match=match) as info:
        ImpalaCNN(space, **kwargs)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value) and "ImpalaCNN" in str(info.value)


# ---------------------------------------------------------------- SB3's orthogonal init


def _extractor_layers(cnn: ImpalaCNN) -> list[nn.Module]:
    return [m for m in cnn.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _is_orthogonal_sqrt2(layer: nn.Module) -> bool:
    """Rows of the (out, fan_in) weight matrix orthogonal with norm sqrt(2) (out <= fan_in)."""
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
    assert w.shape[0] <= w.shape[1]
    return torch.allclose(w @ w.T, 2 * torch.eye(w.shape[0], dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("ortho_init", [True, False])
def test_sb3_orthogonal_init_reaches_the_extractor(ortho_init: bool) -> None:
    env = envs.make_vec(ENV_ID, 2, seed=0, frame_stack=4, grayscale=True)
    torch.manual_seed(0)
    model = make_agent(
        "ppo",
        env,
        mode="pixels",
        pixel_extractor="impala",
        n_steps=16,
        batch_size=32,
        policy_kwargs={"ortho_init": ortho_init},
    )
    layers = _extractor_layers(model.policy.features_extractor)
    assert len(layers) == 3 * 5 + 1  # per stack: 1 conv + 2 residual blocks x 2 convs; 1 linear
    ortho = [_is_orthogonal_sqrt2(m) for m in layers]
    zero_bias = [bool((m.bias == 0).all()) for m in layers]
    # SB3's init_weights: orthogonal_(weight, gain=sqrt(2)), bias 0. PyTorch's default
    # (kaiming-uniform weights, uniform biases) gives neither.
    if ortho_init:
        assert all(ortho) and all(zero_bias)
    else:
        assert not any(ortho) and not any(zero_bias)


# ---------------------------------------------------------------- PROCGEN_PPO


def test_procgen_ppo_holds_train_procgens_settings() -> None:
    assert isinstance(PROCGEN_PPO, PPOHyperparams)
    expected = {
        "n_steps": 256,
        "batch_size": 2048,
        "n_epochs": 3,
        "gamma": 0.999,
        "gae_lambda": 0.95,
        "learning_rate": 5e-4,
        "ent_coef": 0.01,
        "clip_range": 0.2,
        "vf_coef": 0.25,  # train-procgen's 0.5 on ppo2's halved value loss
        "max_grad_norm": 0.5,
    }
    assert {k: getattr(PROCGEN_PPO, k) for k in expected} == expected
    # Everything else stays SB3's default.
    defaults = PPOHyperparams()
    for f in dataclasses.fields(PPOHyperparams):
        if f.name not in expected:
            assert getattr(PROCGEN_PPO, f.name) == getattr(defaults, f.name), f.name
    # 8 minibatches over 256 steps x 64 envs (nminibatches=8, num_envs=64).
    assert 256 * 64 / PROCGEN_PPO.batch_size == 8
    check_ppo_batch(PROCGEN_PPO.n_steps, 64, PROCGEN_PPO.batch_size)
    with pytest.raises(ReprlError, match="does not divide"):
        check_ppo_batch(PROCGEN_PPO.n_steps, 3, PROCGEN_PPO.batch_size)
    kwargs = PROCGEN_PPO.to_sb3_kwargs()
    assert set(kwargs) <= set(inspect.signature(PPO.__init__).parameters)
    assert "policy_kwargs" not in kwargs
    assert math.isclose(kwargs["learning_rate"], 5e-4)


def test_procgen_ppo_builds_an_impala_agent_with_fewer_envs() -> None:
    hp = dataclasses.replace(PROCGEN_PPO, n_steps=16, batch_size=16)
    model = make_agent(
        "ppo",
        envs.make_vec(ENV_ID, 2, seed=0, frame_stack=4, grayscale=True),
        mode="pixels",
        pixel_extractor="impala",
        hyperparams=hp,
    )
    assert isinstance(model.policy.features_extractor, ImpalaCNN)
    assert (model.n_epochs, model.gamma, model.ent_coef) == (3, 0.999, 0.01)
    assert PROCGEN_PPO.n_steps == 256  # replace() left the shared constant alone
