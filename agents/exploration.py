"""A trained SB3 agent as an exploration policy for :func:`envs.exploration.collect`.

>>> from envs.exploration import collect
>>> from agents.exploration import sb3_policy
>>> collect("reprl/BreakoutStandard-v0", 10_000, "d.h5", policy=sb3_policy("agent.zip"))

It lives here, not in ``envs``, because it loads agents (a layer above the environments).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.errors import ReprlError


class SB3EpsilonPolicy:
    """A trained SB3 model's actions, replaced by uniform random ones with probability epsilon.

    Args:
        model: anything with SB3's ``predict(obs, deterministic=...)``.
        num_actions: size of the discrete action space.
        epsilon: probability of a random action, in [0, 1].
        seed: seed of the epsilon draws.
    """

    def __init__(
        self, model: Any, num_actions: int, *, epsilon: float = 0.1, seed: int = 0
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ReprlError(f"epsilon: expected a probability in [0, 1], got {epsilon}")
        space = getattr(model, "action_space", None)
        if space is not None and space != gym.spaces.Discrete(num_actions):
            raise ReprlError(
                f"exploration policy: the agent acts in {space}, the env in "
                f"Discrete({num_actions}); expected the same action space"
            )
        self.model, self.num_actions, self.epsilon = model, num_actions, epsilon
        self.rng = np.random.default_rng(seed)
        self.state: Any = None  # a recurrent agent's state, carried from step to step
        self._checked = getattr(model, "observation_space", None) is None

    def __call__(self, obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """obs: (N, H, W, C) uint8; dones: (N,) bool, the episodes that ``obs`` begins
        -> (N,) int64 actions.

        Raises:
            ReprlError: On the first call (before the env's first step), observations the
                agent cannot take (:func:`agents.space_check.check_observation_space`).
        """
        if not self._checked:
            from agents.space_check import check_observation_space

            obs = np.asarray(obs)
            space = gym.spaces.Box(0, 255, obs.shape[1:], np.uint8)
            if obs.dtype != np.uint8:
                space = gym.spaces.Box(-np.inf, np.inf, obs.shape[1:], obs.dtype)
            check_observation_space(self.model.observation_space, space, "exploration env")
            self._checked = True
        actions, self.state = self.model.predict(
            obs, state=self.state, episode_start=np.asarray(dones, bool), deterministic=False
        )
        explore = self.rng.random(len(obs)) < self.epsilon
        actions = np.asarray(actions, dtype=np.int64).copy()
        actions[explore] = self.rng.integers(0, self.num_actions, int(explore.sum()))
        return actions


class sb3_policy:  # lower case: used like a function, collect(policy=sb3_policy(path))
    """A policy factory for :func:`envs.exploration.collect`: the agent zip at ``model_path``,
    epsilon-greedy. The agent is loaded once, here, so a bad path fails before collecting.

    Args:
        model_path: an agent zip saved by reprl (or any SB3 zip on the same observations).
        epsilon: probability of a uniform random action, in [0, 1].
        device: torch device of the agent.
        trust_pickle: open a zip that only unpickling can open (a plain SB3 zip): only one
            from a source you trust (:func:`agents.load_agent`).

    The agent's action space is checked against each env's when the policy is built for it,
    its observation space on the first observations, both before the env's first step.

    Raises:
        PickleRefused: a zip that needs unpickling, without ``trust_pickle``.
    """

    def __init__(
        self,
        model_path: str,
        *,
        epsilon: float = 0.1,
        device: str = "cpu",
        trust_pickle: bool = False,
    ) -> None:
        from agents.saving import load_agent

        if not 0.0 <= epsilon <= 1.0:
            raise ReprlError(f"epsilon: expected a probability in [0, 1], got {epsilon}")
        self.model = load_agent(model_path, device=device, trust_pickle=trust_pickle)
        self.epsilon = epsilon
        self.describe = {"name": "sb3", "model_path": str(model_path), "epsilon": epsilon}

    def __call__(self, num_actions: int, num_envs: int, seed: int) -> SB3EpsilonPolicy:
        return SB3EpsilonPolicy(self.model, num_actions, epsilon=self.epsilon, seed=seed)
