"""Frame stacking and grayscale observations, one implementation for every env.

Semantics (other layers rely on them exactly):

- an observation is ``(H, W, C * k)`` uint8, channels-last, the k most recent frames of the
  episode concatenated along the channels, **oldest first**; ``C = 1`` with grayscale, else 3;
- at a reset, and at every auto-reset, the stack holds k copies of the episode's first frame;
- the terminal observation of a finished episode (SB3's ``infos[i]["terminal_observation"]``,
  gymnasium's ``final_obs``) is the stack ending with its terminal frame, the k - 1 frames
  before it from the same episode (copies of the first frame where the episode was shorter);
- grayscale is ITU-R 601 luma, ``0.299 R + 0.587 G + 0.114 B``, rounded as OpenCV's
  ``cvtColor(RGB2GRAY)`` does for uint8 (:func:`envs.gray.rgb_to_gray`). Note that
  gymnasium's own ``GrayscaleObservation`` wrapper uses other weights (0.2125, 0.7154,
  0.0721) and truncates.

:class:`FrameStacker` holds the stacks as a torch tensor on the env's device (a shift
buffer: each step makes one new ``(N, H, W, C * k)`` tensor, which is also the returned
observation, so nothing returned is written to later). :class:`StackedBatch` puts it in front
of a batched torch env (reprl's Breakout: the SB3, gymnasium-vector and single-env adapters
then all see stacked observations); :class:`VecFrameStacker` puts the same object behind any
SB3 ``VecEnv`` with channels-last uint8 observations (ALE), on the CPU. reprl's Breakout draws
its grayscale frames itself, in luma colours (the same numbers, a third of the work).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn, VecEnvWrapper
from torch import Tensor

from envs.batched import StepResult
from envs.errors import ReprlError
from envs.gray import rgb_to_gray


def check_stack_args(frame_stack: Any, grayscale: Any) -> tuple[int, bool]:
    """Validates ``frame_stack`` (an int >= 1) and ``grayscale`` (a bool).

    Raises:
        ReprlError: anything else.
    """
    if (
        not isinstance(frame_stack, (int, np.integer))
        or isinstance(frame_stack, bool)
        or frame_stack < 1
    ):
        raise ReprlError(f"frame_stack: expected an integer >= 1, got {frame_stack!r}")
    if not isinstance(grayscale, (bool, np.bool_)):
        raise ReprlError(f"grayscale: expected True or False, got {grayscale!r}")
    return int(frame_stack), bool(grayscale)


class FrameStacker:
    """The stacks of N envs, as one ``(N, H, W, C * k)`` uint8 tensor.

    Args:
        num_envs: N.
        frame_shape: ``(H, W, 3)`` of one RGB frame, or ``(H, W, 1)`` of a frame already gray.
        frame_stack: k >= 1.
        grayscale: convert RGB frames to luma (C = 1) before stacking.
        device: where the stacks live.
    """

    def __init__(
        self,
        num_envs: int,
        frame_shape: Sequence[int],
        frame_stack: int,
        grayscale: bool,
        device: torch.device | str = "cpu",
    ) -> None:
        self.k, self.grayscale = check_stack_args(frame_stack, grayscale)
        h, w, c = frame_shape
        if c not in (1, 3):
            raise ReprlError(
                f"frame stacking: expected frames (H, W, 3) or (H, W, 1), got {frame_shape}"
            )
        self._convert = self.grayscale and c == 3
        self.channels = 1 if self.grayscale else int(c)
        self.obs_shape = (int(h), int(w), self.channels * self.k)
        self.buf = torch.zeros((num_envs, *self.obs_shape), dtype=torch.uint8, device=device)

    def convert(self, frames: Tensor) -> Tensor:
        """``(..., H, W, 3)`` uint8 -> ``(..., H, W, C)`` (identity unless converting)."""
        return rgb_to_gray(frames) if self._convert else frames

    def reset(self, frames: Tensor) -> Tensor:
        """Fills every stack with k copies of ``frames`` (N, H, W, 3 or 1).

        Returns:
            The new ``(N, H, W, C * k)`` stacks.
        """
        self.buf = self.convert(frames).repeat(1, 1, 1, self.k)
        return self.buf

    def _push(self, new: Tensor) -> Tensor:
        """A new buffer: each stack shifted by one frame, ``new`` (N, H, W, C) appended."""
        c = self.channels
        out = torch.empty_like(self.buf)
        if self.k > 1:
            # one contiguous shift of the whole buffer moves every pixel's channels left by C
            # (the last C of each pixel receive the next pixel's first C, overwritten below);
            # much faster than a strided copy of (k - 1) * C channels per pixel
            out.view(-1)[:-c] = self.buf.view(-1)[c:]
        # the new frame, one channel at a time as flat strided copies (torch copies a last
        # dimension of 3 far slower than three 1-d strided loops)
        flat, src, kc = out.view(-1), new.reshape(-1), self.k * c
        for j in range(c):
            flat[kc - c + j :: kc].copy_(src[j::c])
        return out

    def step(
        self, frames: Tensor, done_index: Tensor, final_frames: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Pushes one step's frames.

        Args:
            frames: ``(N, H, W, 3 or 1)`` uint8, the frames after the step (the new episode's
                first frame where an episode ended, SB3's auto-reset).
            done_index: ``(K,)`` int64, the envs whose episode ended.
            final_frames: ``(K, H, W, 3 or 1)`` uint8, the terminal frames of those episodes.

        Returns:
            ``stacks (N, H, W, C * k)`` (a new tensor) and ``final_stacks (K, H, W, C * k)``:
            the terminal observations, each ending with its terminal frame.
        """
        c = self.channels
        new = self.convert(frames)
        self.buf = self._push(new)
        if done_index.numel() == 0:
            return self.buf, self.buf[:0]
        final = self.buf[done_index]  # advanced indexing copies
        final[..., -c:] = self.convert(final_frames)
        self.buf[done_index] = new[done_index].repeat(1, 1, 1, self.k)
        return self.buf, final


class StackedBatch:
    """A batched torch env (:class:`envs.breakout.BreakoutBatch`) with stacked observations.

    Everything but observations is the wrapped core's (attributes are forwarded); ``render``
    stays the core's RGB frame, for videos. The stacks live on the core's device.

    Args:
        core: the batched env.
        frame_stack: k >= 1.
        grayscale: convert the core's RGB frames to luma here (C = 1); a core that draws luma
            frames itself (``BreakoutBatch(grayscale=True)``) needs none.
    """

    def __init__(self, core: Any, frame_stack: int = 1, grayscale: bool = False) -> None:
        self.core = core
        self.stacker = FrameStacker(
            core.num_envs, core.single_obs_shape, frame_stack, grayscale, core.device
        )
        self.frame_stack, self.grayscale = self.stacker.k, self.stacker.grayscale

    def __getattr__(self, name: str) -> Any:
        if name == "core":  # not set yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.core, name)

    @property
    def single_obs_shape(self) -> tuple[int, int, int]:
        """(H, W, C * k)."""
        return self.stacker.obs_shape

    def reset(self, seed: int | Sequence[int | None] | None = None) -> Tensor:
        """Resets the core; ``(N, H, W, C * k)`` stacks of k copies of the first frames."""
        return self.stacker.reset(self.core.reset(seed))

    def step(self, actions: np.ndarray | Tensor) -> StepResult:
        """Steps the core; ``obs`` and ``final_obs`` of the result are stacks."""
        res = self.core.step(actions)
        obs, final = self.stacker.step(res.obs, res.done_index, res.final_obs)
        return StepResult(
            obs,
            res.reward,
            res.terminated,
            res.truncated,
            res.done_index,
            final,
            res.final_factors,
        )

    def get_state(self, index: Tensor) -> dict[str, Tensor]:
        """The core's state of games ``index`` and their stacks."""
        return {**self.core.get_state(index), "stacks": self.stacker.buf[index]}

    def set_state(self, index: Tensor, state: dict[str, Tensor]) -> None:
        """Restores a state taken by :meth:`get_state`."""
        self.core.set_state(index, state)
        self.stacker.buf[index] = state["stacks"]


class VecFrameStacker(VecEnvWrapper):
    """Frame stacking and grayscale behind any SB3 ``VecEnv`` of ``(H, W, 3)`` uint8 frames.

    The semantics of this module's docstring, with :class:`FrameStacker` on the CPU (the same
    code as reprl's batched envs use). ``get_images`` / ``render`` stay the wrapped env's RGB
    frames.

    Args:
        venv: the VecEnv (e.g. ALE's Breakout from :func:`envs.make_vec`).
        frame_stack: k >= 1.
        grayscale: luma frames (C = 1) instead of RGB.
    """

    def __init__(self, venv: VecEnv, frame_stack: int = 1, grayscale: bool = False) -> None:
        shape = venv.observation_space.shape
        if shape is None or len(shape) != 3:
            raise ReprlError(f"frame stacking: expected (H, W, 3) observations, got {shape}")
        self.stacker = FrameStacker(venv.num_envs, shape, frame_stack, grayscale)
        self.frame_stack, self.grayscale = self.stacker.k, self.stacker.grayscale
        space = gym.spaces.Box(0, 255, self.stacker.obs_shape, dtype=np.uint8)
        super().__init__(venv, observation_space=space)

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        return self.stacker.reset(torch.from_numpy(np.asarray(obs))).numpy()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        done = np.flatnonzero(dones)
        if done.size:
            final = np.stack([infos[i]["terminal_observation"] for i in done])
        else:
            final = np.zeros((0, *obs.shape[1:]), dtype=np.uint8)
        stacks, finals = self.stacker.step(
            torch.from_numpy(np.asarray(obs)), torch.from_numpy(done), torch.from_numpy(final)
        )
        finals_np = finals.numpy()
        for j, i in enumerate(done.tolist()):
            infos[i]["terminal_observation"] = finals_np[j]
        return stacks.numpy(), rewards, dones, infos
