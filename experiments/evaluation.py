"""Zero-shot evaluation: every agent (and a uniform-random reference) on every target.

:func:`evaluate_agent` runs one policy on one target with SB3's ``evaluate_policy`` on env
streams of the ``evaluate`` purpose (disjoint from training), translating actions by meaning
where the config allows it; :func:`stage_evaluate` is the pipeline's evaluate stage, one CSV
(one row per episode) and one JSON (provenance) per run, content-keyed like every stage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


# --- evaluate --------------------------------------------------------------------------------
def relative(path: str | os.PathLike[str], base: Path) -> str:
    """``path`` relative to the experiment directory (reports hold no absolute paths)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).name


class Predictor:
    """An agent with SB3's ``predict`` signature (a recurrent one's state passed through),
    loaded lazily, so a reused evaluation never loads its agent."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load, self._model = load, None

    def loaded(self) -> Any:
        """The model, loaded on first use."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def predict(self, obs: np.ndarray, state=None, episode_start=None, deterministic=True):
        return self.loaded().predict(
            obs, state=state, episode_start=episode_start, deterministic=deterministic
        )


def evaluate_agent(
    model: Any,
    env_id: str,
    *,
    episodes: int,
    num_envs: int,
    deterministic: bool,
    seed: int,
    device: str = "cpu",
    env_kwargs: dict[str, Any] | None = None,
    agent_meanings: list[str] | None = None,
    action_mapping: str = "none",
) -> list[tuple[float, int]]:
    """Runs ``model`` on ``env_id`` for ``episodes`` episodes (SB3's ``evaluate_policy``).

    Episodes are spread evenly over the envs (env i runs ``(episodes + i) // num_envs``), so
    short episodes are not over-represented; env i is seeded from the ``evaluate`` purpose of
    :func:`envs.rng.spawn_seeds`, so every agent sees the same episodes. A frozen-encoder
    agent runs through :func:`agents.latent_view` (its encoder once per env step, not once per
    stacked frame): the same actions, about ``k`` times less encoding.

    Args:
        model: anything with SB3's ``predict``.
        env_id: the target.
        episodes: episodes to run, >= 1.
        num_envs: parallel envs (at most ``episodes`` are used).
        deterministic: greedy (True) or sampled actions.
        seed: the evaluation seed.
        device: device of batched envs.
        env_kwargs: the target's kwargs (with the agent's ``frame_stack`` and ``grayscale``).
        agent_meanings: the agent's action meanings; None: the target's own.
        action_mapping: ``none`` or ``by_meaning`` (see :mod:`envs.actions`).

    Returns:
        (return, length) per episode.

    Raises:
        ReprlError: before the first step: the agent's observation or action space does not
            fit the target's (:func:`agents.space_check.check_agent_spaces`, for plain SB3
            zips too), or its actions do not mean the target's and no mapping is allowed.
    """
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecMonitor

    import envs
    from agents import latent_view
    from agents.space_check import check_agent_spaces
    from envs.actions import MappedActions
    from envs.rng import spawn_seeds

    n = min(num_envs, episodes)
    kwargs = dict(env_kwargs or {})
    venv = envs.make_vec(
        env_id,
        n,
        seed=spawn_seeds(seed, n, purpose="evaluate"),
        device=device,
        info_factors=False,
        **kwargs,
    )
    try:  # the agent's spaces (and meanings) against the target's, before the first step
        agent = model.loaded() if isinstance(model, Predictor) else model
        mapped = check_agent_spaces(
            agent,
            venv,
            env_id,
            env_kwargs=kwargs,
            agent_meanings=agent_meanings,
            action_mapping=action_mapping,
        )
        if mapped:
            venv = MappedActions(venv, agent_meanings)
        view = latent_view(agent, venv)
        if view is not None:
            venv, model = view
        venv = VecMonitor(venv)
    except BaseException:
        venv.close()
        raise
    try:
        rewards, lengths = evaluate_policy(
            model,
            venv,
            n_eval_episodes=episodes,
            deterministic=deterministic,
            return_episode_rewards=True,
            warn=False,
        )
    finally:
        venv.close()
    return [(float(r), int(n)) for r, n in zip(rewards, lengths)]


def keyed_seed(seed: int, key: str) -> int:
    """A 32-bit seed of its own for (seed, key), independent of Python's hash salt."""
    digest = np.frombuffer(key.encode(), dtype=np.uint8).astype(np.uint32)
    return int(np.random.SeedSequence([seed, *digest.tolist()]).generate_state(1)[0])
