"""The ALE games reprl serves, their fixed facts, and the settings both backends share."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from envs.actions import validate_actions
from envs.atari.annotations import check_annotated
from envs.checks import is_int
from envs.errors import ReprlError

NATIVE_SIZE: tuple[int, int] = (210, 160)
"""ALE's screen (height, width): ``obs_size=NATIVE_SIZE`` gives the frames unresized."""
MAX_FRAMES_PER_EPISODE = 108_000
"""ALE's default episode cap in emulator frames (30 minutes at 60 Hz), both backends."""
BACKENDS: tuple[str, ...] = ("auto", "ale_vector", "gymnasium")


@dataclasses.dataclass(frozen=True)
class AtariGame:
    """One ALE game as reprl serves it (facts read from ale-py 0.12.1's ROMs).

    Attributes:
        env_id: gymnasium id, ``"ALE/<Name>-v5"``.
        rom: ALE ROM name (``"breakout"``), also the key of its RAM annotations.
        action_meanings: ALE's minimal action set, in action-index order.
        modes: ``getAvailableModes()``; the first is the default.
        difficulties: ``getAvailableDifficulties()``; the first is the default.
        best_return: the best attainable return of one episode.
    """

    env_id: str
    rom: str
    action_meanings: tuple[str, ...]
    modes: tuple[int, ...]
    difficulties: tuple[int, ...]
    best_return: float


BREAKOUT_MODES: tuple[int, ...] = tuple(range(0, 48, 4))
"""Breakout's game variations (ALE ``getAvailableModes``); 0 is the default."""
BREAKOUT_DIFFICULTIES: tuple[int, ...] = (0, 1)
"""Breakout's difficulty switch positions (ALE ``getAvailableDifficulties``); 0 is the default."""
ACTION_MEANINGS: tuple[str, ...] = ("NOOP", "FIRE", "RIGHT", "LEFT")
"""ALE's minimal action set for Breakout, in action-index order."""
BREAKOUT_BEST_RETURN = 864.0
"""Atari Breakout's maximum score: two walls of 6 x 18 bricks worth 1, 1, 4, 4, 7, 7 by row
(432 each); the game does not refill the wall after the second."""
PONG_ACTION_MEANINGS: tuple[str, ...] = ("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE")
"""ALE's minimal action set for Pong (RIGHT moves the paddle up, LEFT down)."""
PONG_BEST_RETURN = 21.0
"""Pong: +1 per point won, -1 per point lost, the game ends at 21: at best 21 - 0."""
BOXING_ACTION_MEANINGS: tuple[str, ...] = (
    "NOOP",
    "FIRE",
    "UP",
    "RIGHT",
    "LEFT",
    "DOWN",
    "UPRIGHT",
    "UPLEFT",
    "DOWNRIGHT",
    "DOWNLEFT",
    "UPFIRE",
    "RIGHTFIRE",
    "LEFTFIRE",
    "DOWNFIRE",
    "UPRIGHTFIRE",
    "UPLEFTFIRE",
    "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
)
"""ALE's minimal action set for Boxing: all 18."""
BOXING_BEST_RETURN = 100.0
"""Boxing: the reward is the change of (own points - opponent's points); 100 points is a knock-out
that ends the bout, so at best 100 - 0."""

GAMES: dict[str, AtariGame] = {
    g.env_id: g
    for g in (
        AtariGame(
            "ALE/Breakout-v5",
            "breakout",
            ACTION_MEANINGS,
            BREAKOUT_MODES,
            BREAKOUT_DIFFICULTIES,
            BREAKOUT_BEST_RETURN,
        ),
        AtariGame(
            "ALE/Pong-v5", "pong", PONG_ACTION_MEANINGS, (0, 1), (0, 1, 2, 3), PONG_BEST_RETURN
        ),
        AtariGame(
            "ALE/Boxing-v5",
            "boxing",
            BOXING_ACTION_MEANINGS,
            (0,),
            (0, 1, 2, 3),
            BOXING_BEST_RETURN,
        ),
    )
}
"""Every ALE game reprl serves, by gymnasium id."""
ATARI_ENV_IDS: tuple[str, ...] = tuple(GAMES)
"""The ALE ids this package supports."""


@dataclasses.dataclass(frozen=True)
class AtariConfig:
    """Validated settings shared by both backends and by :func:`envs.atari.make_atari_env`."""

    env_id: str = "ALE/Breakout-v5"
    """Gymnasium id; one of :data:`ATARI_ENV_IDS`."""
    obs_size: tuple[int, int] = (64, 64)
    """Observation (height, width) in pixels; :data:`NATIVE_SIZE` (210, 160): unresized."""
    mode: int | None = None
    """Game variation (one of the game's ``modes``); None: the cartridge default."""
    difficulty: int | None = None
    """Difficulty switch (one of the game's ``difficulties``); None: the default (0)."""
    frameskip: int = 4
    """Emulator frames per agent step (the action is repeated)."""
    repeat_action_probability: float = 0.25
    """Sticky actions: chance per frame that the previous action is repeated instead."""
    max_episode_steps: int | None = None
    """Truncate after this many agent steps; None: only ALE's 108 000-frame cap."""
    ram_labels: bool = False
    """Ground-truth labels read from the console RAM (:mod:`envs.atari.annotations`):
    ``get_factors()`` and the info dicts carry them; gymnasium backend only."""

    def __post_init__(self) -> None:
        if self.env_id not in ATARI_ENV_IDS:
            raise ReprlError(f"unknown env id {self.env_id!r}; supported: {ATARI_ENV_IDS}")
        size = self.obs_size
        if (
            not isinstance(size, tuple | list)
            or len(size) != 2
            or not all(is_int(s) and s > 0 for s in size)
        ):
            raise ReprlError(f"obs_size must be (height, width) positive ints, got {size!r}")
        object.__setattr__(self, "obs_size", (int(size[0]), int(size[1])))
        for name in ("mode", "difficulty", "frameskip", "max_episode_steps"):
            value = getattr(self, name)
            if is_int(value):  # numpy ints -> plain ints, as get_attr hands them out
                object.__setattr__(self, name, int(value))
        g = GAMES[self.env_id]
        if self.mode is not None and (not is_int(self.mode) or self.mode not in g.modes):
            raise ReprlError(
                f"invalid mode {self.mode!r} for {self.env_id}; valid modes: {g.modes}"
            )
        if self.difficulty is not None and (
            not is_int(self.difficulty) or self.difficulty not in g.difficulties
        ):
            raise ReprlError(
                f"invalid difficulty {self.difficulty!r} for {self.env_id}; "
                f"valid difficulties: {g.difficulties}"
            )
        if not is_int(self.frameskip) or self.frameskip < 1:
            raise ReprlError(f"frameskip must be an int >= 1, got {self.frameskip!r}")
        p = self.repeat_action_probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ReprlError(f"repeat_action_probability must be in [0, 1], got {p!r}")
        steps = self.max_episode_steps
        if steps is not None and (not is_int(steps) or steps < 1):
            raise ReprlError(f"max_episode_steps must be None or an int >= 1, got {steps!r}")
        if not isinstance(self.ram_labels, bool | np.bool_):
            raise ReprlError(f"ram_labels must be True or False, got {self.ram_labels!r}")
        object.__setattr__(self, "ram_labels", bool(self.ram_labels))
        if self.ram_labels:
            check_annotated(self.env_id)

    @property
    def game(self) -> str:
        """ALE ROM name, e.g. ``"breakout"``."""
        return GAMES[self.env_id].rom

    @property
    def num_actions(self) -> int:
        """Size of the game's minimal action set."""
        return len(GAMES[self.env_id].action_meanings)

    @property
    def uses_default_game(self) -> bool:
        """True if mode and difficulty are the defaults (the vector backend can play it)."""
        g = GAMES[self.env_id]
        return self.mode in (None, g.modes[0]) and self.difficulty in (None, g.difficulties[0])

    @property
    def max_steps(self) -> int:
        """Agent steps after which an episode is truncated: ``max_episode_steps``, and at most
        ``ceil(108 000 / frameskip)`` (when ALE's frame cap strikes)."""
        cap = -(-MAX_FRAMES_PER_EPISODE // self.frameskip)
        return cap if self.max_episode_steps is None else min(cap, self.max_episode_steps)

    def env_attrs(self) -> dict[str, Any]:
        """The settings as plain attributes, what ``VecEnv.get_attr`` returns for each env."""
        return dataclasses.asdict(self)


def import_ale() -> Any:
    """ale-py, imported on first use (not by ``import envs``) with its gymnasium ids registered."""
    import ale_py

    gym.register_envs(ale_py)
    return ale_py


def check_actions(actions: Any, num_envs: int, num_actions: int) -> np.ndarray:
    """:func:`envs.actions.validate_actions`, as ``(num_envs,)`` int64 numpy."""
    return validate_actions(actions, num_envs, num_actions).cpu().numpy()


def check_settable(attr_name: str, config: AtariConfig) -> None:
    """Refuses to ``set_attr`` an emulator setting (a ReprlError naming it)."""
    if attr_name in config.env_attrs() or attr_name == "render_mode":
        raise ReprlError(
            f"{attr_name!r} is fixed when the Atari VecEnv is built; make a new one to change it"
        )


def observation_space(config: AtariConfig) -> gym.spaces.Box:
    """``Box(0, 255, (H, W, 3), uint8)`` for ``config.obs_size``."""
    return gym.spaces.Box(0, 255, (*config.obs_size, 3), dtype=np.uint8)


def check_kwargs(kwargs: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    """Refuses keyword arguments outside ``allowed`` (a ReprlError naming them)."""
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ReprlError(
            f"unexpected keyword argument(s) {unknown} for {where}; "
            f"allowed extras: {sorted(allowed) or 'none'}"
        )
