"""Env-steps/s of an ALE game with and without AtariARI's RAM labels, in one run, as JSON.

Each case steps ``N`` envs of one game (default ``ALE/Pong-v5``, frameskip 4, sticky actions
0.25) with random actions for ``--seconds``, the best of ``--repeats`` interleaved rounds:

- ``ale_vector``: ale-py's native thread pool, no labels (it gives no RAM);
- ``gymnasium``: the gymnasium backend (envs stepped in a loop), no labels;
- ``gymnasium+labels``: the same with ``ram_labels=True``, and ``get_factors()`` read before
  every step (what ``collect`` does).

At the default 64 x 64 RGB frames and at AtariARI's native 210 x 160 grayscale frames
(``obs_size=(210, 160)``, ``grayscale=True``). Steps/s counts env steps (``N`` per call).
``get_factors_us`` is the cost of one ``get_factors()`` call for the ``N`` envs alone.

Usage: ``python -m experiments.bench.bench_atari_labels [--env ALE/Pong-v5] [--num-envs 8]
[--seconds 3] [--repeats 3]``
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import json
import platform
import time
from typing import Any

import numpy as np
import torch

import envs


def rate(env_id: str, num_envs: int, seconds: float, labels: bool, **kwargs: Any) -> float:
    """Env steps per second of ``make_vec(env_id, num_envs, **kwargs)`` under random actions;
    with ``labels``, ``get_factors()`` is read before every step."""
    venv = envs.make_vec(env_id, num_envs, seed=0, **kwargs)
    venv.reset()
    rng = np.random.default_rng(0)
    n = int(venv.action_space.n)
    for _ in range(10):  # warm-up
        venv.step(rng.integers(0, n, num_envs))
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if labels:
            venv.get_factors()
        venv.step(rng.integers(0, n, num_envs))
        steps += num_envs
    elapsed = time.perf_counter() - t0
    venv.close()
    return steps / elapsed


def factors_cost(env_id: str, num_envs: int, calls: int = 2000) -> float:
    """Microseconds per ``get_factors()`` call of ``num_envs`` labelled envs."""
    venv = envs.make_vec(env_id, num_envs, seed=0, ram_labels=True)
    venv.reset()
    t0 = time.perf_counter()
    for _ in range(calls):
        venv.get_factors()
    cost = (time.perf_counter() - t0) / calls * 1e6
    venv.close()
    return cost


def main(argv: list[str] | None = None) -> int:
    """Prints one JSON object: the settings and steps/s per case and frame format."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="ALE/Pong-v5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=3, help="rounds over the cases; best kept")
    args = p.parse_args(argv)
    frames = {
        "rgb64": {},
        "gray210x160": {"obs_size": (210, 160), "grayscale": True},
    }
    cases = {
        "ale_vector": ({"backend": "ale_vector", "num_threads": torch.get_num_threads()}, False),
        "gymnasium": ({"backend": "gymnasium"}, False),
        "gymnasium+labels": ({"ram_labels": True}, True),
    }
    out: dict[str, Any] = {
        "env": args.env,
        "num_envs": args.num_envs,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "steps_per_s": {},
    }
    best: dict[str, dict[str, float]] = {f: dict.fromkeys(cases, 0.0) for f in frames}
    for _ in range(args.repeats):  # interleaved rounds: a busy machine hits every case alike
        for fname, fkw in frames.items():
            for cname, (ckw, labels) in cases.items():
                steps = rate(args.env, args.num_envs, args.seconds, labels, **fkw, **ckw)
                best[fname][cname] = max(best[fname][cname], round(steps, 1))
    out["steps_per_s"] = best
    out["get_factors_us"] = round(factors_cost(args.env, args.num_envs), 1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
