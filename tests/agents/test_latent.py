"""EncodeObservations: latents equal the extractor path's features, terminal obs, clear errors."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

import envs
import representations as R
from agents import EncodeObservations, make_agent
from tests.agents.conftest import TINY


class _ImageEnv(gym.Env):
    """A constant-image env with any observation space (for validation tests)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        self.observation_space = space
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def _frames(n: int = 6, seed: int = 0) -> np.ndarray:
    env = envs.make_vec("reprl/BreakoutStandard-v0", n, seed=seed)
    env.reset()
    rng = np.random.default_rng(seed)
    for _ in range(20):
        obs, *_ = env.step(rng.integers(0, env.action_space.n, n))
    return obs


def test_latents_equal_the_extractor_path(ckpt: Path) -> None:
    frames = _frames()
    raw = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0)
    wrapper = EncodeObservations(raw, ckpt)
    latents = wrapper.encode(frames)
    assert latents.shape == (len(frames), TINY["latent_dim"]) and latents.dtype == np.float32

    model = make_agent("ppo", raw, encoder=ckpt, fast=False, n_steps=16, batch_size=16)
    obs_t, _ = model.policy.obs_to_tensor(frames)  # what SB3 does at predict/collect time
    with torch.no_grad():
        features = model.policy.extract_features(obs_t)
    torch.testing.assert_close(torch.from_numpy(latents), features, atol=1e-5, rtol=0)
    # the stored (contiguous) layout SB3 trains on gives the same numbers
    stored = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        trained = model.policy.extract_features(stored)
    torch.testing.assert_close(torch.from_numpy(latents), trained, atol=1e-5, rtol=0)


def test_reset_step_and_terminal_observations_are_encoded(ckpt: Path) -> None:
    kw = {"seed": 3, "max_episode_steps": 4}
    raw = envs.make_vec("reprl/BreakoutStandard-v0", 3, **kw)
    wrapped = EncodeObservations(envs.make_vec("reprl/BreakoutStandard-v0", 3, **kw), ckpt)
    assert wrapped.observation_space == gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    enc = R.load(ckpt)

    def encode(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return enc.encode(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0)

    torch.testing.assert_close(torch.from_numpy(wrapped.reset()), encode(raw.reset()), atol=1e-5,
                               rtol=0)  # fmt: skip
    assert len(wrapped.reset_infos) == 3
    actions = np.random.default_rng(0).integers(0, 3, (6, 3))
    ended = 0
    for a in actions:
        obs, rew, done, infos = raw.step(a)
        zobs, zrew, zdone, zinfos = wrapped.step(a)
        np.testing.assert_array_equal(rew, zrew)
        np.testing.assert_array_equal(done, zdone)
        torch.testing.assert_close(torch.from_numpy(zobs), encode(obs), atol=1e-5, rtol=0)
        for i in np.flatnonzero(done):
            term, zterm = infos[i]["terminal_observation"], zinfos[i]["terminal_observation"]
            assert zterm.shape == (8,)
            torch.testing.assert_close(torch.from_numpy(zterm), encode(term[None])[0], atol=1e-5,
                                       rtol=0)  # fmt: skip
            assert zinfos[i]["TimeLimit.truncated"] == infos[i]["TimeLimit.truncated"]
            ended += 1
    assert ended == 3  # every env truncated at step 4


def test_accepts_channels_first_envs_and_models(ckpt: Path) -> None:
    frames = _frames(3)
    enc = R.load(ckpt)
    enc.train()
    hwc = EncodeObservations(envs.make_vec("reprl/BreakoutStandard-v0", 1, seed=0), enc)
    assert enc.training and all(p.requires_grad for p in enc.parameters())  # caller's untouched
    chw = EncodeObservations(VecTransposeImage(envs.make_vec("reprl/BreakoutStandard-v0", 1)),
                             str(ckpt))  # fmt: skip
    assert not hwc.encoder.training
    np.testing.assert_array_equal(hwc.encode(frames), chw.encode(frames.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), r"shape.*\(3, 64, 64\).*\(32, 32, 3\)"),
        (gym.spaces.Box(0, 255, (64, 64, 1), np.uint8), r"channels.*C=3 \(RGB\).*got C=1"),
        (gym.spaces.Box(0.0, 1.0, (64, 64, 3), np.float32), r"dtype: expected uint8.*float32"),
        (gym.spaces.Box(0, 128, (64, 64, 3), np.uint8), r"range: expected.*\[0, 255\].*high 128"),
    ],
)
def test_refuses_mismatched_env(ckpt: Path, space: gym.spaces.Box, match: str) -> None:
    venv = DummyVecEnv([lambda: _ImageEnv(space)])
    with pytest.raises(ValueError, match=match):
        EncodeObservations(venv, ckpt)


def test_refuses_bad_encoder(ckpt: Path) -> None:
    venv = envs.make_vec("reprl/BreakoutStandard-v0", 1)
    with pytest.raises(TypeError, match="Representation or a checkpoint path"):
        EncodeObservations(venv, 42)  # type: ignore[arg-type]
    wrapper = EncodeObservations(venv, ckpt)
    with pytest.raises(ValueError, match="dtype: expected uint8"):
        wrapper.encode(np.zeros((1, 64, 64, 3), np.float32))
