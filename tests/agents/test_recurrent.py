"""The shared LSTM core (the A3C paper's): sb3-contrib's shared-LSTM policy, with the value
loss's gradient let into the core."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib.common.recurrent.policies import (
    RecurrentActorCriticCnnPolicy,
    RecurrentActorCriticPolicy,
)
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy

from agents.recurrent import (
    RECURRENT_POLICIES,
    SharedLstmCnnPolicy,
    SharedLstmPolicy,
    is_recurrent,
    pixel_policy_class,
)
from envs.errors import ReprlError

OBS = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
ACT = gym.spaces.Discrete(3)


def _pair() -> tuple[SharedLstmPolicy, RecurrentActorCriticPolicy]:
    """Ours and sb3-contrib's shared-LSTM policy, with the same weights."""
    kwargs = {"lstm_hidden_size": 8, "net_arch": [16]}
    torch.manual_seed(0)
    ours = SharedLstmPolicy(OBS, ACT, lambda _: 1e-3, **kwargs)
    theirs = RecurrentActorCriticPolicy(
        OBS, ACT, lambda _: 1e-3, shared_lstm=True, enable_critic_lstm=False, **kwargs
    )
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _batch(n_seq: int = 3, steps: int = 4):
    g = torch.Generator().manual_seed(1)
    obs = torch.rand(n_seq * steps, 6, generator=g) * 2 - 1
    actions = torch.randint(0, 3, (n_seq * steps,), generator=g)
    starts = torch.zeros(n_seq * steps)
    starts[[0, steps + 2]] = 1.0  # sequence 1 begins an episode at its step 2
    h = torch.rand(1, n_seq, 8, generator=g)
    c = torch.rand(1, n_seq, 8, generator=g)
    return obs, actions, RNNStates((h, c), (h.clone(), c.clone())), starts


def test_same_numbers_as_sb3_contrib_and_the_value_gradient_reaches_the_core() -> None:
    ours, theirs = _pair()
    obs, actions, states, starts = _batch()
    out = [p.evaluate_actions(obs, actions, states, starts) for p in (ours, theirs)]
    for a, b in zip(*out):
        assert torch.allclose(a, b, atol=1e-6)
    for policy, (values, _, _) in zip((ours, theirs), out):
        policy.zero_grad()
        values.pow(2).mean().backward()  # a value loss alone
    grad_ours = ours.lstm_actor.weight_hh_l0.grad
    grad_theirs = theirs.lstm_actor.weight_hh_l0.grad
    assert grad_ours is not None and grad_ours.abs().sum() > 0  # the paper's shared core
    assert grad_theirs is None or grad_theirs.abs().sum() == 0  # sb3-contrib cuts it
    assert torch.allclose(ours.value_net.weight.grad, theirs.value_net.weight.grad, atol=1e-6)


def test_predict_carries_the_actor_state_as_sb3_contrib() -> None:
    ours, theirs = _pair()
    obs = np.random.default_rng(0).uniform(-1, 1, (2, 6)).astype(np.float32)
    state_o = state_t = None
    starts = np.ones(2, bool)
    for _ in range(3):
        a_o, state_o = ours.predict(obs, state_o, starts, deterministic=True)
        a_t, state_t = theirs.predict(obs, state_t, starts, deterministic=True)
        np.testing.assert_array_equal(a_o, a_t)
        for x, y in zip(state_o, state_t):
            np.testing.assert_allclose(x, y, atol=1e-6)
        starts = np.zeros(2, bool)
    assert np.abs(state_o[0]).sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"enable_critic_lstm": True}, r"enable_critic_lstm: .*expected False"),
        ({"shared_lstm": False}, r"shared_lstm: .*expected True"),
        ({"share_features_extractor": False}, r"share_features_extractor: .*expected True"),
    ],
)
def test_settings_that_split_the_core_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        SharedLstmPolicy(OBS, ACT, lambda _: 1e-3, lstm_hidden_size=8, **kwargs)


def test_kinds_and_pixel_forms() -> None:
    assert RECURRENT_POLICIES == {"MlpPolicy": SharedLstmPolicy, "CnnPolicy": SharedLstmCnnPolicy}
    assert is_recurrent(SharedLstmPolicy) and is_recurrent(RecurrentActorCriticPolicy)
    assert not is_recurrent(ActorCriticPolicy)
    assert pixel_policy_class(ActorCriticPolicy) is ActorCriticCnnPolicy
    assert pixel_policy_class(SharedLstmPolicy) is SharedLstmCnnPolicy
    assert pixel_policy_class(RecurrentActorCriticPolicy) is RecurrentActorCriticCnnPolicy

    class Odd(RecurrentActorCriticPolicy):
        pass

    with pytest.raises(ReprlError, match=r"no pixel-space form of the recurrent policy Odd"):
        pixel_policy_class(Odd)
