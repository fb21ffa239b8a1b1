"""Could overlapping the frozen encoder with the env step lift the device loop to 0.75 of the
encoder's rate? The bound, measured.

Issue 25's goal at 16 envs on 2 CPU cores: frozen-encoder PPO at >= 0.75 of the encoder's own
batched rate. A step's encoding needs that step's frames, so within one batch of envs nothing
overlaps; the envs can only be split into two halves whose encoding (one thread) runs while the
other half steps its env and policy (another thread). This measures, on one torch thread per
thread, for ``n`` = all envs and for ``n / 2``:

- ``encode``: the encoder on ``n`` new frames (the device loop's ``encode_newest``);
- ``env_policy``: the policy's forward pass on ``n`` latent stacks and the core's step;
- ``together``: both at once, in two Python threads (torch releases the GIL in its kernels).

A pipelined step of all envs costs at best ``2 * together(n / 2)`` against the sequential
``encode(n) + env_policy(n)``; the update's share per step (from a timed rollout + update of
the real loop) is added to both to give the bound on the ratio.

Usage: ``python -m experiments.bench.bench_device_overlap [--envs 16] [--repeats 300]``;
prints one JSON object.
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # noqa: F401  first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import representations
from agents import DevicePPO
from experiments.bench import with_passive_omp
from experiments.bench.bench_agents import EncoderRate
from experiments.bench.bench_device_ppo import _agent


def _ms(f: Callable[[], None], repeats: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeats):
        f()
    return (time.perf_counter() - t0) / repeats * 1e3


def _parts(n: int, encoder: Path, repeats: int) -> dict[str, float]:
    """ms per call of encode, env + policy and both together, on ``n`` envs; and the update's
    ms per vector step."""
    args = argparse.Namespace(device="cpu")
    model = _agent("frozen", n, max(8, 2048 // n), encoder, args)
    loop = DevicePPO(model)
    loop.learn(model.n_steps * n)  # warm-up, and the loop's state
    ring, core, policy, obs = loop.ring, loop._step_core, model.policy, loop._obs
    assert ring is not None and obs is not None
    frames = torch.randint(0, 256, (n, 64, 64, 3), dtype=torch.uint8)

    def encode() -> None:
        ring.encode_newest(frames)

    def env_policy() -> None:
        with torch.no_grad():
            actions, _, _ = policy(obs)
        core.step(actions)

    out = {"encode": _ms(encode, repeats), "env_policy": _ms(env_policy, repeats)}
    worker = threading.Thread(target=lambda: _ms(encode, repeats))
    t0 = time.perf_counter()
    worker.start()
    _ms(env_policy, repeats)
    worker.join()
    out["together"] = (time.perf_counter() - t0) / repeats * 1e3
    rollout = _rollout(loop, model)
    updates = []
    for _ in range(3):  # the fastest of three updates on one rollout
        t0 = time.perf_counter()
        loop._train(rollout)
        updates.append(time.perf_counter() - t0)
    out["update_per_step"] = min(updates) * 1e3 / model.n_steps
    return {k: round(v, 3) for k, v in out.items()}


def _rollout(loop: DevicePPO, model: Any) -> Any:
    """One collected rollout of the loop (for timing its update alone)."""
    from stable_baselines3.common.callbacks import CallbackList

    from agents.ppo_update import Rollout

    assert loop._obs is not None
    rollout = Rollout.empty(
        model.n_steps, loop.core.num_envs, tuple(loop._obs.shape[1:]), loop._obs.dtype, "cpu"
    )
    callback = CallbackList([])
    callback.init_callback(model)
    loop._t_start = time.time()
    loop._collect(callback, rollout)
    return rollout


def main(argv: list[str] | None = None) -> int:
    """Runs the measurement and prints one JSON object."""
    with_passive_omp("experiments.bench.bench_device_overlap", argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--repeats", type=int, default=300)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Path(tmp) / "st_dim.safetensors"
        torch.manual_seed(0)
        representations.make_representation("st_dim", latent_dim=32).save(encoder)
        whole = _parts(args.envs, encoder, args.repeats)
        half = _parts(args.envs // 2, encoder, args.repeats)
        rate = EncoderRate(encoder, args.envs, seconds=1.0)
        rate()
    enc_fps = rate.rates[0]
    update = whole["update_per_step"]
    sequential = whole["encode"] + whole["env_policy"] + update
    pipelined = 2 * half["together"] + update
    n = args.envs
    out = {
        "benchmark": "frozen ST-DIM device loop: encoder / env+policy overlap bound, 1 thread",
        "envs": n,
        "ms": {f"{n}_envs": whole, f"{n // 2}_envs": half},
        "encoder_frames_per_s": round(enc_fps, 1),
        "step_ms": {
            "sequential": round(sequential, 3),
            "two_halves_pipelined": round(pipelined, 3),
        },
        "ratio_to_encoder": {
            "sequential": round(n / sequential * 1e3 / enc_fps, 3),
            "two_halves_pipelined_bound": round(n / pipelined * 1e3 / enc_fps, 3),
            "goal": 0.75,
        },
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__},
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
