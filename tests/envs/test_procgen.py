"""procgen through reprl: the SB3 VecEnv against the raw gym3 env, the splits' level ranges,
terminal observations, the gymnasium single env under both env checkers, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.errors import ReprlError
from envs.procgen import (
    MAX_LEVEL_SEED,
    PROCGEN_ACTIONS,
    fold_seeds,
    make_procgen_vec,
    procgen_levels,
)
from envs.rng import per_env_seeds


def _actions(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, len(PROCGEN_ACTIONS), n)


def test_rollout_equals_the_raw_procgen_env() -> None:
    """Same rand_seed and actions: the adapter's observations, rewards and dones are procgen's,
    and every terminal_observation is the frame before the episode's last step."""
    from procgen import ProcgenGym3Env  # after envs, which imported old gym quietly

    n, seed = 6, 3
    venv = envs.make_vec("reprl/CoinRun-v0", n, seed=seed, split="train", num_threads=0)
    raw = ProcgenGym3Env(
        num=n,
        env_name="coinrun",
        distribution_mode="easy",
        num_levels=200,
        start_level=0,
        rand_seed=fold_seeds(per_env_seeds(seed, n)),
        num_threads=0,
    )
    obs = venv.reset()
    _, ob, first = raw.observe()
    np.testing.assert_array_equal(obs, ob["rgb"])
    assert first.all()
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(400):
        a = _actions(rng, n)
        prev = obs
        obs, reward, done, infos = venv.step(a)
        raw.act(a.astype(np.int32))
        rew, ob, first = raw.observe()
        np.testing.assert_array_equal(obs, ob["rgb"])
        np.testing.assert_array_equal(reward, rew)
        np.testing.assert_array_equal(done, first)
        assert obs.dtype == np.uint8 and reward.dtype == np.float32
        for i in np.flatnonzero(done):
            np.testing.assert_array_equal(infos[i]["terminal_observation"], prev[i])
            assert infos[i]["TimeLimit.truncated"] is False
            assert infos[i]["episode_return"] in (0.0, 10.0)
            assert infos[i]["level_complete"] == (infos[i]["episode_return"] == 10.0)
            ends += 1
    assert ends > 0


def test_episode_length_and_return_are_counted_per_env() -> None:
    venv = make_procgen_vec(4, seed=0, split="train", num_threads=0)
    venv.reset()
    rng = np.random.default_rng(1)
    steps, total = np.zeros(4, int), np.zeros(4)
    for _ in range(400):
        _, reward, done, infos = venv.step(_actions(rng, 4))
        steps += 1
        total += reward
        for i in np.flatnonzero(done):
            assert infos[i]["episode_length"] == steps[i]
            assert infos[i]["episode_return"] == total[i]
            steps[i], total[i] = 0, 0.0


@pytest.mark.parametrize(
    ("split", "low", "high"),
    [("train", 0, 200), ("test_disjoint", 200, MAX_LEVEL_SEED)],
)
def test_each_split_draws_exactly_its_levels(split: str, low: int, high: int) -> None:
    """Level seeds from procgen's info over 5 x 64 fresh episodes, and the episodes that follow."""
    venv = make_procgen_vec(64, split=split, num_threads=0)
    seen = []
    for s in range(5):
        venv.seed(s)
        venv.reset()
        seen += [i["level_seed"] for i in venv.reset_infos]
        rng = np.random.default_rng(s)
        for _ in range(60):
            _, _, done, infos = venv.step(_actions(rng, 64))
            seen += [infos[i]["level_seed"] for i in np.flatnonzero(done)]
    seen = np.array(seen)
    assert len(seen) >= 320 and seen.min() >= low and seen.max() < high
    if split == "train":
        assert len(set(seen.tolist())) > 150  # most of the 200 levels come up


def test_the_test_split_is_the_full_distribution() -> None:
    levels = procgen_levels("test")
    assert (levels.num_levels, levels.low, levels.high) == (0, 0, MAX_LEVEL_SEED)
    venv = make_procgen_vec(64, seed=0, split="test", num_threads=0)
    venv.reset()
    seeds = np.array([i["level_seed"] for i in venv.reset_infos])
    assert seeds.max() > 10**6  # 64 uniform draws from [0, 2**31): all below 1e6 has p ~ 1e-192


def test_a_time_limit_at_or_above_procgens_own_is_accepted() -> None:
    venv = envs.make_vec("reprl/CoinRunTest-v0", 2, max_episode_steps=1000, num_threads=0)
    assert venv.reset().shape == (2, 64, 64, 3)


def test_level_ranges_are_recorded() -> None:
    assert procgen_levels("train").to_dict() == {
        "split": "train",
        "start_level": 0,
        "num_levels": 200,
        "level_range": [0, 200],
    }
    assert procgen_levels("train", "hard").high == 500
    disjoint = procgen_levels("test_disjoint", num_levels=50, start_level=10)
    assert (disjoint.low, disjoint.high) == (60, MAX_LEVEL_SEED)
    assert procgen_levels(None, num_levels=5, start_level=7).to_dict()["level_range"] == [7, 12]


def test_same_seed_same_levels_and_frames_other_seed_others() -> None:
    def run(seed: int) -> np.ndarray:
        venv = make_procgen_vec(4, seed=seed, split="test", num_threads=0)
        frames = [venv.reset()]
        rng = np.random.default_rng(0)
        frames += [venv.step(_actions(rng, 4))[0] for _ in range(20)]
        return np.stack(frames)

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_frame_stacking_and_action_meanings_through_make_vec() -> None:
    venv = envs.make_vec(
        "reprl/Procgen-v0", 2, seed=0, game="starpilot", frame_stack=4, grayscale=True
    )
    assert venv.reset().shape == (2, 64, 64, 4)
    assert venv.env_method("get_action_meanings", indices=0)[0] == list(PROCGEN_ACTIONS)
    assert envs.action_meanings("reprl/CoinRun-v0") == PROCGEN_ACTIONS
    assert envs.best_return("reprl/CoinRun-v0") == 10.0
    assert envs.best_return("reprl/Procgen-v0", game="starpilot") == 64.0


def test_single_env_passes_gymnasium_and_sb3_checkers() -> None:
    env = gym.make("reprl/CoinRun-v0", split="train", num_threads=0)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and 0 <= info["level_seed"] < 200
    rng = np.random.default_rng(0)
    gym3_env = env.unwrapped.venv.env
    for _ in range(2000):
        obs, _, terminated, truncated, info = env.step(int(_actions(rng, 1)[0]))
        assert not truncated
        if terminated:
            break
    assert terminated and 0 <= info["level_seed"] < 200  # the finished level
    first, info = env.reset()  # the next level procgen already started: no new env
    assert env.unwrapped.venv.env is gym3_env and 0 <= info["level_seed"] < 200
    assert not np.array_equal(first, obs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"game": "pong"}, r"game: expected one of \('bigfish'.*got 'pong'"),
        ({"distribution_mode": "medium"}, "distribution_mode: expected one of"),
        ({"split": "train", "num_levels": -1}, r"num_levels: expected an integer >= 0, got -1"),
        ({"split": "train", "start_level": -5}, "start_level: expected an integer >= 0"),
        ({"split": "validation"}, "split: expected one of"),
        ({"split": "test", "num_levels": 200}, "split 'test' is the full level distribution"),
        ({"split": "train", "num_levels": 0}, "expected num_levels >= 1 training levels"),
        ({"split": "test_disjoint", "start_level": MAX_LEVEL_SEED - 200}, "no level is left"),
        ({"split": "train", "distribution_mode": "memory"}, "expected num_levels"),
        ({"max_episode_steps": 500}, "own time limit of 1000 steps.*got 500"),
        ({"use_backgrounds": 1}, "use_backgrounds: expected a bool"),
        ({"paint_velocity": True}, r"unknown \['paint_velocity'\]"),
    ],
)
def test_bad_input_is_refused_before_procgen_starts(kwargs: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        envs.make_vec("reprl/Procgen-v0", 2, **kwargs)


def test_an_env_object_or_a_fixed_game_clash_is_refused() -> None:
    class OldGymEnv:
        """What a user might hand over: an old-gym procgen env object."""

    with pytest.raises(ReprlError, match=r"env_id: expected an id string.*OldGymEnv"):
        envs.make_vec(OldGymEnv(), 2)  # type: ignore[arg-type]
    with pytest.raises(ReprlError, match=r"reprl/CoinRun-v0 fixes.*conflicting \{'game': 'maze'\}"):
        envs.make_vec("reprl/CoinRun-v0", 2, game="maze")
    with pytest.raises(ReprlError, match=r"conflicting \{'split': 'test'\}"):
        envs.make_vec("reprl/CoinRunTrain-v0", 2, split="test")
    with pytest.raises(ReprlError, match="distribution_mode 'hard'"):
        envs.best_return("reprl/CoinRun-v0", distribution_mode="hard")


@pytest.mark.parametrize(
    ("env_id", "low", "high"),
    [
        ("reprl/CoinRunTrain-v0", 0, 200),
        ("reprl/CoinRunTestDisjoint-v0", 200, MAX_LEVEL_SEED),
        ("reprl/CoinRunTest-v0", 0, MAX_LEVEL_SEED),
    ],
)
def test_split_ids_fix_their_levels(env_id: str, low: int, high: int) -> None:
    venv = envs.make_vec(env_id, 32, seed=0, num_threads=0)
    assert (venv.levels.low, venv.levels.high) == (low, high)
    venv.reset()
    seeds = [i["level_seed"] for i in venv.reset_infos]
    assert low <= min(seeds) and max(seeds) < high
    assert envs.best_return(env_id) == 10.0


def test_level_range_answers_without_building_an_env() -> None:
    assert envs.level_range("reprl/BreakoutStandard-v0") is None
    assert envs.level_range("reprl/CoinRunTrain-v0")["level_range"] == [0, 200]
    assert envs.level_range("reprl/CoinRunTrain-v0", distribution_mode="hard")["num_levels"] == 500
    assert envs.level_range("reprl/Procgen-v0", num_levels=3, start_level=4)["level_range"] == [
        4,
        7,
    ]
    with pytest.raises(ReprlError, match="num_levels: expected an integer >= 0"):
        envs.level_range("reprl/CoinRunTrain-v0", num_levels=-1)


def test_gymnasium_vector_env_equals_the_sb3_vecenv() -> None:
    """gym.make_vec's procgen VectorEnv (SAME_STEP autoreset) steps like the SB3 VecEnv of the
    same seed: observations, rewards, dones; final_obs and final_info are the terminal
    observation and the finished level."""
    n, seed = 6, 3
    kw = {"split": "train", "num_threads": 0}
    vec = gym.make_vec("reprl/CoinRun-v0", n, vectorization_mode="vector_entry_point", **kw)
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    assert vec.single_observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    sb3 = envs.make_vec("reprl/CoinRun-v0", n, seed=seed, **kw)
    obs, info = vec.reset(seed=seed)
    np.testing.assert_array_equal(obs, sb3.reset())
    np.testing.assert_array_equal(info["level_seed"], [i["level_seed"] for i in sb3.reset_infos])
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(400):
        a = _actions(rng, n)
        obs, reward, terminated, truncated, info = vec.step(a)
        o2, r2, d2, infos = sb3.step(a)
        np.testing.assert_array_equal(obs, o2)
        np.testing.assert_array_equal(reward, r2)
        np.testing.assert_array_equal(terminated, d2)
        assert not truncated.any()
        np.testing.assert_array_equal(info["level_seed"], [i["level_seed"] for i in infos])
        for i in np.flatnonzero(terminated):
            ends += 1
            assert info["_final_obs"][i] and info["_final_info"][i]
            np.testing.assert_array_equal(info["final_obs"][i], infos[i]["terminal_observation"])
            assert info["final_info"][i]["level_seed"] == infos[i]["prev_level_seed"]
            assert info["final_info"][i]["episode_return"] == infos[i]["episode_return"]
    assert ends > 0
    assert vec.render().shape == (n, 64, 64, 3)
    vec.close()


def test_vector_env_refuses_next_step_autoreset() -> None:
    with pytest.raises(ReprlError, match=r"only it is exact: expected one of \['SameStep'\]"):
        gym.make_vec(
            "reprl/CoinRun-v0",
            2,
            vectorization_mode="vector_entry_point",
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
        )


def test_factors_level_seed_and_agent_position_read_from_the_game_state() -> None:
    """The state parser lands on the right bytes (its level seed is procgen's, for every env),
    and the position moves as the agent does: holding RIGHT, x grows by ever larger steps (the
    agent accelerates towards its top speed) and y stays (it walks the floor); holding LEFT
    long enough brings it back against the level's left wall, where it started."""
    from envs.procgen import FACTOR_NAMES, agent_position

    n = 8
    venv = envs.make_vec("reprl/CoinRun-v0", n, seed=0, split="train", num_threads=0)
    venv.reset()
    f0 = venv.get_factors()
    assert tuple(f0) == FACTOR_NAMES and all(v.shape == (n,) for v in f0.values())
    for state, info in zip(venv.env.get_state(), venv.env.get_info()):
        assert agent_position(state, "coinrun")[0] == info["level_seed"]
    assert agent_position(venv.env.get_state()[0], "ninja") is None  # another game's bytes
    assert agent_position(b"\x00" * 10, "coinrun") is None  # truncated
    xs = []
    for _ in range(6):
        venv.step(np.full(n, PROCGEN_ACTIONS.index("RIGHT")))
        f = venv.get_factors()
        xs.append(f["agent_x"])
        np.testing.assert_array_equal(f["agent_y"], f0["agent_y"])
        np.testing.assert_array_equal(f["level_seed"], f0["level_seed"])
    dx = np.diff(np.stack([f0["agent_x"], *xs]), axis=0)
    assert (dx > 0).all() and (np.diff(dx, axis=0) > 0).all()
    for _ in range(30):
        venv.step(np.full(n, PROCGEN_ACTIONS.index("LEFT")))
    np.testing.assert_array_equal(venv.get_factors()["agent_x"], f0["agent_x"])


def test_collect_records_coinrun_factors(tmp_path) -> None:
    from envs.exploration import collect

    ds = collect("reprl/CoinRunTrain-v0", 256, tmp_path / "c.h5", num_envs=4, progress=False)
    assert set(ds.info.factor_names) == {"level_seed", "agent_x", "agent_y"}
    assert "level_seed" in ds.info.discrete_factors
    f = ds.factors()
    assert ((0 <= f["level_seed"]) & (f["level_seed"] < 200)).all()
    assert (f["agent_x"] > 0).all() and len(np.unique(f["agent_x"])) > 4
