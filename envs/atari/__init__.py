"""Real Atari games (ale-py): Breakout, Pong and Boxing as SB3 ``VecEnv``s in reprl's format.

Ids: ``ALE/Breakout-v5``, ``ALE/Pong-v5``, ``ALE/Boxing-v5`` (:data:`GAMES`), one
:class:`envs.family.EnvFamily` each (:data:`ALE_FAMILIES`: a family has one action set).

Observations are what every reprl environment gives: ``uint8 (H, W, 3)`` RGB, channels-last,
default 64 x 64, area-averaged down from ALE's 210 x 160 screen; ``obs_size=(210, 160)``
(:data:`NATIVE_SIZE`) keeps the screen as it is, and :func:`envs.make_vec`'s
``grayscale=True`` makes it one luma channel (:func:`envs.gray.rgb_to_gray`): AtariARI's
``(210, 160, 1)`` frames. Actions are ALE's minimal set of the game (Breakout ``Discrete(4)``:
NOOP, FIRE, RIGHT, LEFT; Pong 6; Boxing 18). Rewards are the game's own score changes
(unclipped); an episode ends with the game (``terminated``), or after ``max_episode_steps``
agent steps or 108 000 emulator frames (ALE's cap), whichever comes first (``truncated``).

Ground truth: ``ram_labels=True`` labels every frame with AtariARI's state variables, bytes of
the console RAM (:mod:`envs.atari.annotations`): ``venv.get_factors()`` gives them for the
observations the env is about to act on, name -> ``(N,)`` int64 in [0, 255], as reprl's other
envs give their factors, and ``venv.ram_factors`` names those that are RAM bytes
(:func:`envs.exploration.collect` records them as discrete factors and in the dataset's
``attrs["ram_factors"]``).

Two backends give the same VecEnv semantics:

- ``"ale_vector"``: ale-py's native :class:`ale_py.vector_env.AtariVectorEnv`, a C++ thread
  pool that emulates, resizes (OpenCV ``INTER_AREA``) and auto-resets. It cannot select a game
  mode or difficulty, and gives no RAM (ale-py 0.12.1's ``ALEVectorInterface`` has no RAM
  accessor). ``step_async`` really is asynchronous: it hands the actions to the pool and
  ``step_wait`` collects them.
- ``"gymnasium"``: N ``gym.make("ALE/<Game>-v5", ...)`` envs stepped one after the other
  (SB3's ``DummyVecEnv``), each behind :class:`AreaResize`. Slower, but any game mode and
  difficulty can be chosen, and the RAM labels are read here (``ale.getRAM()``).

``backend="auto"`` picks ``"ale_vector"`` unless a non-default mode or difficulty, or RAM
labels, are asked for.

SB3 semantics, both backends: a finished env is reset inside ``step``; the returned
observation is the new episode's first frame, ``infos[i]["terminal_observation"]`` the last
frame of the finished one, ``infos[i]["TimeLimit.truncated"]`` is ``truncated and not
terminated``, and ``infos[i]`` otherwise describes the finished episode's last step (its
``lives``, ``episode_frame_number``); the new episode's reset info is in ``venv.reset_infos[i]``.

With ``repeat_action_probability=0`` the emulator is deterministic and the two backends give
bit-identical observations, rewards, dones and infos for the same actions (:class:`AreaResize`
reproduces OpenCV's ``INTER_AREA`` exactly when shrinking), with one exception: after a game
over, ``"ale_vector"``'s ``terminal_observation`` is the frame of the step before (an ale-py
quirk, see :class:`AtariVectorVecEnv`). With sticky actions the backends consume the seed
differently: the same seed repeats a trajectory within one backend, not across them.

Modules: ``config`` (the games, :class:`AtariConfig`), ``resize`` (:class:`AreaResizer`),
``vector`` and ``looped`` (the two backends), ``annotations`` (the RAM labels), ``factory``
(:func:`make_atari_vec`, the families).
"""

from __future__ import annotations

from envs.atari.annotations import (
    ANNOTATED_IDS,
    RAM_ANNOTATIONS,
    check_annotated,
    label_names,
    ram_labels,
)
from envs.atari.config import (
    ACTION_MEANINGS,
    ATARI_ENV_IDS,
    BACKENDS,
    BOXING_ACTION_MEANINGS,
    BOXING_BEST_RETURN,
    BREAKOUT_BEST_RETURN,
    BREAKOUT_DIFFICULTIES,
    BREAKOUT_MODES,
    GAMES,
    MAX_FRAMES_PER_EPISODE,
    NATIVE_SIZE,
    PONG_ACTION_MEANINGS,
    PONG_BEST_RETURN,
    AtariConfig,
    AtariGame,
)
from envs.atari.factory import ALE, ALE_BOXING, ALE_FAMILIES, ALE_PONG, make_atari_vec
from envs.atari.looped import AtariGymnasiumVecEnv, RamLabels, make_atari_env
from envs.atari.resize import AreaResize, AreaResizer
from envs.atari.vector import AtariVectorVecEnv

__all__ = [
    "ACTION_MEANINGS",
    "ALE",
    "ALE_BOXING",
    "ALE_FAMILIES",
    "ALE_PONG",
    "ANNOTATED_IDS",
    "ATARI_ENV_IDS",
    "BACKENDS",
    "BOXING_ACTION_MEANINGS",
    "BOXING_BEST_RETURN",
    "BREAKOUT_BEST_RETURN",
    "BREAKOUT_DIFFICULTIES",
    "BREAKOUT_MODES",
    "GAMES",
    "MAX_FRAMES_PER_EPISODE",
    "NATIVE_SIZE",
    "PONG_ACTION_MEANINGS",
    "PONG_BEST_RETURN",
    "RAM_ANNOTATIONS",
    "AreaResize",
    "AreaResizer",
    "AtariConfig",
    "AtariGame",
    "AtariGymnasiumVecEnv",
    "AtariVectorVecEnv",
    "RamLabels",
    "check_annotated",
    "label_names",
    "make_atari_env",
    "make_atari_vec",
    "ram_labels",
]
