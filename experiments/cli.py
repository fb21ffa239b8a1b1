"""The ``reprl`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.config import ConfigError, parse_overrides


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


def _collect(args: argparse.Namespace) -> int:
    from envs.exploration import collect

    env_kwargs = parse_overrides(args.env_kwarg)
    if args.policy == "sb3":
        from agents.exploration import sb3_policy

        if not args.model:
            raise ConfigError("collect --policy sb3: expected --model AGENT.zip, got none")
        policy, policy_kwargs = sb3_policy(args.model, epsilon=args.epsilon, device=args.device), {}
    else:
        policy = args.policy
        policy_kwargs = {"repeat": args.repeat} if args.policy == "random_repeat" else {}
    ds = collect(
        args.env, args.frames, args.out, num_envs=args.num_envs, seed=args.seed,
        policy=policy, env_kwargs=env_kwargs, device=args.device, policy_kwargs=policy_kwargs,
    )  # fmt: skip
    print(json.dumps({"dataset": ds.path, "frames": len(ds), "domains": list(ds.info.domains),
                      "factors": list(ds.info.factor_names)}, indent=2))  # fmt: skip
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from experiments.config import load_config
    from representations.pretrain import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, args.config, args.overrides)
    path = pretrain(cfg)
    print(json.dumps({"encoder": str(path), "run": cfg.out}, indent=2))
    return 0


def _probe(args: argparse.Namespace) -> int:
    import representations as R
    from representations.analysis import probe, write_json
    from representations.metrics import format_table

    model = R.load(args.encoder, device=args.device)
    results = probe(model, args.dataset, max_frames=args.max_frames, metrics=args.metrics,
                    seed=args.seed)  # fmt: skip
    print(format_table(results))
    out = args.out or str(Path(args.encoder).with_suffix("").as_posix() + "_probe.json")
    write_json(out, results)
    print(f"\nwrote {out}")
    return 0


def _pictures(args: argparse.Namespace) -> int:
    import representations as R
    from representations.analysis import pictures

    model = R.load(args.encoder, device=args.device)
    out = args.out or str(Path(args.encoder).parent / "pictures")
    print(json.dumps(pictures(model, args.dataset, out, seed=args.seed), indent=2))
    return 0


def _experiment(until: str):
    def go(args: argparse.Namespace) -> int:
        from experiments.pipeline import load_experiment, run

        cfg = load_experiment(args.config, args.overrides)
        summary = run(cfg, until=until)
        print(json.dumps(summary, indent=2))
        report = summary.get("report")
        if report:
            print("\n" + Path(report).read_text())
        return 0

    return go


def _evaluate_zip(args: argparse.Namespace) -> int:
    import agents
    from experiments.pipeline import evaluate_agent

    model = agents.load_agent(args.agent, device=args.device)
    out = {}
    for env_id in args.env:
        res = evaluate_agent(model, env_id, episodes=args.episodes, num_envs=args.num_envs,
                             deterministic=not args.stochastic, seed=args.seed,
                             device=args.device)  # fmt: skip
        r = [x[0] for x in res]
        out[env_id] = {"episodes": len(r), "mean_return": sum(r) / len(r), "returns": r}
    print(json.dumps(out, indent=2))
    return 0


def _report(args: argparse.Namespace) -> int:
    from experiments.report import main as report_main

    argv = [*args.roots, "--out", args.out]
    if args.source_env:
        argv += ["--source-env", args.source_env]
    return report_main(argv)


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

    c = sub.add_parser("collect", help="run an exploration policy, write a dataset (HDF5)")
    c.add_argument("--env", nargs="+", required=True, help="env id(s); frames split evenly")
    c.add_argument("--frames", type=int, required=True, help="total frames to write")
    c.add_argument("--out", required=True, help="dataset path (.h5)")
    c.add_argument("--num-envs", type=int, default=64, help="parallel envs per id")
    c.add_argument("--policy", default="random_repeat", choices=["random", "random_repeat", "sb3"])
    c.add_argument("--repeat", type=int, default=4, help="random_repeat: max action hold")
    c.add_argument("--model", help="sb3: path of the SB3 agent (.zip)")
    c.add_argument("--epsilon", type=float, default=0.1, help="sb3: random-action probability")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="cpu")
    c.add_argument("--env-kwarg", nargs="*", default=[], metavar="KEY=VALUE",
                   help="env kwargs, e.g. obs_size=[64,64] max_episode_steps=2000")  # fmt: skip
    c.set_defaults(func=_collect)

    t = sub.add_parser("pretrain", help="pretrain a representation on a dataset")
    t.add_argument("--config", help="YAML file of PretrainConfig fields")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted overrides, e.g. dataset=d.h5 model.beta=4 steps=3000")  # fmt: skip
    t.set_defaults(func=_pretrain)

    r = sub.add_parser("probe", help="score an encoder against a dataset's factors")
    r.add_argument("encoder", help="encoder checkpoint (.safetensors)")
    r.add_argument("dataset", help="exploration dataset (.h5) with factors")
    r.add_argument("--out", help="JSON output (default: next to the encoder)")
    r.add_argument("--max-frames", type=int, default=20000)
    r.add_argument("--metrics", nargs="+", default=["probe", "mig", "dci", "factor_vae"])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu")
    r.set_defaults(func=_probe)

    g = sub.add_parser("pictures", help="reconstructions and latent traversals as PNG")
    g.add_argument("encoder", help="encoder checkpoint (.safetensors) with a decoder")
    g.add_argument("dataset", help="dataset (.h5) to take frames from")
    g.add_argument("--out", help="output directory (default: <encoder dir>/pictures)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu")
    g.set_defaults(func=_pictures)

    for name, until, text in (
        ("run", "report", "the whole transfer experiment: collect, pretrain, train, evaluate, "
         "report (no CONFIG: the embedded DARLA-on-Breakout default, ~15 min on 2 CPUs)"),
        ("train", "train", "an experiment's stages up to training the agents"),
    ):  # fmt: skip
        e = sub.add_parser(name, help=text)
        e.add_argument("config", nargs="?", help="experiment YAML (default: embedded default)")
        e.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="dotted overrides, e.g. seeds=[0,1] train.timesteps=50000")  # fmt: skip
        e.set_defaults(func=_experiment(until))

    v = sub.add_parser("evaluate", help="zero-shot evaluation: of an experiment (CONFIG) or "
                       "of one agent zip (--agent) on env ids (--env)")  # fmt: skip
    v.add_argument("config", nargs="?", help="experiment YAML: runs its stages up to evaluate")
    v.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    v.add_argument("--agent", help="an agent zip saved by reprl (or any SB3 zip on our obs)")
    v.add_argument("--env", nargs="+", default=[], help="target env ids for --agent")
    v.add_argument("--episodes", type=int, default=32)
    v.add_argument("--num-envs", type=int, default=16)
    v.add_argument("--stochastic", action="store_true", help="sample actions (default: greedy)")
    v.add_argument("--seed", type=int, default=10_000)
    v.add_argument("--device", default="cpu")
    v.set_defaults(func=lambda a: _evaluate_zip(a) if a.agent else _experiment("evaluate")(a))

    rp = sub.add_parser("report", help="merge evaluation runs into tables (md, csv) and plots")
    rp.add_argument("roots", nargs="+", help="experiment directories (runs/<name>)")
    rp.add_argument("--out", required=True, help="output directory")
    rp.add_argument("--source-env", help="source env id: adds transfer as % of source")
    rp.set_defaults(func=_report)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reprl`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError) as e:
        print(f"reprl {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
