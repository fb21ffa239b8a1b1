"""EncodeObservations: latents equal the extractor path's features, terminal obs, clear errors."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

import envs
import representations as R
from agents import EncodeObservations, PretrainedEncoderExtractor, extractor_kwargs, make_agent
from envs.errors import ReprlError
from tests.agents.conftest import TINY, random_stacks, stacked_env


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

    torch.testing.assert_close(
        torch.from_numpy(wrapped.reset()), encode(raw.reset()), atol=1e-5, rtol=0
    )
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
            torch.testing.assert_close(
                torch.from_numpy(zterm), encode(term[None])[0], atol=1e-5, rtol=0
            )
            assert zinfos[i]["TimeLimit.truncated"] == infos[i]["TimeLimit.truncated"]
            ended += 1
    assert ended == 3  # every env truncated at step 4


def test_accepts_channels_first_envs_and_models(ckpt: Path) -> None:
    frames = _frames(3)
    enc = R.load(ckpt)
    enc.train()
    hwc = EncodeObservations(envs.make_vec("reprl/BreakoutStandard-v0", 1, seed=0), enc)
    assert enc.training and all(p.requires_grad for p in enc.parameters())  # caller's untouched
    chw = EncodeObservations(
        VecTransposeImage(envs.make_vec("reprl/BreakoutStandard-v0", 1)), str(ckpt)
    )
    assert not hwc.encoder.training
    np.testing.assert_array_equal(hwc.encode(frames), chw.encode(frames.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), r"shape.*\(3, 64, 64\).*\(32, 32, 3\)"),
        (gym.spaces.Box(0, 255, (64, 64, 1), np.uint8), r"channels.*C=3 \(RGB\).*got C=1"),
        (gym.spaces.Box(0, 255, (64, 64, 4), np.uint8), r"multiple of 3 channels.*got C=4"),
        (gym.spaces.Box(0.0, 1.0, (64, 64, 3), np.float32), r"dtype: expected uint8.*float32"),
        (gym.spaces.Box(0, 128, (64, 64, 3), np.uint8), r"range: expected.*\[0, 255\].*high 128"),
    ],
)
def test_refuses_mismatched_env(ckpt: Path, space: gym.spaces.Box, match: str) -> None:
    venv = DummyVecEnv([lambda: _ImageEnv(space)])
    with pytest.raises(ReprlError, match=match):
        EncodeObservations(venv, ckpt)


def test_refuses_bad_encoder(ckpt: Path) -> None:
    venv = envs.make_vec("reprl/BreakoutStandard-v0", 1)
    with pytest.raises(TypeError, match="Representation or a checkpoint path"):
        EncodeObservations(venv, 42)  # type: ignore[arg-type]
    wrapper = EncodeObservations(venv, ckpt)
    with pytest.raises(ReprlError, match="dtype: expected uint8"):
        wrapper.encode(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ReprlError, match=r"channels: .*C=3 \(RGB\) x frame_stack 2 = 6.*got C=3"):
        EncodeObservations(venv, ckpt, frame_stack=2)


# ---------------------------------------------------------------- temporal context


def _extractor_features(ckpt: Path, obs: np.ndarray) -> np.ndarray:
    """The extractor path's features of ``(B, H, W, C * k)`` stacks, as SB3 computes them."""
    space = gym.spaces.Box(0, 255, (obs.shape[3], *obs.shape[1:3]), np.uint8)
    ext = PretrainedEncoderExtractor(space, **extractor_kwargs(ckpt))
    with torch.no_grad():
        return ext(torch.from_numpy(obs).permute(0, 3, 1, 2).float() / 255.0).numpy()


@pytest.mark.parametrize(
    ("stacker", "k", "gray"),
    [
        ("copies", 3, False),
        ("copies", 4, True),
        ("zeros", 2, False),
        ("copies", 1, False),
        ("make_vec", 4, True),
        ("make_vec", 2, False),
    ],
)
def test_latent_stacks_equal_the_extractor_path_over_episode_boundaries(
    ckpt: Path, gray_ckpt: Path, stacker: str, k: int, gray: bool
) -> None:
    """Same stacked stream (episodes of 5 steps): wrapper latents == extractor features.

    ``copies``: a fresh stack holds k copies of the first frame (envs.make_vec's semantics);
    ``zeros``: SB3's VecFrameStack, whose fresh stack is zeros before the first frame;
    ``make_vec``: reprl's own stacking, ``envs.make_vec(..., frame_stack=k)``.
    """
    enc = gray_ckpt if gray else ckpt

    def make():
        if stacker == "make_vec":
            return envs.make_vec(
                "reprl/BreakoutStandard-v0",
                3,
                seed=3,
                max_episode_steps=5,
                frame_stack=k,
                grayscale=gray,
            )
        if stacker == "zeros":
            raw = envs.make_vec("reprl/BreakoutStandard-v0", 3, seed=3, max_episode_steps=5)
            return VecFrameStack(raw, k, channels_order="last")
        return stacked_env(3, k, gray=gray, seed=3, max_episode_steps=5)

    raw, wrapped = make(), EncodeObservations(make(), enc)
    assert wrapped.frame_stack == k
    assert wrapped.observation_space.shape == (k * TINY["latent_dim"],)
    np.testing.assert_allclose(wrapped.reset(), _extractor_features(enc, raw.reset()), atol=1e-5)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(12):
        a = rng.integers(0, 3, 3)
        obs, rew, done, infos = raw.step(a)
        zobs, zrew, zdone, zinfos = wrapped.step(a)
        np.testing.assert_array_equal(rew, zrew)
        np.testing.assert_array_equal(done, zdone)
        np.testing.assert_allclose(zobs, _extractor_features(enc, obs), atol=1e-5)
        for i in np.flatnonzero(done):
            term = _extractor_features(enc, infos[i]["terminal_observation"][None])[0]
            np.testing.assert_allclose(zinfos[i]["terminal_observation"], term, atol=1e-5)
            ends += 1
    assert ends == 6  # every env truncated after steps 5 and 10


def test_stacked_wrapper_encodes_one_frame_per_env_step(ckpt: Path) -> None:
    """Between episode starts the wrapper encodes N frames per step; the extractor, N * k."""
    k, n = 4, 3
    wrapped = EncodeObservations(stacked_env(n, k, seed=0, max_episode_steps=6), ckpt)
    sizes: list[int] = []
    wrapped.encoder.encoder.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    wrapped.reset()
    assert sizes == [n * k]  # a fresh stack: every frame
    for t in range(1, 7):
        sizes.clear()
        _, _, done, _ = wrapped.step(np.zeros(n, np.int64))
        if t < 6:
            assert not done.any() and sizes == [n]
    # step 6 ends every episode: N newest + N * k fresh frames + N terminal frames
    assert done.all() and sizes == [n + n * k + n]


def test_stateless_encode_matches_the_extractor(ckpt: Path) -> None:
    stacks = random_stacks(5, 3)
    wrapped = EncodeObservations(stacked_env(1, 3), ckpt)
    np.testing.assert_allclose(wrapped.encode(stacks), _extractor_features(ckpt, stacks), atol=1e-5)
    chw = EncodeObservations(VecTransposeImage(stacked_env(1, 3)), ckpt)
    np.testing.assert_array_equal(chw.encode(stacks.transpose(0, 3, 1, 2)), wrapped.encode(stacks))


def _frozen_agent(ckpt: Path, tmp_path: Path, features_dim: int | None) -> Path:
    """A briefly trained fast-path agent on 4 stacked frames, saved (pixel-space export)."""
    from agents import save_agent

    env = envs.make_vec("reprl/BreakoutStandard-v0", 3, seed=0, frame_stack=4)
    model = make_agent(
        "ppo", env, encoder=ckpt, mode="frozen", features_dim=features_dim, seed=0,
        n_steps=16, batch_size=24, n_epochs=2,
    )  # fmt: skip
    model.learn(48)
    save_agent(model, tmp_path / "agent.zip")
    return tmp_path / "agent.zip"


@pytest.mark.parametrize("features_dim", [None, 16])
def test_latent_view_acts_as_the_pixel_agent(ckpt: Path, tmp_path: Path, features_dim) -> None:
    """The exported agent on pixel stacks and its latent view on the wrapper's latents take the
    same actions, greedy and sampled (same torch seed), over episode boundaries."""
    from agents import LatentPolicy, latent_view, load_agent

    model = load_agent(_frozen_agent(ckpt, tmp_path, features_dim))

    def make():
        return envs.make_vec("reprl/BreakoutStandard-v0", 3, seed=5, frame_stack=4,
                             max_episode_steps=7)  # fmt: skip

    raw = make()
    view = latent_view(model, make())
    assert view is not None
    venv, policy = view
    assert isinstance(venv, EncodeObservations) and isinstance(policy, LatentPolicy)
    assert venv.frame_stack == 4
    obs, z = raw.reset(), venv.reset()
    for t in range(20):
        det = t % 2 == 0
        torch.manual_seed(t)
        a, _ = model.predict(obs, deterministic=det)
        torch.manual_seed(t)
        b, _ = policy.predict(z, deterministic=det)
        np.testing.assert_array_equal(a, b)
        obs, _, done, _ = raw.step(a)
        z, _, zdone, _ = venv.step(b)
        np.testing.assert_array_equal(done, zdone)


def test_latent_view_is_only_for_frozen_encoders(ckpt: Path, tmp_path: Path) -> None:
    from agents import latent_view

    env = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0, frame_stack=4, grayscale=True)
    pixels = make_agent("ppo", env, mode="pixels", n_steps=8, batch_size=16)
    assert latent_view(pixels, env) is None
    rgb = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0, frame_stack=4)
    tuned = make_agent("ppo", rgb, encoder=ckpt, mode="finetune", n_steps=8, batch_size=16)
    assert latent_view(tuned, rgb) is None
    frozen = make_agent("ppo", rgb, encoder=ckpt, mode="frozen", fast=False, n_steps=8,
                        batch_size=16)  # fmt: skip
    assert latent_view(frozen, rgb) is not None  # the extractor path too
