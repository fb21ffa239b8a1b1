"""Environment ids: gymnasium registration, ``make_vec`` and per-id constants.

``import envs`` registers the ``reprl/...`` ids with gymnasium, so ``gym.make("reprl/...")``
gives a single env and ``gym.make_vec("reprl/...", n, vectorization_mode="vector_entry_point")``
the batched gymnasium ``VectorEnv``. :func:`make_vec` gives the SB3 ``VecEnv`` for any id,
ours or the real Atari game's. :func:`best_return` and :func:`action_meanings` answer per id
without building an env.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.vec_env import VecEnv

from envs.adapters import TorchSingleEnv, TorchVecEnv, TorchVectorEnv
from envs.breakout import ACTIONS, NUM_BRICKS, RULES, VARIANTS, BreakoutBatch
from envs.errors import ReprlError
from envs.lab.lab import ACTIONS as LAB_ACTIONS
from envs.lab.lab import LabBatch
from envs.stacking import StackedBatch, VecFrameStacker, check_stack_args

BREAKOUT_IDS: dict[str, dict[str, Any]] = {
    "reprl/Breakout-v0": {},
    "reprl/BreakoutStandard-v0": {"variant": "standard"},
    "reprl/BreakoutOffsetPaddle-v0": {"variant": "offset_paddle"},
    "reprl/BreakoutMiddleWall-v0": {"variant": "middle_wall"},
    "reprl/BreakoutRandomTarget-v0": {"variant": "random_target"},
    "reprl/BreakoutJuggling-v0": {"variant": "juggling"},
    "reprl/BreakoutHalfNegative-v0": {"variant": "half_negative"},
}
"""Our Breakout ids and the kwargs each fixes (``reprl/Breakout-v0`` takes ``variant``)."""

ATARI_IDS = ("ALE/Breakout-v5",)

PROCGEN_IDS: dict[str, dict[str, Any]] = {
    "reprl/CoinRun-v0": {"game": "coinrun"},
    "reprl/CoinRunTrain-v0": {"game": "coinrun", "split": "train"},
    "reprl/CoinRunTest-v0": {"game": "coinrun", "split": "test"},
    "reprl/CoinRunTestDisjoint-v0": {"game": "coinrun", "split": "test_disjoint"},
    "reprl/Procgen-v0": {},
}
"""procgen through :mod:`envs.procgen` (the ``procgen`` extra, in ``dev`` too) and the kwargs
each id fixes: ``reprl/Procgen-v0`` takes ``game`` (default ``coinrun``) and ``split``; the
``CoinRun{Train,Test,TestDisjoint}`` ids fix the split, so train and test levels are two
targets of an experiment like two Breakout variants."""

LAB_IDS: dict[str, dict[str, Any]] = {
    "reprl/LabCollect-v0": {"task": "collect"},
    "reprl/LabCollectTrain-v0": {"task": "collect", "split": "train"},
    "reprl/LabCollectTest-v0": {"task": "collect", "split": "test"},
    "reprl/LabNavigate-v0": {"task": "navigate"},
    "reprl/LabNavigateTrain-v0": {"task": "navigate", "split": "train"},
    "reprl/LabNavigateTest-v0": {"task": "navigate", "split": "test"},
}
"""The DMLab-style worlds of :mod:`envs.lab` and the kwargs each id fixes: ``LabCollect-v0`` and
``LabNavigate-v0`` take ``split`` (default ``"train"``); the ``Train``/``Test`` ids fix it, so
the held-out domains (collect) or mazes (navigate) are one more target of an experiment."""

MEMORY_MAZE_IDS: dict[str, dict[str, Any]] = {
    "reprl/MemoryMaze-v0": {},
    "reprl/MemoryMaze-9x9-v0": {"size": "9x9"},
    "reprl/MemoryMaze-11x11-v0": {"size": "11x11"},
    "reprl/MemoryMaze-13x13-v0": {"size": "13x13"},
    "reprl/MemoryMaze-15x15-v0": {"size": "15x15"},
}
"""Memory Maze, MuJoCo-rendered DMLab-style mazes from the ``memory-maze`` package, through
:mod:`envs.memory_maze` (the ``dmc`` extra: ``pip install -e ".[dmc]"``), and the kwargs each
id fixes: ``reprl/MemoryMaze-v0`` takes ``size`` (default ``"9x9"``)."""

SCHEMA_TARGETS: tuple[str, ...] = (
    "reprl/BreakoutStandard-v0",
    "reprl/BreakoutOffsetPaddle-v0",
    "reprl/BreakoutMiddleWall-v0",
    "reprl/BreakoutRandomTarget-v0",
    "reprl/BreakoutJuggling-v0",
)
"""The Breakout transfer study of Schema Networks (Kansky et al. 2017): the source domain
(Standard) first, then the four zero-shot targets, in the paper's table order."""

ALE_BREAKOUT_ACTIONS: tuple[str, ...] = ("NOOP", "FIRE", "RIGHT", "LEFT")
"""ALE's minimal action set for Breakout, in action-index order."""

ALE_BREAKOUT_BEST_RETURN = 864.0
"""Atari Breakout's maximum score: two walls of 6 x 18 bricks worth 1, 1, 4, 4, 7, 7 by row
(432 each); the game does not refill the wall after the second."""

RANDOM_TARGET_FIRST_HIT = 76
"""Fewest steps from an episode's start to the first target hit in RandomTarget: the ball is
served at y >= 40 (falling, at most 2 px per step), must reach the paddle (top row 110) and rise
to the lowest target row (bottom edge at y 28): 35 steps down, 1 to bounce, 40 up (measured on
the engine in the tests)."""

RANDOM_TARGET_MIN_GAP = 81
"""Fewest steps between two target hits in RandomTarget when the ball returns to the paddle in
between: from y 29 (just below the lowest possible target) down to the paddle at 2 px per step
(40 steps), the bounce (1) and back up (40)."""


def known_ids() -> tuple[str, ...]:
    """Every id :func:`make_vec` accepts."""
    return (*BREAKOUT_IDS, *ATARI_IDS, *PROCGEN_IDS, *LAB_IDS, *MEMORY_MAZE_IDS)


def _check_id(env_id: str) -> None:
    if not isinstance(env_id, str):
        raise ReprlError(
            f"env_id: expected an id string such as 'reprl/CoinRun-v0', got "
            f"{type(env_id).__module__}.{type(env_id).__name__} (reprl builds its envs itself, "
            "procgen included: make_vec('reprl/Procgen-v0', n, game=...))"
        )
    if env_id not in known_ids():
        raise ReprlError(f"unknown env id {env_id!r}; expected one of {known_ids()}")


def _fixed_kwargs(
    env_id: str, fixed: dict[str, Any], kwargs: dict[str, Any], instead: str
) -> dict[str, Any]:
    """``kwargs`` with the ones ``env_id`` fixes; a conflicting value is an error that names
    the id to use ``instead``."""
    clash = {k: kwargs[k] for k in fixed if k in kwargs and kwargs[k] != fixed[k]}
    if clash:
        raise ReprlError(f"{env_id} fixes {fixed}; got conflicting {clash} (use {instead})")
    return {**kwargs, **fixed}


def _procgen_kwargs(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    instead = "reprl/Procgen-v0 with game=... and split=..."
    return _fixed_kwargs(env_id, PROCGEN_IDS[env_id], kwargs, instead)


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
      :data:`RANDOM_TARGET_MIN_GAP` = 81 steps apart, the first no earlier than step
      :data:`RANDOM_TARGET_FIRST_HIT` = 76 (serve at y >= 40). With T = ``max_episode_steps``
      the bound is ``0`` for T < 76, else ``1 + (T - 76) // 81``: 61 for T = 5000. It counts
      hits made through the paddle; a ball that strikes the jumped target again after bouncing
      off the ceiling or a wall, without returning to the paddle, is possible (the jump lands
      in its path by chance), so a lucky episode can exceed it, a normalised score above 1.
    - ``ALE/Breakout-v5``: 864 (:data:`ALE_BREAKOUT_BEST_RETURN`).
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
    _check_id(env_id)
    if env_id in ATARI_IDS:
        return ALE_BREAKOUT_BEST_RETURN
    if env_id in PROCGEN_IDS:
        from envs.procgen import EASY_SCORE_RANGE, check_game

        kw = _procgen_kwargs(env_id, dict(env_kwargs))
        game = check_game(kw.get("game", "coinrun"))
        mode = kw.get("distribution_mode", "easy")
        if mode != "easy":
            raise ReprlError(
                f"best return of {game} in distribution_mode {mode!r}: expected 'easy' (the "
                "only mode whose R_max reprl records)"
            )
        return EASY_SCORE_RANGE[game][1]
    if env_id in LAB_IDS:
        kw = _lab_kwargs(env_id, dict(env_kwargs))
        if kw["task"] == "navigate":
            return 1.0
        num_good = kw.get("num_good", 3)
        if not isinstance(num_good, int) or isinstance(num_good, bool) or num_good < 0:
            raise ReprlError(f"num_good: expected an integer >= 0, got {num_good!r}")
        return float(num_good)
    if env_id in MEMORY_MAZE_IDS:
        _memory_maze_kwargs(env_id, dict(env_kwargs))
        raise ReprlError(
            f"{env_id} has no best return: each ball reached gives +1 and the next is asked "
            "for, so only the time limit and the agent's speed bound an episode's return"
        )
    kw = _breakout_kwargs(env_id, dict(env_kwargs))
    variant = kw.get("variant", "standard")
    if variant not in RULES:
        raise ReprlError(f"unknown Breakout variant {variant!r}; expected one of {VARIANTS}")
    rules = RULES[variant]
    if rules.half_negative:
        return NUM_BRICKS / 2  # the mean of 36 (left half +1) and 30 (right half +1)
    if rules.bricks:
        return float(NUM_BRICKS)
    if rules.target:
        steps = int(kw.get("max_episode_steps", 5000))
        if steps < RANDOM_TARGET_FIRST_HIT:
            return 0.0
        return float(1 + (steps - RANDOM_TARGET_FIRST_HIT) // RANDOM_TARGET_MIN_GAP)
    return 0.0


def level_range(env_id: str, **env_kwargs: Any) -> dict[str, Any] | None:
    """The levels a procedurally generated env draws from, without building it.

    Returns:
        For procgen ids, :meth:`envs.procgen.ProcgenLevels.to_dict` (``split``,
        ``start_level``, ``num_levels``, ``level_range`` ``[low, high)``); None for envs
        without levels (Breakout, ALE).

    Raises:
        ReprlError: an unknown id or invalid level kwargs.
    """
    _check_id(env_id)
    if env_id not in PROCGEN_IDS:
        return None
    from envs.procgen import procgen_levels

    kw = _procgen_kwargs(env_id, dict(env_kwargs))
    levels = procgen_levels(
        kw.get("split"),
        kw.get("distribution_mode", "easy"),
        num_levels=kw.get("num_levels"),
        start_level=kw.get("start_level"),
    )
    return levels.to_dict()


def action_meanings(env_id: str, **env_kwargs: Any) -> tuple[str, ...]:
    """The meaning of each action index of ``env_id``, without building the env.

    Args:
        env_id: one of :func:`known_ids`.
        **env_kwargs: the env's kwargs (they do not change the action set of any id here).

    Returns:
        ``("NOOP", "LEFT", "RIGHT")`` for reprl's Breakout, ``("NOOP", "FIRE", "RIGHT",
        "LEFT")`` for ``ALE/Breakout-v5``, procgen's 15 (:data:`envs.procgen.PROCGEN_ACTIONS`),
        the lab's 6 (:data:`envs.lab.lab.ACTIONS`), Memory Maze's 6
        (:data:`envs.memory_maze.ACTIONS`): what the env's ``get_action_meanings()`` answers.

    Raises:
        ReprlError: an unknown id.
    """
    _check_id(env_id)
    if env_id in PROCGEN_IDS:
        from envs.procgen import PROCGEN_ACTIONS

        return PROCGEN_ACTIONS
    if env_id in LAB_IDS:
        return LAB_ACTIONS
    if env_id in MEMORY_MAZE_IDS:
        from envs.memory_maze import ACTIONS as MEMORY_MAZE_ACTIONS

        return MEMORY_MAZE_ACTIONS
    return ALE_BREAKOUT_ACTIONS if env_id in ATARI_IDS else tuple(ACTIONS)


def _breakout_kwargs(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    instead = f"reprl/Breakout-v0 with variant=..., one of {VARIANTS}"
    return _fixed_kwargs(env_id, BREAKOUT_IDS[env_id], kwargs, instead)


def make_breakout_batch(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> BreakoutBatch | StackedBatch:
    """The batched Breakout core behind one of :data:`BREAKOUT_IDS`, stacked on request.

    Grayscale frames are drawn by the core itself (luma colours), stacks are kept by a
    :class:`envs.stacking.StackedBatch` on the core's device.
    """
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    kw = _breakout_kwargs(env_id, kwargs)
    core = BreakoutBatch(num_envs, seed=seed, device=device, grayscale=grayscale, **kw)
    return core if frame_stack == 1 else StackedBatch(core, frame_stack)


def _stacked(core: Any, frame_stack: int, grayscale: bool) -> Any:
    """``core`` itself, or a :class:`StackedBatch` over it when frames are stacked or gray."""
    if frame_stack == 1 and not grayscale:
        return core
    return StackedBatch(core, frame_stack, grayscale)


def _lab_kwargs(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    fixed = LAB_IDS[env_id]
    instead = f"reprl/Lab{fixed['task'].capitalize()}-v0 with split=..."
    return _fixed_kwargs(env_id, fixed, kwargs, instead)


def make_lab_batch(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> LabBatch | StackedBatch:
    """The batched lab core behind one of :data:`LAB_IDS`, stacked (or grayscale) on request."""
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    core = LabBatch(num_envs, seed=seed, device=device, **_lab_kwargs(env_id, kwargs))
    return _stacked(core, frame_stack, grayscale)


def _memory_maze_kwargs(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    from envs.memory_maze import check_kwargs

    instead = "reprl/MemoryMaze-v0 with size=..."
    kw = _fixed_kwargs(env_id, MEMORY_MAZE_IDS[env_id], kwargs, instead)
    check_kwargs(kw, env_id)
    return kw


def make_memory_maze_batch(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> Any:
    """The batched Memory Maze worlds behind one of :data:`MEMORY_MAZE_IDS`
    (:class:`envs.memory_maze.MemoryMazeBatch`), stacked (or grayscale) on request.

    Raises:
        ReprlError: kwargs the id does not take, bad values, or the ``dmc`` extra missing.
    """
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    from envs.memory_maze import MemoryMazeBatch

    kw = _memory_maze_kwargs(env_id, kwargs)
    core = MemoryMazeBatch(num_envs, seed=seed, device=device, **kw)
    return _stacked(core, frame_stack, grayscale)


def _make_batch(env_id: str, num_envs: int, **kwargs: Any) -> Any:
    """The batched core of an id served by the torch adapters (Breakout, lab, Memory Maze)."""
    if env_id in LAB_IDS:
        return make_lab_batch(env_id, num_envs, **kwargs)
    if env_id in MEMORY_MAZE_IDS:
        return make_memory_maze_batch(env_id, num_envs, **kwargs)
    return make_breakout_batch(env_id, num_envs, **kwargs)


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
            reprl's Breakout stacks on ``device``, ALE on the CPU.
        grayscale: ITU-R 601 luma frames (1 channel) instead of RGB.
        **kwargs: forwarded to the env (e.g. ``variant``, ``obs_size``, ``max_episode_steps``,
            ``min_object_size`` for Breakout; ``mode``, ``difficulty`` for ALE; ``split``,
            ``distribution_mode``, ``num_levels``, ... for procgen, :mod:`envs.procgen`;
            ``split``, ``num_good``, ... for the lab, :class:`envs.lab.lab.LabBatch`;
            ``size``, ``max_episode_steps``, ... for Memory Maze,
            :class:`envs.memory_maze.MemoryMazeBatch`);
            ``info_factors=False`` leaves the factors out of the info dicts (ignored by envs
            without factors).

    Returns:
        The VecEnv; observations ``(N, H, W, C * k)`` uint8 (C = 1 if grayscale else 3),
        default 64 x 64 x 3. ``env_method("get_action_meanings")`` answers for every id;
        ``get_images()`` gives RGB frames ``(H, W, 3)`` for videos, stacked or not.

    Raises:
        ReprlError: an unknown id, num_envs < 1, a bad seed, frame_stack or kwargs.
    """
    _check_id(env_id)
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    info_factors = kwargs.pop("info_factors", True)  # only our envs have factors to skip
    if env_id in BREAKOUT_IDS or env_id in LAB_IDS or env_id in MEMORY_MAZE_IDS:
        core = _make_batch(
            env_id,
            num_envs,
            seed=seed,
            device=device,
            frame_stack=frame_stack,
            grayscale=grayscale,
            **kwargs,
        )
        return TorchVecEnv(core, info_factors=info_factors)
    venv: VecEnv
    if env_id in PROCGEN_IDS:
        from envs.procgen import make_procgen_vec

        venv = make_procgen_vec(num_envs, seed=seed, **_procgen_kwargs(env_id, kwargs))
    else:
        from envs.atari import make_atari_vec

        venv = make_atari_vec(env_id, num_envs, seed=seed, device=str(device), **kwargs)
    if frame_stack == 1 and not grayscale:
        return venv
    return VecFrameStacker(venv, frame_stack, grayscale)


def _single_entry(
    env_id: str,
    *,
    seed: int | None = None,
    device: str = "cpu",
    render_mode: str | None = None,
    **kwargs: Any,
) -> TorchSingleEnv:
    core = _make_batch(env_id, 1, seed=seed, device=device, **kwargs)
    return TorchSingleEnv(core, render_mode=render_mode)


def _vector_entry(
    env_id: str,
    num_envs: int = 1,
    *,
    seed: int | Sequence[int] | None = None,
    device: str = "cpu",
    autoreset_mode: gym.vector.AutoresetMode | str = gym.vector.AutoresetMode.NEXT_STEP,
    **kwargs: Any,
) -> TorchVectorEnv:
    kwargs.pop("render_mode", None)
    core = _make_batch(env_id, num_envs, seed=seed, device=device, **kwargs)
    return TorchVectorEnv(core, autoreset_mode=autoreset_mode)


def _procgen_single_entry(env_id: str, **kwargs: Any) -> gym.Env:
    from envs.procgen import ProcgenEnv

    return ProcgenEnv(**_procgen_kwargs(env_id, kwargs))


def _procgen_vector_entry(env_id: str, num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    from envs.procgen import ProcgenVectorEnv

    return ProcgenVectorEnv(num_envs, **_procgen_kwargs(env_id, kwargs))


def register_envs() -> None:
    """Registers the ``reprl/...`` ids with gymnasium (idempotent)."""
    for env_id in (*BREAKOUT_IDS, *LAB_IDS, *MEMORY_MAZE_IDS):
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=_single_entry,
            vector_entry_point=_vector_entry,
            kwargs={"env_id": env_id},
            disable_env_checker=False,
        )
    for env_id in PROCGEN_IDS:
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=_procgen_single_entry,
                vector_entry_point=_procgen_vector_entry,
                kwargs={"env_id": env_id},
            )
