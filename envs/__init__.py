"""Environments: batched Breakout variants, DMLab-style 3D worlds, the real Atari Breakout,
procgen, Memory Maze (MuJoCo, the ``dmc`` extra), and their adapters.

``import envs`` registers the ``reprl/...`` gymnasium ids. :func:`make_vec` returns an SB3
``VecEnv`` for any id reprl knows (frame stacking and grayscale on request);
:func:`best_return` and :func:`action_meanings` answer per id without building an env;
:func:`envs.rng.spawn_seeds` gives per-env seeds that do not overlap between runs.
"""

import envs.oldgym  # noqa: F401  first: imports old gym quietly, before stable-baselines3 does
from envs.actions import ACTION_MAPPINGS, MappedActions, check_action_mapping
from envs.adapters import TorchSingleEnv, TorchVecEnv, TorchVectorEnv
from envs.breakout import FACTOR_NAMES, VARIANTS, BreakoutBatch
from envs.lab import LabBatch
from envs.registry import (
    BREAKOUT_IDS,
    LAB_IDS,
    MEMORY_MAZE_IDS,
    SCHEMA_TARGETS,
    action_meanings,
    best_return,
    known_ids,
    level_range,
    make_vec,
    register_envs,
)
from envs.rng import spawn_seeds

register_envs()

__all__ = [
    "ACTION_MAPPINGS",
    "BREAKOUT_IDS",
    "FACTOR_NAMES",
    "LAB_IDS",
    "MEMORY_MAZE_IDS",
    "SCHEMA_TARGETS",
    "VARIANTS",
    "BreakoutBatch",
    "LabBatch",
    "MappedActions",
    "TorchSingleEnv",
    "TorchVecEnv",
    "TorchVectorEnv",
    "action_meanings",
    "best_return",
    "check_action_mapping",
    "known_ids",
    "level_range",
    "make_vec",
    "register_envs",
    "spawn_seeds",
]
