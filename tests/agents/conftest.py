"""Shared fixtures of the agent tests: a tiny beta-VAE checkpoint, a hand-made frame stacker."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import envs
import representations as R

TINY = {"latent_dim": 8, "channels": (4, 4, 8, 8), "hidden_dim": 16}
"""A beta-VAE small enough for fast tests (same architecture family as the default)."""

ENV_ID = "reprl/BreakoutStandard-v0"


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "vae.safetensors"
    R.make_representation("beta_vae", **TINY).save(path)
    return path


@pytest.fixture
def gray_ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(1)
    path = tmp_path / "gray.safetensors"
    R.make_representation("beta_vae", input_shape=(1, 64, 64), **TINY).save(path)
    return path


class CopyStack(VecEnvWrapper):
    """Stacks ``k`` frames along the channels, oldest first, written here independently of envs.

    The semantics ``envs.make_vec(..., frame_stack=k)`` promises: observations ``(N, H, W,
    C * k)``; at reset and every auto-reset the stack holds ``k`` copies of the episode's first
    frame; ``terminal_observation`` is the stack ending with the terminal frame. ``gray``
    converts RGB to one luminance channel first (``C = 1``).
    """

    def __init__(self, venv: VecEnv, k: int, gray: bool = False) -> None:
        h, w, c = venv.observation_space.shape
        self.k, self.gray, self.c = k, gray, 1 if gray else c
        space = gym.spaces.Box(0, 255, (h, w, self.c * k), np.uint8)
        super().__init__(venv, observation_space=space)
        self.stack = np.zeros((venv.num_envs, h, w, self.c * k), np.uint8)

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        if not self.gray:
            return obs
        y = obs.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.round(y)[..., None].astype(np.uint8)

    def reset(self) -> np.ndarray:
        frames = self._frame(self.venv.reset())
        self.stack = np.concatenate([frames] * self.k, axis=-1)
        return self.stack.copy()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        frames = self._frame(obs)
        infos = [dict(i) for i in infos]
        new = np.concatenate([self.stack[..., self.c :], frames], axis=-1)
        for i in np.flatnonzero(dones):
            if "terminal_observation" in infos[i]:
                last = self._frame(infos[i]["terminal_observation"][None])[0]
                infos[i]["terminal_observation"] = np.concatenate(
                    [self.stack[i, ..., self.c :], last], axis=-1
                )
            new[i] = np.concatenate([frames[i]] * self.k, axis=-1)
        self.stack = new
        return new.copy(), rewards, dones, infos


def stacked_env(n: int, k: int, *, gray: bool = False, seed: int = 0, **kwargs) -> CopyStack:
    """``n`` reprl Breakout envs stacked ``k`` deep by :class:`CopyStack`."""
    return CopyStack(envs.make_vec(ENV_ID, n, seed=seed, **kwargs), k, gray=gray)


def random_stacks(n: int, k: int, *, gray: bool = False, seed: int = 1) -> np.ndarray:
    """``(n, 64, 64, C * k)`` uint8 stacks from the middle of episodes."""
    env = stacked_env(n, k, gray=gray, seed=seed)
    env.reset()
    rng = np.random.default_rng(seed)
    for _ in range(30):
        obs, *_ = env.step(rng.integers(0, env.action_space.n, n))
    return obs
