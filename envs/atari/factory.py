"""The public factory of ALE ``VecEnv``s and the ALE families (one per game)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from envs.atari.config import BACKENDS, GAMES, AtariConfig, check_kwargs
from envs.atari.looped import GYMNASIUM_KWARGS, AtariGymnasiumVecEnv
from envs.atari.vector import AtariVectorVecEnv
from envs.checks import is_int
from envs.errors import ReprlError
from envs.family import EnvFamily
from envs.rng import per_env_seeds

VECTOR_KWARGS = frozenset(
    {
        "noop_max",
        "maxpool",
        "use_fire_reset",
        "episodic_life",
        "life_loss_info",
        "reward_clipping",
        "thread_affinity_offset",
    }
)
"""Extra keyword arguments of the ``ale_vector`` backend, forwarded unchanged to ale-py."""


def make_atari_vec(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str = "cpu",
    obs_size: tuple[int, int] = (64, 64),
    mode: int | None = None,
    difficulty: int | None = None,
    frameskip: int = 4,
    repeat_action_probability: float = 0.25,
    max_episode_steps: int | None = None,
    ram_labels: bool = False,
    num_threads: int = 0,
    backend: str = "auto",
    **kwargs: Any,
) -> VecEnv:
    """A real Atari game (Breakout, Pong, Boxing) as an SB3 ``VecEnv`` with reprl's observations.

    Args:
        env_id: one of :data:`envs.atari.ATARI_ENV_IDS` (``"ALE/Breakout-v5"``,
            ``"ALE/Pong-v5"``, ``"ALE/Boxing-v5"``).
        num_envs: number of parallel games, >= 1.
        seed: env i is seeded with ``seed + i`` at the first ``reset()`` (SB3's convention),
            sticky actions included: the same seed repeats the trajectory; a sequence of
            ``num_envs`` ints >= 0 gives env i ``seed[i]`` (e.g. :func:`envs.rng.spawn_seeds`);
            None: fresh entropy.
        device: accepted for interface parity and ignored (ALE runs on the CPU; observations
            are numpy).
        obs_size: observation (height, width); frames are area-averaged from 210 x 160;
            :data:`envs.atari.NATIVE_SIZE` ``(210, 160)`` keeps ALE's screen as it is (with
            :func:`envs.make_vec`'s ``grayscale=True``: AtariARI's ``(210, 160, 1)`` frames).
        mode: game variation, one of the game's modes (:data:`envs.atari.GAMES`, Breakout's
            :data:`envs.atari.BREAKOUT_MODES`); None: default.
        difficulty: one of the game's difficulties; None: default (0).
        frameskip: emulator frames per agent step, >= 1.
        repeat_action_probability: sticky-action probability in [0, 1].
        max_episode_steps: truncate episodes after this many agent steps; None: only ALE's
            108 000-frame cap.
        ram_labels: ground-truth labels from the console RAM (AtariARI's variables,
            :mod:`envs.atari.annotations`): ``get_factors()`` gives them for the current
            observations, name -> ``(N,)`` int64 RAM bytes in [0, 255], every info dict holds
            them and ``ram_factors`` names them. Gymnasium backend only (ale-py's vector env
            hides the RAM; ``backend="auto"`` picks gymnasium); a ReprlError for a game without
            annotations, listing those with.
        num_threads: worker threads of the ``ale_vector`` backend; 0: ale-py's choice.
        backend: ``"auto"`` (``ale_vector`` unless mode/difficulty are non-default or
            ``ram_labels`` is set),
            ``"ale_vector"`` or ``"gymnasium"``.
        **kwargs: ``ale_vector`` backend only: ``noop_max``, ``maxpool``, ``use_fire_reset``,
            ``episodic_life``, ``life_loss_info``, ``reward_clipping``,
            ``thread_affinity_offset`` (ale-py's meanings; all off by default).

    Returns:
        The VecEnv (``.backend`` names which): observations ``(N, H, W, 3)`` uint8 in [0, 255],
        ``Discrete(n)`` actions (the game's minimal set, :data:`envs.atari.GAMES`; Breakout's
        NOOP, FIRE, RIGHT, LEFT), float32 rewards, infos with ``lives``,
        ``episode_frame_number``, ``frame_number``, and on done steps ``terminal_observation``
        and ``TimeLimit.truncated`` (with ``ram_labels`` also the labels, and
        ``terminal_factors``). ``get_factors()`` and ``ram_factors`` on both backends (empty
        without labels). Call ``reset()`` first.

    Raises:
        ReprlError: an unknown id, ``num_envs < 1``, an invalid mode, difficulty, setting,
            backend or keyword argument.
        TypeError: ``device`` is not a string.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', got {type(device).__name__}")
    if not is_int(num_envs) or num_envs < 1:
        raise ReprlError(f"num_envs must be an int >= 1, got {num_envs!r}")
    seeds = per_env_seeds(seed, int(num_envs))
    if not is_int(num_threads) or num_threads < 0:
        raise ReprlError(f"num_threads must be an int >= 0, got {num_threads!r}")
    if backend not in BACKENDS:
        raise ReprlError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
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
    if backend == "auto":
        vector = config.uses_default_game and not config.ram_labels
        backend = "ale_vector" if vector else "gymnasium"
    venv: VecEnv
    if backend == "ale_vector":
        check_kwargs(kwargs, VECTOR_KWARGS, "the ale_vector backend")
        venv = AtariVectorVecEnv(config, int(num_envs), num_threads=int(num_threads), **kwargs)
    else:
        check_kwargs(kwargs, GYMNASIUM_KWARGS, "the gymnasium backend")
        venv = AtariGymnasiumVecEnv(config, int(num_envs))
    if seeds is not None:
        venv._seeds = list(seeds)  # SB3's per-env seeds for the next reset(), as venv.seed()
    return venv


# ----------------------------------------------------------------------------------------------
# The family


def _family_vec(env_id: str, num_envs: int, *, device: Any = "cpu", **kwargs: Any) -> VecEnv:
    return make_atari_vec(env_id, num_envs, device=str(device), **kwargs)


def _obs_shape(env_id: str, kwargs: dict[str, Any]) -> tuple[int, int, int]:
    """``obs_size`` and 3 channels, checked without starting the emulator."""
    size, labels = kwargs.get("obs_size", (64, 64)), kwargs.get("ram_labels", False)
    return (*AtariConfig(env_id, size, ram_labels=labels).obs_size, 3)


def _family(env_id: str, name: str) -> EnvFamily:
    game = GAMES[env_id]
    return EnvFamily(
        name=name,
        ids={env_id: {}},
        instead=env_id,
        action_meanings=game.action_meanings,
        best_return=game.best_return,
        make_vec=_family_vec,
        obs_shape=_obs_shape,
    )


ALE = _family("ALE/Breakout-v5", "ale")
"""Atari Breakout through ale-py (imported when an env is built)."""
ALE_PONG = _family("ALE/Pong-v5", "ale_pong")
"""Atari Pong through ale-py."""
ALE_BOXING = _family("ALE/Boxing-v5", "ale_boxing")
"""Atari Boxing through ale-py."""
ALE_FAMILIES: tuple[EnvFamily, ...] = (ALE, ALE_PONG, ALE_BOXING)
"""One family per ALE game (a family has one action set), in :data:`envs.atari.GAMES` order."""
