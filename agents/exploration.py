"""A trained SB3 agent as an exploration policy for :func:`envs.exploration.collect`.

>>> from envs.exploration import collect
>>> from agents.exploration import sb3_policy
>>> collect("reprl/BreakoutStandard-v0", 10_000, "d.h5", policy=sb3_policy("agent.zip"))

It lives here, not in ``envs``, because it loads agents (a layer above the environments).
"""

from __future__ import annotations

from typing import Any

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
        self.model, self.num_actions, self.epsilon = model, num_actions, epsilon
        self.rng = np.random.default_rng(seed)
        self.state: Any = None  # a recurrent agent's state, carried from step to step

    def __call__(self, obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """obs: (N, H, W, C) uint8; dones: (N,) bool, the episodes that ``obs`` begins
        -> (N,) int64 actions."""
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
    """

    def __init__(self, model_path: str, *, epsilon: float = 0.1, device: str = "cpu") -> None:
        from agents.factory import load_agent

        if not 0.0 <= epsilon <= 1.0:
            raise ReprlError(f"epsilon: expected a probability in [0, 1], got {epsilon}")
        self.model = load_agent(model_path, device=device)
        self.epsilon = epsilon
        self.describe = {"name": "sb3", "model_path": str(model_path), "epsilon": epsilon}

    def __call__(self, num_actions: int, num_envs: int, seed: int) -> SB3EpsilonPolicy:
        return SB3EpsilonPolicy(self.model, num_actions, epsilon=self.epsilon, seed=seed)
