"""Procgen (CoinRun and the 15 other games) as an SB3 ``VecEnv``, a gymnasium ``VectorEnv`` and a
gymnasium ``Env``, with the train/test protocol.

procgen's own interface is gym3's ``ProcgenGym3Env``, already vectorised in C++; its gym
wrapper speaks old-gym spaces that SB3 2.x refuses. :class:`ProcgenVecEnv` talks to the gym3
env directly (one ``act`` + ``observe`` per step, no copies beyond SB3's contract) and gives
what every reprl env gives: ``uint8 (64, 64, 3)`` RGB observations, ``Discrete(15)`` actions,
float32 rewards, SB3 auto-reset semantics. :class:`ProcgenVectorEnv` (``gym.make_vec``) and
:class:`ProcgenEnv` (``gym.make``) are gymnasium's views of the same env.

The generalisation protocol of Cobbe et al. (2020) is data, not a convention to remember
(:func:`procgen_levels`):

- ``split="train"``: levels ``[start_level, start_level + num_levels)``, by default
  ``[0, 200)`` in easy mode and ``[0, 500)`` in hard mode;
- ``split="test"``: the full distribution (``num_levels=0``: level seeds drawn uniformly from
  ``[0, 2**31 - 1)``), as the paper tests; a train level comes up with probability 200 / 2**31;
- ``split="test_disjoint"``: only levels after the training range, ``[start_level +
  num_levels, 2**31 - 1)``, where ``num_levels`` and ``start_level`` name the *training* levels
  (same defaults): no level is ever shared with the train split.

Level seeds come from procgen itself (``info["level_seed"]``: the level of the observation
beside it; ``info["prev_level_seed"]`` on the first step of an episode: the finished one's).

Two facts of procgen a user should know:

- procgen renders no frame after an episode's last step (the game resets inside the same C++
  step), so ``infos[i]["terminal_observation"]`` is the last frame the agent saw, the one it
  chose its final action on. SB3 reads it only for truncated episodes, and procgen reports
  none: it ends an episode at its own time limit (CoinRun: 1,000 steps) without saying which
  ending it was, and, as openai/train-procgen does, every ending counts as terminal here
  (``TimeLimit.truncated`` is False).
- ``ProcgenGym3Env`` cannot be reset: :meth:`ProcgenVecEnv.reset` builds a new one (a few ms).
  All N envs draw from one ``rand_seed``; reprl folds the per-env seeds of ``make_vec`` into it
  (:func:`fold_seeds`), so the same seeds repeat the same levels and actions' outcomes, and
  the disjoint seed lists of :func:`envs.rng.spawn_seeds` give unrelated streams.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from envs.adapters import check_autoreset_mode
from envs.checks import is_int
from envs.errors import ReprlError
from envs.family import EnvFamily
from envs.oldgym import import_old_gym_quietly
from envs.rng import per_env_seeds

PROCGEN_GAMES: tuple[str, ...] = (
    "bigfish",
    "bossfight",
    "caveflyer",
    "chaser",
    "climber",
    "coinrun",
    "dodgeball",
    "fruitbot",
    "heist",
    "jumper",
    "leaper",
    "maze",
    "miner",
    "ninja",
    "plunder",
    "starpilot",
)
"""The 16 games of procgen 0.10.7."""

DISTRIBUTION_MODES: tuple[str, ...] = ("easy", "hard", "extreme", "memory", "exploration")
"""procgen's distribution modes (not every game has all; procgen says which)."""

SPLITS: tuple[str, ...] = ("train", "test", "test_disjoint")
"""The protocol's level sets (see the module docstring)."""

TRAIN_LEVELS: dict[str, int] = {"easy": 200, "hard": 500}
"""Training levels of the paper's generalisation protocol per distribution mode."""

MAX_LEVEL_SEED = 2**31 - 1
"""procgen draws level seeds below ``INT_MAX`` (``num_levels=0``: from ``[0, 2**31 - 1)``)."""

PROCGEN_ACTIONS: tuple[str, ...] = (
    "DOWNLEFT",
    "LEFT",
    "UPLEFT",
    "DOWN",
    "NOOP",
    "UP",
    "DOWNRIGHT",
    "RIGHT",
    "UPRIGHT",
    "D",
    "A",
    "W",
    "S",
    "Q",
    "E",
)
"""procgen's 15 key combinations in action-index order, named as ALE names its actions."""

EASY_SCORE_RANGE: dict[str, tuple[float, float]] = {
    "bigfish": (1.0, 40.0),
    "bossfight": (0.5, 13.0),
    "caveflyer": (3.5, 12.0),
    "chaser": (0.5, 13.0),
    "climber": (2.0, 12.6),
    "coinrun": (5.0, 10.0),
    "dodgeball": (1.5, 19.0),
    "fruitbot": (-1.5, 32.4),
    "heist": (3.5, 10.0),
    "jumper": (3.0, 10.0),
    "leaper": (3.0, 10.0),
    "maze": (5.0, 10.0),
    "miner": (1.5, 13.0),
    "ninja": (3.5, 10.0),
    "plunder": (4.5, 30.0),
    "starpilot": (2.5, 64.0),
}
"""(R_min, R_max) per game in easy mode, Cobbe et al. (2020): R_max is the best attainable
score of an episode, reprl's ``best_return``; R_min is the paper's, shown for reference (reprl
measures its own uniform-random reference)."""

PROCGEN_TIME_LIMIT = 1000
"""procgen ends every episode after at most 1,000 steps, as a terminal step (its games'
``timeout``: 1,000 for CoinRun and most games, 500 for maze; measured over all 16 games with
random actions: no episode longer than 1,000)."""

OPTIONS: dict[str, bool] = {
    "center_agent": True,
    "use_backgrounds": True,
    "use_monochrome_assets": False,
    "restrict_themes": False,
    "use_generated_assets": False,
    "paint_vel_info": False,
    "use_sequential_levels": False,
}
"""procgen's boolean options and their defaults; every one passes through ``make_vec``."""


@dataclass(frozen=True)
class ProcgenLevels:
    """The level seeds a procgen env draws from: ``[low, high)``.

    Attributes:
        split: ``train``, ``test``, ``test_disjoint`` or ``None`` (procgen's own arguments).
        start_level: procgen's ``start_level``.
        num_levels: procgen's ``num_levels`` (0: the full distribution).
    """

    split: str | None
    start_level: int
    num_levels: int

    @property
    def low(self) -> int:
        """The smallest level seed drawn."""
        return 0 if self.num_levels == 0 else self.start_level

    @property
    def high(self) -> int:
        """One past the largest level seed drawn."""
        return MAX_LEVEL_SEED if self.num_levels == 0 else self.start_level + self.num_levels

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain record of the split and its level range, for configs and reports."""
        return {
            "split": self.split,
            "start_level": self.start_level,
            "num_levels": self.num_levels,
            "level_range": [self.low, self.high],
        }


def procgen_levels(
    split: str | None = None,
    distribution_mode: str = "easy",
    *,
    num_levels: int | None = None,
    start_level: int | None = None,
) -> ProcgenLevels:
    """The levels of a split (the protocol of the module docstring), validated.

    Args:
        split: ``"train"``, ``"test"``, ``"test_disjoint"`` or None (``num_levels`` and
            ``start_level`` as procgen takes them, default 0 and 0: every level).
        distribution_mode: one of :data:`DISTRIBUTION_MODES` (sets the default number of
            training levels: :data:`TRAIN_LEVELS`).
        num_levels: ``train`` and ``test_disjoint``: the number of training levels (default
            :data:`TRAIN_LEVELS` of the mode); ``test``: not allowed; None split: procgen's.
        start_level: the first training level (default 0); as ``num_levels``.

    Returns:
        The levels.

    Raises:
        ReprlError: an unknown split or mode, negative or non-integer levels, a range past
            :data:`MAX_LEVEL_SEED`, levels given to ``test`` (the full distribution), a
            train/test_disjoint split of a mode without a default number of training levels
            and no ``num_levels``, or a ``test_disjoint`` split left with no level.
    """
    if distribution_mode not in DISTRIBUTION_MODES:
        raise ReprlError(
            f"distribution_mode: expected one of {DISTRIBUTION_MODES}, got {distribution_mode!r}"
        )
    if split is not None and split not in SPLITS:
        raise ReprlError(f"split: expected one of {SPLITS} or None, got {split!r}")
    for name, value in (("num_levels", num_levels), ("start_level", start_level)):
        if value is not None and (not is_int(value) or value < 0):
            raise ReprlError(f"{name}: expected an integer >= 0, got {value!r}")
    if split == "test":
        if num_levels is not None or start_level is not None:
            raise ReprlError(
                "split 'test' is the full level distribution (num_levels=0); got "
                f"num_levels={num_levels}, start_level={start_level} (use split=None for a "
                "range of your own, or 'test_disjoint' to exclude the training levels)"
            )
        return ProcgenLevels("test", 0, 0)
    start = int(start_level or 0)
    if split is None:
        n = int(num_levels or 0)
    else:
        if num_levels is None and distribution_mode not in TRAIN_LEVELS:
            raise ReprlError(
                f"split {split!r} in distribution_mode {distribution_mode!r}: expected "
                f"num_levels (the protocol defines training levels only for {tuple(TRAIN_LEVELS)})"
            )
        n = int(TRAIN_LEVELS[distribution_mode] if num_levels is None else num_levels)
        if n == 0:
            raise ReprlError(
                f"split {split!r}: expected num_levels >= 1 training levels, got 0 (0 means "
                "every level: use split='test')"
            )
    if start + n > MAX_LEVEL_SEED:
        raise ReprlError(
            f"levels [{start}, {start + n}): expected a range below {MAX_LEVEL_SEED} "
            "(procgen's level seeds are 31-bit)"
        )
    if split == "test_disjoint":
        first = start + n
        if first >= MAX_LEVEL_SEED:
            raise ReprlError(f"split 'test_disjoint': no level is left after [{start}, {first})")
        return ProcgenLevels("test_disjoint", first, MAX_LEVEL_SEED - first)
    return ProcgenLevels(split, start, n)


def fold_seeds(seeds: Sequence[int]) -> int:
    """One procgen ``rand_seed`` in ``[0, 2**31)`` from per-env seeds (``numpy.random.
    SeedSequence`` over all of them: the same list gives the same seed, other lists others)."""
    state = np.random.SeedSequence([int(s) for s in seeds]).generate_state(1, np.uint32)
    return int(state[0] & 0x7FFFFFFF)


def check_game(game: Any) -> str:
    """``game`` if it is one of :data:`PROCGEN_GAMES`, else a ReprlError naming them."""
    if game not in PROCGEN_GAMES:
        raise ReprlError(f"game: expected one of {PROCGEN_GAMES}, got {game!r}")
    return str(game)


FACTOR_NAMES = ("level_seed", "agent_x", "agent_y")
"""Ground-truth factors of a procgen frame (:meth:`ProcgenVecEnv.get_factors`): the level, and
the agent's position in the level in hundredths of a grid cell (x right, y up)."""

_I32 = struct.Struct("<i")
_PLAYER = 0  # procgen's object id of the agent (object-ids.h), always entity 0
_GAME_INTS = 12 + 5  # options, then grid_step, level seed range, game_type, game_n
_ENTITY_BYTES = 31 * 4  # Entity::serialize: 16 floats and 15 ints


def agent_position(state: bytes, game: str) -> tuple[int, int, int] | None:
    """``(level_seed, x, y)`` read from one game's ``ProcgenGym3Env.get_state()`` bytes.

    The bytes follow procgen's ``Game::serialize`` then ``BasicAbstractGame::serialize`` (format
    version 0, the one procgen 0.10.x writes): fixed ints, two random generators as strings,
    more fixed fields, then the entities, the agent first. ``x``, ``y`` are its centre in
    hundredths of a grid cell.

    Args:
        state: one element of ``get_state()``.
        game: the game that wrote it (checked against the name in the bytes).

    Returns:
        The triple, or None when the bytes are not in that format (another version, another
        game, no agent first): then the position is not read at all rather than guessed.
    """
    try:
        o = 0

        def i32() -> int:
            nonlocal o
            (v,) = _I32.unpack_from(state, o)
            o += 4
            return v

        def skip_string() -> bytes:
            nonlocal o
            n = i32()
            o += n
            return state[o - n : o]

        if i32() != 0 or skip_string() != game.encode():
            return None
        o += 4 * _GAME_INTS
        for _ in range(2):  # level_seed_rand_gen, rand_gen: is_seeded + mt19937 state string
            o += 4
            skip_string()
        o += 4 * 5  # reward, done, level_complete, action, timeout
        level_seed = i32()
        o += 4 * 9  # prev_level_seed ... is_waiting_for_step
        o += 4  # grid_size
        if i32() < 1:
            return None
        x, y = struct.unpack_from("<2f", state, o)
        (kind,) = _I32.unpack_from(state, o + 24)
        if kind != _PLAYER or o + _ENTITY_BYTES > len(state):
            return None
        return level_seed, round(100 * x), round(100 * y)
    except struct.error:
        return None


class ProcgenVecEnv(VecEnv):
    """procgen's ``ProcgenGym3Env`` as an SB3 ``VecEnv`` (see the module docstring).

    Args:
        game: one of :data:`PROCGEN_GAMES`.
        num_envs: N >= 1.
        levels: the level range (:func:`procgen_levels`).
        distribution_mode: procgen's mode.
        seeds: N per-env seeds folded into procgen's ``rand_seed`` at the next ``reset()``;
            None: fresh entropy.
        options: procgen's boolean options (:data:`OPTIONS`).
        num_threads: procgen's worker threads (0: step in the calling thread, fork-safe).

    Infos (every step): ``level_seed`` (the level of the observation beside it); on the step
    that ends an episode also ``prev_level_seed`` (the finished level), ``level_complete``
    (procgen's ``prev_level_complete``: the coin was reached), ``episode_return``,
    ``episode_length``, ``terminal_observation`` and ``TimeLimit.truncated`` (False).
    """

    def __init__(
        self,
        game: str,
        num_envs: int,
        levels: ProcgenLevels,
        *,
        distribution_mode: str = "easy",
        seeds: Sequence[int] | None = None,
        options: Mapping[str, bool] | None = None,
        num_threads: int = 4,
    ) -> None:
        self.game = check_game(game)
        self.levels = levels
        self.distribution_mode = distribution_mode
        self.options = {**OPTIONS, **(options or {})}
        self.num_threads = int(num_threads)
        space = gym.spaces.Box(0, 255, (64, 64, 3), dtype=np.uint8)
        self.render_mode = "rgb_array"
        super().__init__(int(num_envs), space, gym.spaces.Discrete(len(PROCGEN_ACTIONS)))
        if seeds is not None:
            self._seeds = list(seeds)
        self._entropy = np.random.SeedSequence()  # unseeded resets draw from here
        self.env: Any = None
        self._obs = np.zeros((self.num_envs, 64, 64, 3), np.uint8)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(self.num_envs, np.float64)
        self._lengths = np.zeros(self.num_envs, np.int64)

    def _make(self, rand_seed: int) -> Any:
        import_old_gym_quietly()  # procgen imports old gym, which prints a notice
        from procgen import ProcgenGym3Env

        return ProcgenGym3Env(
            num=self.num_envs,
            env_name=self.game,
            distribution_mode=self.distribution_mode,
            num_levels=self.levels.num_levels,
            start_level=self.levels.start_level,
            rand_seed=rand_seed,
            num_threads=self.num_threads,
            **self.options,
        )

    def reset(self) -> np.ndarray:
        """Starts N new episodes (a new procgen env, seeded as the class docstring says).

        Returns:
            ``(N, 64, 64, 3)`` uint8 first frames.
        """
        if all(s is None for s in self._seeds):
            rand_seed = int(self._entropy.spawn(1)[0].generate_state(1)[0] & 0x7FFFFFFF)
        else:
            rand_seed = fold_seeds([0 if s is None else s for s in self._seeds])
            self._entropy = np.random.SeedSequence(rand_seed)  # later unseeded resets follow
        self._reset_seeds()
        self._reset_options()
        self.env = self._make(rand_seed)
        _, ob, _ = self.env.observe()
        self._obs = ob["rgb"]
        self._returns[:] = 0.0
        self._lengths[:] = 0
        self._actions = None
        self.reset_infos = [{"level_seed": int(i["level_seed"])} for i in self.env.get_info()]
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer):
            raise ReprlError(
                f"actions: expected ({self.num_envs},) integers, got shape {a.shape} "
                f"dtype {a.dtype}"
            )
        if a.size and (a.min() < 0 or a.max() >= len(PROCGEN_ACTIONS)):
            raise ReprlError(
                f"actions: expected values in [0, {len(PROCGEN_ACTIONS)}), got {a.min()}..{a.max()}"
            )
        self._actions = a.astype(np.int32)

    def step_wait(self) -> VecEnvStepReturn:
        if self.env is None:
            raise RuntimeError("step_wait() called before reset()")
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        self.env.act(self._actions)
        self._actions = None
        rew, ob, first = self.env.observe()
        obs = ob["rgb"]
        reward = rew.astype(np.float32)
        self._returns += reward
        self._lengths += 1
        raw = self.env.get_info()
        infos: list[dict[str, Any]] = [{"level_seed": int(i["level_seed"])} for i in raw]
        done = first.astype(bool)
        if done.any():
            for i in np.flatnonzero(done):
                infos[i].update(
                    terminal_observation=self._obs[i],
                    prev_level_seed=int(raw[i]["prev_level_seed"]),
                    level_complete=bool(raw[i]["prev_level_complete"]),
                    episode_return=float(self._returns[i]),
                    episode_length=int(self._lengths[i]),
                )
                infos[i]["TimeLimit.truncated"] = False
            self._returns[done] = 0.0
            self._lengths[done] = 0
        self._obs = obs
        return obs, reward, done, infos

    def close(self) -> None:
        self.env = None

    def get_factors(self) -> dict[str, np.ndarray]:
        """Ground truth of the current observations, name -> (N,) int64 (:data:`FACTOR_NAMES`).

        ``level_seed`` is procgen's; ``agent_x``, ``agent_y`` are read from the game state
        (:func:`agent_position`, about 40 KB serialised per env: call it when you record
        data, not every training step); -1 where the state could not be read, or where the
        level seed read with them is not procgen's (the bytes were misread).
        """
        if self.env is None:
            raise RuntimeError("get_factors() called before reset()")
        out = np.full((3, self.num_envs), -1, np.int64)
        out[0] = [int(i["level_seed"]) for i in self.env.get_info()]
        for k, state in enumerate(self.env.get_state()):
            read = agent_position(state, self.game)
            if read is not None and read[0] == out[0, k]:  # the bytes were read in step
                out[1:, k] = read[1:]
        return dict(zip(FACTOR_NAMES, out))

    def get_images(self) -> Sequence[np.ndarray | None]:
        """N ``(64, 64, 3)`` uint8 frames: the current observations, for videos."""
        return list(self._obs)

    def get_action_meanings(self) -> list[str]:
        """procgen's actions by name (:data:`PROCGEN_ACTIONS`), as ALE answers."""
        return list(PROCGEN_ACTIONS)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise ReprlError(f"procgen envs share their settings; cannot set {attr_name!r} per env")

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * len(list(self._get_indices(indices)))

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


def make_procgen_vec(
    num_envs: int,
    *,
    game: str = "coinrun",
    seed: int | Sequence[int] | None = None,
    split: str | None = None,
    distribution_mode: str = "easy",
    num_levels: int | None = None,
    start_level: int | None = None,
    num_threads: int = 4,
    device: Any = "cpu",
    **options: Any,
) -> ProcgenVecEnv:
    """A procgen game as an SB3 ``VecEnv`` (what ``envs.make_vec("reprl/CoinRun-v0", ...)``
    builds; every argument is validated before procgen starts).

    Args:
        num_envs: N >= 1.
        game: one of :data:`PROCGEN_GAMES`.
        seed: an int, N ints (e.g. :func:`envs.rng.spawn_seeds`) or None (fresh entropy).
        split: ``train``, ``test``, ``test_disjoint`` or None (:func:`procgen_levels`).
        distribution_mode: one of :data:`DISTRIBUTION_MODES`.
        num_levels: see :func:`procgen_levels`.
        start_level: see :func:`procgen_levels`.
        num_threads: procgen's worker threads, >= 0.
        device: accepted for interface parity (procgen runs on the CPU).
        max_episode_steps: None or >= :data:`PROCGEN_TIME_LIMIT` (accepted so that a time
            limit shared by every target of an experiment applies here too: procgen's own
            limit ends episodes first).
        **options: procgen's boolean options, :data:`OPTIONS` (``center_agent``,
            ``use_backgrounds``, ``restrict_themes``, ``use_monochrome_assets``, ...).

    Raises:
        ReprlError: an unknown game, mode, split or option, bad levels, seeds or N.
    """
    check_game(game)
    if not is_int(num_envs) or num_envs < 1:
        raise ReprlError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
    levels = procgen_levels(
        split, distribution_mode, num_levels=num_levels, start_level=start_level
    )
    limit = options.pop("max_episode_steps", None)
    if limit is not None and (not is_int(limit) or limit < PROCGEN_TIME_LIMIT):
        raise ReprlError(
            f"max_episode_steps: procgen ends episodes at its own time limit of "
            f"{PROCGEN_TIME_LIMIT} steps and cannot cut them shorter; expected None or >= "
            f"{PROCGEN_TIME_LIMIT}, got {limit!r}"
        )
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ReprlError(f"procgen options: unknown {unknown}; expected any of {sorted(OPTIONS)}")
    for k, v in options.items():
        if not isinstance(v, (bool, np.bool_)):
            raise ReprlError(f"{k}: expected a bool, got {v!r}")
    if not is_int(num_threads) or num_threads < 0:
        raise ReprlError(f"num_threads: expected an integer >= 0, got {num_threads!r}")
    return ProcgenVecEnv(
        game,
        int(num_envs),
        levels,
        distribution_mode=distribution_mode,
        seeds=per_env_seeds(seed, int(num_envs)),
        options=options,
        num_threads=int(num_threads),
    )


# Why not envs.adapters' TorchSingleEnv/TorchVectorEnv: they wrap a torch BatchedEnv whose step
# returns a StepResult (the last frames and *factors* of finished games) and that can hold single
# games for NEXT_STEP autoreset (get_state/set_state). gym3's ProcgenGym3Env steps all games
# together and resets inside the same C++ step, with no per-game hold; its episode-end infos
# (prev_level_seed, level_complete, episode_return, ...) are no factors of a frame, and its
# factors cost a 40 KB state read per env, which the adapters would pay every step. What fits,
# the autoreset-mode check, is shared (check_autoreset_mode).


class ProcgenEnv(gym.Env):
    """One procgen game as a gymnasium ``Env`` (``gym.make("reprl/CoinRun-v0")``).

    A :class:`ProcgenVecEnv` of one env underneath. ``reset(seed=s)`` starts a new procgen env
    seeded with ``s``; ``reset()`` without a seed after an episode ended continues with the
    level procgen already started (no new env is built). ``terminated`` is every episode end
    (procgen does not tell its time limit apart), ``truncated`` always False; the observation
    of the last step is the last frame the agent saw (procgen renders none after it).

    Args:
        render_mode: ``None`` or ``"rgb_array"`` (the 64 x 64 observation).
        **kwargs: as :func:`make_procgen_vec` (``game``, ``split``, ...).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ReprlError(f"render_mode: expected None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.venv = make_procgen_vec(1, **kwargs)
        self.observation_space = self.venv.observation_space
        self.action_space = self.venv.action_space
        self._next: tuple[np.ndarray, dict[str, Any]] | None = None
        self._obs = np.zeros((64, 64, 3), np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and self._next is not None:
            self._obs, info = self._next
        else:
            if seed is not None:
                self.venv.seed(seed)
            self._obs = self.venv.reset()[0]
            info = dict(self.venv.reset_infos[0])
        self._next = None
        return self._obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, done, infos = self.venv.step(np.array([action]))
        info = dict(infos[0])
        if done[0]:
            self._next = (obs[0], {"level_seed": info.pop("level_seed")})
            obs0 = info.pop("terminal_observation")
            info.pop("TimeLimit.truncated")
            info["level_seed"] = info["prev_level_seed"]
            self._obs = obs0
            return obs0, float(reward[0]), True, False, info
        self._obs = obs[0]
        return obs[0], float(reward[0]), False, False, info

    def render(self) -> np.ndarray | None:
        return self._obs if self.render_mode == "rgb_array" else None

    def get_action_meanings(self) -> list[str]:
        """procgen's actions by name (:data:`PROCGEN_ACTIONS`)."""
        return list(PROCGEN_ACTIONS)

    def close(self) -> None:
        self.venv.close()


class ProcgenVectorEnv(gym.vector.VectorEnv):
    """A procgen game as a gymnasium ``VectorEnv``
    (``gym.make_vec("reprl/CoinRun-v0", n, vectorization_mode="vector_entry_point")``).

    A :class:`ProcgenVecEnv` underneath. Autoreset is ``SAME_STEP``, procgen's own: on the step
    that ends episode ``i``, ``obs[i]`` is already the next level's first frame, the last frame
    the agent saw is ``infos["final_obs"][i]`` (masked by ``infos["_final_obs"]``) and that
    episode's end infos (``level_seed`` of the finished level, ``level_complete``,
    ``episode_return``, ``episode_length``) are ``infos["final_info"]``. ``NEXT_STEP`` cannot
    be honoured: procgen steps all its envs together, so an env cannot sit out a step.

    Infos every step: ``level_seed`` (N,) int64, the level of each observation (with its
    all-True ``_level_seed`` mask).

    Args:
        autoreset_mode: ``gym.vector.AutoresetMode.SAME_STEP`` or ``"SameStep"``.
        **kwargs: as :func:`make_procgen_vec` (``num_envs``, ``game``, ``split``, ``seed``...).

    Raises:
        ReprlError: another autoreset mode, or what :func:`make_procgen_vec` refuses.
    """

    metadata = {
        "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP,
        "render_modes": ["rgb_array"],
        "render_fps": 15,
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        autoreset_mode: gym.vector.AutoresetMode | str = gym.vector.AutoresetMode.SAME_STEP,
        **kwargs: Any,
    ) -> None:
        check_autoreset_mode(
            autoreset_mode,
            (gym.vector.AutoresetMode.SAME_STEP,),
            "procgen steps all its envs together and resets an ended episode on the same "
            "step, so only it is exact: ",
        )
        kwargs.pop("render_mode", None)
        self.venv = make_procgen_vec(num_envs, **kwargs)
        self.num_envs = self.venv.num_envs
        self.single_observation_space = self.venv.observation_space
        self.single_action_space = self.venv.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = "rgb_array"

    def _level_infos(self, infos: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        seeds = np.array([i["level_seed"] for i in infos], np.int64)
        return {"level_seed": seeds, "_level_seed": np.ones(self.num_envs, bool)}

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:  # an int (env i gets seed + i) or N seeds
            self.venv._seeds = list(per_env_seeds(seed, self.num_envs))
        obs = self.venv.reset()
        return obs, self._level_infos(self.venv.reset_infos)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, done, raw = self.venv.step(np.asarray(actions))
        infos = self._level_infos(raw)
        if done.any():
            final_obs = np.empty(self.num_envs, dtype=object)
            final_info = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = raw[i]["terminal_observation"]
                final_info[i] = {
                    "level_seed": raw[i]["prev_level_seed"],
                    **{
                        k: raw[i][k] for k in ("level_complete", "episode_return", "episode_length")
                    },
                }
            infos.update(
                final_obs=final_obs,
                _final_obs=done.copy(),
                final_info=final_info,
                _final_info=done.copy(),
            )
        return obs, reward, done, np.zeros(self.num_envs, bool), infos

    def render(self) -> np.ndarray:
        """``(N, 64, 64, 3)`` uint8: the current observations."""
        return np.stack(self.venv.get_images())

    def close_extras(self, **kwargs: Any) -> None:
        venv = getattr(self, "venv", None)  # absent when __init__ refused its arguments
        if venv is not None:
            venv.close()


# ----------------------------------------------------------------------------------------------
# The family

PROCGEN_IDS: dict[str, dict[str, Any]] = {
    "reprl/CoinRun-v0": {"game": "coinrun"},
    "reprl/CoinRunTrain-v0": {"game": "coinrun", "split": "train"},
    "reprl/CoinRunTest-v0": {"game": "coinrun", "split": "test"},
    "reprl/CoinRunTestDisjoint-v0": {"game": "coinrun", "split": "test_disjoint"},
    "reprl/Procgen-v0": {},
}
"""The procgen ids and the kwargs each fixes: ``reprl/Procgen-v0`` takes ``game`` (default
``coinrun``) and ``split``; the ``CoinRun{Train,Test,TestDisjoint}`` ids fix the split, so train
and test levels are two targets of an experiment like two Breakout variants."""


def _best_return(env_id: str, kwargs: dict[str, Any]) -> float:
    game = check_game(kwargs.get("game", "coinrun"))
    mode = kwargs.get("distribution_mode", "easy")
    if mode != "easy":
        raise ReprlError(
            f"best return of {game} in distribution_mode {mode!r}: expected 'easy' (the "
            "only mode whose R_max reprl records)"
        )
    return EASY_SCORE_RANGE[game][1]


def _level_range(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    mode = kwargs.get("distribution_mode", "easy")
    n, start = kwargs.get("num_levels"), kwargs.get("start_level")
    return procgen_levels(kwargs.get("split"), mode, num_levels=n, start_level=start).to_dict()


def _make_vec(env_id: str, num_envs: int, **kwargs: Any) -> ProcgenVecEnv:
    return make_procgen_vec(num_envs, **kwargs)


def _obs_shape(env_id: str, kwargs: dict[str, Any]) -> tuple[int, int, int]:
    """64 x 64 x 3, after checking every kwarg (procgen itself starts only at ``reset``)."""
    return make_procgen_vec(1, **kwargs).observation_space.shape  # type: ignore[return-value]


PROCGEN = EnvFamily(
    name="procgen",
    ids=PROCGEN_IDS,
    instead="reprl/Procgen-v0 with game=... and split=...",
    action_meanings=PROCGEN_ACTIONS,
    best_return=_best_return,
    make_vec=_make_vec,
    obs_shape=_obs_shape,
    entry_point=ProcgenEnv,
    vector_entry_point=ProcgenVectorEnv,
    level_range=_level_range,
)
"""procgen's games through gym3 (the ``procgen`` extra, imported at the first ``reset``)."""
