"""The ``reprl`` command line."""

from __future__ import annotations

import argparse
import json
import sys


def _demo(args: argparse.Namespace) -> int:
    from experiments.demo import run_demo

    summary = run_demo(
        args.out, num_envs=args.num_envs, steps=args.steps, seed=args.seed, device=args.device
    )
    print(json.dumps(summary, indent=2))
    return 0


def _bench_envs(args: argparse.Namespace) -> int:
    from experiments.bench.bench_envs import main as bench_main

    return bench_main(["--seconds", str(args.seconds), "--sizes", *map(str, args.sizes)])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``reprl`` and its sub-commands."""
    p = argparse.ArgumentParser(
        prog="reprl",
        description="Pretrained representations, SB3 agents, zero-shot transfer.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="play every Breakout variant at random; PNG + JSON summary")
    d.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    d.add_argument("--num-envs", type=int, default=256, help="games per variant (default 256)")
    d.add_argument("--steps", type=int, default=2000, help="steps per game (default 2000)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="cpu", help="torch device: cpu, cuda, ...")
    d.set_defaults(func=_demo)

    b = sub.add_parser("bench-envs", help="env-steps/s of our Breakout vs ALE Breakout-v5 (JSON)")
    b.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    b.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 256, 1024])
    b.set_defaults(func=_bench_envs)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reprl`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
