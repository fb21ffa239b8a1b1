"""Env-steps/s of A3C (asynchronous worker processes) against SB3's A2C, same env and encoder.

Both train on ``reprl/BreakoutStandard-v0`` with 4 stacked RGB frames (the pipeline's temporal
context), the same encoder (a freshly built default ``beta_vae``: speed does not depend on its
weights), ``n_steps`` 5, learning rate 7e-4, entropy 0.01, ``--envs`` envs in all:

- ``a2c``: SB3's A2C, one process, ``--envs`` envs, once per torch thread count of
  ``--a2c-threads`` (default 1 and ``--workers``: one core, and as many cores as A3C's
  workers use);
- ``a3c``: :class:`agents.a3c.A3C`, ``--workers`` processes of ``--envs / --workers`` envs,
  one torch thread each;
- ``a3c_lstm``: the same with an LSTM core of ``--lstm`` units (256, the paper's; 0 skips it).

Modes (``--modes``): ``wrapper`` (the frozen encoder in ``EncodeObservations``, an MLP policy on
latents) and ``finetune`` (the encoder inside the policy, trained). Each agent learns for
``--seconds`` after a warm-up: A2C one untimed update first; A3C's rate is taken from the
moment every worker has made its first update (its process start-up, reported apart as
``startup_s``, is not in the rate; ``with_startup`` is the rate over the whole call).

Usage: ``python -m experiments.bench.bench_a3c [--seconds 20] [--envs 16] [--workers 2]
[--modes wrapper finetune] [--lstm 256]``; prints one JSON object.
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
import tempfile
import time
from pathlib import Path
from typing import Any

import stable_baselines3
import torch
from stable_baselines3.common.callbacks import BaseCallback

import envs
import representations
from agents import WorkerEnvs, make_agent

ENV_ID = "reprl/BreakoutStandard-v0"
FRAME_STACK = 4
COMMON = {"n_steps": 5, "learning_rate": 7e-4, "ent_coef": 0.01}
#: mode -> (make_agent mode, fast)
MODES: dict[str, tuple[str, bool]] = {"wrapper": ("frozen", True), "finetune": ("finetune", False)}


class _Clock(BaseCallback):
    """Stops ``learn`` ``seconds`` after ``ready`` first holds; records when and at which step."""

    def __init__(self, seconds: float, ready: Any) -> None:
        super().__init__()
        self.seconds, self.ready = seconds, ready
        self.t_start = self.t0 = self.t1 = None
        self.s0 = self.s1 = 0

    def _on_training_start(self) -> None:
        self.t_start = time.perf_counter()

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if self.t0 is None:
            if self.ready(self.model):
                self.t0, self.s0 = now, self.model.num_timesteps
            return True
        self.t1, self.s1 = now, self.model.num_timesteps
        return now - self.t0 < self.seconds


def _env_kwargs() -> dict[str, Any]:
    return {"frame_stack": FRAME_STACK, "info_factors": False}


def bench_a2c(encoder: Path, mode: str, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """SB3 A2C in this process with ``threads`` torch threads: env-steps/s over
    ``args.seconds`` after one update."""
    torch.set_num_threads(threads)
    agent_mode, fast = MODES[mode]
    env = envs.make_vec(ENV_ID, args.envs, seed=0, **_env_kwargs())
    model = make_agent("a2c", env, encoder=encoder, mode=agent_mode, fast=fast, seed=0, **COMMON)
    model.learn(COMMON["n_steps"] * args.envs)  # warm-up: one update
    clock = _Clock(args.seconds, lambda m: True)
    model.learn(10**12, callback=clock, reset_num_timesteps=False)
    env.close()
    steps, seconds = clock.s1 - clock.s0, clock.t1 - clock.t0
    return {
        "env_steps_per_s": round(steps / seconds, 1),
        "env_steps": steps,
        "seconds": round(seconds, 2),
        "envs": args.envs,
        "torch_threads": threads,
    }


def bench_a3c(encoder: Path, mode: str, args: argparse.Namespace, lstm: int = 0) -> dict[str, Any]:
    """A3C with ``args.workers`` processes (an LSTM core of ``lstm`` units, 0: none): steady
    env-steps/s once every worker updated."""
    agent_mode, fast = MODES[mode]
    per_worker = args.envs // args.workers
    env = envs.make_vec(ENV_ID, per_worker, seed=0, **_env_kwargs())
    model = make_agent(
        "a3c",
        env,
        encoder=encoder,
        mode=agent_mode,
        fast=fast,
        seed=0,
        env_fn=WorkerEnvs(ENV_ID, per_worker, _env_kwargs()),
        n_workers=args.workers,
        worker_threads=1,
        lstm_hidden_size=lstm,
        **COMMON,
    )
    clock = _Clock(args.seconds, lambda m: all(m.a3c_stats["updates"]))
    t0 = time.perf_counter()
    model.learn(10**12, callback=clock)
    total = time.perf_counter() - t0
    env.close()
    steps, seconds = clock.s1 - clock.s0, clock.t1 - clock.t0
    return {
        "env_steps_per_s": round(steps / seconds, 1),
        "env_steps": steps,
        "seconds": round(seconds, 2),
        "startup_s": round(clock.t0 - clock.t_start, 2),
        "with_startup": round(model.num_timesteps / total, 1),
        "workers": args.workers,
        "envs_per_worker": per_worker,
        "updates_per_worker": model.a3c_stats["updates"],
        "env_steps_per_worker": model.a3c_stats["env_steps"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per agent")
    p.add_argument("--envs", type=int, default=16, help="envs in all (A3C: split among workers)")
    p.add_argument("--workers", type=int, default=2, help="A3C worker processes")
    p.add_argument(
        "--a2c-threads",
        type=int,
        nargs="+",
        default=None,
        help="A2C's torch thread counts, one measurement each (default: 1 and --workers)",
    )
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    p.add_argument("--lstm", type=int, default=256, help="A3C LSTM core units (0: skip it)")
    args = p.parse_args(argv)
    args.a2c_threads = args.a2c_threads or sorted({1, args.workers})
    if args.envs % args.workers:
        p.error(f"--envs: expected a multiple of --workers {args.workers}, got {args.envs}")
    results: dict[str, Any] = {
        "env_id": ENV_ID,
        "frame_stack": FRAME_STACK,
        "hyperparams": COMMON,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
        },
        "modes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Path(tmp) / "beta_vae.safetensors"
        torch.manual_seed(0)
        representations.make_representation("beta_vae").save(encoder)
        for mode in args.modes:
            a2c = {f"threads_{n}": bench_a2c(encoder, mode, args, n) for n in args.a2c_threads}
            a3c = bench_a3c(encoder, mode, args)
            results["modes"][mode] = {
                "a2c": a2c,
                "a3c": a3c,
                "a3c_over_a2c": {
                    k: round(a3c["env_steps_per_s"] / v["env_steps_per_s"], 2)
                    for k, v in a2c.items()
                },
            }
            if args.lstm:
                lstm = bench_a3c(encoder, mode, args, lstm=args.lstm)
                results["modes"][mode]["a3c_lstm"] = {"lstm_hidden_size": args.lstm, **lstm}
                results["modes"][mode]["a3c_lstm_over_a3c"] = round(
                    lstm["env_steps_per_s"] / a3c["env_steps_per_s"], 2
                )
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
