"""Backend 2: gymnasium ALE envs stepped in a loop (SB3's ``DummyVecEnv``); the one with RAM."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from envs.atari.annotations import label_names, ram_labels
from envs.atari.config import (
    MAX_FRAMES_PER_EPISODE,
    AtariConfig,
    check_actions,
    check_kwargs,
    check_settable,
    import_ale,
)
from envs.atari.resize import AreaResize
from envs.errors import ReprlError

GYMNASIUM_KWARGS: frozenset[str] = frozenset()
"""Extra keyword arguments the gymnasium backend accepts (none)."""


class RamLabels(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Puts the RAM labels of the frame just returned into ``info`` (label name -> int).

    The labels are those of :func:`envs.atari.annotations.ram_labels`, read with
    ``ale.getRAM()`` after ``reset`` and after every ``step``: they describe the observation
    returned with them (as AtariARI's ``info["labels"]``, here one key per label, as reprl's
    other envs put their factors).

    Args:
        env: a gymnasium ALE env of a game with annotations.
        game: its ALE id or ROM name.
    """

    def __init__(self, env: gym.Env, game: str) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, game=game)
        gym.Wrapper.__init__(self, env)
        self.game = game
        self.names = label_names(game)

    def labels(self) -> dict[str, int]:
        """The labels of the current frame, name -> int in [0, 255]."""
        ram = self.env.unwrapped.ale.getRAM()  # type: ignore[attr-defined]
        return {k: int(v) for k, v in ram_labels(self.game, ram).items()}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """``env.reset`` with the first frame's labels added to ``info``."""
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, **self.labels()}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """``env.step`` with the returned frame's labels added to ``info``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, **self.labels()}


def make_atari_env(
    env_id: str = "ALE/Breakout-v5",
    *,
    obs_size: tuple[int, int] = (64, 64),
    mode: int | None = None,
    difficulty: int | None = None,
    frameskip: int = 4,
    repeat_action_probability: float = 0.25,
    max_episode_steps: int | None = None,
    ram_labels: bool = False,
    render_mode: str | None = None,
    **kwargs: Any,
) -> gym.Env:
    """A single gymnasium ALE env with reprl's observations.

    ``gym.make(env_id, obs_type="rgb", ...)`` behind :class:`~envs.atari.resize.AreaResize`
    (and :class:`RamLabels` with ``ram_labels``). Passes gymnasium's and SB3's ``check_env``.
    Seed it with ``reset(seed=...)``.

    Args:
        env_id: one of :data:`envs.atari.ATARI_ENV_IDS`.
        obs_size: observation (height, width); (210, 160) is ALE's screen, unresized.
        mode: game variation, one of the game's modes; None: default.
        difficulty: one of the game's difficulties; None: default.
        frameskip: emulator frames per step, >= 1.
        repeat_action_probability: sticky-action probability in [0, 1].
        max_episode_steps: truncate after this many steps (gymnasium ``TimeLimit``); None: only
            ALE's 108 000-frame cap.
        ram_labels: put the RAM labels of each returned frame into ``info``
            (:mod:`envs.atari.annotations`; a ReprlError for a game without annotations).
        render_mode: None or ``"rgb_array"`` (renders the resized frame).
        **kwargs: not used; any given raise a ReprlError.

    Returns:
        The env: observations ``(H, W, 3)`` uint8 in [0, 255], ``Discrete(n)`` actions (the
        game's minimal set), info with ``lives``, ``episode_frame_number``, ``frame_number``
        (and the labels, ints in [0, 255]). The settings are readable as attributes
        (``env.get_wrapper_attr("mode")``).

    Raises:
        ReprlError: an unknown id, invalid mode/difficulty or other setting.
    """
    config = AtariConfig(
        env_id,
        obs_size,
        mode,
        difficulty,
        frameskip,
        repeat_action_probability,
        max_episode_steps,
        ram_labels,
    )
    check_kwargs(kwargs, GYMNASIUM_KWARGS, "make_atari_env")
    return make_single(config, render_mode=render_mode)


def make_single(config: AtariConfig, *, render_mode: str | None) -> gym.Env:
    """The env of :func:`make_atari_env` for validated settings."""
    if render_mode not in (None, "rgb_array"):
        raise ReprlError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    import_ale()
    env: gym.Env = gym.make(
        config.env_id,
        mode=config.mode,
        difficulty=config.difficulty,
        obs_type="rgb",
        frameskip=config.frameskip,
        repeat_action_probability=float(config.repeat_action_probability),
        max_num_frames_per_episode=MAX_FRAMES_PER_EPISODE,
        max_episode_steps=config.max_episode_steps,
        render_mode=render_mode,
    )
    env = AreaResize(env, config.obs_size)
    if config.ram_labels:
        env = RamLabels(env, config.env_id)
    for name, value in config.env_attrs().items():  # readable via get_wrapper_attr / get_attr
        setattr(env, name, value)
    return env


class AtariGymnasiumVecEnv(DummyVecEnv):
    """N gymnasium ALE envs (:func:`make_atari_env`) stepped in a loop, as an SB3 ``VecEnv``.

    SB3's ``DummyVecEnv`` (which already has the SB3 auto-reset semantics) plus action checks
    before stepping and read-only settings. Any game mode and difficulty.

    With ``config.ram_labels`` the RAM labels (:mod:`envs.atari.annotations`) describe the
    current observations: :meth:`get_factors` gives them batched, every step's ``infos[i]``
    holds them per label name (as reprl's batched envs give their factors), and on a done step
    ``infos[i]["terminal_factors"]`` holds those of ``terminal_observation``.

    Args:
        config: validated settings.
        num_envs: number of games, >= 1.
    """

    backend = "gymnasium"

    def __init__(self, config: AtariConfig, num_envs: int) -> None:
        self.config = config
        super().__init__(
            [lambda: make_single(config, render_mode="rgb_array") for _ in range(num_envs)]
        )
        self._names = label_names(config.env_id) if config.ram_labels else ()
        self._ales = [env.unwrapped.ale for env in self.envs]  # type: ignore[attr-defined]
        self._ram = np.zeros((num_envs, 128), dtype=np.uint8)
        self._closed = False

    @property
    def ram_factors(self) -> tuple[str, ...]:
        """The names of :meth:`get_factors` that are RAM bytes (ints in [0, 255]): all of
        them with ``ram_labels``, none without."""
        return self._names

    def get_factors(self) -> dict[str, np.ndarray]:
        """The RAM labels of the current observations, name -> ``(N,)`` int64 in [0, 255]
        (``{}`` without ``ram_labels``). About a microsecond per env."""
        if not self._names:
            return {}
        for i, ale in enumerate(self._ales):
            ale.getRAM(self._ram[i])
        return ram_labels(self.config.env_id, self._ram)

    def step_async(self, actions: np.ndarray) -> None:
        """Validates ``(N,)`` integer actions in ``[0, num_actions)`` (ReprlError otherwise),
        then steps."""
        if self._closed:
            raise RuntimeError("this VecEnv is closed")
        super().step_async(check_actions(actions, self.num_envs, int(self.action_space.n)))

    def step_wait(self) -> VecEnvStepReturn:
        """DummyVecEnv's step; with ``ram_labels``, a done env's info gets the labels of its new
        episode's first frame and ``terminal_factors`` those of its last."""
        obs, rewards, dones, infos = super().step_wait()
        if self._names:
            for i in np.flatnonzero(dones):
                info = infos[i]
                info["terminal_factors"] = {k: info[k] for k in self._names}
                info.update({k: self.reset_infos[i][k] for k in self._names})
        return obs, rewards, dones, infos

    def reset(self) -> np.ndarray:
        """Resets all envs; ``(N, H, W, 3)`` uint8 first frames."""
        if self._closed:
            raise RuntimeError("this VecEnv is closed")
        return super().reset()  # type: ignore[return-value]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Sets a user attribute per env; the emulator settings cannot be changed."""
        check_settable(attr_name, self.config)
        super().set_attr(attr_name, value, indices)

    def close(self) -> None:
        """Closes the ALE envs; the VecEnv cannot be used afterwards."""
        if not self._closed:
            super().close()
            self._closed = True
