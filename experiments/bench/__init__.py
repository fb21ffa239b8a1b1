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
