"""PPO env-steps/s with a frozen encoder: pixels vs extractor vs wrapper, one run, as JSON.

Three agents train PPO on ``reprl/BreakoutStandard-v0`` with the same envs and hyperparameters
(default 16 envs, ``n_steps`` 128, minibatch 256, 4 epochs):

- ``pixels``: SB3's ``CnnPolicy`` (NatureCNN), the usual pixel baseline;
- ``extractor``: a frozen beta-VAE encoder inside the policy
  (``make_agent(..., mode="frozen", fast=False)``): it runs on every rollout step and again on
  every minibatch of every epoch;
- ``wrapper``: the same frozen encoder in ``EncodeObservations`` (``fast=True``): it runs once
  per env step and the policy is an MLP on latents.

The encoder is a freshly built default ``beta_vae`` saved to a temporary directory (speed does
not depend on its weights). Each agent learns ``--warmup`` steps untimed, then ``--timesteps``
timed; the rate counts the env-steps actually taken (whole rollouts).

Usage: ``python -m experiments.bench.bench_agents [--timesteps 8192] [--envs 16]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import stable_baselines3
import torch

import envs
import representations
from agents import make_agent

ENV_ID = "reprl/BreakoutStandard-v0"
KINDS = ("pixels", "extractor", "wrapper")


def bench_kind(kind: str, encoder: Path, args: argparse.Namespace) -> dict[str, float]:
    """Time one agent's ``learn``; env-steps/s and seconds."""
    env = envs.make_vec(ENV_ID, args.envs, seed=0)
    ppo = {"n_steps": args.n_steps, "batch_size": args.batch_size, "n_epochs": args.epochs}
    if kind == "pixels":
        model = make_agent("ppo", env, mode="pixels", seed=0, **ppo)
    else:
        model = make_agent(
            "ppo", env, encoder=encoder, mode="frozen", fast=kind == "wrapper", seed=0, **ppo
        )
    if args.warmup:
        model.learn(args.warmup)
    start = model.num_timesteps
    t0 = time.perf_counter()
    model.learn(args.timesteps, reset_num_timesteps=False)
    dt = time.perf_counter() - t0
    steps = model.num_timesteps - start
    model.get_env().close()
    return {"env_steps_per_s": round(steps / dt, 1), "env_steps": steps, "seconds": round(dt, 2)}


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=8192, help="timed env-steps per agent")
    p.add_argument("--warmup", type=int, default=2048, help="untimed env-steps first")
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--n-steps", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = p.parse_args(argv)

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Path(tmp) / "beta_vae.safetensors"
        torch.manual_seed(0)
        representations.make_representation("beta_vae").save(encoder)
        for kind in args.kinds:
            results[kind] = bench_kind(kind, encoder, args)
    speedups = {}
    if "pixels" in results:
        base = results["pixels"]["env_steps_per_s"]
        speedups = {
            f"{k}_vs_pixels": round(v["env_steps_per_s"] / base, 2)
            for k, v in results.items()
            if k != "pixels"
        }
    out = {
        "benchmark": "PPO env-steps/s (collect + update), reprl/BreakoutStandard-v0 64x64 RGB",
        "config": {
            "num_envs": args.envs,
            "n_steps": args.n_steps,
            "batch_size": args.batch_size,
            "n_epochs": args.epochs,
            "warmup_steps": args.warmup,
            "timed_steps": args.timesteps,
            "encoder": "beta_vae default (convs 32-32-64-64, fc 256, latent 32), frozen",
        },
        "machine": {
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
        },
        "results": results,
        "speedups": speedups,
        "goal_wrapper_3x_pixels": speedups.get("wrapper_vs_pixels", 0.0) >= 3.0,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
