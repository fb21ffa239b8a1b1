"""Benchmarks: scripts that print one JSON object (``python -m experiments.bench.<name>``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any


def with_passive_omp(module: str, argv: list[str] | None) -> None:
    """Runs ``python -m module argv`` again with ``OMP_WAIT_POLICY=PASSIVE`` unless it is set
    (returns only when it is set): OpenMP's busy-waiting threads make torch crawl on cores
    shared with another process (10x measured, see ``bench_device_ppo``), and the variable is
    read when torch starts its threads, so only a new process can change it."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    args = sys.argv[1:] if argv is None else argv
    os.execve(sys.executable, [sys.executable, "-m", module, *args], env)


def timed(
    fn: Callable[..., Any], key: str, totals: MutableMapping[str, float]
) -> Callable[..., Any]:
    """``fn`` that adds the seconds each call takes to ``totals[key]``: a benchmark's stage
    timer (an instance's method: ``setattr(obj, name, timed(getattr(obj, name), key, t))``)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - t0

    return run


def learn_recording_episodes(model: Any, steps: int, loop: str) -> list[tuple[int, float]]:
    """Trains an SB3 PPO ``model`` rollout by rollout until it has taken ``steps`` env steps,
    with SB3's ``learn`` (``loop`` ``"sb3"``) or :class:`agents.DevicePPO` (``"device"``), and
    returns ``(env steps taken when it ended, return)`` of every episode that ended.

    The model's ``stats_window_size`` must exceed the episodes of one rollout (its episode
    buffer is read after each)."""
    from agents import DevicePPO  # the benchmarks' common module stays light to import

    rollout = model.n_steps * model.n_envs
    ends: list[tuple[int, float]] = []
    while model.num_timesteps < steps:
        before = len(model.ep_info_buffer or [])
        first = model.num_timesteps == 0
        if loop == "device":
            DevicePPO(model).learn(rollout, reset_num_timesteps=first)
        else:
            model.learn(rollout, reset_num_timesteps=first)
        ends += [(model.num_timesteps, e["r"]) for e in list(model.ep_info_buffer)[before:]]
    return ends
