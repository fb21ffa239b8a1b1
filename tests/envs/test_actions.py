"""Action mappings between games, MappedActions on the real Atari Breakout, shared validation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecEnvWrapper

import envs
from envs.actions import ACTION_MAPPINGS, MappedActions, check_action_mapping, validate_actions
from envs.errors import ReprlError

REPRL = ("NOOP", "LEFT", "RIGHT")
ALE = ("NOOP", "FIRE", "RIGHT", "LEFT")


def test_identical_action_sets_need_no_mapping() -> None:
    for mapping in ACTION_MAPPINGS:
        assert check_action_mapping(REPRL, list(REPRL), mapping) is None


def test_by_meaning_maps_each_agent_action_to_the_same_meaning() -> None:
    m = check_action_mapping(REPRL, ALE, "by_meaning")
    assert m.tolist() == [0, 3, 2]  # NOOP -> 0, LEFT -> ALE's 3, RIGHT -> ALE's 2
    assert [ALE[i] for i in m] == list(REPRL)


def test_refusals() -> None:
    with pytest.raises(ReprlError, match="action spaces differ") as e:
        check_action_mapping(REPRL, ALE, "none")
    msg = str(e.value)
    assert str(list(REPRL)) in msg and str(list(ALE)) in msg and "'by_meaning'" in msg
    with pytest.raises(ReprlError, match=r"no common meaning.*\['FIRE'\]"):
        check_action_mapping(ALE, REPRL, "by_meaning")
    with pytest.raises(ReprlError, match="action mapping: expected one of"):
        check_action_mapping(REPRL, ALE, "by_index")
    with pytest.raises(ReprlError, match="no common meaning"):
        MappedActions(envs.make_vec("reprl/BreakoutStandard-v0", 1), ALE)


class Recorder(VecEnvWrapper):
    """Records the actions that reach the wrapped env."""

    def __init__(self, venv) -> None:
        super().__init__(venv)
        self.sent: list[np.ndarray] = []

    def reset(self):
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self.sent.append(np.array(actions))
        self.venv.step_async(actions)

    def step_wait(self):
        return self.venv.step_wait()


def ale(n: int, **kw) -> Recorder:
    return Recorder(
        envs.make_vec("ALE/Breakout-v5", n, seed=0, repeat_action_probability=0.0, **kw)
    )


def test_a_reprl_left_arrives_as_ale_left() -> None:
    rec = ale(3)
    venv = MappedActions(rec, envs.action_meanings("reprl/BreakoutStandard-v0"))
    assert venv.action_space == gym.spaces.Discrete(3)
    venv.reset()
    venv.step(np.array([0, 0, 0]))  # the serve (FIRE) goes first
    venv.step(np.array([1, 2, 0]))  # LEFT, RIGHT, NOOP
    assert rec.sent[1].tolist() == [ALE.index("LEFT"), ALE.index("RIGHT"), ALE.index("NOOP")]
    assert rec.sent[1].tolist() == [3, 2, 0]


@pytest.mark.parametrize(
    ("backend", "stack"), [("ale_vector", 1), ("gymnasium", 1), ("ale_vector", 4)]
)
def test_fire_is_sent_at_episode_start_and_after_a_life_loss(backend: str, stack: int) -> None:
    rec = ale(2, backend=backend, max_episode_steps=300, frame_stack=stack, grayscale=stack > 1)
    venv = MappedActions(rec, REPRL)
    venv.reset()
    lives, dones = [], []
    for _ in range(330):  # the paddle stays still: the ball is lost again and again
        _, _, done, infos = venv.step(np.array([0, 0]))
        lives.append([info["lives"] for info in infos])
        dones.append(done)
    sent = np.stack(rec.sent)
    lives_a, done_a = np.array(lives), np.array(dones)
    fire = ALE.index("FIRE")
    for i in range(2):
        expected = {0}
        for t in range(1, len(sent)):
            lost = lives_a[t, i] < lives_a[t - 1, i] and not done_a[t - 1, i]
            if lost and not done_a[t, i]:
                expected.add(t + 1)  # the step after the life was lost
            if done_a[t, i]:
                expected.add(t + 1)  # the first step of the next episode
        expected.discard(len(sent))
        got = set(np.flatnonzero(sent[:, i] == fire).tolist())
        assert got == expected, (i, sorted(got), sorted(expected))
        assert len([t for t in expected if t > 0]) >= 3  # lives were lost and an episode ended
    assert done_a.any()


def test_no_fire_is_added_where_the_agent_has_fire() -> None:
    rec = ale(1)
    venv = MappedActions(rec, ALE)
    assert venv.fire is None
    venv.reset()
    venv.step(np.array([0]))
    assert rec.sent[0].tolist() == [0]


def test_one_action_validation_for_every_env() -> None:
    a = validate_actions(np.array([[1], [2]]), 2, 3)  # SB3's (N, 1)
    assert a.dtype == torch.int64 and a.tolist() == [1, 2]
    assert validate_actions(np.array([2.0, 0.0]), 2, 3).tolist() == [2, 0]
    assert validate_actions(np.array([0, 1, 2])[::-1], 3, 3).tolist() == [2, 1, 0]
    with pytest.raises(ReprlError, match=r"expected values in \[0, 3\).*got \[3\]"):
        validate_actions([0, 3], 2, 3)
    with pytest.raises(ReprlError, match="expected integers"):
        validate_actions(np.array([True, False]), 2, 3)
    for venv in (
        envs.make_vec("reprl/BreakoutStandard-v0", 2),
        envs.make_vec("ALE/Breakout-v5", 2),
    ):
        venv.reset()
        with pytest.raises(ReprlError, match=r"actions: expected values in \["):
            venv.step(np.array([0, 7]))
