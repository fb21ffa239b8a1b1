"""Env-steps/s of reprl's batched Breakout beside ALE's Breakout-v5, in one run, as JSON.

Both produce the same observations: uint8 RGB 64 x 64 frames. ALE runs its native
multithreaded ``AtariVectorEnv`` (C++ threads, frameskip 4, sticky actions 0.25) with as many
threads as torch uses here; reprl's Breakout runs through its SB3 ``VecEnv`` (numpy out, factors
in every info dict) and, for reference, its bare torch core.

Usage: ``python -m experiments.bench.bench_envs [--seconds 3] [--sizes 1 16 256 1024]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import envs
from envs.breakout import BreakoutBatch


def _rate(step: Callable[[int], None], n: int, seconds: float, warmup: int = 5) -> float:
    """Env-steps per second of ``step(i)`` advancing ``n`` envs, timed for ``seconds``."""
    for i in range(warmup):
        step(i)
    k, t0 = 0, time.perf_counter()
    while True:
        step(k)
        k += 1
        dt = time.perf_counter() - t0
        if dt >= seconds and k >= 3:
            return k * n / dt


def bench_reprl_vecenv(n: int, seconds: float, variant: str = "standard") -> float:
    venv = envs.make_vec("reprl/Breakout-v0", n, seed=0, variant=variant)
    venv.reset()
    acts = np.random.default_rng(0).integers(0, 3, (64, n))
    return _rate(lambda i: venv.step(acts[i % 64]), n, seconds)


def bench_reprl_core(n: int, seconds: float) -> float:
    core = BreakoutBatch(n, "standard", seed=0)
    core.reset()
    acts = torch.randint(0, 3, (64, n), generator=torch.Generator().manual_seed(0))
    return _rate(lambda i: core.step(acts[i % 64]), n, seconds)


def bench_ale(n: int, seconds: float, threads: int) -> float:
    from ale_py.vector_env import AtariVectorEnv

    venv = AtariVectorEnv(
        "breakout", n, num_threads=threads, img_height=64, img_width=64, grayscale=False,
        stack_num=1, frameskip=4, repeat_action_probability=0.25,
    )  # fmt: skip
    venv.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, 4, (64, n))
    rate = _rate(lambda i: venv.step(acts[i % 64]), n, seconds)
    venv.close()
    return rate


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 256, 1024])
    args = p.parse_args(argv)
    threads = torch.get_num_threads()
    rows = []
    for n in args.sizes:
        vec = bench_reprl_vecenv(n, args.seconds)
        core = bench_reprl_core(n, args.seconds)
        ale = bench_ale(n, args.seconds, threads)
        rows.append({
            "num_envs": n,
            "reprl_breakout_vecenv": round(vec),
            "reprl_breakout_core": round(core),
            "ale_breakout_v5_vector": round(ale),
            "speedup_vs_ale": round(vec / ale, 1),
        })  # fmt: skip
    result = {
        "benchmark": "env-steps/s, uint8 RGB 64x64 observations, random actions",
        "machine": {
            "cpus": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "ale": "ale_py.vector_env.AtariVectorEnv, frameskip 4, sticky 0.25, num_threads=cpus",
        "reprl": "reprl/BreakoutStandard via SB3 VecEnv (factors in infos); core = bare torch",
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
