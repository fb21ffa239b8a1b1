"""Environments: batched Breakout variants, DMLab-style 3D worlds, the real Atari Breakout,
procgen, Memory Maze (MuJoCo, the ``dmc`` extra), and their adapters.

``import envs`` registers the ``reprl/...`` gymnasium ids. :func:`make_vec` returns an SB3
``VecEnv`` for any id reprl knows (frame stacking and grayscale on request);
:func:`best_return`, :func:`action_meanings` and :func:`observation_shape` answer per id
without building an env; each id's :class:`EnvFamily` (:func:`family`) says the rest;
:func:`envs.rng.spawn_seeds` gives per-env seeds that do not overlap between runs.
"""

import envs.oldgym  # noqa: F401  first: imports old gym quietly, before stable-baselines3 does
from envs.actions import ACTION_MAPPINGS, MappedActions, check_action_mapping
from envs.adapters import TorchSingleEnv, TorchVecEnv, TorchVectorEnv
from envs.breakout import FACTOR_NAMES, VARIANTS, BreakoutBatch
from envs.family import EnvFamily
from envs.lab import LabBatch
from envs.registry import (
    BREAKOUT_IDS,
    FAMILIES,
    LAB_IDS,
    MEMORY_MAZE_IDS,
    SCHEMA_TARGETS,
    action_meanings,
    best_return,
    family,
    known_ids,
    level_range,
    make_batch,
    make_vec,
    observation_shape,
    register_envs,
    register_family,
)
from envs.rng import spawn_seeds

register_envs()

__all__ = [
    "ACTION_MAPPINGS",
    "BREAKOUT_IDS",
    "FACTOR_NAMES",
    "FAMILIES",
    "LAB_IDS",
    "MEMORY_MAZE_IDS",
    "SCHEMA_TARGETS",
    "VARIANTS",
    "BreakoutBatch",
    "EnvFamily",
    "LabBatch",
    "MappedActions",
    "TorchSingleEnv",
    "TorchVecEnv",
    "TorchVectorEnv",
    "action_meanings",
    "best_return",
    "check_action_mapping",
    "family",
    "known_ids",
    "level_range",
    "make_batch",
    "make_vec",
    "observation_shape",
    "register_envs",
    "register_family",
    "spawn_seeds",
]
