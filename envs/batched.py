"""The interface of reprl's batched torch environments, shared by every family and the adapters.

A *batched environment* keeps N games in tensors on one device and auto-resets finished games
inside ``step`` (SB3's convention), handing back their last frame separately in a
:class:`StepResult`. Breakout (:class:`envs.breakout.BreakoutBatch`), the lab
(:class:`envs.lab.LabBatch`) and Memory Maze (:class:`envs.memory_maze.MemoryMazeBatch`) are
such envs; :mod:`envs.adapters` exposes any of them as an SB3 ``VecEnv``, a gymnasium
``VectorEnv`` and a gymnasium ``Env``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor


@dataclass
class StepResult:
    """What :meth:`BatchedEnv.step` returns (all tensors on the env's device).

    Attributes:
        obs: (N, H, W, C) uint8, the current frames (first frame of a new episode where done).
        reward: (N,) float32.
        terminated: (N,) bool, the episode ended by the game's rules.
        truncated: (N,) bool, the episode hit the time limit (and did not terminate).
        done_index: (K,) int64 games whose episode ended this step.
        final_obs: (K, H, W, C) uint8 last frames of those episodes.
        final_factors: factors of those last frames, name -> (K,) or (K, B).
    """

    obs: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    done_index: Tensor
    final_obs: Tensor
    final_factors: dict[str, Tensor]


class BatchedEnv(Protocol):
    """What the adapters need from a batched environment (:class:`envs.breakout.BreakoutBatch`,
    :class:`envs.lab.LabBatch`, ...)."""

    num_envs: int
    num_actions: int
    device: torch.device

    @property
    def single_obs_shape(self) -> tuple[int, int, int]: ...

    def reset(self, seed: int | Sequence[int | None] | None = None) -> Tensor: ...

    def step(self, actions: np.ndarray | Tensor) -> StepResult: ...

    def factors(self, index: Tensor | None = None) -> dict[str, Tensor]: ...

    def render(self, index: Tensor | None = None) -> Tensor: ...

    def get_action_meanings(self) -> list[str]: ...

    def get_state(self, index: Tensor) -> dict[str, Tensor]: ...

    def set_state(self, index: Tensor, state: dict[str, Tensor]) -> None: ...
