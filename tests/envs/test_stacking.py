"""Frame stacking and grayscale in make_vec and the gymnasium adapters, against hand-built stacks.

Every stack here is rebuilt by hand from single-frame observations of the same seed.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.errors import ReprlError
from envs.gray import rgb_to_gray

ID = "reprl/BreakoutJuggling-v0"  # three balls: frames change every step


def luma(frames: np.ndarray) -> np.ndarray:
    """The reference: ITU-R 601 in OpenCV's 14-bit fixed point, (..., 3) -> (..., 1)."""
    f = frames.astype(np.int64)
    y = (4899 * f[..., 0] + 9617 * f[..., 1] + 1868 * f[..., 2] + 8192) >> 14
    return y[..., None].astype(np.uint8)


def hand_stacks(env_id: str, n: int, k: int, gray: bool, steps: int, actions, **kw):
    """Stacks built by hand from the single-frame VecEnv: (obs per step, terminal per step)."""
    venv = envs.make_vec(env_id, n, seed=11, **kw)
    conv = luma if gray else (lambda x: x)
    first = conv(venv.reset())
    stacks = [list(first[i : i + 1]) * k for i in range(n)]
    out = [np.stack([np.concatenate(s, -1) for s in stacks])]
    terminals = [{}]
    for t in range(steps):
        obs, _, done, infos = venv.step(actions[t])
        obs = conv(obs)
        term = {}
        for i in range(n):
            if done[i]:
                last = conv(infos[i]["terminal_observation"])
                term[i] = np.concatenate([*stacks[i][1:], last], -1)
                stacks[i] = [obs[i]] * k
            else:
                stacks[i] = [*stacks[i][1:], obs[i]]
        out.append(np.stack([np.concatenate(s, -1) for s in stacks]))
        terminals.append(term)
    return out, terminals


@pytest.mark.parametrize(("k", "gray"), [(4, True), (3, False), (1, True), (2, False)])
def test_stacked_vecenv_equals_a_hand_built_stack_across_episodes(k: int, gray: bool) -> None:
    n, steps = 3, 13
    actions = np.random.default_rng(0).integers(0, 3, (steps, n))
    kw = {"max_episode_steps": 5}  # episode boundaries at steps 5 and 10
    want, want_term = hand_stacks(ID, n, k, gray, steps, actions, **kw)
    venv = envs.make_vec(ID, n, seed=11, frame_stack=k, grayscale=gray, **kw)
    c = 1 if gray else 3
    assert venv.observation_space.shape == (64, 64, c * k)
    obs = venv.reset()
    np.testing.assert_array_equal(obs, want[0])
    ends = 0
    for t in range(steps):
        obs, _, done, infos = venv.step(actions[t])
        assert obs.shape == (n, 64, 64, c * k) and obs.dtype == np.uint8
        np.testing.assert_array_equal(obs, want[t + 1], err_msg=f"step {t}")
        assert set(np.flatnonzero(done)) == set(want_term[t + 1])
        for i, term in want_term[t + 1].items():
            np.testing.assert_array_equal(infos[i]["terminal_observation"], term)
            ends += 1
    assert ends == 2 * n


def test_reset_fills_the_stack_with_the_first_frame_and_the_oldest_comes_first() -> None:
    venv = envs.make_vec(ID, 2, seed=0, frame_stack=3)
    obs = venv.reset()
    np.testing.assert_array_equal(obs[..., 0:3], obs[..., 3:6])
    np.testing.assert_array_equal(obs[..., 3:6], obs[..., 6:9])
    frames = [obs[..., 6:9]]
    for _ in range(3):
        obs = venv.step(np.zeros(2, dtype=np.int64))[0]
        frames.append(obs[..., 6:9])
    np.testing.assert_array_equal(obs, np.concatenate(frames[1:], -1))  # oldest first
    assert not np.array_equal(frames[1], frames[3])


def test_grayscale_is_itu_601_luma_rounded_as_opencv() -> None:
    # hand-worked: 0.299 R + 0.587 G + 0.114 B, rounded
    colours = torch.tensor(
        [[142, 142, 142], [200, 72, 73], [66, 72, 200], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
        dtype=torch.uint8,
    )
    assert rgb_to_gray(colours)[:, 0].tolist() == [142, 110, 85, 76, 150, 29]
    rgb = torch.randint(
        0, 256, (5000, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    np.testing.assert_array_equal(rgb_to_gray(rgb).numpy(), luma(rgb.numpy()))
    exact = rgb.double() @ torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    assert (rgb_to_gray(rgb)[:, 0].double() - exact).abs().max() <= 0.51
    # the env's grayscale frame is the luma of its RGB frame
    rgb_obs = envs.make_vec(ID, 2, seed=4).reset()
    gray_obs = envs.make_vec(ID, 2, seed=4, grayscale=True).reset()
    assert gray_obs.shape == (2, 64, 64, 1)
    np.testing.assert_array_equal(gray_obs, luma(rgb_obs))


@pytest.mark.parametrize("backend", ["ale_vector", "gymnasium"])
def test_ale_stacks_the_same_way(backend: str) -> None:
    n, k, steps = 2, 3, 40
    actions = np.random.default_rng(1).integers(0, 4, (steps, n))
    kw = {"max_episode_steps": 15, "repeat_action_probability": 0.0, "backend": backend}
    want, want_term = hand_stacks("ALE/Breakout-v5", n, k, True, steps, actions, **kw)
    venv = envs.make_vec("ALE/Breakout-v5", n, seed=11, frame_stack=k, grayscale=True, **kw)
    assert venv.observation_space.shape == (64, 64, k)
    np.testing.assert_array_equal(venv.reset(), want[0])
    for t in range(steps):
        obs, _, _, infos = venv.step(actions[t])
        np.testing.assert_array_equal(obs, want[t + 1], err_msg=f"step {t}")
        for i, term in want_term[t + 1].items():
            np.testing.assert_array_equal(infos[i]["terminal_observation"], term)
    assert sum(len(t) for t in want_term) == 2 * n
    images = venv.get_images()
    assert len(images) == n and images[0].shape == (64, 64, 3) and images[0].dtype == np.uint8
    venv.close()


def test_gymnasium_adapters_give_the_same_stacks() -> None:
    n, k, steps = 2, 3, 12
    actions = np.random.default_rng(2).integers(0, 3, (steps, n))
    kw = {"max_episode_steps": 5, "frame_stack": k, "grayscale": True}
    sb3 = envs.make_vec(ID, n, seed=5, **kw)
    same = gym.make_vec(
        ID, n, vectorization_mode="vector_entry_point", autoreset_mode="SameStep", **kw
    )
    single = gym.make(ID, **kw)
    o_sb3 = sb3.reset()
    o_same, _ = same.reset(seed=5)
    o_single, _ = single.reset(seed=5)
    np.testing.assert_array_equal(o_sb3, o_same)
    np.testing.assert_array_equal(o_sb3[0], o_single)
    for t in range(steps):
        o_sb3, _, done, infos = sb3.step(actions[t])
        o_same, _, _, _, info = same.step(actions[t])
        o_single, _, s_term, s_trunc, _ = single.step(int(actions[t, 0]))
        np.testing.assert_array_equal(o_sb3, o_same)
        if done[0]:
            assert s_term or s_trunc
            np.testing.assert_array_equal(infos[0]["terminal_observation"], info["final_obs"][0])
            np.testing.assert_array_equal(infos[0]["terminal_observation"], o_single)
            o_single, _ = single.reset()
        np.testing.assert_array_equal(o_sb3[0], o_single, err_msg=f"step {t}")


@pytest.mark.parametrize("kw", [{"frame_stack": 4, "grayscale": True}, {"frame_stack": 2}])
def test_checkers_pass_with_stacking(kw: dict) -> None:
    env = gym.make("reprl/BreakoutStandard-v0", render_mode="rgb_array", **kw)
    gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, kw["frame_stack"] * (1 if kw.get("grayscale") else 3))
    assert env.render().shape == (64, 64, 3)  # videos stay RGB
    assert env.unwrapped.get_action_meanings() == ["NOOP", "LEFT", "RIGHT"]


@pytest.mark.parametrize("env_id", ["reprl/BreakoutStandard-v0", "ALE/Breakout-v5"])
@pytest.mark.parametrize("bad", [0, -1, 2.0, "4", True])
def test_bad_frame_stack_is_refused(env_id: str, bad) -> None:
    with pytest.raises(ReprlError, match=f"frame_stack: expected an integer >= 1, got {bad!r}"):
        envs.make_vec(env_id, 1, frame_stack=bad)


@pytest.mark.parametrize("kw", [{}, {"frame_stack": 4, "grayscale": True}])
def test_images_for_videos_are_rgb(kw: dict) -> None:
    venv = envs.make_vec("reprl/BreakoutStandard-v0", 3, seed=0, **kw)
    obs = venv.reset()
    images = venv.get_images()
    assert len(images) == 3
    assert all(i.shape == (64, 64, 3) and i.dtype == np.uint8 for i in images)
    if not kw:
        np.testing.assert_array_equal(images[0], obs[0])
    tiled = venv.render()
    assert tiled is not None and tiled.dtype == np.uint8 and tiled.shape[2] == 3
    vector = gym.make_vec(
        "reprl/BreakoutStandard-v0", 3, vectorization_mode="vector_entry_point", **kw
    )
    vector.reset(seed=0)
    assert vector.render().shape == (3, 64, 64, 3)


@pytest.mark.parametrize("variant", envs.VARIANTS)
def test_breakout_draws_luma_equal_to_the_formula_on_its_rgb_frames(variant: str) -> None:
    kw = {"seed": 3, "max_episode_steps": 30, "min_object_size": 2}
    rgb, gray = (
        envs.BreakoutBatch(4, variant, **kw),
        envs.BreakoutBatch(4, variant, grayscale=True, **kw),
    )
    assert gray.single_obs_shape == (64, 64, 1)
    np.testing.assert_array_equal(gray.reset().numpy(), luma(rgb.reset().numpy()))
    actions = np.random.default_rng(0).integers(0, 3, (70, 4))
    for a in actions:
        r, g = rgb.step(a), gray.step(a)
        np.testing.assert_array_equal(g.obs.numpy(), luma(r.obs.numpy()))
        np.testing.assert_array_equal(g.final_obs.numpy(), luma(r.final_obs.numpy()))
        assert torch.equal(gray.render(), rgb.render())  # videos stay RGB
