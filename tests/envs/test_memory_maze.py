"""Memory Maze through reprl's API: checkers, seeds, make_vec, autoreset, factors, refusals.

The refusals run everywhere; the rest needs the ``dmc`` extra (``pip install -e ".[dmc]"``)
and skips, saying so, without it. MuJoCo renders slowly on a CPU (a world takes about 3 s to
build and 1 s per reset), so the worlds are built once per module and every test re-seeds
what it uses.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import VecEnv

import envs
from envs.errors import ReprlError
from envs.memory_maze import ACTIONS, FACTOR_NAMES, import_memory_maze

ID = "reprl/MemoryMaze-9x9-v0"
NOOP, FORWARD, TURN_LEFT, TURN_RIGHT, FORWARD_TURN_LEFT, FORWARD_TURN_RIGHT = range(6)

_MISSING = [
    m for m in ("memory_maze", "dm_control", "mujoco", "gym") if importlib.util.find_spec(m) is None
]


def _need_extra() -> None:
    """Skips (with the reason) where the dmc extra is not installed; imports nothing itself,
    so ``MUJOCO_GL`` is defaulted by reprl, not by whichever package comes first."""
    if _MISSING:
        pytest.skip(f'the dmc extra is not installed (no {_MISSING}): pip install -e ".[dmc]"')


@pytest.fixture(scope="module")
def single() -> Iterator[gym.Env]:
    _need_extra()
    env = gym.make(ID, render_mode="rgb_array")
    yield env
    env.unwrapped.core.close()


@pytest.fixture(scope="module")
def vec2() -> Iterator[tuple[VecEnv, np.ndarray]]:
    """Two worlds and their first frames, seeded by make_vec's seeds [3, 8]."""
    _need_extra()
    venv = envs.make_vec(ID, 2, seed=[3, 8], max_episode_steps=4, info_factors=False)
    yield venv, venv.reset()
    venv.core.close()


# --- everywhere: ids, constants, refusals (checked before anything is built) ------------------


def test_registry_answers_per_id() -> None:
    ids = [f"reprl/MemoryMaze-{s}-v0" for s in ("9x9", "11x11", "13x13", "15x15")]
    assert set(ids) | {"reprl/MemoryMaze-v0"} == set(envs.MEMORY_MAZE_IDS)
    assert set(envs.MEMORY_MAZE_IDS) <= set(envs.known_ids())
    assert all(i in gym.registry for i in envs.MEMORY_MAZE_IDS)
    assert envs.action_meanings(ID) == ACTIONS
    assert {"FORWARD", "TURN_LEFT", "TURN_RIGHT"} <= set(envs.lab.ACTIONS)  # named alike
    assert envs.level_range(ID) is None
    with pytest.raises(ReprlError, match="has no best return"):
        envs.best_return(ID)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "match"),
    [
        ("reprl/MemoryMaze-v0", {"size": "10x10"}, r"size: expected one of \['9x9', '11x11'"),
        (ID, {"size": "11x11"}, r"fixes \{'size': '9x9'\}.*reprl/MemoryMaze-v0 with size"),
        (ID, {"split": "train"}, r"unknown kwargs \['split'\]; expected any of \['size'"),
        (ID, {"obs_size": (64, 32)}, "obs_size: expected .* equal"),
        (ID, {"obs_size": (32, 32)}, "obs_size: .*>= 64"),
        (ID, {"max_episode_steps": 1001}, r"max_episode_steps: expected an integer in \[1, 1000\]"),
        (ID, {"good_visibility": "yes"}, "good_visibility: expected True or False"),
        (ID, {"frame_stack": 0}, "frame_stack: expected an integer >= 1"),
        (ID, {"seed": -1}, "seed: expected None, an integer >= 0"),
    ],
)
def test_bad_kwargs_are_refused_clearly(env_id: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        envs.make_vec(env_id, 1, **kwargs)


def test_num_envs_is_refused_before_building() -> None:
    with pytest.raises(ReprlError, match="num_envs must be a positive integer, got 0"):
        envs.make_vec(ID, 0)


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "memory_maze", None)  # as if not installed
    with pytest.raises(ReprlError, match=r'pip install -e "\.\[dmc\]".*memory_maze'):
        import_memory_maze()
    with pytest.raises(ReprlError, match=r"dmc"):
        envs.make_vec(ID, 1, seed=0)


def test_importing_envs_loads_no_mujoco() -> None:
    heavy = "{'memory_maze', 'dm_control', 'mujoco'}"
    code = f"import sys, envs; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- with the dmc extra ---------------------------------------------------------------------


def test_check_env_passes(single: gym.Env) -> None:
    gym_check_env(single.unwrapped, skip_render_check=False)
    sb3_check_env(single.unwrapped, warn=True)
    obs, info = single.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert set(FACTOR_NAMES) <= set(info)
    assert single.action_space == gym.spaces.Discrete(6)
    assert single.unwrapped.get_action_meanings() == list(ACTIONS)
    np.testing.assert_array_equal(single.render(), obs)


def test_make_vec_matches_single_envs_and_seeds_repeat(
    single: gym.Env, vec2: tuple[VecEnv, np.ndarray]
) -> None:
    venv, first_obs = vec2
    assert isinstance(venv, VecEnv) and venv.num_envs == 2
    assert first_obs.shape == (2, 64, 64, 3) and first_obs.dtype == np.uint8
    actions = np.array([[FORWARD, TURN_LEFT], [FORWARD_TURN_RIGHT, FORWARD], [FORWARD, NOOP]])

    def trace(seed: int) -> list[np.ndarray]:
        venv.seed(seed)  # SB3: env i gets seed + i at the next reset
        return [venv.reset()] + [venv.step(a)[0] for a in actions]

    # a used env is re-seeded in place; seed 0's episode starts on a ball, which memory-maze
    # would carry into the next episode's first draws were the flag not cleared
    single.reset(seed=0)
    np.testing.assert_array_equal(single.reset(seed=8)[0], first_obs[1])  # make_vec's [3, 8]
    seeded = trace(3)
    np.testing.assert_array_equal(seeded[0][0], first_obs[0])
    for i, seed in enumerate((3, 4)):
        frames = [single.reset(seed=seed)[0]] + [single.step(a)[0] for a in actions[:, i]]
        for t, frame in enumerate(frames):
            np.testing.assert_array_equal(frame, seeded[t][i], err_msg=f"env {i} step {t}")
    again = trace(3)
    for t in range(len(actions) + 1):
        np.testing.assert_array_equal(again[t], seeded[t])  # same seeds, same frames
    assert not np.array_equal(seeded[0][1], first_obs[1])  # seed 4, not 8


def test_truncation_resets_inside_step(vec2: tuple[VecEnv, np.ndarray]) -> None:
    venv = vec2[0]
    venv.reset()
    for t in range(1, 5):
        obs, rew, done, infos = venv.step(np.array([FORWARD, TURN_RIGHT]))
        assert rew.dtype == np.float32 and done.dtype == bool
        assert done.all() == (t == 4) and done.any() == (t == 4)  # max_episode_steps=4
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (64, 64, 3)
        assert set(info["terminal_factors"]) == set(FACTOR_NAMES)
        assert not set(FACTOR_NAMES) & set(info)  # info_factors=False
    assert not np.array_equal(obs[0], infos[0]["terminal_observation"])  # a new episode
    f = venv.get_factors()
    assert set(f) == set(FACTOR_NAMES) and all(v.dtype == np.int64 for v in f.values())
    assert f["agent_x"].shape == (2,) and f["obj_x"].shape == (2, 3)


def test_factors_follow_the_lab_frame(single: gym.Env) -> None:
    _, f = single.reset(seed=3)
    core = single.unwrapped.core
    layer = core._roots[0].task.root_entity.maze.entity_layer  # the maze text, walls included
    assert layer[f["agent_y"] // 100, f["agent_x"] // 100] == "P"  # a spawn cell
    for x, y in zip(f["obj_x"], f["obj_y"]):
        assert (x % 100, y % 100) == (50, 50) and layer[y // 100, x // 100] == "G"
    assert list(f["obj_color"]) == [0, 1, 2] and 0 <= f["target"] < 3
    assert f["target_color"] == f["obj_color"][f["target"]]
    moved = 0
    for _ in range(4):  # forward goes along agent_yaw (0 along +x, 90 along +y)
        _, _, _, _, g = single.step(FORWARD)
        dx, dy = g["agent_x"] - f["agent_x"], g["agent_y"] - f["agent_y"]
        if math.hypot(dx, dy) >= 10:
            off = (math.degrees(math.atan2(dy, dx)) - f["agent_yaw"] + 180) % 360 - 180
            assert abs(off) < 20, (dx, dy, f["agent_yaw"])
            moved += 1
        f = g
    assert moved
    yaw = f["agent_yaw"]
    for _ in range(2):  # the ball's steering takes a step to get going
        f = single.step(TURN_RIGHT)[4]
    assert 0 < (f["agent_yaw"] - yaw) % 360 < 180  # turning right is clockwise, as in the lab


def test_gym_make_vec_next_step_autoreset_with_frame_stack() -> None:
    _need_extra()
    kw = {"max_episode_steps": 2, "frame_stack": 2}
    venv = gym.make_vec(ID, 1, vectorization_mode="vector_entry_point", **kw)
    try:
        obs, info = venv.reset(seed=5)
        assert obs.shape == (1, 64, 64, 6) and set(FACTOR_NAMES) <= set(info)
        venv.step(np.array([FORWARD]))
        last, _, term, trunc, _ = venv.step(np.array([FORWARD]))
        assert trunc[0] and not term[0]
        first, rew, term, trunc, _ = venv.step(np.array([FORWARD]))  # shows the new episode
        assert rew[0] == 0 and not trunc[0] and not term[0]
        np.testing.assert_array_equal(first[..., :3], first[..., 3:])  # a fresh stack
        assert not np.array_equal(first, last)  # of another episode
        core = venv.core.core
        assert core.steps[0] == 0  # held: the world did not advance on that step
        venv.step(np.array([FORWARD]))
        assert core.steps[0] == 1
    finally:
        venv.core.close()
