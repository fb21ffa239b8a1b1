"""Env-steps/s of the DMLab-style lab worlds (``reprl/LabCollect-v0``, ``reprl/LabNavigate-v0``)
on each of ``--devices`` (default cpu), and of Memory Maze beside them, as JSON.

For each task and N (default 1, 64, 256): the bare torch core (:class:`envs.lab.LabBatch`,
observations stay tensors) and the SB3 ``VecEnv`` of ``make_vec`` with and without the factor
dicts in ``infos`` (numpy out). Observations are uint8 RGB 64 x 64, actions uniformly random
(episodes end and reset inside the timing, as in training). Each variant is timed in
``--rounds`` interleaved rounds, keeping its best: on a shared machine the background load then
hits all alike. The issue's goal: >= 10,000 env-steps/s at N = 256 on 2 cores.

In the same run, a real MuJoCo-rendered world for comparison: ``reprl/MemoryMaze-9x9-v0``
(:mod:`envs.memory_maze`, the ``dmc`` extra) through the same ``make_vec``, at a few N (default
1 and 4: a world takes seconds and about 0.75 GB to build), on the CPU, with the same three
columns, plus the seconds per world to build and to reset, the memory per world, and the
factor-dict rate with one reset per episode counted in. Without the extra (or where MuJoCo
cannot render) its entry says why it was skipped.

Usage: ``python -m experiments.bench.bench_lab [--seconds 3] [--sizes 1 64 256] [--threads 2]
[--devices cpu cuda] [--memory-maze-sizes 1 4]`` (``--memory-maze-sizes`` with no value skips
Memory Maze)
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import envs
from envs.adapters import TorchVecEnv
from envs.errors import ReprlError
from envs.lab import LabBatch
from experiments.bench.bench_envs import _rate

TASK_IDS = {"collect": "reprl/LabCollect-v0", "navigate": "reprl/LabNavigate-v0"}
MEMORY_MAZE_ID = "reprl/MemoryMaze-9x9-v0"


def bench_task(
    task: str, n: int, seconds: float, rounds: int, device: str = "cpu"
) -> dict[str, Any]:
    """One row: env-steps/s of the core and of the SB3 VecEnv (with/without factor dicts)."""
    env_id = TASK_IDS[task]
    core = LabBatch(n, task, seed=0, device=device)
    core.reset()
    vec = envs.make_vec(env_id, n, seed=0, device=device)
    vec.reset()
    bare = envs.make_vec(env_id, n, seed=0, info_factors=False, device=device)
    bare.reset()
    acts = np.random.default_rng(0).integers(0, 6, (64, n))
    acts_t = torch.as_tensor(acts).to(device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def core_step(i: int) -> None:
        core.step(acts_t[i % 64])
        sync()  # frames ready, as a policy reading them needs

    steps: dict[str, Callable[[int], None]] = {
        "core": core_step,
        "vecenv": lambda i: bare.step(acts[i % 64]),
        "vecenv_factors": lambda i: vec.step(acts[i % 64]),
    }
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = max(best[name], _rate(step, n, seconds / rounds))
    return {
        "task": task,
        "device": device,
        "num_envs": n,
        **{k: round(v) for k, v in best.items()},
    }


def _rss_gb() -> float | None:
    """This process's resident memory in GB (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        return None


def bench_memory_maze(env_id: str, n: int, seconds: float, rounds: int) -> dict[str, Any]:
    """One Memory Maze row: build and reset costs, env-steps/s of the core and the VecEnvs.

    The factor-free VecEnv wraps the same worlds as ``make_vec``'s (what
    ``make_vec(..., info_factors=False)`` builds), so they are built once.

    Raises:
        ReprlError: the ``dmc`` extra is missing or MuJoCo cannot render.
    """
    rss0, t0 = _rss_gb(), time.perf_counter()
    vec = envs.make_vec(env_id, n, seed=0)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    vec.reset()
    reset = (time.perf_counter() - t0) / n
    rss1 = _rss_gb()
    core = vec.core
    bare = TorchVecEnv(core, info_factors=False)
    acts = np.random.default_rng(0).integers(0, core.num_actions, (64, n))
    steps: dict[str, Callable[[int], None]] = {
        "core": lambda i: core.step(acts[i % 64]),
        "vecenv": lambda i: bare.step(acts[i % 64]),
        "vecenv_factors": lambda i: vec.step(acts[i % 64]),
    }
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = max(best[name], _rate(step, n, seconds / rounds))
    episode = core.max_episode_steps  # one reset (``reset`` s) per world and episode
    with_resets = best["vecenv_factors"] / (1 + best["vecenv_factors"] * reset / episode)
    core.close()
    return {
        "env_id": env_id,
        "device": "cpu",
        "num_envs": n,
        **{k: round(v, 1) for k, v in best.items()},
        "vecenv_factors_with_resets": round(with_resets, 1),
        "episode_steps": episode,
        "build_s_per_env": round(build / n, 2),
        "reset_s_per_env": round(reset, 2),
        "memory_gb_per_env": None if rss0 is None or rss1 is None else round((rss1 - rss0) / n, 2),
    }


def memory_maze_section(
    env_id: str, sizes: list[int], seconds: float, rounds: int
) -> dict[str, Any]:
    """Memory Maze's rows, or why there are none (not requested, extra missing, no GL)."""
    if not sizes:
        return {"env_id": env_id, "skipped": "not requested (--memory-maze-sizes empty)"}
    try:
        rows = [bench_memory_maze(env_id, n, seconds, rounds) for n in sizes]
    except ReprlError as e:
        return {"env_id": env_id, "skipped": str(e)}
    versions = {}
    for dist in ("memory-maze", "dm-control", "mujoco"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "env_id": env_id,
        "what": "MuJoCo (dm_control) worlds stepped one after another on the CPU, 64x64 RGB "
        "uint8, random actions; core = MemoryMazeBatch.step (tensors), vecenv / "
        "vecenv_factors = the SB3 VecEnv of make_vec without / with factor dicts; "
        "vecenv_factors_with_resets counts one reset per world and episode "
        "(episode_steps); build and reset seconds and memory are per world",
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "versions": versions,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds, best kept")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 256])
    p.add_argument("--tasks", nargs="+", default=list(TASK_IDS), choices=list(TASK_IDS))
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    p.add_argument("--devices", nargs="+", default=["cpu"], help="torch devices (cpu, cuda)")
    p.add_argument(
        "--memory-maze-sizes",
        type=int,
        nargs="*",
        default=[1, 4],
        help="N for Memory Maze (about 0.75 GB per world); none: skip it",
    )
    p.add_argument("--memory-maze-id", default=MEMORY_MAZE_ID, choices=list(envs.MEMORY_MAZE_IDS))
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rows = [
        bench_task(task, n, args.seconds, args.rounds, device)
        for device in args.devices
        for task in args.tasks
        for n in args.sizes
    ]
    memory_maze = memory_maze_section(
        args.memory_maze_id, args.memory_maze_sizes, args.seconds, args.rounds
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {
        "benchmark": "env-steps/s of the lab worlds, uint8 RGB 64x64, random actions",
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "what": "core = bare torch LabBatch.step; vecenv = SB3 VecEnv of make_vec with "
        "info_factors=False; vecenv_factors = with the factor dicts (make_vec's default); best "
        "of interleaved rounds",
        "goal": ">= 10000 env-steps/s at num_envs=256 on 2 cores",
        "rows": rows,
        "memory_maze": memory_maze,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
