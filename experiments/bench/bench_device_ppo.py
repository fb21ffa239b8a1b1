"""PPO env-steps/s on reprl Breakout: the device loop beside SB3's loop, in the same run.

Issue 25's benchmark. For each number of envs (default 16, 64, 256) and each agent of the
default experiment's kinds it builds two identical PPO agents (same seed, envs and
hyperparameters) and trains them in alternating whole rollouts, one with SB3's ``learn``, one
with :class:`agents.device_ppo.DevicePPO`, until each has had ``--seconds`` of timed training,
so both loops see the same load of a shared machine:

- ``pixels``: SB3's NatureCNN on 4 stacked grayscale frames (the default pixel agent);
- ``frozen``: a frozen ST-DIM encoder (the default's kind: ``st_dim`` with 32 latents, freshly
  initialised, its speed does not depend on its weights) on 4 stacked RGB frames, the fast path
  (SB3's loop: :class:`agents.latent.EncodeObservations`; the device loop: its latent ring).

Each rollout holds about ``--rollout`` samples (``n_steps = rollout // num_envs``, at least 8),
minibatch 256, 4 epochs (the default experiment's PPO at 16 envs, ``n_steps`` 128, until
``bench_ppo_oracle``'s calibration; kept so that the figures stay comparable), so the
update's share of the work stays the same as the envs grow. The rate counts env steps actually
taken, collection and updates together.

The frozen agents' goal compares the device loop with the encoder's own batched inference rate
at batch = ``num_envs`` (``encode(check=False)`` under ``inference_mode`` on real Breakout
frames: the network alone, which is what the loop's latent ring calls), measured for 0.5 s
after every timed frozen rollout (the mean of those): ``ratio >= 0.75`` at 16 envs.

``--compile`` gives both loops' envs ``compile=True`` (the balls' sub-steps through
``torch.compile``; compiled in the untimed warm-up).

OpenMP's busy-waiting makes torch crawl on cores shared with another process (10x measured
here: 63 instead of 650 pixel env-steps/s); the benchmark runs itself again with
``OMP_WAIT_POLICY=PASSIVE`` unless the variable is set.

Usage: ``python -m experiments.bench.bench_device_ppo [--seconds 4] [--envs 16 64 256]
[--device cuda] [--threads N] [--compile]``; prints one JSON object.
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

import numpy as np
import stable_baselines3
import torch

import envs
import representations
from agents import DevicePPO, make_agent
from experiments.bench import with_passive_omp
from experiments.bench.bench_agents import EncoderRate

ENV_ID = "reprl/BreakoutStandard-v0"
#: kind -> (mode, grayscale)
KINDS: dict[str, tuple[str, bool]] = {"pixels": ("pixels", True), "frozen": ("frozen", False)}
FRAME_STACK = 4


def _agent(kind: str, num_envs: int, n_steps: int, encoder: Path, args: argparse.Namespace):
    mode, gray = KINDS[kind]
    env = envs.make_vec(
        ENV_ID,
        num_envs,
        seed=0,
        frame_stack=FRAME_STACK,
        grayscale=gray,
        info_factors=False,
        device=args.device,
        max_episode_steps=2000,
        **({"compile": True} if args.compile else {}),
    )
    return make_agent(
        "ppo",
        env,
        encoder=None if mode == "pixels" else encoder,
        mode=mode,
        frame_stack=FRAME_STACK,
        seed=0,
        device=args.device,
        n_steps=n_steps,
        batch_size=256,
        n_epochs=4,
        learning_rate=5e-4,
        ent_coef=0.01,
    )


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bench_pair(
    kind: str, num_envs: int, encoder: Path, args: argparse.Namespace, rate: EncoderRate | None
) -> dict[str, Any]:
    """Both loops on one kind and env count, alternating whole rollouts; env-steps/s each."""
    n_steps = max(8, args.rollout // num_envs)
    rollout = n_steps * num_envs
    sb3 = _agent(kind, num_envs, n_steps, encoder, args)
    dev = _agent(kind, num_envs, n_steps, encoder, args)
    loop = DevicePPO(dev)
    learn = {
        "sb3": lambda first: sb3.learn(rollout, reset_num_timesteps=first),
        "device": lambda first: loop.learn(rollout, reset_num_timesteps=first),
    }
    for f in learn.values():  # warm-up: allocations, first reset, lazy inits
        f(True)
    timed = {name: 0.0 for name in learn}
    start = {"sb3": sb3.num_timesteps, "device": dev.num_timesteps}
    while min(timed.values()) < args.seconds:
        for name, f in learn.items():
            _sync(args.device)
            t0 = time.perf_counter()
            f(False)
            _sync(args.device)
            timed[name] += time.perf_counter() - t0
        if rate is not None:
            rate()
    steps = {"sb3": sb3.num_timesteps - start["sb3"], "device": dev.num_timesteps - start["device"]}
    out: dict[str, Any] = {"n_steps": n_steps}
    for name in learn:
        out[name] = {
            "env_steps_per_s": round(steps[name] / timed[name], 1),
            "env_steps": steps[name],
            "seconds": round(timed[name], 2),
        }
    out["device_vs_sb3"] = round(
        out["device"]["env_steps_per_s"] / out["sb3"]["env_steps_per_s"], 2
    )
    if rate is not None:
        fps = float(np.mean(rate.rates))
        out["encoder_frames_per_s"] = round(fps, 1)
        out["device_vs_encoder"] = round(out["device"]["env_steps_per_s"] / fps, 3)
        out["sb3_vs_encoder"] = round(out["sb3"]["env_steps_per_s"] / fps, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    with_passive_omp("experiments.bench.bench_device_ppo", argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0, help="timed seconds per loop and case")
    p.add_argument("--envs", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--rollout", type=int, default=2048, help="samples per rollout (about)")
    p.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="torch device of the envs and the agents")
    p.add_argument(
        "--compile", action="store_true", help="both loops' envs torch.compile their physics"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    t_start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Path(tmp) / "st_dim.safetensors"
        torch.manual_seed(0)
        representations.make_representation("st_dim", latent_dim=32).save(encoder)
        for n in args.envs:
            for kind in args.kinds:
                rate = (
                    EncoderRate(encoder, n, seconds=0.5, device=args.device, check=False)
                    if kind == "frozen"
                    else None
                )
                results[f"{kind}_{n}"] = bench_pair(kind, n, encoder, args, rate)
    goals = {}
    if "frozen_16" in results:
        goals["frozen_16_device_vs_encoder_ge_0_75"] = (
            results["frozen_16"]["device_vs_encoder"] >= 0.75
        )
    for n in args.envs:
        if f"pixels_{n}" in results:
            faster = results[f"pixels_{n}"]["device_vs_sb3"] > 1
            goals[f"pixels_{n}_device_faster_than_sb3"] = faster
    out = {
        "benchmark": "PPO env-steps/s (collect + update), reprl/BreakoutStandard-v0 64x64, "
        "DevicePPO beside SB3's learn (alternating rollouts)",
        "config": {
            "envs": args.envs,
            "samples_per_rollout": args.rollout,
            "batch_size": 256,
            "n_epochs": 4,
            "frame_stack": FRAME_STACK,
            "timed_seconds_per_loop_and_case": args.seconds,
            "device": args.device,
            "env_compile": args.compile,
            "pixels": "NatureCNN on 4 stacked grayscale frames",
            "frozen": "st_dim (latent 32, fresh weights), frozen, fast path, 4 stacked RGB frames",
            "encoder_rate": "encode(check=False) at batch = envs: the network alone",
        },
        "machine": {
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "cpus": os.cpu_count(),
            "load_avg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "wall_seconds": round(time.perf_counter() - t_start, 1),
        },
        "results": results,
        "goals": goals,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
