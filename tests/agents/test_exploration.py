"""collect(policy=agents.exploration.sb3_policy(path)): a saved SB3 agent drives the exploration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import envs
from agents import save_agent
from agents.exploration import sb3_policy
from envs.errors import ReprlError
from envs.exploration import collect

ID = "reprl/BreakoutStandard-v0"
RIGHT = envs.action_meanings(ID).index("RIGHT")


@pytest.fixture
def always_right(tmp_path: Path) -> Path:
    """A tiny PPO zip whose policy plays RIGHT with probability ~1."""
    venv = envs.make_vec(ID, 2, seed=0)
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=8,
        batch_size=8,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 8}, "net_arch": []},
        device="cpu",
    )
    with torch.no_grad():
        net = model.policy.action_net
        net.weight.zero_()
        net.bias.copy_(torch.tensor([-50.0, -50.0, 50.0]))
    path = tmp_path / "right.zip"
    save_agent(model, path)  # reprl's safe form: opens without pickle
    return path


def test_collect_with_a_saved_sb3_agent(tmp_path: Path, always_right: Path) -> None:
    policy = sb3_policy(str(always_right), epsilon=0.0)
    data = collect(ID, 240, tmp_path / "d.h5", num_envs=4, seed=1, policy=policy, progress=False)
    assert len(data) == 240
    actions = data.array("actions", slice(None))
    assert (actions == RIGHT).all()  # the agent, not a random policy, chose them
    assert data.info.attrs["policy"] == {
        "name": "sb3",
        "model_path": str(always_right),
        "epsilon": 0.0,
    }
    # holding RIGHT drives every paddle to the right wall and keeps it there
    paddle = data.factors(["paddle_x"])["paddle_x"]
    last = data.step == data.step.max()
    assert (paddle[last] == 68).all()  # PADDLE_X_MAX: 94 - 3 - 23


def test_epsilon_mixes_in_random_actions(tmp_path: Path, always_right: Path) -> None:
    policy = sb3_policy(str(always_right), epsilon=1.0)
    data = collect(ID, 200, tmp_path / "e.h5", num_envs=4, seed=1, policy=policy, progress=False)
    counts = np.bincount(data.array("actions", slice(None)), minlength=3)
    assert (counts > 30).all()  # uniform over the 3 actions


def test_bad_sb3_policy_arguments(tmp_path: Path, always_right: Path) -> None:
    with pytest.raises(ReprlError, match="epsilon"):
        sb3_policy(str(always_right), epsilon=1.5)
    with pytest.raises(ReprlError, match="not found"):
        sb3_policy(str(tmp_path / "missing.zip"))
