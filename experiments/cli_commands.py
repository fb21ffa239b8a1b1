"""The sub-commands of ``reprl`` (:mod:`experiments.cli` parses, this module does the work).

Each function takes the parsed ``argparse.Namespace`` and returns an exit code; bad input
raises :class:`envs.errors.ReprlError` (printed as one line by :func:`experiments.cli.main`).
Every library import is inside the function that needs it, so ``reprl --help`` stays instant.
Long commands show the library's progress bars (stderr) and end with one summary line per
stage with its time (stdout, :func:`stage_line`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import itertools
import json
import re
import textwrap
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HELP_WIDTH = 88  # width of the help text


def stage_line(stage: str, seconds: float, what: str = "") -> None:
    """The one summary line of a finished stage: ``collect 1.2 s: what``."""
    print(f"{stage} {seconds:.1f} s" + (f": {what}" if what else ""), flush=True)


def yaml_problem(e: BaseException) -> str:
    """``not valid YAML: <problem> at line L, column C`` from a (marked) YAML error."""
    problem = getattr(e, "problem", None)
    mark = getattr(e, "problem_mark", None)
    if problem and mark is not None:
        return f"not valid YAML: {problem} at line {mark.line + 1}, column {mark.column + 1}"
    return "not valid YAML: " + " ".join(str(e).split())


def demo(args: argparse.Namespace) -> int:
    """``reprl demo``: every Breakout variant at random; writes the PNG strip and ``demo.json``."""
    from experiments.demo import lab_pictures, run_demo

    t0 = time.perf_counter()
    if args.lab:
        written = lab_pictures(args.out, seed=args.seed)
        stage_line("demo", time.perf_counter() - t0, "wrote " + ", ".join(written.values()))
        return 0
    summary = run_demo(
        args.out, num_envs=args.num_envs, steps=args.steps, seed=args.seed, device=args.device
    )
    print(json.dumps(summary, indent=2))
    stage_line("demo", time.perf_counter() - t0, f"wrote {summary['picture']}, {summary['json']}")
    return 0


def bench_envs(args: argparse.Namespace) -> int:
    """``reprl bench-envs``: :mod:`experiments.bench.bench_envs` (prints JSON)."""
    from experiments.bench.bench_envs import main as bench_main

    argv = ["--seconds", str(args.seconds), "--sizes", *map(str, args.sizes)]
    if args.stack:
        argv.append("--stack")
    return bench_main(argv)


def collect(args: argparse.Namespace) -> int:
    """``reprl collect``: an exploration dataset (:func:`envs.exploration.collect`)."""
    from envs.errors import ReprlError
    from envs.exploration import collect
    from experiments.config import parse_overrides

    env_kwargs = parse_overrides(args.env_kwarg)
    if args.views_per_scene:
        from envs.scenes import collect_scenes

        k = args.views_per_scene
        if k < 2 or args.frames < k:
            raise ReprlError(
                f"--views-per-scene: expected K >= 2 and at most --frames ({args.frames}), got {k}"
            )
        t0 = time.perf_counter()
        ds = collect_scenes(
            args.env,
            args.frames // k,
            args.out,
            views_per_scene=k,
            num_envs=args.num_envs,
            seed=args.seed,
            env_kwargs=env_kwargs,
            max_pitch=args.max_pitch,
            device=args.device,
        )
        what = f"{ds.num_scenes} scenes x {k} views of {', '.join(args.env)} -> {args.out}"
        stage_line("collect", time.perf_counter() - t0, what)
        return 0
    if args.policy == "sb3":
        from agents.exploration import sb3_policy

        if not args.model:
            raise ReprlError("--policy sb3: expected --model AGENT.zip, got none")
        policy = sb3_policy(
            args.model, epsilon=args.epsilon, device=args.device, trust_pickle=args.trust_pickle
        )
        policy_kwargs = {}
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
    stage_line("collect", time.perf_counter() - t0, what)
    return 0


def pretrain(args: argparse.Namespace) -> int:
    """``reprl pretrain``: :func:`representations.pretrain.pretrain` on a loaded config."""
    from experiments.config import load_config
    from representations.pretrain import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, args.config, args.overrides)
    t0 = time.perf_counter()
    path = pretrain(cfg)
    stage_line("pretrain", time.perf_counter() - t0, f"encoder -> {path}")
    return 0


def probe(args: argparse.Namespace) -> int:
    """``reprl probe``: the probe table of an encoder on a dataset, also as JSON."""
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
    stage_line("probe", time.perf_counter() - t0, f"wrote {out}")
    return 0


def pictures(args: argparse.Namespace) -> int:
    """``reprl pictures``: reconstructions and traversals of an encoder with a decoder."""
    import representations as R
    from representations.analysis import pictures

    t0 = time.perf_counter()
    model = R.load(args.encoder, device=args.device)
    out = args.out or str(Path(args.encoder).parent / "pictures")
    written = pictures(model, args.dataset, out, seed=args.seed)
    stage_line("pictures", time.perf_counter() - t0, "wrote " + ", ".join(written.values()))
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
        raise ConfigError(f"{config or 'override'}: {yaml_problem(e)}") from None


def experiment(until: str) -> Callable[[argparse.Namespace], int]:
    """``reprl run/train/evaluate CONFIG``: the pipeline up to stage ``until``, one line per stage
    (or, with ``--dry-run``, the resolved config and nothing run)."""

    def go(args: argparse.Namespace) -> int:
        import yaml

        from experiments.config import to_dict
        from experiments.pipeline import run

        cfg = _load_experiment(args)
        if args.dry_run:
            print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
            print(
                f"# dry run: valid config; `reprl {args.command}` would write {cfg.root}/"
                f"{cfg.name}/ (stages up to {until})"
            )
            return 0

        def on_stage(stage: str, seconds: float, status: str) -> None:
            stage_line(stage, seconds, "" if status == "ran" else status)

        summary = run(cfg, until=until, on_stage=on_stage)
        stage_line("total", summary.get("seconds", 0.0), summary.get("experiment", ""))
        if summary.get("report"):
            print(f"report: {summary['report']}")
        return 0

    return go


def _default_max_episode_steps() -> int:
    """The pipeline's evaluation time limit (``evaluate.env_kwargs.max_episode_steps``)."""
    from experiments.pipeline import MAX_EVAL_EPISODE_STEPS

    return MAX_EVAL_EPISODE_STEPS


def _env_slug(env_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", env_id)


def _evaluate_zip(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    import agents
    from envs.errors import ReprlError
    from experiments.pipeline import evaluate_agent

    if not args.env:
        raise ReprlError("--agent: expected at least one --env ID, got none")
    if args.config is not None or args.overrides:
        extra = " ".join([*([args.config] if args.config else []), *args.overrides])
        raise ReprlError(
            f"--agent: expected only options (--env, --episodes, ...), got {extra!r} "
            "(a CONFIG and KEY=VALUE overrides configure a whole experiment, without --agent)"
        )
    # as the pipeline's evaluate stage: the training env's kwargs (frame stack, grayscale, ...)
    # recorded in the zip, then the evaluation's time limit
    info = agents.agent_info(args.agent)
    env_kwargs = dict(info.get("env_kwargs") or {})
    steps = args.max_episode_steps
    if steps:
        env_kwargs["max_episode_steps"] = steps
    else:
        env_kwargs.pop("max_episode_steps", None)
    meanings = info.get("action_meanings")
    t0 = time.perf_counter()
    model = agents.load_agent(args.agent, device=args.device, trust_pickle=args.trust_pickle)
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
            agent_meanings=meanings,
            action_mapping=args.action_mapping,
        )
        returns = [r for r, _ in res]
        lengths = [n for _, n in res]
        mean = sum(returns) / len(returns)
        results[env_id] = {
            "episodes": len(res),
            "mean_return": mean,
            "returns": returns,
            "lengths": lengths,
        }
        what = f"mean return {mean:.2f} over {len(res)} episodes"
        if args.video:
            from experiments.video import record_gif

            gif = Path(args.video) / f"{Path(args.agent).stem}__{_env_slug(env_id)}.gif"
            record_gif(
                model,
                env_id,
                gif,
                seed=args.seed,
                max_frames=args.video_frames,
                env_kwargs=env_kwargs,
                deterministic=not args.stochastic,
                device=args.device,
                agent_meanings=meanings,
                action_mapping=args.action_mapping,
            )
            results[env_id]["video"] = str(gif)
            what += f", video {gif}"
        stage_line(f"evaluate {env_id}", time.perf_counter() - t1, what)
    if args.out:
        from envs.storage.files import atomic_write_text

        atomic_write_text(args.out, json.dumps(results, indent=2))
    stage_line("evaluate", time.perf_counter() - t0, f"wrote {args.out}" if args.out else "")
    return 0


def convert_agent(args: argparse.Namespace) -> int:
    """``reprl convert-agent IN OUT``: :func:`agents.saving.convert_agent` (the safe form)."""
    from agents.safe_zip import pickled_entries
    from agents.saving import convert_agent

    t0 = time.perf_counter()
    out = convert_agent(args.src, args.dst, trust_pickle=args.trust_pickle)
    what = f"{args.src} -> {out} (opens without pickle"
    if pickled_entries(out):
        what += "; SB3's own load still reads its pickled copies"
    stage_line("convert-agent", time.perf_counter() - t0, what + ")")
    return 0


def report(args: argparse.Namespace) -> int:
    """``reprl report``: :func:`experiments.report.build_report`, tables printed; a sweep's
    directory (``runs/<sweep>``, alone) is merged over its trials
    (:func:`experiments.sweep.merge_report`)."""
    from experiments.report import build_report

    t0 = time.perf_counter()
    if len(args.roots) == 1 and (Path(args.roots[0]) / "sweep.json").is_file():
        from experiments.sweep import merge_report

        summary = merge_report(args.roots[0], args.out)
        print(Path(summary["sweep_report"]).read_text())
        stage_line("report", time.perf_counter() - t0, f"wrote {summary['sweep_report']}")
        return 0
    summary = build_report(
        args.roots,
        args.out,
        source_env=args.source_env,
        baseline=args.baseline,
        reps=args.reps,
        seed=args.seed,
        confidence=args.confidence,
    )
    print(summary["markdown"])
    stage_line("report", time.perf_counter() - t0, f"wrote {summary['report']}")
    return 0


def sweep(args: argparse.Namespace) -> int:
    """``reprl sweep CONFIG``: :func:`experiments.sweep.run_sweep` (or, with ``--dry-run``, the
    validated trials; with ``--report-only``, the merged report)."""
    from experiments.sweep import load_sweep, merge_report, plan, run_sweep

    t0 = time.perf_counter()
    cfg = load_sweep(args.config, args.overrides)
    if args.report_only:
        p = plan(cfg, args.config)
        summary = merge_report(p.directory)
        stage_line("report", time.perf_counter() - t0, f"wrote {summary['sweep_report']}")
        return 0
    if args.dry_run:
        p = plan(cfg, args.config)
        for t in p.trials:
            shared = f"shared {t.group}" if t.group else "nothing shared"
            print(f"{t.id}: {' '.join(t.overrides[len(cfg.overrides) : -2])} ({shared})")
        print(
            f"# dry run: {len(p.trials)} valid trials, {len(p.groups)} shared upstream "
            f"group(s); `reprl sweep` would write {p.directory}/"
        )
        return 0
    summary = run_sweep(cfg, address=args.address, sweep_file=args.config)
    what = f"{summary['ran']} ran, {summary['skipped']} skipped (finished)"
    if summary["failed"]:
        what += f", {len(summary['failed'])} failed"
    stage_line("sweep", time.perf_counter() - t0, what)
    for tid, why in summary["failed"].items():
        print(f"failed: {tid}: {why}")
    if summary.get("report"):
        print(f"report: {summary['report']}")
    return 1 if summary["failed"] else 0


def evaluate(args: argparse.Namespace) -> int:
    """``reprl evaluate``: one agent zip (``--agent``) or an experiment up to evaluation."""
    if args.agent:
        if args.max_episode_steps is None:
            args.max_episode_steps = _default_max_episode_steps()
        return _evaluate_zip(args)
    if args.env or args.video:
        from envs.errors import ReprlError

        raise ReprlError("--env and --video: expected with --agent AGENT.zip, got no --agent")
    return experiment("evaluate")(args)


# --- `reprl run --help`: the config's fields, from the dataclass docstrings -------------------
def _field_docstrings(cls: type) -> dict[str, str]:
    """Field name -> the string literal right after the field (an attribute docstring)."""
    import ast

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[node.target.id] = " ".join(after.value.value.split())
    return out


def _attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> its doc: the Google-style ``Attributes:`` section of ``cls``'s docstring,
    else the field's attribute docstring (a string literal right after it)."""
    out: dict[str, str] = _field_docstrings(cls)
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


def _plain(text: str) -> str:
    """reST ``literals`` and :func:`roles` as terminal `literals`."""
    return re.sub(r":\w+:`", "`", text.replace("``", "`"))


def _wrap(text: str, indent: int) -> list[str]:
    """Lines of ``text`` indented by ``indent``; reST ``literals`` shown as `literals`."""
    text = _plain(text)
    return textwrap.wrap(
        text, HELP_WIDTH - indent, initial_indent=" " * indent, subsequent_indent=" " * indent
    ) or [" " * indent]


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
            lines.append(f"  {prefix}{f.name}.*: " + _plain(docs.get(f.name, "")))
            lines += _field_lines(tp, value, f"{prefix}{f.name}.")
            continue
        if item is not None and dataclasses.is_dataclass(item):
            names = [getattr(v, "name", "?") for v in value]
            lines.append(f"  {prefix}{f.name} (default: {', '.join(names) or 'none'})")
            lines += _wrap(
                f"{docs.get(f.name, '')} A list of mappings: a YAML file or {prefix}{f.name}=[...] "
                f"replaces the whole list, {prefix}{f.name}.0.KEY=VALUE one item's field. "
                "Each item has:",
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

KEY=VALUE overrides are dotted paths into the config, list items by index
(encoders.1.steps=500); values are YAML (seeds=[0,1], train.ppo.learning_rate=3e-4,
agents=[{name: pixels, mode: pixels}]). A first argument that contains '=' and is not an
existing file is an override, not a CONFIG path.

config fields (KEY: the YAML key; defaults are the embedded default's):
"""
    cfg = default_config()
    return examples + "\n".join(_field_lines(ExperimentConfig, cfg, "")) + "\n"
