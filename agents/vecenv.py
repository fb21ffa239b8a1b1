"""Questions about an SB3 ``VecEnv`` that the factory and A3C's workers both ask.

It lies below :mod:`agents.factory` and :mod:`agents.a3c`, so neither imports the other for it.
"""

from __future__ import annotations

from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, is_vecenv_wrapped


def is_monitored(env: VecEnv) -> bool:
    """Whether episode statistics are recorded already (``VecMonitor`` or per-env ``Monitor``)."""
    return is_vecenv_wrapped(env, VecMonitor) or all(env.env_is_wrapped(Monitor))


__all__ = ["is_monitored"]
