"""The IMPALA-CNN (Espeholt et al. 2018, "large" network) as an SB3 features extractor.

The network Cobbe et al. 2020 (Procgen) train with PPO, as ``build_impala_cnn`` of
openai/baselines builds it for openai/train-procgen (depths ``[16, 32, 32]``, 256 features):

- for each channel count ``c`` of ``channels``, one *stack*: ``Conv2d(3x3, c, stride 1,
  padding 1)`` -> ``MaxPool2d(3x3, stride 2, padding 1)`` -> two residual blocks, each
  ``x + Conv(ReLU(Conv(ReLU(x))))`` with ``3x3`` convs keeping ``c`` channels;
- then ``ReLU`` -> flatten -> ``Linear(-> features_dim)`` -> ``ReLU``.

Each stack halves height and width (rounding up): ``64 x 64`` -> 32 -> 16 -> 8.

Plain SB3 use::

    from stable_baselines3 import PPO
    from agents import ImpalaCNN, PROCGEN_PPO

    env = ...  # 64 envs: PROCGEN_PPO's batch_size is an eighth of 256 steps x 64 envs
    model = PPO("CnnPolicy", env, policy_kwargs={"features_extractor_class": ImpalaCNN},
                **PROCGEN_PPO.to_sb3_kwargs())

or ``agents.make_agent("ppo", env, mode="pixels", pixel_extractor="impala")``.

SB3's orthogonal initialisation (``ortho_init=True``, gain ``sqrt(2)``, zero biases) reaches
every ``Conv2d`` and ``Linear`` here through ``module.apply``, as baselines initialised it
(orthogonal, gain ``sqrt(2)``). One difference from TensorFlow remains: TF's ``'same'``
max-pooling pads an even-sized input on the bottom/right only, ``padding=1`` pads all four
sides (the usual PyTorch port); output sizes are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn

from envs.errors import ReprlError

#: Channels of the three stacks of the IMPALA "large" network (train-procgen's ``depths``).
IMPALA_CHANNELS: tuple[int, ...] = (16, 32, 32)
#: Size of the IMPALA-CNN's output (train-procgen's ``emb_size``).
IMPALA_FEATURES_DIM = 256


class ResidualBlock(nn.Module):
    """``x + Conv(ReLU(Conv(ReLU(x))))`` with two ``3x3`` convs keeping ``channels`` channels.

    Args:
        channels: Input and output channels, >= 1.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, channels, H, W)`` -> ``(B, channels, H, W)``, any real values."""
        out = self.conv0(torch.relu(x))
        out = self.conv1(torch.relu(out))
        return x + out


class ConvSequence(nn.Module):
    """One IMPALA stack: conv ``3x3`` -> max-pool ``3x3`` stride 2 -> two residual blocks.

    Args:
        in_channels: Input channels, >= 1.
        out_channels: Output channels, >= 1.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.res0 = ResidualBlock(out_channels)
        self.res1 = ResidualBlock(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W)`` -> ``(B, out_channels, ceil(H / 2), ceil(W / 2))``."""
        return self.res1(self.res0(self.pool(self.conv(x))))


def _check_image_space(space: gym.Space) -> tuple[int, int, int]:
    """``(C, H, W)`` of a channels-first ``uint8`` image space in ``[0, 255]``.

    Raises:
        ReprlError: Naming what was expected and what came.
    """
    expected = "Box(0, 255, (C, H, W), uint8)"
    if not isinstance(space, gym.spaces.Box):
        raise ReprlError(
            f"ImpalaCNN observation space: expected images {expected}, got "
            f"{type(space).__name__} {space}"
        )
    shape = tuple(int(s) for s in space.shape)
    if len(shape) != 3:
        raise ReprlError(
            f"ImpalaCNN observation space: expected 3-D images {expected}, got {len(shape)}-D "
            f"shape {shape}"
        )
    if space.dtype != np.uint8 or not (np.all(space.low == 0) and np.all(space.high == 255)):
        low, high = np.min(space.low), np.max(space.high)
        raise ReprlError(
            f"ImpalaCNN observation space: expected uint8 images in [0, 255] {expected}, got "
            f"{space.dtype} in [{low}, {high}]"
        )
    if int(np.argmin(shape)) != 0:
        raise ReprlError(
            f"ImpalaCNN observation space: expected channels-first {expected} (SB3's "
            f"VecTransposeImage makes images channels-first), got channels-last {shape}"
        )
    c, h, w = shape
    return c, h, w


def _check_channels(channels: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(channels)
    except TypeError:
        out = None
    if not out or any(
        isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in out
    ):
        raise ReprlError(
            f"ImpalaCNN channels: expected a non-empty sequence of ints >= 1, got {channels!r}"
        )
    return tuple(int(c) for c in out)


class ImpalaCNN(BaseFeaturesExtractor):
    """The IMPALA-CNN features extractor of the Procgen benchmark (openai/train-procgen).

    Args:
        observation_space: The policy's observation space, ``Box(0, 255, (C, H, W), uint8)``
            (SB3 transposes ``(H, W, C)`` env observations; ``C`` may hold stacked frames).
        features_dim: Size of the output, >= 1 (train-procgen: 256).
        channels: Output channels of each stack, non-empty, each >= 1 (train-procgen:
            ``(16, 32, 32)``).

    Attributes:
        stacks: The :class:`ConvSequence` stacks, in order.
        head: ``Sequential(ReLU, Flatten, Linear(c_last * h * w, features_dim), ReLU)``.
        channels: The stacks' output channels.

    Raises:
        ReprlError: ``observation_space`` is not a 3-D channels-first ``uint8`` image ``Box``
            in ``[0, 255]``; ``channels`` is empty or holds a non-positive entry;
            ``features_dim < 1``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = IMPALA_FEATURES_DIM,
        channels: Sequence[int] = IMPALA_CHANNELS,
    ) -> None:
        c, h, w = _check_image_space(observation_space)
        channels = _check_channels(channels)
        if (
            isinstance(features_dim, bool)
            or not isinstance(features_dim, (int, np.integer))
            or features_dim < 1
        ):
            raise ReprlError(f"ImpalaCNN features_dim: expected an int >= 1, got {features_dim!r}")
        super().__init__(observation_space, int(features_dim))
        self.channels = channels
        ins = (c, *channels[:-1])
        self.stacks = nn.Sequential(*(ConvSequence(i, o) for i, o in zip(ins, channels)))
        with torch.no_grad():  # conv output size by a dummy forward pass, as NatureCNN does
            n_flatten = self.stacks(torch.zeros(1, c, h, w)).flatten(1).shape[1]
        self.head = nn.Sequential(
            nn.ReLU(), nn.Flatten(), nn.Linear(n_flatten, int(features_dim)), nn.ReLU()
        )

    def forward(self, observations: Tensor) -> Tensor:
        """Features of a batch of images.

        Args:
            observations: ``(B, C, H, W)`` float32 in ``[0, 1]`` (SB3's preprocessed images).

        Returns:
            ``(B, features_dim)`` float32, >= 0.
        """
        return self.head(self.stacks(observations))
