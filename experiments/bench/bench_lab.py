"""Env-steps/s of the DMLab-style lab worlds (``reprl/LabCollect-v0``, ``reprl/LabNavigate-v0``)
on each of ``--devices`` (default cpu), as JSON.

For each task and N (default 1, 64, 256): the bare torch core (:class:`envs.lab.LabBatch`,
observations stay tensors) and the SB3 ``VecEnv`` of ``make_vec`` with and without the factor
dicts in ``infos`` (numpy out). Observations are uint8 RGB 64 x 64, actions uniformly random
(episodes end and reset inside the timing, as in training). Each variant is timed in
``--rounds`` interleaved rounds, keeping its best: on a shared machine the background load then
hits all alike. The issue's goal: >= 10,000 env-steps/s at N = 256 on 2 cores.

Usage: ``python -m experiments.bench.bench_lab [--seconds 3] [--sizes 1 64 256] [--threads 2]
[--devices cpu cuda]``
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import envs
from envs.lab import LabBatch
from experiments.bench.bench_envs import _rate

TASK_IDS = {"collect": "reprl/LabCollect-v0", "navigate": "reprl/LabNavigate-v0"}


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


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds, best kept")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 256])
    p.add_argument("--tasks", nargs="+", default=list(TASK_IDS), choices=list(TASK_IDS))
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    p.add_argument("--devices", nargs="+", default=["cpu"], help="torch devices (cpu, cuda)")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rows = [
        bench_task(task, n, args.seconds, args.rounds, device)
        for device in args.devices
        for task in args.tasks
        for n in args.sizes
    ]
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
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
