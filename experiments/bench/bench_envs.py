"""Env-steps/s of reprl's batched Breakout beside ALE's Breakout-v5, in one run, as JSON.

Both produce the same observations: uint8 RGB 64 x 64 frames. ALE runs its native
multithreaded ``AtariVectorEnv`` (C++ threads, frameskip 4, sticky actions 0.25) with as many
threads as torch uses here; reprl's Breakout runs through its SB3 ``VecEnv`` (numpy out, factors
in every info dict) and, for reference, its bare torch core.

``--stack`` adds the cost of frame stacking, side by side in the same run, at N = 16 and 256:
single-frame RGB, stacked in the env (``make_vec(frame_stack=4)``, grayscale and RGB: a torch
shift buffer on the env's device) and SB3's ``VecFrameStack`` over the single-frame env (numpy,
host). Each through the SB3 VecEnv (without factor dicts, the stricter case: the env does the
least other work) and, for the env's own stacking, its bare torch core.

``--devices cpu cuda`` adds reprl's Breakout on each device at ``--device-sizes`` (default 256,
1024, 4096): the bare torch core (observations stay on the device; CUDA is synchronised after
every step, as a policy reading them would) and the SB3 VecEnv without factor dicts (numpy out,
so every step copies the frames to the host).

``--compile`` adds the bare core with ``compile=True`` (the balls' sub-steps as one
``torch.compile`` graph) beside the eager one, in both sections.

Usage: ``python -m experiments.bench.bench_envs [--seconds 3] [--sizes 1 16 256 1024]
[--stack] [--devices cpu cuda] [--compile]``
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
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

import envs
from envs.breakout import BreakoutBatch
from envs.registry import make_breakout_batch


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


def bench_reprl_core(n: int, seconds: float, device: str = "cpu", compile: bool = False) -> float:
    """The bare torch core's env-steps/s; ``compile``: its sub-steps through torch.compile
    (compiled on the first warm-up step, untimed)."""
    core = BreakoutBatch(n, "standard", seed=0, device=device, compile=compile)
    core.reset()
    acts = torch.randint(0, 3, (64, n), generator=torch.Generator().manual_seed(0)).to(device)
    if torch.device(device).type != "cuda":
        return _rate(lambda i: core.step(acts[i % 64]), n, seconds)

    def step(i: int) -> None:
        core.step(acts[i % 64])
        torch.cuda.synchronize(device)

    return _rate(step, n, seconds)


def bench_devices(
    sizes: list[int], devices: list[str], seconds: float, compile: bool = False
) -> list[dict[str, Any]]:
    """Env-steps/s of the bare core and of the SB3 VecEnv (no factor dicts) per device and N."""
    rows = []
    for device in devices:
        for n in sizes:
            venv = envs.make_vec(
                "reprl/BreakoutStandard-v0", n, seed=0, device=device, info_factors=False
            )
            venv.reset()
            acts = np.random.default_rng(0).integers(0, 3, (64, n))
            vec = _rate(lambda i, venv=venv, a=acts: venv.step(a[i % 64]), n, seconds)
            venv.close()
            core = bench_reprl_core(n, seconds, device)
            row = {"device": device, "num_envs": n, "core": round(core), "vecenv": round(vec)}
            if compile:
                row["core_compiled"] = round(bench_reprl_core(n, seconds, device, compile=True))
            rows.append(row)
    return rows


def bench_ale(n: int, seconds: float, threads: int) -> float:
    from ale_py.vector_env import AtariVectorEnv

    venv = AtariVectorEnv(
        "breakout",
        n,
        num_threads=threads,
        img_height=64,
        img_width=64,
        grayscale=False,
        stack_num=1,
        frameskip=4,
        repeat_action_probability=0.25,
    )
    venv.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, 4, (64, n))
    rate = _rate(lambda i: venv.step(acts[i % 64]), n, seconds)
    venv.close()
    return rate


def bench_stacking(n: int, seconds: float, rounds: int = 4) -> dict[str, float | int]:
    """Env-steps/s of single-frame vs stacked observations (k = 4), one row per N.

    Every variant is built first, then all are timed in ``rounds`` interleaved rounds of
    ``seconds / rounds`` each, keeping each variant's best round: on a shared machine the
    background load then hits them alike.
    """
    env_id = "reprl/BreakoutStandard-v0"

    def vec(factors: bool = False, **kw: object) -> VecEnv:
        return envs.make_vec(env_id, n, seed=0, info_factors=factors, **kw)

    def core(**kw: object) -> object:
        return make_breakout_batch(env_id, n, seed=0, **kw)

    gray4 = {"frame_stack": 4, "grayscale": True}
    variants = {
        "vecenv_rgb_x1": vec(),
        "vecenv_gray_x4_in_env": vec(**gray4),
        "vecenv_rgb_x4_in_env": vec(frame_stack=4),
        "vecenv_gray_x4_sb3_vecframestack": VecFrameStack(vec(grayscale=True), 4),
        "vecenv_rgb_x4_sb3_vecframestack": VecFrameStack(vec(), 4),
        "vecenv_factors_rgb_x1": vec(True),
        "vecenv_factors_gray_x4_in_env": vec(True, **gray4),
        "vecenv_factors_rgb_x4_in_env": vec(True, frame_stack=4),
        "core_rgb_x1": core(),
        "core_gray_x4": core(**gray4),
        "core_rgb_x4": core(frame_stack=4),
    }
    acts = np.random.default_rng(0).integers(0, 3, (64, n))
    acts_t = torch.as_tensor(acts)
    steps: dict[str, Callable[[int], None]] = {}
    for name, env in variants.items():
        env.reset()  # type: ignore[attr-defined]
        a = acts_t if name.startswith("core") else acts
        steps[name] = lambda i, env=env, a=a: env.step(a[i % 64])  # type: ignore[attr-defined]
    best = dict.fromkeys(variants, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = max(best[name], _rate(step, n, seconds / rounds))
    out: dict[str, float | int] = {"num_envs": n, **{k: round(v) for k, v in best.items()}}
    for prefix in ("vecenv", "vecenv_factors", "core"):
        base = best[f"{prefix}_rgb_x1"]
        for name in ("gray_x4", "rgb_x4"):
            key = f"{prefix}_{name}" if prefix == "core" else f"{prefix}_{name}_in_env"
            out[f"{prefix}_{name}_cost_pct"] = round(100 * (1 - best[key] / base), 1)
    for name in ("gray_x4", "rgb_x4"):
        base = best[f"vecenv_{name}_sb3_vecframestack"]
        out[f"vecenv_{name}_in_env_vs_vecframestack"] = round(
            best[f"vecenv_{name}_in_env"] / base, 2
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument("--sizes", type=int, nargs="*", default=[1, 16, 256, 1024])
    p.add_argument("--stack", action="store_true", help="add the frame-stacking section")
    p.add_argument("--stack-sizes", type=int, nargs="+", default=[16, 256])
    p.add_argument("--devices", nargs="+", default=[], help="add the per-device section")
    p.add_argument("--device-sizes", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument(
        "--threads", type=int, default=0, help="torch (and ALE) threads; 0: torch's default"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="add the torch core with compile=True (its sub-steps through torch.compile)",
    )
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    rows = []
    for n in args.sizes:
        vec = bench_reprl_vecenv(n, args.seconds)
        core = bench_reprl_core(n, args.seconds)
        ale = bench_ale(n, args.seconds, threads)
        row = {
            "num_envs": n,
            "reprl_breakout_vecenv": round(vec),
            "reprl_breakout_core": round(core),
            "ale_breakout_v5_vector": round(ale),
            "speedup_vs_ale": round(vec / ale, 1),
        }
        if args.compile:
            row["reprl_breakout_core_compiled"] = round(
                bench_reprl_core(n, args.seconds, compile=True)
            )
        rows.append(row)
    result = {
        "benchmark": "env-steps/s, uint8 RGB 64x64 observations, random actions",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "ale": "ale_py AtariVectorEnv, frameskip 4, sticky 0.25, num_threads=torch_threads",
        "reprl": "reprl/BreakoutStandard via SB3 VecEnv (factors in infos); core = bare torch"
        + ("; core_compiled = the core with compile=True" if args.compile else ""),
        "rows": rows,
    }
    if args.stack:
        result["stack"] = {
            "what": "env-steps/s of reprl/BreakoutStandard-v0, 64x64, k = 4 frames, random "
            "actions, best of 4 interleaved rounds; vecenv = SB3 VecEnv without factor dicts, "
            "vecenv_factors = with them (make_vec's default), core = bare torch batch; "
            "*_in_env = make_vec(frame_stack=4[, grayscale=True]), *_sb3_vecframestack = SB3 "
            "VecFrameStack over the single-frame env (grayscale by the env); cost_pct = "
            "throughput lost vs RGB x1 of the same kind",
            "rows": [bench_stacking(n, args.seconds) for n in args.stack_sizes],
        }
    if args.devices:
        result["devices"] = {
            "what": "env-steps/s of reprl/BreakoutStandard-v0, 64x64 RGB, random actions; core = "
            "bare torch batch, frames stay on the device (CUDA synchronised every step); vecenv "
            "= SB3 VecEnv without factor dicts, frames copied to host numpy every step",
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "rows": bench_devices(
                args.device_sizes, args.devices, args.seconds, compile=args.compile
            ),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
