"""Does the device loop learn as SB3's loop does? PPO on Standard Breakout, equal env steps.

For each seed, two PPO agents (the default experiment's before ``bench_ppo_oracle``'s
calibration: 16 envs, ``n_steps`` 128, minibatch 256, 4 epochs, lr 5e-4, entropy 0.01,
episodes of at most 2000 steps; pixels: NatureCNN on 4 stacked grayscale frames; with
``--encoder PATH``: that encoder frozen on 4 stacked RGB frames, the fast path, as the
default's frozen agents) are built identically and trained for
``--steps`` env steps, one by SB3's ``learn``, one by :class:`agents.device_ppo.DevicePPO`.
Prints, per seed and loop, the mean training return of the episodes that ended in the last
half of the run, the seconds, and how far the two final policies are apart (max absolute
parameter difference: on the CPU the two loops draw the same random numbers, so they differ
only by float rounding where episodes hit the time limit), as one JSON object.

Usage: ``python -m experiments.bench.bench_device_learning [--steps 16384] [--seeds 0 1 2]
[--encoder runs/darla_breakout/pretrain/st_dim/encoder.safetensors] [--threads N]``
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch

import envs
from agents import make_agent
from envs.rng import spawn_seeds
from experiments.bench import learn_recording_episodes, with_passive_omp

ENV_ID = "reprl/BreakoutStandard-v0"


def _run(seed: int, loop: str, steps: int, device: str, encoder: str | None) -> dict[str, Any]:
    torch.manual_seed(seed)
    venv = envs.make_vec(
        ENV_ID,
        16,
        seed=spawn_seeds(seed, 16, purpose="train"),
        frame_stack=4,
        grayscale=encoder is None,
        info_factors=False,
        device=device,
        max_episode_steps=2000,
    )
    model = make_agent(
        "ppo",
        venv,
        mode="pixels" if encoder is None else "frozen",
        encoder=encoder,
        frame_stack=4,
        seed=seed,
        device=device,
        n_steps=128,
        batch_size=256,
        n_epochs=4,
        learning_rate=5e-4,
        ent_coef=0.01,
        stats_window_size=10_000,
    )
    t0 = time.perf_counter()
    ends = learn_recording_episodes(model, steps, loop)
    seconds = time.perf_counter() - t0
    late = [r for s, r in ends if s > steps / 2]
    return {
        "model": model,
        "episodes": len(ends),
        "late_mean_return": round(float(np.mean(late)), 3) if late else None,
        "late_episodes": len(late),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Trains the pairs and prints one JSON object."""
    with_passive_omp("experiments.bench.bench_device_learning", argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=16_384)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--encoder", default=None, help="a frozen encoder's checkpoint (else pixels)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    for seed in args.seeds:
        runs = {
            loop: _run(seed, loop, args.steps, args.device, args.encoder)
            for loop in ("sb3", "device")
        }
        a, b = runs["sb3"].pop("model").policy, runs["device"].pop("model").policy
        diff = max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
        results[str(seed)] = {**runs, "max_param_diff": diff}
    means = {
        loop: [r[loop]["late_mean_return"] for r in results.values()] for loop in ("sb3", "device")
    }
    out = {
        "check": f"{'pixel' if args.encoder is None else 'frozen-encoder'} PPO on {ENV_ID}, "
        f"SB3's loop vs the device loop, {args.steps} env steps",
        "encoder": args.encoder,
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "per_seed": results,
        "late_mean_return_by_loop": means,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
