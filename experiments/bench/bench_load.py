"""Load time of reprl's safe agent zips beside SB3's own ``load``, on the same zips, as JSON.

Every zip is written by :func:`agents.save_agent` (the safe form: SB3's zip plus the JSON
record of :mod:`agents.safe_zip`), so both loaders read the same bytes: SB3's
``PPO.load`` / ``A3C.load`` unpickles the ``data`` entries, reprl's :func:`agents.load_agent`
rebuilds them from JSON (classes through the allow-list) and reads the weights weights-only.
Agents: a pixel PPO (SB3's NatureCNN), a frozen default-size beta-VAE PPO (the fast path's
pixel export, encoder weights in the zip) and an A3C with the shared LSTM core. Each load is
timed ``--repeats`` times after one warm-up; the JSON gives the median and the fastest, in
milliseconds, and their ratio (safe / SB3).

Usage: ``python -m experiments.bench.bench_load [--repeats 20] [--kinds ppo_pixels ...]``
"""

from __future__ import annotations

# isort: off
import envs.oldgym

# isort: on
import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import envs

ENV_ID = "reprl/BreakoutStandard-v0"
KINDS = ("ppo_pixels", "ppo_frozen_beta_vae", "a3c_lstm")


def _make(kind: str, d: Path) -> tuple[Path, type]:
    """Save one agent of ``kind`` into ``d``; its zip and its algorithm class."""
    from stable_baselines3 import PPO

    import representations as R
    from agents import A3C, make_agent, save_agent
    from agents.a3c import WorkerEnvs

    env = envs.make_vec(ENV_ID, 2, seed=0)
    if kind == "ppo_pixels":
        model, cls = make_agent("ppo", env, mode="pixels", n_steps=8, batch_size=16, seed=0), PPO
    elif kind == "ppo_frozen_beta_vae":
        torch.manual_seed(0)
        R.make_representation("beta_vae").save(d / "vae.safetensors")
        model = make_agent("ppo", env, encoder=d / "vae.safetensors", n_steps=8, batch_size=16)
        cls = PPO
    elif kind == "a3c_lstm":
        model = make_agent(
            "a3c",
            env,
            mode="pixels",
            env_fn=WorkerEnvs(ENV_ID, 2, {}),
            n_workers=1,
            lstm_hidden_size=256,
            seed=0,
        )
        cls = A3C
    else:
        raise SystemExit(f"bench_load: unknown kind {kind!r}; expected one of {KINDS}")
    return save_agent(model, d / f"{kind}.zip"), cls


def _times(load: Callable[[], Any], repeats: int) -> dict[str, float]:
    load()  # warm-up: imports, allocator
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        load()
        out.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": round(statistics.median(out), 2), "min_ms": round(min(out), 2)}


def bench(kinds: list[str], repeats: int) -> dict[str, Any]:
    """Time both loaders on one zip of each kind; the JSON-able results."""
    from agents import load_agent

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            path, cls = _make(kind, Path(tmp))
            sb3 = _times(lambda p=path, c=cls: c.load(p, device="cpu"), repeats)
            safe = _times(lambda p=path: load_agent(p, device="cpu"), repeats)
            results[kind] = {
                "zip_bytes": path.stat().st_size,
                "sb3_load": sb3,
                "reprl_safe_load": safe,
                "safe_over_sb3_median": round(safe["median_ms"] / sb3["median_ms"], 3),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    """Print the JSON of :func:`bench` (and the machine it ran on)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20, help="timed loads per loader and zip")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="agents")
    args = p.parse_args(argv)
    import stable_baselines3

    torch.set_num_threads(1)
    out = {
        "bench": "agent zip load time: reprl's safe loader vs SB3's load (same zips)",
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "machine": platform.processor() or platform.machine(),
        "results": bench(args.kinds, args.repeats),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
