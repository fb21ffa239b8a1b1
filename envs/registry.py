"""Environment ids: a lookup from each id to its family, ``make_vec`` and per-id answers.

Every id belongs to one :class:`envs.family.EnvFamily`, defined in the family's module and
listed once in :data:`FAMILIES`; the functions here ask the family of the id, without a branch
per family. ``import envs`` registers the ``reprl/...`` ids with gymnasium, so
``gym.make("reprl/...")`` gives a single env and ``gym.make_vec("reprl/...", n,
vectorization_mode="vector_entry_point")`` the batched gymnasium ``VectorEnv``.
:func:`make_vec` gives the SB3 ``VecEnv`` for any id, ours or the real Atari game's.
:func:`best_return`, :func:`action_meanings`, :func:`level_range` and
:func:`observation_shape` answer per id without building an emulator.

Adding a family: a module that builds its :class:`~envs.family.EnvFamily`, and one entry in
:data:`FAMILIES` below (or :func:`register_family` at run time, e.g. in a test).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.vec_env import VecEnv

from envs.adapters import TorchSingleEnv, TorchVecEnv, TorchVectorEnv
from envs.atari import ALE_FAMILIES
from envs.batched import BatchedEnv
from envs.breakout.family import BREAKOUT, SCHEMA_TARGETS, make_breakout_batch
from envs.errors import ReprlError
from envs.family import EnvFamily
from envs.lab.family import LAB, make_lab_batch
from envs.memory_maze import MEMORY_MAZE, make_memory_maze_batch
from envs.procgen import PROCGEN
from envs.stacking import VecFrameStacker, check_stack_args

FAMILIES: tuple[EnvFamily, ...] = (BREAKOUT, *ALE_FAMILIES, PROCGEN, LAB, MEMORY_MAZE)
"""The families reprl serves, in :func:`known_ids` order: add a new family's spec here."""

_BY_ID: dict[str, EnvFamily] = {}  # every known id -> its family
_BY_NAME: dict[str, EnvFamily] = {}

BREAKOUT_IDS = BREAKOUT.ids
"""reprl's Breakout ids and the kwargs each fixes (:data:`envs.breakout.BREAKOUT_IDS`)."""
PROCGEN_IDS = PROCGEN.ids
"""procgen's ids and the kwargs each fixes (:data:`envs.procgen.PROCGEN_IDS`)."""
LAB_IDS = LAB.ids
"""The lab's ids and the kwargs each fixes (:data:`envs.lab.family.LAB_IDS`)."""
MEMORY_MAZE_IDS = MEMORY_MAZE.ids
"""Memory Maze's ids and the kwargs each fixes (:data:`envs.memory_maze.MEMORY_MAZE_IDS`)."""

__all__ = [
    "BREAKOUT_IDS",
    "FAMILIES",
    "LAB_IDS",
    "MEMORY_MAZE_IDS",
    "PROCGEN_IDS",
    "SCHEMA_TARGETS",
    "action_meanings",
    "best_return",
    "family",
    "known_ids",
    "level_range",
    "make_batch",
    "make_breakout_batch",
    "make_lab_batch",
    "make_memory_maze_batch",
    "make_vec",
    "observation_shape",
    "register_envs",
    "register_family",
    "unregister_family",
]


def _add(fam: EnvFamily) -> None:
    taken = sorted(i for i in fam.ids if i in _BY_ID and _BY_ID[i] is not fam)
    if taken or (fam.name in _BY_NAME and _BY_NAME[fam.name] is not fam):
        raise ReprlError(
            f"env family {fam.name!r}: the name or ids {taken} belong to another family already"
        )
    _BY_NAME[fam.name] = fam
    _BY_ID.update(dict.fromkeys(fam.ids, fam))


for _fam in FAMILIES:
    _add(_fam)


def known_ids() -> tuple[str, ...]:
    """Every id :func:`make_vec` accepts, family by family."""
    return tuple(_BY_ID)


def family(env_id: str) -> EnvFamily:
    """The family that serves ``env_id``.

    Raises:
        ReprlError: not a string, or an unknown id (the message lists the known ones).
    """
    if not isinstance(env_id, str):
        raise ReprlError(
            f"env_id: expected an id string such as 'reprl/CoinRun-v0', got "
            f"{type(env_id).__module__}.{type(env_id).__name__} (reprl builds its envs itself, "
            "procgen included: make_vec('reprl/Procgen-v0', n, game=...))"
        )
    fam = _BY_ID.get(env_id)
    if fam is None:
        raise ReprlError(f"unknown env id {env_id!r}; expected one of {known_ids()}")
    return fam


def register_family(fam: EnvFamily) -> None:
    """Adds ``fam`` to the lookup and registers its gymnasium ids (idempotent).

    Raises:
        ReprlError: one of its ids or its name belongs to another family.
    """
    _add(fam)
    _register_gym(fam)


def unregister_family(fam: EnvFamily) -> None:
    """Removes ``fam`` (added with :func:`register_family`) and its gymnasium ids."""
    for env_id in fam.ids:
        if _BY_ID.get(env_id) is fam:
            del _BY_ID[env_id]
            gym.registry.pop(env_id, None)
    if _BY_NAME.get(fam.name) is fam:
        del _BY_NAME[fam.name]


def best_return(env_id: str, **env_kwargs: Any) -> float:
    """The best attainable return of one episode of ``env_id`` with ``env_kwargs``.

    The max of min-max normalised scores (the min being a measured uniform-random policy).
    A documented constant per variant, an upper bound where the time limit may make it
    unattainable:

    - Standard, OffsetPaddle, MiddleWall: every brick, ``66 x 1 = 66`` (+1 per brick, clearing
      the wall ends the episode with 0 extra; with ``reward_clip`` two bricks in one step count
      once, so 66 stays the bound). Within ``max_episode_steps`` (default 5000) clearing the
      wall may be out of reach: 66 is then the upper bound.
    - HalfNegative: the positive half. The +1 half is drawn each episode: the left half
      (columns 0-5, x < 47: 36 bricks) or the right half (columns 6-10: 30 bricks), each with
      probability 1/2; the constant is the expected best, ``(36 + 30) / 2 = 33`` (an episode's
      own best is 36 or 30).
    - Juggling: 0 (only lost balls are rewarded, with -1).
    - RandomTarget: the target re-appears after every hit, so only the time limit bounds the
      return. +1 per hit (at most one per step with ``reward_clip``). A hit needs the ball at
      the target (rows y < 29); a ball that returns to the paddle (row 110) in between travels
      at least 80 px down and 80 px up at 2 px per step (the speed limit): hits are at least
      :data:`envs.breakout.RANDOM_TARGET_MIN_GAP` = 81 steps apart, the first no earlier
      than step :data:`envs.breakout.RANDOM_TARGET_FIRST_HIT` = 76 (serve at y >= 40). With
      T = ``max_episode_steps`` the bound is ``0`` for T < 76, else ``1 + (T - 76) // 81``:
      61 for T = 5000. It counts hits made through the paddle; a ball that strikes the jumped
      target again after bouncing off the ceiling or a wall, without returning to the paddle,
      is possible (the jump lands in its path by chance), so a lucky episode can exceed it, a
      normalised score above 1.
    - ``ALE/Breakout-v5``: 864 (:data:`envs.atari.BREAKOUT_BEST_RETURN`); ``ALE/Pong-v5``: 21
      (21 - 0); ``ALE/Boxing-v5``: 100 (a knock-out, 100 - 0).
    - LabCollect: ``num_good`` (default 3), every good object touched, no bad one (an upper
      bound: the time limit may not allow all). LabNavigate: 1 (the goal, once).
    - Memory Maze: none (a ReprlError): every ball reached gives +1 and another is asked for,
      so only the time limit and the agent's speed bound the return.
    - procgen games, easy mode: the Procgen paper's R_max
      (:data:`envs.procgen.EASY_SCORE_RANGE`; CoinRun 10); other modes have no constant here.

    Args:
        env_id: one of :func:`known_ids`.
        **env_kwargs: the env's kwargs as given to :func:`make_vec` (``variant`` for
            ``reprl/Breakout-v0``, ``max_episode_steps`` for RandomTarget); others are ignored.

    Returns:
        The bound, a float.

    Raises:
        ReprlError: an unknown id or variant, or conflicting kwargs.
    """
    fam = family(env_id)
    return fam.episode_bound(env_id, fam.resolve(env_id, env_kwargs))


def level_range(env_id: str, **env_kwargs: Any) -> dict[str, Any] | None:
    """The levels a procedurally generated env draws from, without building it.

    Returns:
        For procgen ids, :meth:`envs.procgen.ProcgenLevels.to_dict` (``split``,
        ``start_level``, ``num_levels``, ``level_range`` ``[low, high)``); None for envs
        without levels (Breakout, ALE, the lab, Memory Maze).

    Raises:
        ReprlError: an unknown id or invalid level kwargs.
    """
    fam = family(env_id)
    if fam.level_range is None:
        return None
    return fam.level_range(env_id, fam.resolve(env_id, env_kwargs))


def action_meanings(env_id: str, **env_kwargs: Any) -> tuple[str, ...]:
    """The meaning of each action index of ``env_id``, without building the env.

    Args:
        env_id: one of :func:`known_ids`.
        **env_kwargs: the env's kwargs (they do not change the action set of any id here).

    Returns:
        ``("NOOP", "LEFT", "RIGHT")`` for reprl's Breakout, ``("NOOP", "FIRE", "RIGHT",
        "LEFT")`` for ``ALE/Breakout-v5`` (ALE's minimal set of each game,
        :data:`envs.atari.GAMES`: Pong 6, Boxing 18), procgen's 15
        (:data:`envs.procgen.PROCGEN_ACTIONS`), the lab's 6 (:data:`envs.lab.lab.ACTIONS`),
        Memory Maze's 6 (:data:`envs.memory_maze.ACTIONS`): what the env's
        ``get_action_meanings()`` answers.

    Raises:
        ReprlError: an unknown id.
    """
    return family(env_id).action_meanings


def observation_shape(env_id: str, **kwargs: Any) -> tuple[int, int, int]:
    """The observation shape ``(H, W, C * k)`` of ``env_id`` with ``kwargs``, what
    :func:`make_vec` gives as ``observation_space.shape``, without building an emulator.

    The family works out one RGB frame's ``(H, W, 3)`` (reprl's batched envs build a core of one
    env, milliseconds; procgen is 64 x 64; ALE and Memory Maze read ``obs_size``), validating
    the kwargs where it can; ``grayscale`` makes C 1, ``frame_stack`` k multiplies it.

    Args:
        env_id: one of :func:`known_ids`.
        **kwargs: as :func:`make_vec` (``frame_stack``, ``grayscale``, ``info_factors`` and the
            env's kwargs; not ``seed`` or ``device``).

    Returns:
        ``(H, W, C)`` ints, e.g. ``(64, 64, 3)``.

    Raises:
        ReprlError: an unknown id, conflicting or (where checked) invalid kwargs.
    """
    fam = family(env_id)
    frame_stack, grayscale = check_stack_args(
        kwargs.pop("frame_stack", 1), kwargs.pop("grayscale", False)
    )
    kwargs.pop("info_factors", None)
    h, w, c = fam.observation_shape(env_id, fam.resolve(env_id, kwargs))
    return (int(h), int(w), (1 if grayscale else int(c)) * frame_stack)


def make_batch(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> BatchedEnv:
    """The batched torch core of a reprl batched env (:attr:`envs.family.EnvFamily.batched`),
    stacked (or grayscale) on request: what :func:`make_vec` wraps, for loops that step the
    core on its device themselves.

    Raises:
        ReprlError: an unknown id, an id served by another library (no core), bad kwargs.
    """
    fam = family(env_id)
    if fam.make_batch is None:
        batched = sorted(i for i, f in _BY_ID.items() if f.batched)
        raise ReprlError(
            f"{env_id} is not a reprl batched env (it has no torch core); ids with one: {batched}"
        )
    return fam.make_batch(
        env_id,
        num_envs,
        seed=seed,
        device=device,
        frame_stack=frame_stack,
        grayscale=grayscale,
        **fam.resolve(env_id, kwargs),
    )


def make_vec(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> VecEnv:
    """An SB3 ``VecEnv`` of ``num_envs`` copies of ``env_id``.

    Args:
        env_id: one of :func:`known_ids` (``reprl/Breakout*-v0``, ``ALE/Breakout-v5``,
            ``ALE/Pong-v5``, ``ALE/Boxing-v5``,
            ``reprl/CoinRun-v0``, ``reprl/Procgen-v0``, ``reprl/Lab*-v0``,
            ``reprl/MemoryMaze*-v0``).
        num_envs: number of parallel envs, >= 1.
        seed: an int (env i is seeded with ``seed + i``, SB3's convention), a sequence of
            ``num_envs`` ints >= 0 (env i gets ``seed[i]``; use
            :func:`envs.rng.spawn_seeds` for streams that do not overlap between runs), or
            None (fresh entropy). Applied at the first ``reset()``.
        device: where a batched env keeps its state ("cpu", "cuda"); observations come out as
            numpy either way.
        frame_stack: k >= 1 frames per observation, oldest first (:mod:`envs.stacking`);
            reprl's batched envs stack on ``device``, the others on the CPU.
        grayscale: ITU-R 601 luma frames (1 channel) instead of RGB.
        **kwargs: forwarded to the env (e.g. ``variant``, ``obs_size``, ``max_episode_steps``,
            ``min_object_size`` for Breakout; ``mode``, ``difficulty``, ``ram_labels`` for
            ALE; ``split``, ``distribution_mode``, ``num_levels``, ... for procgen,
            :mod:`envs.procgen`; ``split``, ``num_good``, ... for the lab,
            :class:`envs.lab.lab.LabBatch`; ``size``, ``max_episode_steps``, ... for Memory Maze,
            :class:`envs.memory_maze.MemoryMazeBatch`);
            ``info_factors=False`` leaves the factors out of the info dicts (ignored by envs
            without factors).

    Returns:
        The VecEnv; observations ``(N, H, W, C * k)`` uint8 (C = 1 if grayscale else 3),
        default 64 x 64 x 3 (:func:`observation_shape`). ``env_method("get_action_meanings")``
        answers for every id; ``get_images()`` gives RGB frames ``(H, W, 3)`` for videos,
        stacked or not.

    Raises:
        ReprlError: an unknown id, num_envs < 1, a bad seed, frame_stack or kwargs.
    """
    fam = family(env_id)
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    info_factors = kwargs.pop("info_factors", True)  # only our envs have factors to skip
    if fam.batched:
        core = make_batch(
            env_id,
            num_envs,
            seed=seed,
            device=device,
            frame_stack=frame_stack,
            grayscale=grayscale,
            **kwargs,
        )
        return TorchVecEnv(core, info_factors=info_factors)
    assert fam.make_vec is not None
    venv = fam.make_vec(env_id, num_envs, seed=seed, device=device, **fam.resolve(env_id, kwargs))
    if frame_stack == 1 and not grayscale:
        return venv
    return VecFrameStacker(venv, frame_stack, grayscale)


def _single_entry(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make``'s entry point of every id reprl registers."""
    fam = family(env_id)
    if fam.entry_point is not None:
        return fam.entry_point(**fam.resolve(env_id, kwargs))
    seed, device = kwargs.pop("seed", None), kwargs.pop("device", "cpu")
    render_mode = kwargs.pop("render_mode", None)
    core = make_batch(env_id, 1, seed=seed, device=device, **kwargs)
    return TorchSingleEnv(core, render_mode=render_mode)


def _vector_entry(env_id: str, num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    """``gym.make_vec``'s vector entry point of every id reprl registers."""
    fam = family(env_id)
    if fam.vector_entry_point is not None:
        return fam.vector_entry_point(num_envs, **fam.resolve(env_id, kwargs))
    seed, device = kwargs.pop("seed", None), kwargs.pop("device", "cpu")
    mode = kwargs.pop("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    kwargs.pop("render_mode", None)
    core = make_batch(env_id, num_envs, seed=seed, device=device, **kwargs)
    return TorchVectorEnv(core, autoreset_mode=mode)


def _register_gym(fam: EnvFamily) -> None:
    if not fam.batched and fam.entry_point is None and fam.vector_entry_point is None:
        return  # served by its own library's ids (ALE)
    for env_id in fam.ids:
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=_single_entry,
                vector_entry_point=_vector_entry,
                kwargs={"env_id": env_id},
                disable_env_checker=False,
            )


def register_envs() -> None:
    """Registers the ``reprl/...`` ids of every family with gymnasium (idempotent)."""
    for fam in _BY_NAME.values():
        _register_gym(fam)
