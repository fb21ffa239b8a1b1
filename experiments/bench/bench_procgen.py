"""CoinRun env-steps/s through reprl's SB3 VecEnv beside the raw ``ProcgenGym3Env``, as JSON.

Both step the same game with the same random actions, in one run, interleaved in rounds (best
of ``--rounds``: on a shared machine the best round is the least disturbed one):

- ``raw``: ``ProcgenGym3Env.act`` + ``observe`` + ``get_info``, the least any wrapper must do;
- ``reprl``: ``envs.make_vec("reprl/CoinRun-v0", n)``, SB3's ``step`` (info dicts with level
  seeds, episode returns and terminal observations).

The goal (issue "CoinRun generalisation"): the adapter's overhead <= 10 % at num = 64.

Usage: ``python -m experiments.bench.bench_procgen [--sizes 64] [--seconds 2] [--rounds 3]
[--threads 4]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

import envs


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


def bench_raw(n: int, seconds: float, threads: int) -> float:
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        from procgen import ProcgenGym3Env

    env = ProcgenGym3Env(
        num=n, env_name="coinrun", num_levels=200, start_level=0, distribution_mode="easy",
        rand_seed=0, num_threads=threads,
    )  # fmt: skip
    acts = np.random.default_rng(0).integers(0, 15, (64, n)).astype(np.int32)

    def step(i: int) -> None:
        env.act(acts[i % 64])
        env.observe()
        env.get_info()

    return _rate(step, n, seconds)


def bench_reprl(n: int, seconds: float, threads: int) -> float:
    venv = envs.make_vec("reprl/CoinRun-v0", n, seed=0, split="train", num_threads=threads)
    venv.reset()
    acts = np.random.default_rng(0).integers(0, 15, (64, n))
    return _rate(lambda i: venv.step(acts[i % 64]), n, seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="procgen worker threads")
    args = parser.parse_args(argv)
    rows = []
    for n in args.sizes:
        raw, ours = [], []
        for _ in range(args.rounds):
            raw.append(bench_raw(n, args.seconds, args.threads))
            ours.append(bench_reprl(n, args.seconds, args.threads))
        best_raw, best_ours = max(raw), max(ours)
        rows.append(
            {
                "num_envs": n,
                "raw_procgen_gym3": round(best_raw),
                "reprl_vecenv": round(best_ours),
                "overhead_pct": round(100 * (1 - best_ours / best_raw), 1),
                "rounds_raw": [round(x) for x in raw],
                "rounds_reprl": [round(x) for x in ours],
            }
        )
    out = {
        "benchmark": "CoinRun env-steps/s, easy, 200 train levels, random actions, best round",
        "goal": "overhead <= 10 % at num_envs = 64",
        "machine": {
            "cpus": os.cpu_count(),
            "procgen_threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_avg_1min": round(os.getloadavg()[0], 2),
        },
        "rows": rows,
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
