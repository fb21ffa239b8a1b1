"""Actions: one validation for every env, and mapping one game's actions onto another's.

reprl's Breakout plays ``("NOOP", "LEFT", "RIGHT")``, ALE's Breakout ``("NOOP", "FIRE", "RIGHT",
"LEFT")``: the same index means different things. An agent trained on one and evaluated on the
other must say how its actions are meant (:data:`ACTION_MAPPINGS`):

- ``"none"``: the action sets must be identical (same meanings, same order), else a
  :class:`~envs.errors.ReprlError` naming both lists;
- ``"by_meaning"``: each of the agent's actions is sent as the target's action of the same
  meaning (:class:`MappedActions`); where the target has FIRE and the agent has none, FIRE is
  pressed to serve at the start of every episode and after every lost life.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn, VecEnvWrapper
from torch import Tensor

from envs.errors import ReprlError

ACTION_MAPPINGS: tuple[str, ...] = ("none", "by_meaning")
"""How an agent's actions reach a target game: ``"none"`` (identical action sets required) or
``"by_meaning"`` (translated by meaning, FIRE pressed to serve where the agent has none)."""

FIRE = "FIRE"


def validate_actions(actions: Any, num_envs: int, num_actions: int) -> Tensor:
    """Checks a batch of discrete actions before anything is stepped.

    Args:
        actions: ``(N,)`` (or SB3's ``(N, 1)``) integers in ``[0, num_actions)``: a numpy array,
            a torch tensor on any device, or a list. Floats are accepted when integral.
        num_envs: N.
        num_actions: size of the ``Discrete`` action space.

    Returns:
        ``(N,)`` int64 tensor, on the input tensor's device (CPU for numpy input, sharing its
        memory where possible).

    Raises:
        ReprlError: wrong shape, non-integer values, or values outside ``[0, num_actions)``.
    """
    if isinstance(actions, Tensor):
        a = actions
    else:
        arr = np.asarray(actions)
        a = torch.as_tensor(arr if arr.flags.c_contiguous else arr.copy())  # e.g. a[::-1]
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if tuple(a.shape) != (num_envs,):
        raise ReprlError(
            f"actions: expected an action batch of shape ({num_envs},), got {tuple(a.shape)}"
        )
    integral = not (a.dtype == torch.bool or a.is_complex()) and (
        not a.is_floating_point() or bool(torch.all(a == a.round()))
    )
    if not integral:
        raise ReprlError(
            f"actions: expected integers in [0, {num_actions}) for Discrete({num_actions}), "
            f"got {str(a.dtype).removeprefix('torch.')} values"
        )
    a = a.to(torch.int64)
    bad = (a < 0) | (a >= num_actions)
    if bool(bad.any()):
        raise ReprlError(
            f"actions: expected values in [0, {num_actions}) for Discrete({num_actions}), "
            f"got {a[bad][:5].tolist()} at env indices {bad.nonzero().squeeze(1)[:5].tolist()}"
        )
    return a


def check_action_mapping(
    agent_meanings: Sequence[str], target_meanings: Sequence[str], mapping: str
) -> np.ndarray | None:
    """How an agent's action indices reach a target game, or why they cannot.

    Args:
        agent_meanings: the meaning of each of the agent's action indices (what its training
            env's ``get_action_meanings()`` said), e.g. ``("NOOP", "LEFT", "RIGHT")``.
        target_meanings: the same for the target env, e.g. ALE's
            ``("NOOP", "FIRE", "RIGHT", "LEFT")``.
        mapping: one of :data:`ACTION_MAPPINGS`.

    Returns:
        None when the two action sets are identical (nothing to map); else ``(len(agent),)``
        int64: the target index of each agent action (``"by_meaning"``).

    Raises:
        ReprlError: an unknown mapping; ``"none"`` with different action sets (the message
            names both and suggests ``"by_meaning"``); ``"by_meaning"`` where an agent meaning
            is missing in the target ("no common meaning").
    """
    if mapping not in ACTION_MAPPINGS:
        raise ReprlError(f"action mapping: expected one of {ACTION_MAPPINGS}, got {mapping!r}")
    agent, target = tuple(agent_meanings), tuple(target_meanings)
    if agent == target:
        return None
    if mapping == "none":
        raise ReprlError(
            f"action spaces differ: the agent's actions are {list(agent)}, the target's "
            f"{list(target)}; pass action mapping 'by_meaning' to translate them by meaning"
        )
    missing = [m for m in agent if m not in target]
    if missing:
        raise ReprlError(
            f"action mapping 'by_meaning': no common meaning in the target {list(target)} for "
            f"the agent's {missing} (agent actions {list(agent)})"
        )
    return np.array([target.index(m) for m in agent], dtype=np.int64)


class MappedActions(VecEnvWrapper):
    """An SB3 ``VecEnv`` that takes an agent's action indices and plays them by meaning.

    The action space becomes ``Discrete(len(agent_meanings))``; agent action ``j`` is sent as
    the wrapped env's action of the same meaning. Where the wrapped env has ``FIRE`` and the
    agent has none, ``FIRE`` is sent instead of the agent's action on the first step of every
    episode and on the step after a life is lost (a drop of ``info["lives"]``, as ALE's infos
    carry it; envs without ``lives`` are served only at episode starts). Observations, rewards,
    dones and infos pass through unchanged.

    Args:
        venv: the target env (e.g. ``make_vec("ALE/Breakout-v5", n)``); its envs must answer
            ``get_action_meanings()``.
        agent_meanings: the meaning of each of the agent's actions.

    Raises:
        ReprlError: an agent meaning the target does not have.
    """

    def __init__(self, venv: VecEnv, agent_meanings: Sequence[str]) -> None:
        self.agent_meanings = tuple(agent_meanings)
        self.target_meanings = tuple(venv.env_method("get_action_meanings", indices=[0])[0])
        mapping = check_action_mapping(self.agent_meanings, self.target_meanings, "by_meaning")
        self.mapping = np.arange(len(self.agent_meanings)) if mapping is None else mapping
        serve = FIRE in self.target_meanings and FIRE not in self.agent_meanings
        self.fire = self.target_meanings.index(FIRE) if serve else None
        super().__init__(venv, action_space=gym.spaces.Discrete(len(self.agent_meanings)))
        self._serve = np.ones(self.num_envs, dtype=bool)
        self._lives: np.ndarray = np.full(self.num_envs, -1, dtype=np.int64)

    def _reset_infos(self) -> list[dict[str, Any]]:
        """The innermost VecEnv's reset infos (wrappers such as VecFrameStack keep their own)."""
        return list(getattr(self.venv.unwrapped, "reset_infos", [{}] * self.num_envs))

    def _lives_of(self, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.array([int(i.get("lives", -1)) for i in infos], dtype=np.int64)

    def reset(self) -> Any:
        obs = self.venv.reset()
        self._serve[:] = True
        self._lives = self._lives_of(self._reset_infos())
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        a = validate_actions(actions, self.num_envs, len(self.agent_meanings)).numpy()
        sent = self.mapping[a]
        if self.fire is not None:
            sent = np.where(self._serve, self.fire, sent)
        self._serve[:] = False
        self.venv.step_async(sent)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        lives = self._lives_of(infos)
        lost = (lives >= 0) & (self._lives >= 0) & (lives < self._lives)
        self._serve |= lost | dones
        # where an episode ended, its successor's lives are in reset_infos (SB3 semantics)
        fresh = self._lives_of(self._reset_infos())
        self._lives = np.where(dones, fresh, lives)
        return obs, rewards, dones, infos
