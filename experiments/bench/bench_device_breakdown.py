"""Where the device loop's time goes: each stage of a frozen-encoder PPO run, timed in the loop.

Issue 25's goal compares the frozen device loop with its encoder's own batched rate; this
benchmark says why the ratio is what it is. It trains the benchmark's frozen agent
(:mod:`experiments.bench.bench_device_ppo`: a fresh ST-DIM, 32 latents x 4, 16 envs,
``n_steps`` 128, minibatch 256, 4 epochs) with :class:`agents.DevicePPO` for ``--rollouts``
rollouts, with a timer around each stage, and measures the encoder alone before and after
(``encode(check=False)`` at batch ``--envs``, in its own tight loop). Per vector step, in ms:

- ``encode``: the latent ring's encoder call (the newest frames, terminal frames included);
- ``ring``: the ring's update around it (``encode`` excluded);
- ``env``: the core's step (``--compile``: its physics compiled);
- ``policy``: ``policy_act`` (actions, values, log-probabilities);
- ``update``: PPO's epochs (``ppo_update``), spread over the rollout's steps;
- ``other``: the rest (rollout storage, episode counters, callbacks).

The timers add a few microseconds per stage. One torch thread unless ``--threads``.

Usage: ``python -m experiments.bench.bench_device_breakdown [--rollouts 6] [--compile]``;
prints one JSON object.
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # noqa: F401  (first: quiets old gym's notice before SB3 imports it)

# isort: on
import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import agents.device_ppo as device_ppo
import representations
from experiments.bench import timed, with_passive_omp
from experiments.bench.bench_agents import EncoderRate
from experiments.bench.bench_device_ppo import _agent


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    with_passive_omp("experiments.bench.bench_device_breakdown", argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rollouts", type=int, default=6, help="timed rollouts")
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--compile", action="store_true", help="the env's physics compiled")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_steps = max(8, 2048 // args.envs)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Path(tmp) / "st_dim.safetensors"
        torch.manual_seed(0)
        representations.make_representation("st_dim", latent_dim=32).save(encoder)
        ns = argparse.Namespace(device="cpu", compile=args.compile)
        model = _agent("frozen", args.envs, n_steps, encoder, ns)
        loop = device_ppo.DevicePPO(model)
        rollout = n_steps * args.envs
        loop.learn(rollout)  # warm-up: allocations, first reset, compilation
        totals: dict[str, float] = defaultdict(float)
        ring = loop.ring
        assert ring is not None
        ring.encode_newest = timed(ring.encode_newest, "encode", totals)
        ring.step = timed(ring.step, "ring_and_encode", totals)
        loop._step_core.step = timed(loop._step_core.step, "env", totals)
        patched = {name: getattr(device_ppo, name) for name in ("policy_act", "ppo_update")}
        device_ppo.policy_act = timed(patched["policy_act"], "policy", totals)
        device_ppo.ppo_update = timed(patched["ppo_update"], "update", totals)
        rate = EncoderRate(encoder, args.envs, seconds=1.0, check=False)
        try:
            rate()
            t0 = time.perf_counter()
            loop.learn(rollout * args.rollouts, reset_num_timesteps=False)
            total = time.perf_counter() - t0
            rate()
        finally:
            for name, fn in patched.items():
                setattr(device_ppo, name, fn)
    steps = n_steps * args.rollouts
    ms = {k: 1e3 * v / steps for k, v in totals.items()}
    stages = {
        "encode": ms["encode"],
        "ring": ms["ring_and_encode"] - ms["encode"],
        "env": ms["env"],
        "policy": ms["policy"],
        "update": ms["update"],
    }
    per_step = 1e3 * total / steps
    stages["other"] = per_step - sum(stages.values())
    alone = 1e3 * args.envs / float(np.mean(rate.rates))
    out = {
        "benchmark": "the frozen device loop's time per vector step, by stage (ms)",
        "config": {
            "envs": args.envs,
            "n_steps": n_steps,
            "rollouts": args.rollouts,
            "threads": torch.get_num_threads(),
            "env_compile": args.compile,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        },
        "ms_per_step": {k: round(v, 3) for k, v in stages.items()},
        "total_ms_per_step": round(per_step, 3),
        "encoder_alone_ms_per_batch": round(alone, 3),
        "encode_in_loop_vs_alone": round(stages["encode"] / alone, 3),
        "device_vs_encoder": round(alone / per_step, 3),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
