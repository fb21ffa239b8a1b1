"""The ``reprl`` command line.

Every sub-command is a thin shell over a library function; ``reprl <command> --help`` documents
each option with its default. Long commands show a progress bar (on stderr) and end with one
summary line per stage and its time (on stdout).

Exit codes: 0 success; 2 for an expected failure (bad input: an invalid config or option, an
unknown env id, a missing or corrupt file), printed as ONE line on stderr,
``reprl <command>: <message>``; 130 for Ctrl-C (``reprl <command>: interrupted``); 1 with the
Python traceback for anything else, which is a bug. ``reprl --debug <command> ...`` (or
``--debug`` after the command) shows the traceback of every failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
import textwrap
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_WIDTH = 88  # help text width


# --- argparse plumbing -----------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and whose epilog may be built lazily.

    ``epilog`` may be a callable returning the text: it runs only when help is shown, so
    building the parser stays cheap (the ``run`` epilog imports the pipeline's dataclasses).
    """

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see: {self.prog} --help)\n")

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and appends ``(default: X)`` to options that have one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or action.required
            or default in (None, False, argparse.SUPPRESS)
            or default == []
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        return text + " (default: %(default)s)"


def _positive_int(text: str) -> int:
    """argparse ``type=``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    """argparse ``type=``: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stage_line(stage: str, seconds: float, what: str = "") -> None:
    """The one summary line of a finished stage: ``collect 1.2 s: what``."""
    print(f"{stage} {seconds:.1f} s" + (f": {what}" if what else ""), flush=True)


# --- the error policy --------------------------------------------------------------------------
def _expected_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that mean bad input (one line, exit 2), not a bug."""
    import yaml

    from envs.errors import ReprlError
    from experiments.config import ConfigError

    return (
        ReprlError,
        ConfigError,
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
        yaml.YAMLError,
    )


def _yaml_problem(e: BaseException) -> str:
    """``not valid YAML: <problem> at line L, column C`` from a (marked) YAML error."""
    problem = getattr(e, "problem", None)
    mark = getattr(e, "problem_mark", None)
    if problem and mark is not None:
        return f"not valid YAML: {problem} at line {mark.line + 1}, column {mark.column + 1}"
    return "not valid YAML: " + " ".join(str(e).split())


def error_message(e: BaseException) -> str:
    """The one-line message of an expected failure (``str(e)`` with its whitespace folded)."""
    import yaml

    from envs.errors import ReprlError

    if isinstance(e, OSError) and not isinstance(e, ReprlError) and e.filename is not None:
        where = str(e.filename) + (f" -> {e.filename2}" if e.filename2 else "")
        return f"{where}: {e.strerror or type(e).__name__}"
    if isinstance(e, yaml.YAMLError):
        return _yaml_problem(e)
    return " ".join(str(e).split()) or type(e).__name__


def _close_progress_bars() -> None:
    """Ends live tqdm bars so the interrupt line starts on a line of its own."""
    tq = sys.modules.get("tqdm")
    if tq is None:
        return
    for bar in list(getattr(tq.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:
            pass


# --- sub-commands ------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from experiments.demo import run_demo

    t0 = time.perf_counter()
    summary = run_demo(
        args.out, num_envs=args.num_envs, steps=args.steps, seed=args.seed, device=args.device
    )
    print(json.dumps(summary, indent=2))
    _stage_line("demo", time.perf_counter() - t0, f"wrote {summary['picture']}, {summary['json']}")
    return 0


def _bench_envs(args: argparse.Namespace) -> int:
    from experiments.bench.bench_envs import main as bench_main

    argv = ["--seconds", str(args.seconds), "--sizes", *map(str, args.sizes)]
    if args.stack:
        argv.append("--stack")
    return bench_main(argv)


def _collect(args: argparse.Namespace) -> int:
    from envs.errors import ReprlError
    from envs.exploration import collect
    from experiments.config import parse_overrides

    env_kwargs = parse_overrides(args.env_kwarg)
    if args.policy == "sb3":
        from agents.exploration import sb3_policy

        if not args.model:
            raise ReprlError("collect --policy sb3: expected --model AGENT.zip, got none")
        policy, policy_kwargs = sb3_policy(args.model, epsilon=args.epsilon, device=args.device), {}
    else:
        policy = args.policy
        policy_kwargs = {"repeat": args.repeat} if args.policy == "random_repeat" else {}
    t0 = time.perf_counter()
    ds = collect(
        args.env,
        args.frames,
        args.out,
        num_envs=args.num_envs,
        seed=args.seed,
        policy=policy,
        env_kwargs=env_kwargs,
        device=args.device,
        policy_kwargs=policy_kwargs,
    )
    what = f"{len(ds)} frames of {', '.join(args.env)} -> {args.out}"
    _stage_line("collect", time.perf_counter() - t0, what)
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from experiments.config import load_config
    from representations.pretrain import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, args.config, args.overrides)
    t0 = time.perf_counter()
    path = pretrain(cfg)
    _stage_line("pretrain", time.perf_counter() - t0, f"encoder -> {path}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    import representations as R
    from representations.analysis import probe, write_json
    from representations.metrics import format_table

    t0 = time.perf_counter()
    model = R.load(args.encoder, device=args.device)
    results = probe(
        model, args.dataset, max_frames=args.max_frames, metrics=args.metrics, seed=args.seed
    )
    print(format_table(results))
    out = args.out or str(Path(args.encoder).with_suffix("").as_posix() + "_probe.json")
    write_json(out, results)
    _stage_line("probe", time.perf_counter() - t0, f"wrote {out}")
    return 0


def _pictures(args: argparse.Namespace) -> int:
    import representations as R
    from representations.analysis import pictures

    t0 = time.perf_counter()
    model = R.load(args.encoder, device=args.device)
    out = args.out or str(Path(args.encoder).parent / "pictures")
    written = pictures(model, args.dataset, out, seed=args.seed)
    _stage_line("pictures", time.perf_counter() - t0, "wrote " + ", ".join(written.values()))
    return 0


def _split_config(config: str | None, overrides: Sequence[str]) -> tuple[str | None, list[str]]:
    """A first positional with ``=`` that is not an existing file is an override, not a path."""
    if config is not None and "=" in config and not Path(config).is_file():
        return None, [config, *overrides]
    return config, list(overrides)


def _load_experiment(args: argparse.Namespace):
    import yaml

    from experiments.config import ConfigError
    from experiments.pipeline import load_experiment

    config, overrides = _split_config(args.config, args.overrides)
    try:
        return load_experiment(config, overrides)
    except yaml.YAMLError as e:
        raise ConfigError(f"{config or 'override'}: {_yaml_problem(e)}") from None


def _experiment(until: str) -> Callable[[argparse.Namespace], int]:
    def go(args: argparse.Namespace) -> int:
        import yaml

        from experiments.config import to_dict
        from experiments.pipeline import run

        cfg = _load_experiment(args)
        if args.dry_run:
            print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
            print(f"# dry run: valid config; `reprl {args.command}` would write {cfg.root}/"
                  f"{cfg.name}/ (stages up to {until})")  # fmt: skip
            return 0
        summary = run(cfg, until=until)
        for stage, seconds in summary.get("seconds", {}).items():
            if stage != "total":
                _stage_line(stage, seconds)
        if "total" in summary.get("seconds", {}):
            _stage_line("total", summary["seconds"]["total"], summary.get("experiment", ""))
        if summary.get("report"):
            print(f"report: {summary['report']}")
        return 0

    return go


def _default_max_episode_steps() -> int | None:
    """The pipeline's evaluation time limit (``EvalStage().env_kwargs["max_episode_steps"]``)."""
    from experiments.pipeline import EvalStage

    return EvalStage().env_kwargs.get("max_episode_steps")


def _env_slug(env_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", env_id)


def _evaluate_zip(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    import agents
    from envs.errors import ReprlError
    from experiments.pipeline import evaluate_agent

    if not args.env:
        raise ReprlError("evaluate --agent: expected at least one --env ID, got none")
    if args.config is not None or args.overrides:
        extra = " ".join([*([args.config] if args.config else []), *args.overrides])
        raise ReprlError(
            f"evaluate --agent: expected only options (--env, --episodes, ...), got {extra!r} "
            "(a CONFIG and KEY=VALUE overrides configure a whole experiment, without --agent)"
        )
    steps = args.max_episode_steps
    env_kwargs = {} if steps is None or steps == 0 else {"max_episode_steps": steps}
    t0 = time.perf_counter()
    model = agents.load_agent(args.agent, device=args.device)
    results: dict[str, Any] = {}
    for env_id in tqdm(args.env, desc="evaluate", unit="env", disable=len(args.env) < 2):
        t1 = time.perf_counter()
        res = evaluate_agent(
            model,
            env_id,
            episodes=args.episodes,
            num_envs=args.num_envs,
            deterministic=not args.stochastic,
            seed=args.seed,
            device=args.device,
            env_kwargs=env_kwargs,
        )
        returns = [r for r, _ in res]
        lengths = [n for _, n in res]
        mean = sum(returns) / len(returns)
        results[env_id] = {"episodes": len(res), "mean_return": mean, "returns": returns,
                           "lengths": lengths}  # fmt: skip
        what = f"mean return {mean:.2f} over {len(res)} episodes"
        if args.video:
            from experiments.video import record_gif

            gif = Path(args.video) / f"{Path(args.agent).stem}__{_env_slug(env_id)}.gif"
            record_gif(model, env_id, gif, seed=args.seed, max_frames=args.video_frames,
                       env_kwargs=env_kwargs, deterministic=not args.stochastic,
                       device=args.device)  # fmt: skip
            results[env_id]["video"] = str(gif)
            what += f", video {gif}"
        _stage_line(f"evaluate {env_id}", time.perf_counter() - t1, what)
    if args.out:
        from envs.storage.files import atomic_write_text

        atomic_write_text(args.out, json.dumps(results, indent=2))
    _stage_line("evaluate", time.perf_counter() - t0, f"wrote {args.out}" if args.out else "")
    return 0


def _report(args: argparse.Namespace) -> int:
    from experiments.report import main as report_main

    argv = [*args.roots, "--out", args.out, "--reps", str(args.reps), "--seed", str(args.seed)]
    if args.baseline:
        argv += ["--baseline", args.baseline]
    if args.source_env:
        argv += ["--source-env", args.source_env]
    t0 = time.perf_counter()
    code = report_main(argv)
    if code == 0:
        _stage_line("report", time.perf_counter() - t0, f"wrote {Path(args.out) / 'report.md'}")
    return code


# --- `reprl run --help`: the config's fields, from the dataclass docstrings -------------------
def _attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> text of the Google-style ``Attributes:`` section of ``cls``'s docstring."""
    out: dict[str, str] = {}
    key, inside = None, False
    for line in (inspect.getdoc(cls) or "").splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break  # the next section
        m = re.match(r"^ {4}(\w+)(?: \([^)]*\))?:\s*(.*)$", line)
        if m:
            key = m[1]
            out[key] = m[2]
        elif key and line.strip():
            out[key] += " " + line.strip()
    return out


def _fmt_default(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        return type(value).__name__
    text = json.dumps(value) if isinstance(value, (list, dict)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fill(text: str) -> str:
    """``text`` wrapped to the help's width (descriptions and epilogs keep their layout)."""
    return textwrap.fill(text, _WIDTH)


def _wrap(text: str, indent: int) -> list[str]:
    """Lines of ``text`` indented by ``indent``; reST ``literals`` shown as `literals`."""
    text = text.replace("``", "`")
    return textwrap.wrap(text, _WIDTH - indent, initial_indent=" " * indent,
                         subsequent_indent=" " * indent) or [" " * indent]  # fmt: skip


def _field_lines(cls: type, obj: Any, prefix: str) -> list[str]:
    """Help lines of every field of dataclass ``cls`` (default values from ``obj``)."""
    docs = _attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    lines: list[str] = []
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        tp = hints[f.name]
        item = (typing.get_args(tp) or (None,))[0] if typing.get_origin(tp) is list else None
        if dataclasses.is_dataclass(tp):
            lines.append(f"  {prefix}{f.name}.*: {docs.get(f.name, '')}")
            lines += _field_lines(tp, value, f"{prefix}{f.name}.")
            continue
        if item is not None and dataclasses.is_dataclass(item):
            names = [getattr(v, "name", "?") for v in value]
            lines.append(f"  {prefix}{f.name} (default: {', '.join(names) or 'none'})")
            lines += _wrap(
                f"{docs.get(f.name, '')} A list of mappings: a YAML file or an override "
                "replaces the whole list. Each item has:",
                6,
            )
            lines += [
                ln.replace("  ", "    ", 1)
                for ln in _field_lines(item, item(), f"{prefix}{f.name}[].")
            ]
            continue
        lines.append(f"  {prefix}{f.name} (default: {_fmt_default(value)})")
        lines += _wrap(docs.get(f.name, ""), 6)
    return lines


def experiment_help() -> str:
    """The epilog of ``reprl run/train/evaluate --help``: examples, then every config field."""
    from experiments.pipeline import ExperimentConfig, default_config

    examples = """\
examples:
  reprl run                          the embedded default (DARLA on Breakout), into
                                     runs/darla_breakout/
  reprl run name=mytest              the same experiment, renamed: into runs/mytest/
  reprl run seeds=[0] train.timesteps=20000 evaluate.episodes=8
                                     a smaller, quicker run (one seed, 20k steps, 8 episodes)
  reprl run experiments/configs/darla_breakout_full.yaml seeds=[0,1,2]
                                     a YAML config, then overrides (applied last)
  reprl run name=mytest seeds=[0] --dry-run
                                     print the resolved config and exit, running nothing

KEY=VALUE overrides are dotted paths into the config; values are YAML (seeds=[0,1],
train.sb3.learning_rate=3e-4, agents=[{name: pixels, mode: pixels}]). A first argument that
contains '=' and is not an existing file is an override, not a CONFIG path.

config fields (KEY: the YAML key; defaults are the embedded default's):
"""
    cfg = default_config()
    return examples + "\n".join(_field_lines(ExperimentConfig, cfg, "")) + "\n"


# --- the parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``reprl`` and its sub-commands."""
    p = _Parser(
        prog="reprl",
        description=_fill(
            "Pretrained representations, SB3 agents, zero-shot transfer. Start with `reprl run` "
            "(the whole default experiment); `reprl COMMAND --help` documents each command."
        ),
        epilog=_fill(
            "Exit codes: 0 ok; 2 bad input (one line on stderr: reprl COMMAND: message); "
            "130 interrupted (Ctrl-C); 1 a bug (a traceback)."
        ),
        formatter_class=_Formatter,
    )
    p.add_argument("--debug", action="store_true",
                   help="show the Python traceback of every failure, bad input included")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str | None = None, **kw: Any) -> _Parser:
        sp = sub.add_parser(name, help=help, description=_fill(description or help),
                            formatter_class=_Formatter, **kw)  # fmt: skip
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the Python traceback of every failure")  # fmt: skip
        return sp

    def device(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")

    # demo
    d = command(
        "demo",
        "play every Breakout variant at random on batched games; PNG + JSON (seconds)",
        "Plays every Breakout variant with uniform random actions on NUM_ENVS batched games "
        "for STEPS steps each: a quick check that the install works and a look at the variants. "
        "Writes OUT/breakout_variants.png (frames of each variant, one column per variant, "
        "rows over time) and OUT/demo.json, and prints the JSON: env-steps/s and the random "
        "policy's mean episode return per variant.",
    )
    d.add_argument("--out", default="runs/demo", help="output directory")
    d.add_argument("--num-envs", type=_positive_int, default=256, help="games per variant")
    d.add_argument("--steps", type=_positive_int, default=2000, help="steps per game")
    d.add_argument("--seed", type=int, default=0, help="seed of game 0 (game i: seed + i)")
    device(d)
    d.set_defaults(func=_demo)

    # bench-envs
    b = command(
        "bench-envs",
        "env-steps/s of reprl's Breakout vs ALE Breakout-v5 (prints JSON)",
        "Measures env-steps/s with random actions of reprl's Breakout (its SB3 VecEnv and its "
        "bare torch core) against ALE Breakout-v5's native vector env, for each number of "
        "parallel envs: the README's Environments table (python -m experiments.bench.bench_envs)."
        " Prints one JSON object; writes nothing.",
    )
    b.add_argument("--seconds", type=_positive_float, default=3.0,
                   help="timed seconds per measurement")  # fmt: skip
    b.add_argument("--sizes", type=_positive_int, nargs="+", default=[1, 16, 256, 1024],
                   help="numbers of parallel envs to measure")  # fmt: skip
    b.add_argument("--stack", action="store_true",
                   help="add the cost of frame stacking (in the env vs SB3's VecFrameStack)")  # fmt: skip
    b.set_defaults(func=_bench_envs)

    # collect
    c = command(
        "collect",
        "run an exploration policy, write a dataset (HDF5)",
        "Runs an exploration policy on each env id (frames split evenly; each id is one domain "
        "of the dataset) and writes one HDF5 dataset atomically: frames, actions, rewards, "
        "episode ids, ground-truth factors, domain labels.",
    )
    c.add_argument("--env", nargs="+", required=True, metavar="ID",
                   help="env id(s), e.g. reprl/BreakoutStandard-v0 ALE/Breakout-v5")  # fmt: skip
    c.add_argument("--frames", type=_positive_int, required=True, help="total frames to write")
    c.add_argument("--out", required=True, help="dataset path (.h5)")
    c.add_argument("--num-envs", type=_positive_int, default=64, help="parallel envs per id")
    c.add_argument("--policy", default="random_repeat", choices=["random", "random_repeat", "sb3"],
                   help="random: uniform actions; random_repeat: uniform actions held for 1 to "
                   "REPEAT steps; sb3: a trained agent (--model) with epsilon-random actions")  # fmt: skip
    c.add_argument("--repeat", type=_positive_int, default=4,
                   help="random_repeat: longest hold of an action, in steps")  # fmt: skip
    c.add_argument("--model", help="sb3: path of the SB3 agent (.zip)")
    c.add_argument("--epsilon", type=float, default=0.1, help="sb3: random-action probability")
    c.add_argument("--seed", type=int, default=0, help="seed of the envs and the policy")
    device(c)
    c.add_argument("--env-kwarg", nargs="*", default=[], metavar="KEY=VALUE",
                   help="env kwargs (YAML values), e.g. obs_size=[64,64] max_episode_steps=2000")  # fmt: skip
    c.set_defaults(func=_collect)

    # pretrain
    t = command(
        "pretrain",
        "pretrain a representation on a dataset",
        "Pretrains a representation (representations.pretrain.PretrainConfig: method, model, "
        "dataset, out, steps, batch_size, lr, ...) and writes OUT/encoder.safetensors with its "
        "config and metrics. Fields come from the defaults, then --config, then KEY=VALUE.",
        epilog="example:\n  reprl pretrain --config experiments/configs/darla_beta_vae.yaml "
        "dataset=data/breakout.h5 steps=5000 model.beta=4",
    )
    t.add_argument("--config", help="YAML file of PretrainConfig fields")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted overrides, e.g. dataset=d.h5 model.beta=4 steps=3000")  # fmt: skip
    t.set_defaults(func=_pretrain)

    # probe
    r = command(
        "probe",
        "score an encoder against a dataset's ground-truth factors",
        "Scores an encoder's latents against a dataset's factors (linear probes on held-out "
        "episodes, MIG, DCI, FactorVAE score); prints a table and writes the JSON (--out).",
    )
    r.add_argument("encoder", help="encoder checkpoint (.safetensors)")
    r.add_argument("dataset", help="exploration dataset (.h5) with factors")
    r.add_argument("--out", help="JSON output (default: <encoder>_probe.json beside the encoder)")
    r.add_argument("--max-frames", type=_positive_int, default=20000,
                   help="frames of the dataset to score")  # fmt: skip
    r.add_argument("--metrics", nargs="+", default=["probe", "mig", "dci", "factor_vae"],
                   help="metrics to compute")  # fmt: skip
    r.add_argument("--seed", type=int, default=0, help="seed of the frame sample and the probes")
    device(r)
    r.set_defaults(func=_probe)

    # pictures
    g = command(
        "pictures",
        "reconstructions and latent traversals as PNG",
        "Writes reconstructions.png and traversals.png of an encoder that has a decoder.",
    )
    g.add_argument("encoder", help="encoder checkpoint (.safetensors) with a decoder")
    g.add_argument("dataset", help="dataset (.h5) to take frames from")
    g.add_argument("--out", help="output directory (default: <encoder dir>/pictures)")
    g.add_argument("--seed", type=int, default=0, help="seed of the frames shown")
    device(g)
    g.set_defaults(func=_pictures)

    # run / train / evaluate (experiments)
    def experiment_args(e: argparse.ArgumentParser) -> None:
        e.add_argument("config", nargs="?", metavar="CONFIG",
                       help="experiment YAML (default: the embedded default)")  # fmt: skip
        e.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="dotted overrides, e.g. name=mytest seeds=[0] train.timesteps=20000")  # fmt: skip
        e.add_argument("--dry-run", action="store_true",
                       help="print the resolved, validated config and exit; run and write "
                       "nothing")  # fmt: skip

    for name, until, text in (
        ("run", "report", "the whole transfer experiment: collect, pretrain, train, evaluate, "
         "report (no CONFIG: the embedded DARLA-on-Breakout default, about 15 min on 2 CPUs)"),
        ("train", "train", "an experiment's stages up to training the agents"),
    ):  # fmt: skip
        e = command(name, text, text + ". Stages whose artefacts exist for the same config are "
                    "reused; each prints its time when done.", epilog=experiment_help)  # fmt: skip
        experiment_args(e)
        e.set_defaults(func=_experiment(until))

    v = command(
        "evaluate",
        "zero-shot evaluation: of an experiment (CONFIG) or of one agent zip (--agent)",
        "Without --agent: runs an experiment's stages up to evaluation (CONFIG and overrides as "
        "for `reprl run`). With --agent: evaluates one agent zip on each --env id and prints "
        "one line per env; --video records a GIF per env.",
        epilog=experiment_help,
    )
    experiment_args(v)
    v.add_argument("--agent", help="an agent zip saved by reprl (or any SB3 zip on our obs)")
    v.add_argument("--env", nargs="+", default=[], metavar="ID", help="--agent: target env ids")
    v.add_argument("--episodes", type=_positive_int, default=32,
                   help="--agent: episodes per env")  # fmt: skip
    v.add_argument("--num-envs", type=_positive_int, default=16,
                   help="--agent: parallel envs per evaluation")  # fmt: skip
    v.add_argument("--max-episode-steps", type=int, default=None,
                   help="--agent: episode time limit in steps, 0 for the env's own (default: "
                   "the pipeline's evaluation limit, evaluate.env_kwargs.max_episode_steps)")  # fmt: skip
    v.add_argument("--stochastic", action="store_true", help="--agent: sample actions "
                   "(default: greedy)")  # fmt: skip
    v.add_argument("--seed", type=int, default=10_000, help="--agent: env seed of env 0")
    v.add_argument("--out", help="--agent: write the per-episode returns as JSON here")
    v.add_argument("--video", metavar="DIR", help="--agent: record one GIF per env into DIR "
                   "(<agent>__<env>.gif: the first episode of env 0)")  # fmt: skip
    v.add_argument("--video-frames", type=_positive_int, default=1000,
                   help="--video: most frames per GIF")  # fmt: skip
    device(v)
    v.set_defaults(func=_evaluate)

    # report
    rp = command(
        "report",
        "merge evaluation runs into tables (md, csv) and plots",
        "Merges the evaluation (eval/) and training (train/) artefacts of one or more experiment "
        "directories into OUT/report.md, results.csv, runs.csv and plots; prints the tables.",
    )
    rp.add_argument("roots", nargs="+", metavar="ROOT", help="experiment directories (runs/<name>)")
    rp.add_argument("--out", required=True, help="output directory")
    rp.add_argument("--baseline", metavar="NAME",
                    help="the agent the rows are compared against (paired differences, "
                    "P(improvement)); default: pixels")  # fmt: skip
    rp.add_argument("--source-env", metavar="ID",
                    help="training env id: aggregates and comparisons are over the other "
                    "(target) envs")  # fmt: skip
    rp.add_argument("--reps", type=_positive_int, default=2000, help="bootstrap replicates")
    rp.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    rp.set_defaults(func=_report)
    return p


def _evaluate(args: argparse.Namespace) -> int:
    if args.agent:
        if args.max_episode_steps is None:
            args.max_episode_steps = _default_max_episode_steps()
        return _evaluate_zip(args)
    if args.env or args.video:
        from envs.errors import ReprlError

        raise ReprlError("evaluate: --env and --video go with --agent AGENT.zip, got no --agent")
    return _experiment("evaluate")(args)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses, letting KEY=VALUE overrides come after options (``run --dry-run seeds=[0]``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.exit(EXIT_USAGE, f"reprl {getattr(args, 'command', '')}: unrecognized "
                        f"arguments: {' '.join(extra)} (see: reprl --help)\n")  # fmt: skip
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reprl`` console script; returns the exit code (see the module)."""
    args = _parse(build_parser(), argv)
    debug = bool(getattr(args, "debug", False))
    command = f"reprl {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        _close_progress_bars()
        _say(f"{command}: interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:
        if debug or not isinstance(e, _expected_errors()):
            raise
        _close_progress_bars()
        _say(f"{command}: {error_message(e)}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
