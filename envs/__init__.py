"""Environments: batched Breakout variants, the real Atari Breakout, and their adapters.

``import envs`` registers the ``reprl/...`` gymnasium ids. :func:`make_vec` returns an SB3
``VecEnv`` for any id reprl knows.
"""

from envs.adapters import TorchSingleEnv, TorchVecEnv, TorchVectorEnv
from envs.breakout import FACTOR_NAMES, VARIANTS, BreakoutBatch
from envs.registry import BREAKOUT_IDS, known_ids, make_vec, register_envs

register_envs()

__all__ = [
    "BREAKOUT_IDS",
    "FACTOR_NAMES",
    "VARIANTS",
    "BreakoutBatch",
    "TorchSingleEnv",
    "TorchVecEnv",
    "TorchVectorEnv",
    "known_ids",
    "make_vec",
    "register_envs",
]
