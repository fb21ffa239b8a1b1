"""Runs at once: a stage's independent runs (one agent x seed each) in worker processes.

On a few CPU cores a PPO run cannot use more than one of them well: its loop is a sequence of
small operations, and its frozen encoder's convolutions gain little from a second thread
(frozen ST-DIM PPO on 16 envs: 3,991 env-steps/s on one torch thread, 3,892 on two, 2 cores).
Two runs at once, one torch thread each, get more done in the same time (the default
experiment's 40 s runs on 2 cores: 1.5x the frozen agents' env steps, 1.2x the pixel agents').
:func:`run_jobs` runs a list of jobs that way: ``jobs = 1`` in this process, one after another;
``jobs = n`` in ``n`` processes (``spawn``: no forked torch or OpenMP state), each with
:func:`threads_per_job` torch threads. Results come back in the jobs' order; the first job
that raises stops the rest and its exception is raised here.

A worker's progress bars take their own line (:func:`bar_position`).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")

_POSITION = 0  # this process's progress-bar line (a worker's slot, 1..n)


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``jobs`` runs at once: the cores shared out, at least 1.

    Args:
        jobs: runs at once, >= 1.
        cpus: the cores to share (default: this process's torch threads, the machine's
            physical cores unless set otherwise, e.g. a sweep trial's ``resources.cpu``).
    """
    if cpus is None:
        import torch

        cpus = torch.get_num_threads()
    return max(1, cpus // max(1, jobs))


def bar_position() -> int:
    """The line this process's progress bars take: 0 in the main process, a worker's slot
    (1, 2, ...) in :func:`run_jobs`' workers."""
    return _POSITION


def _init_worker(threads: int, slots: Any) -> None:
    global _POSITION
    with slots.get_lock():
        slots.value += 1
        _POSITION = slots.value
    import torch

    torch.set_num_threads(threads)


def run_jobs(
    fn: Callable[[J], R],
    jobs: Sequence[J],
    workers: int,
    done: Callable[[R], object] | None = None,
) -> list[R]:
    """``[fn(j) for j in jobs]``, up to ``workers`` at once in worker processes.

    Every job of ``workers > 1`` runs in a worker with :func:`threads_per_job` ``(workers)``
    torch threads, even a lone one (a resumed experiment's last run): a wall-clock budget then
    buys every run the same cores.

    Args:
        fn: a module-level function (workers import it by name).
        jobs: its arguments, each picklable.
        workers: processes at once, >= 1; 1 runs the jobs here, in order.
        done: called here, in this process, with each job's result as it finishes (in the
            order they finish), e.g. to advance a progress bar.

    Returns:
        ``fn``'s results, in the order of ``jobs``.

    Raises:
        Whatever the first failing job raised (the jobs not started are cancelled).
    """
    if workers <= 1 or not jobs:
        results = []
        for j in jobs:
            results.append(fn(j))
            if done is not None:
                done(results[-1])
        return results
    ctx = mp.get_context("spawn")
    slots = ctx.Value("i", 0)
    pool = ProcessPoolExecutor(
        min(workers, len(jobs)),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(threads_per_job(workers), slots),
    )
    try:
        futures = [pool.submit(fn, j) for j in jobs]
        for f in as_completed(futures):
            if f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
            if done is not None:
                done(f.result())
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["bar_position", "run_jobs", "threads_per_job"]
