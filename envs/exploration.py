"""Exploration policies and ``collect``: run envs, write an exploration dataset.

A policy maps a batch of observations to a batch of actions and may keep per-env state (action
repeat). ``collect`` runs one or more env ids through :func:`envs.make_vec`, labels every frame
with the id it came from (its *domain*), and streams everything into a dataset file
(:mod:`envs.storage.dataset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from envs.errors import ReprlError
from envs.registry import make_vec
from envs.rng import spawn_seeds
from envs.storage.dataset import CHUNK, DISCRETE_FACTORS, DatasetWriter, FrameDataset


class ExplorationPolicy(Protocol):
    """Chooses actions for a batch of envs."""

    def __call__(self, obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """obs: (N, H, W, 3) uint8; dones: (N,) bool (episode just restarted) -> (N,) int64."""
        ...


class RandomPolicy:
    """Uniformly random actions, each held for ``repeat`` steps (1 = no repeat).

    Args:
        num_actions: size of the discrete action space.
        num_envs: N.
        repeat: steps an action is held; with ``random_repeat`` the hold length is drawn
            uniformly from [1, repeat] each time.
        seed: seed of the policy's generator.
    """

    def __init__(
        self,
        num_actions: int,
        num_envs: int,
        *,
        repeat: int = 1,
        random_repeat: bool = False,
        seed: int = 0,
    ) -> None:
        if repeat < 1:
            raise ReprlError(f"repeat: expected an integer >= 1, got {repeat}")
        self.num_actions, self.repeat, self.random_repeat = num_actions, repeat, random_repeat
        self.rng = np.random.default_rng(seed)
        self.action = np.zeros(num_envs, dtype=np.int64)
        self.left = np.zeros(num_envs, dtype=np.int64)

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's interface (for evaluation as a reference agent): (N, ...) -> ((N,) actions,
        None); N must be ``num_envs``; ``state``, ``episode_start`` and ``deterministic`` are
        ignored (a repeat already running goes on into the next episode, as before)."""
        return self(obs, np.zeros(len(obs), dtype=bool)), None

    def __call__(self, obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        new = (self.left <= 0) | dones
        k = int(new.sum())
        self.action[new] = self.rng.integers(0, self.num_actions, k)
        hold = self.rng.integers(1, self.repeat + 1, k) if self.random_repeat else self.repeat
        self.left[new] = hold
        self.left -= 1
        return self.action.copy()


POLICIES = ("random", "random_repeat")
COLUMNS = ("frames", "actions", "rewards", "dones", "episode", "step")  # per-frame columns


class PolicyFactory(Protocol):
    """Builds an exploration policy for one domain of :func:`collect` (used for policies that
    live in a layer above, such as a trained SB3 agent: ``agents.exploration.sb3_policy``).

    ``describe`` is recorded in the dataset's attributes.
    """

    describe: dict[str, Any]

    def __call__(self, num_actions: int, num_envs: int, seed: int) -> ExplorationPolicy: ...


def make_policy(
    name: str, num_actions: int, num_envs: int, *, seed: int = 0, repeat: int = 4
) -> ExplorationPolicy:
    """Builds an exploration policy by name: ``random`` or ``random_repeat``.

    A trained SB3 agent as the exploration policy lives a layer above (it needs ``agents``):
    pass ``agents.exploration.sb3_policy(path)`` to :func:`collect` as ``policy``.

    Raises:
        ReprlError: an unknown name.
    """
    if name == "random":
        return RandomPolicy(num_actions, num_envs, seed=seed)
    if name == "random_repeat":
        return RandomPolicy(num_actions, num_envs, repeat=repeat, random_repeat=True, seed=seed)
    raise ReprlError(
        f"unknown exploration policy {name!r}; expected one of {POLICIES} "
        "(or a policy factory such as agents.exploration.sb3_policy(path))"
    )


def collect(
    env_ids: str | Sequence[str],
    num_frames: int,
    out: str | Path,
    *,
    num_envs: int = 64,
    seed: int = 0,
    policy: str | PolicyFactory = "random_repeat",
    policy_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> FrameDataset:
    """Runs an exploration policy on each env id and writes one dataset.

    The frames are split evenly between the ids (each id is a *domain* of the dataset).

    Args:
        env_ids: one id or several (e.g. the five Breakout variants).
        num_frames: total frames to write, >= 1.
        out: the dataset path (``.h5``); written atomically.
        num_envs: parallel envs per id.
        seed: the collection's seed: env i of domain d gets
            ``spawn_seeds(seed, num_envs, purpose=f"collect/{d}")[i]`` (recorded in the
            dataset's ``attrs["env_seeds"]``), the policy of domain d ``seed + d``.
        policy: ``random`` or ``random_repeat`` (see :func:`make_policy`), or a
            :class:`PolicyFactory` (e.g. ``agents.exploration.sb3_policy(path)``).
        policy_kwargs: extra kwargs of :func:`make_policy` (``repeat``) for a named policy.
        env_kwargs: kwargs for every env (e.g. ``obs_size``).
        device: device of batched envs.
        progress: show a progress bar.

    Returns:
        The finished dataset, opened for reading.
    """
    ids = [env_ids] if isinstance(env_ids, str) else list(env_ids)
    if isinstance(policy, str):
        make_policy(policy, 1, 1)  # an unknown name fails before any env is built
    if not ids:
        raise ReprlError("env_ids: expected at least one env id, got none")
    if num_frames < 1:
        raise ReprlError(f"num_frames: expected an integer >= 1, got {num_frames}")
    env_kwargs = dict(env_kwargs or {})
    policy_kwargs = dict(policy_kwargs or {})
    env_seeds = [spawn_seeds(seed, num_envs, purpose=f"collect/{d}") for d in range(len(ids))]
    venvs = [
        make_vec(i, num_envs, seed=s, device=device, **env_kwargs) for i, s in zip(ids, env_seeds)
    ]
    first_obs = [v.reset() for v in venvs]
    shapes = _factor_shapes(venvs)
    ram = {n for v in venvs for n in getattr(v, "ram_factors", ())}  # RAM bytes (ALE labels)
    frame_shape = venvs[0].observation_space.shape
    for env_id, v in zip(ids, venvs):
        if v.observation_space.shape != frame_shape:
            raise ReprlError(
                f"all envs of one dataset need the same frame shape; {ids[0]} gives {frame_shape},"
                f" {env_id} gives {v.observation_space.shape}"
            )
    attrs = {
        "env_ids": ids,
        "env_kwargs": env_kwargs,
        "domains": ids,
        "policy": {"name": policy, **policy_kwargs}
        if isinstance(policy, str)
        else dict(policy.describe),
        "seed": seed,
        "env_seeds": env_seeds,
        "num_envs": num_envs,
        "discrete_factors": [n for n in shapes if n in DISCRETE_FACTORS or n in ram],
        "ram_factors": [n for n in shapes if n in ram],
    }
    shares = [num_frames // len(ids) + (d < num_frames % len(ids)) for d in range(len(ids))]
    next_episode = 0
    bar = tqdm(total=num_frames, unit="frame", desc="collect", disable=not progress)
    with DatasetWriter(out, frame_shape, shapes, attrs) as writer:
        for d, (venv, obs, share) in enumerate(zip(venvs, first_obs, shares)):
            n_act = venv.action_space.n
            pol = (
                make_policy(policy, n_act, num_envs, seed=seed + d, **policy_kwargs)
                if isinstance(policy, str)
                else policy(n_act, num_envs, seed + d)
            )
            next_episode = _run_domain(venv, obs, pol, share, d, next_episode, shapes, writer, bar)
            venv.close()
    bar.close()
    return FrameDataset(out)


def _factor_shapes(venvs: list) -> dict[str, tuple[int, ...]]:
    """Per-frame factor shapes over several (reset) envs (the widest per-ball width wins)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for v in venvs:
        if not hasattr(v, "get_factors"):
            continue
        for k, a in v.get_factors().items():
            s = a.shape[1:]
            shapes[k] = max(shapes.get(k, s), s)
    return shapes


def _run_domain(
    venv,
    obs: np.ndarray,
    policy,
    frames: int,
    domain: int,
    first_episode: int,
    shapes: dict,
    writer: DatasetWriter,
    bar,
) -> int:
    """Writes ``frames`` frames from a just-reset ``venv``; returns the next free episode id."""
    n = venv.num_envs
    episode = first_episode + np.arange(n)
    next_episode = first_episode + n
    step = np.zeros(n, dtype=np.int64)
    dones = np.ones(n, dtype=bool)
    get_factors = getattr(venv, "get_factors", lambda: {})
    block = max(1, CHUNK // 2)
    written = 0
    while written < frames:
        k = min(block, -(-(frames - written) // n))
        buf: dict[str, list] = {key: [] for key in COLUMNS}
        fbuf: dict[str, list] = {key: [] for key in shapes}
        for _ in range(k):
            factors = get_factors()
            actions = policy(obs, dones)
            new_obs, rewards, dones, _ = venv.step(actions)
            for key, val in zip(COLUMNS, (obs, actions, rewards, dones, episode, step)):
                buf[key].append(np.array(val, copy=True))
            for key in shapes:
                fbuf[key].append(_pad(factors.get(key), shapes[key], n))
            step = np.where(dones, 0, step + 1)
            fresh = int(dones.sum())
            episode = episode.copy()
            episode[dones] = next_episode + np.arange(fresh)
            next_episode += fresh
            obs = new_obs
        # (k, n, ...) -> env-major (n * k, ...): each env's frames stay consecutive
        out = {key: np.stack(v, 1).reshape(n * k, *np.shape(v[0])[1:]) for key, v in buf.items()}
        out["factors"] = {
            key: np.stack(v, 1).reshape(n * k, *shapes[key]) for key, v in fbuf.items()
        }
        out["domain"] = np.full(n * k, domain, dtype=np.int64)
        take = min(n * k, frames - written)
        if take < n * k:
            out = _head(out, take)
        writer.append(out)
        written += take
        bar.update(take)
    return next_episode


def _pad(a: np.ndarray | None, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Factor batch (n, *s) padded with -1 to (n, *shape); all -1 when the env lacks it."""
    out = np.full((n, *shape), -1, dtype=np.int64)
    if a is not None:
        out[(slice(None), *(slice(0, s) for s in a.shape[1:]))] = a
    return out


def _head(block: dict[str, Any], m: int) -> dict[str, Any]:
    return {k: _head(v, m) if isinstance(v, dict) else v[:m] for k, v in block.items()}
