"""Per-id constants (best return, action meanings, the transfer study's ids) and per-env seeds."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs import breakout as B
from envs.breakout import BreakoutBatch
from envs.errors import ReprlError
from envs.rng import spawn_seeds


@pytest.mark.parametrize(
    ("env_id", "kwargs", "best"),
    [
        ("reprl/BreakoutStandard-v0", {}, 66.0),  # 11 x 6 bricks, +1 each
        ("reprl/BreakoutOffsetPaddle-v0", {}, 66.0),
        ("reprl/BreakoutMiddleWall-v0", {"max_episode_steps": 100}, 66.0),
        ("reprl/Breakout-v0", {"variant": "middle_wall"}, 66.0),
        ("reprl/Breakout-v0", {}, 66.0),  # standard by default
        ("reprl/BreakoutHalfNegative-v0", {}, 33.0),  # (36 left + 30 right) / 2
        ("reprl/BreakoutJuggling-v0", {}, 0.0),
        ("reprl/BreakoutRandomTarget-v0", {}, 61.0),  # 1 + (5000 - 76) // 81
        ("reprl/BreakoutRandomTarget-v0", {"max_episode_steps": 75}, 0.0),
        ("reprl/BreakoutRandomTarget-v0", {"max_episode_steps": 76}, 1.0),
        ("reprl/BreakoutRandomTarget-v0", {"max_episode_steps": 157}, 2.0),  # 76 + 81
        ("reprl/Breakout-v0", {"variant": "random_target", "max_episode_steps": 156}, 1.0),
        ("ALE/Breakout-v5", {}, 864.0),  # two walls of 6 x 18 bricks, 2 x (1+1+4+4+7+7) x 18
    ],
)
def test_best_return_hand_worked(env_id: str, kwargs: dict, best: float) -> None:
    assert envs.best_return(env_id, **kwargs) == best


def test_half_negative_halves_are_36_and_30_bricks() -> None:
    g = BreakoutBatch(1, "half_negative", seed=0)
    g.reset()
    left = int(g._brick_left_half.sum())
    assert (left, B.NUM_BRICKS - left) == (36, 30)


def _steps_to_hit(y0: int, target_y: int = 13) -> int:
    """Steps until a ball at (41, y0) falling at 2 px/step hits the target, paddle under it."""
    g = BreakoutBatch(1, "random_target", seed=0)
    g.reset()
    g.target_x[0], g.target_y[0], g.paddle_x[0] = 30, target_y, 30
    g.ball_x[0, 0], g.ball_y[0, 0], g.ball_vx[0, 0], g.ball_vy[0, 0] = 41, y0, 0, 2
    for t in range(1, 300):
        if float(g.step([0]).reward[0]) > 0:
            return t
    raise AssertionError("no hit")


def test_random_target_bound_constants_match_the_engine() -> None:
    # the earliest first hit: served at the top of the serve range (y 40), falling at speed 2
    assert _steps_to_hit(B.SERVE_Y_RANGE[0]) == 76
    # right after a hit on the lowest target (bottom edge y 28) the ball is at y 29, falling
    assert _steps_to_hit(29) == 81
    assert _steps_to_hit(29, target_y=5) > 81  # higher targets take longer


def test_best_return_refusals() -> None:
    with pytest.raises(ReprlError, match="unknown env id 'reprl/Pong-v0'; expected one of"):
        envs.best_return("reprl/Pong-v0")
    with pytest.raises(ReprlError, match="unknown Breakout variant 'sideways'"):
        envs.best_return("reprl/Breakout-v0", variant="sideways")
    with pytest.raises(ReprlError, match="fixes"):
        envs.best_return("reprl/BreakoutStandard-v0", variant="juggling")


def test_action_meanings_without_building_an_env() -> None:
    assert envs.action_meanings("reprl/BreakoutMiddleWall-v0") == ("NOOP", "LEFT", "RIGHT")
    assert envs.action_meanings("ALE/Breakout-v5") == ("NOOP", "FIRE", "RIGHT", "LEFT")
    assert len(envs.action_meanings("ALE/Pong-v5")) == 6
    assert len(envs.action_meanings("ALE/Boxing-v5")) == 18
    with pytest.raises(ReprlError, match="unknown env id"):
        envs.action_meanings("ALE/SpaceInvaders-v5")


@pytest.mark.parametrize("env_id", ["reprl/BreakoutStandard-v0", "ALE/Breakout-v5"])
def test_every_env_answers_get_action_meanings(env_id: str) -> None:
    import gymnasium as gym

    venv = envs.make_vec(env_id, 2, seed=0)
    want = list(envs.action_meanings(env_id))
    assert venv.env_method("get_action_meanings") == [want, want]
    stacked = envs.make_vec(env_id, 2, seed=0, frame_stack=2, grayscale=True)
    assert stacked.env_method("get_action_meanings", indices=[1]) == [want]
    if env_id.startswith("reprl/"):
        assert gym.make(env_id).unwrapped.get_action_meanings() == want
        vector = gym.make_vec(env_id, 2, vectorization_mode="vector_entry_point")
        assert vector.get_action_meanings() == want
    else:
        gym_backend = envs.make_vec(env_id, 1, backend="gymnasium")
        assert gym_backend.env_method("get_action_meanings") == [want]


def test_schema_targets_source_first() -> None:
    assert envs.SCHEMA_TARGETS == (
        "reprl/BreakoutStandard-v0",
        "reprl/BreakoutOffsetPaddle-v0",
        "reprl/BreakoutMiddleWall-v0",
        "reprl/BreakoutRandomTarget-v0",
        "reprl/BreakoutJuggling-v0",
    )
    assert set(envs.SCHEMA_TARGETS) <= set(envs.known_ids())


# -- seeds -------------------------------------------------------------------------------------


def test_training_seeds_share_no_env_stream() -> None:
    s0 = spawn_seeds(0, 16, purpose="train")
    s1 = spawn_seeds(1, 16, purpose="train")
    assert len(set(s0)) == len(set(s1)) == 16
    assert not set(s0) & set(s1)
    # with seed + i, training seeds 0 and 1 would share 15 of 16
    assert len(set(range(16)) & set(range(1, 17))) == 15
    evaluate = spawn_seeds(0, 16, purpose="evaluate")
    collect = spawn_seeds(0, 16, purpose="collect")
    assert not set(s0) & set(evaluate) and not set(s0) & set(collect)
    assert not set(evaluate) & set(collect)


def test_spawn_seeds_is_deterministic_prefix_stable_and_in_range() -> None:
    a = spawn_seeds(7, 32, purpose="train")
    assert a == spawn_seeds(7, 32, purpose="train")
    assert a[:5] == spawn_seeds(7, 5, purpose="train")
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in a)
    big = spawn_seeds(3, 5000, purpose="x")
    assert len(set(big)) == 5000


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((-1, 4), {"purpose": "train"}, "seed: expected an integer >= 0, got -1"),
        ((0, 0), {"purpose": "train"}, "n: expected an integer >= 1, got 0"),
        ((0.5, 2), {"purpose": "train"}, "seed: expected an integer >= 0"),
        ((0, 2), {"purpose": 3}, "purpose: expected a string"),
    ],
)
def test_spawn_seeds_refusals(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        spawn_seeds(*args, **kwargs)


def test_make_vec_with_a_list_of_seeds_reproduces_single_games() -> None:
    seeds = spawn_seeds(5, 3, purpose="train")
    actions = np.random.default_rng(0).integers(0, 3, (60, 3))
    kw = {"max_episode_steps": 25}
    venv = envs.make_vec("reprl/BreakoutOffsetPaddle-v0", 3, seed=seeds, **kw)
    frames = [venv.reset()]
    frames += [venv.step(a)[0] for a in actions]
    for i, s in enumerate(seeds):
        single = envs.make_vec("reprl/BreakoutOffsetPaddle-v0", 1, seed=s, **kw)
        mine = [single.reset()]
        mine += [single.step(a[i : i + 1])[0] for a in actions]
        np.testing.assert_array_equal(np.stack(frames)[:, i], np.stack(mine)[:, 0])


@pytest.mark.parametrize("backend", ["ale_vector", "gymnasium"])
def test_ale_with_a_list_of_seeds_reproduces_single_games(backend: str) -> None:
    seeds = spawn_seeds(5, 2, purpose="evaluate")
    actions = np.random.default_rng(0).integers(0, 4, (30, 2))
    kw = {"backend": backend}  # sticky actions on: the seed drives them too
    venv = envs.make_vec("ALE/Breakout-v5", 2, seed=seeds, **kw)
    frames = np.stack([venv.reset()] + [venv.step(a)[0] for a in actions])
    for i, s in enumerate(seeds):
        single = envs.make_vec("ALE/Breakout-v5", 1, seed=s, **kw)
        mine = np.stack([single.reset()] + [single.step(a[i : i + 1])[0] for a in actions])
        np.testing.assert_array_equal(frames[:, i], mine[:, 0])
    other = envs.make_vec("ALE/Breakout-v5", 2, seed=[seeds[1], seeds[0]], **kw)
    swapped = np.stack([other.reset()] + [other.step(a[::-1])[0] for a in actions])
    np.testing.assert_array_equal(swapped[:, 0], frames[:, 1])


@pytest.mark.parametrize("env_id", ["reprl/BreakoutStandard-v0", "ALE/Breakout-v5"])
@pytest.mark.parametrize(
    ("seed", "match"),
    [
        ([1, 2, 3], r"one seed per env \(2\), got a sequence of 3"),
        ([1, -2], "integers >= 0 per env"),
        (-1, "integer >= 0"),
        ("7", "got str"),
    ],
)
def test_bad_seeds_are_refused(env_id: str, seed, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        envs.make_vec(env_id, 2, seed=seed)
