"""CoinRun env-steps/s through reprl's SB3 VecEnv beside the raw ``ProcgenGym3Env``, as JSON.

Both step the same game with the same random actions, in one run, interleaved in rounds (best
of ``--rounds``: on a shared machine the best round is the least disturbed one):

- ``raw``: ``ProcgenGym3Env.act`` + ``observe`` + ``get_info``, the least any wrapper must do;
- ``reprl``: ``envs.make_vec("reprl/CoinRun-v0", n)``, SB3's ``step`` (info dicts with level
  seeds, episode returns and terminal observations).

The goal (issue "CoinRun generalisation"): the adapter's overhead <= 10 % at num = 64.

``--ppo`` adds PPO env-steps/s on CoinRun's train levels (64 envs, train-procgen's rollout of
256 steps, 8 minibatches, 3 epochs, one warm-up rollout then whole rollouts for ``--ppo-seconds``):
the IMPALA-CNN pixel agent and a frozen default beta-VAE (fresh weights: speed does not depend
on them) in the encode-once VecEnv wrapper.

Usage: ``python -m experiments.bench.bench_procgen [--sizes 64] [--seconds 2] [--rounds 3]
[--threads 4] [--ppo] [--ppo-seconds 30]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

import envs
from experiments.bench.bench_envs import _rate


def bench_raw(n: int, seconds: float, threads: int) -> float:
    from procgen import ProcgenGym3Env  # envs imported old gym quietly already

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


def bench_ppo(kind: str, seconds: float, threads: int, encoder: str | None) -> dict[str, float]:
    """PPO env-steps/s of ``kind`` (``impala_pixels`` or ``frozen_beta_vae``) on CoinRun."""
    from agents import PROCGEN_PPO, make_agent

    venv = envs.make_vec("reprl/CoinRunTrain-v0", 64, seed=0, num_threads=threads)
    kw = {"seed": 0, "hyperparams": PROCGEN_PPO}
    if kind == "impala_pixels":
        model = make_agent("ppo", venv, mode="pixels", pixel_extractor="impala", **kw)
    else:
        model = make_agent("ppo", venv, encoder=encoder, mode="frozen", **kw)
    rollout = PROCGEN_PPO.n_steps * 64
    model.learn(rollout)  # warm-up
    steps, t0 = 0, time.perf_counter()
    while True:
        model.learn(rollout, reset_num_timesteps=False)
        steps += rollout
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return {"env_steps_per_s": round(steps / dt, 1), "env_steps": steps, "seconds": dt}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="procgen worker threads")
    parser.add_argument("--ppo", action="store_true", help="also PPO env-steps/s")
    parser.add_argument("--ppo-seconds", type=float, default=30.0)
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
    if args.ppo:
        import tempfile
        from pathlib import Path

        import representations

        with tempfile.TemporaryDirectory() as tmp:
            enc = str(Path(tmp) / "beta_vae.safetensors")
            torch.manual_seed(0)
            representations.make_representation("beta_vae").save(enc)
            ppo = {
                k: bench_ppo(k, args.ppo_seconds, args.threads, enc)
                for k in ("impala_pixels", "frozen_beta_vae")
            }
        ppo["frozen_vs_impala"] = round(
            ppo["frozen_beta_vae"]["env_steps_per_s"] / ppo["impala_pixels"]["env_steps_per_s"], 2
        )
        out["ppo"] = {
            "config": "64 envs, PROCGEN_PPO (n_steps 256, batch 2048, 3 epochs), RGB x 1",
            "torch_threads": torch.get_num_threads(),
            "results": ppo,
        }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
