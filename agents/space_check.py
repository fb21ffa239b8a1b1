"""An agent's spaces against a target env's, checked before the first step.

Evaluation, videos and exploration with a trained agent run it on envs it may never have seen
(other games, other sizes, other action sets). SB3 checks spaces only when an env is attached
to a model; ``predict`` on a foreign env either fails deep inside (a shape error) or, worse,
runs: a 3-action agent on a 4-action game never presses the fourth button, and on a 15-action
game its action 2 means something else. :func:`check_agent_spaces` compares, before anything
steps:

- the action space, and the action meanings where the agent records them (reprl's
  ``save_agent(info={"action_meanings": [...]})``): different meanings are refused unless
  mapped ``by_meaning`` (:class:`envs.actions.MappedActions`);
- the observation space: shape (channels-last targets are compared as SB3 transposes them),
  dtype and bounds.

Plain SB3 zips record no meanings: their action space must equal the target's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.errors import ReprlError


def _describe(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Box):
        return f"{tuple(space.shape)} {space.dtype}"
    return str(space)


def _as_seen(agent: gym.Space, target: gym.Space) -> gym.Space:
    """``target`` as SB3 hands it to a policy: a channels-last image transposed to
    channels-first when the agent's space is channels-first."""
    from stable_baselines3.common.preprocessing import (
        is_image_space,
        is_image_space_channels_first,
    )
    from stable_baselines3.common.vec_env import VecTransposeImage

    if (
        isinstance(target, gym.spaces.Box)
        and isinstance(agent, gym.spaces.Box)
        and is_image_space(target, check_channels=False)
        and not is_image_space_channels_first(target)
        and tuple(target.shape) != tuple(agent.shape)
    ):
        return VecTransposeImage.transpose_space(target)
    return target


def check_observation_space(agent: gym.Space, target: gym.Space, where: str) -> None:
    """Refuse a target whose observations the agent cannot take.

    Args:
        agent: The agent's ``observation_space`` (channels-first for SB3 image policies).
        target: The target env's ``observation_space`` (channels-last images as gymnasium's).
        where: The target, for the message (e.g. ``"ALE/Breakout-v5"``).

    Raises:
        ReprlError: Shape, dtype or bounds differ (the message names both).
    """
    seen = _as_seen(agent, target)
    same = type(agent) is type(seen)
    if same and isinstance(agent, gym.spaces.Box):
        same = (
            tuple(agent.shape) == tuple(seen.shape)
            and agent.dtype == seen.dtype
            and np.array_equal(agent.low, seen.low)
            and np.array_equal(agent.high, seen.high)
        )
    elif same:
        same = agent == seen
    if not same:
        shown = _describe(target)
        if seen is not target:
            shown += f" (as the agent sees it: {_describe(seen)})"
        bounds = ""
        if (
            isinstance(agent, gym.spaces.Box)
            and isinstance(seen, gym.spaces.Box)
            and tuple(agent.shape) == tuple(seen.shape)
            and agent.dtype == seen.dtype
        ):
            bounds = " with other bounds"
        raise ReprlError(
            f"observation space: the agent takes {_describe(agent)}, the target {where} gives "
            f"{shown}{bounds}; expected the same (check the env kwargs: frame_stack, grayscale, "
            "obs_size)"
        )


def check_action_space(
    agent: gym.Space,
    target: gym.Space,
    where: str,
    *,
    agent_meanings: Sequence[str] | None = None,
    target_meanings: Sequence[str] | None = None,
    action_mapping: str = "none",
) -> bool:
    """Whether the agent's actions reach the target as they are (False), by meaning (True),
    or not at all (raises).

    Args:
        agent: The agent's ``action_space``.
        target: The target env's ``action_space``.
        where: The target, for the message.
        agent_meanings: The meaning of each agent action (None: not recorded, as in a plain
            SB3 zip).
        target_meanings: The target's meanings (needed with ``agent_meanings``).
        action_mapping: ``none`` or ``by_meaning`` (:data:`envs.actions.ACTION_MAPPINGS`).

    Returns:
        True when the actions must be translated (wrap the target in
        :class:`envs.actions.MappedActions`).

    Raises:
        ReprlError: Meanings that differ without ``by_meaning``, meanings the target lacks,
            meanings that do not fit the agent's own action space, or (no meanings) action
            spaces that differ.
    """
    from envs.actions import check_action_mapping

    if agent_meanings is not None:
        meanings = list(agent_meanings)
        if not (isinstance(agent, gym.spaces.Discrete) and int(agent.n) == len(meanings)):
            raise ReprlError(
                f"action meanings: the agent records {len(meanings)} ({meanings}) for its "
                f"action space {agent}; expected one per action"
            )
        if target_meanings is None:
            raise ReprlError(f"action meanings of the target {where}: expected them, got none")
        return check_action_mapping(meanings, list(target_meanings), action_mapping) is not None
    if agent != target:
        hint = (
            "the agent records no action meanings to map by (save it with reprl's save_agent("
            "..., info={'action_meanings': [...]}))"
            if action_mapping == "by_meaning"
            else "an agent with recorded action meanings may be mapped with action mapping "
            "'by_meaning'"
        )
        raise ReprlError(
            f"action space: the agent acts in {agent}, the target {where} in {target}; expected "
            f"the same ({hint})"
        )
    return False


def check_agent_spaces(
    model: Any,
    venv: Any,
    env_id: str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    agent_meanings: Sequence[str] | None = None,
    action_mapping: str = "none",
) -> bool:
    """Check an agent's observation and action spaces against a target env's, before it steps.

    Args:
        model: An SB3 model (anything with ``observation_space`` and ``action_space``;
            objects without them, such as a uniform-random reference, are not checked).
        venv: The target env (a ``VecEnv``), not yet stepped.
        env_id: The target's id (its action meanings: :func:`envs.action_meanings`).
        env_kwargs: The target's kwargs.
        agent_meanings: The agent's action meanings, where recorded.
        action_mapping: ``none`` or ``by_meaning``.

    Returns:
        True when the agent's actions must be mapped by meaning
        (:class:`envs.actions.MappedActions`).

    Raises:
        ReprlError: The spaces do not fit (see :func:`check_observation_space` and
            :func:`check_action_space`).
    """
    obs_space = getattr(model, "observation_space", None)
    act_space = getattr(model, "action_space", None)
    target_meanings = None
    if agent_meanings is not None:
        import envs

        target_meanings = list(envs.action_meanings(env_id, **dict(env_kwargs or {})))
    if act_space is None:  # no spaces to check: the meanings alone decide
        if agent_meanings is None:
            return False
        from envs.actions import check_action_mapping

        return (
            check_action_mapping(list(agent_meanings), target_meanings, action_mapping) is not None
        )
    mapped = check_action_space(
        act_space,
        venv.action_space,
        env_id,
        agent_meanings=agent_meanings,
        target_meanings=target_meanings,
        action_mapping=action_mapping,
    )
    if obs_space is not None:
        check_observation_space(obs_space, venv.observation_space, env_id)
    return mapped
