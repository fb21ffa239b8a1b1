"""Benchmarks: scripts that print one JSON object (``python -m experiments.bench.<name>``)."""

from __future__ import annotations

import os
import sys


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
