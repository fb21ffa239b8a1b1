"""The ``reprl`` command line.

Every sub-command is a thin shell over a library function; ``reprl <command> --help`` documents
each option with its default. Long commands show a progress bar (on stderr) and end with one
summary line per stage and its time (on stdout).

Exit codes: 0 success; 2 for an expected failure (bad input: an invalid config or option, an
unknown env id, a missing or corrupt file; a full disk, naming the file and the disk), printed
as ONE line on stderr,
``reprl <command>: <message>``; 130 for Ctrl-C (``reprl <command>: interrupted``); 143 for
SIGTERM (``kill``, a batch scheduler's stop: ``reprl <command>: terminated``), which stops the
command as cleanly as Ctrl-C (temporary files removed, A3C workers stopped); 141, silently,
when stdout's reader goes away (``reprl run --dry-run | head``); 1 with the
Python traceback for anything else, which is a bug. ``reprl --debug <command> ...`` (or
``--debug`` after the command) shows the traceback of every failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import textwrap
import threading
import typing
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import envs.oldgym  # noqa: F401  first: imports old gym quietly, before stable-baselines3 does
from experiments import cli_commands as cmd
from experiments.cli_commands import HELP_WIDTH as _WIDTH
from experiments.cli_commands import experiment_help, yaml_problem

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
"""The reader of stdout went away (``reprl run --dry-run | head``): silent, as a shell tool."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt``: every ``finally`` and every
    ``except KeyboardInterrupt`` on the way out (atomic writes, A3C's workers) runs as for
    Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def _redeliver_swallowed_stop(unraisable: Any, previous: Callable[[Any], None]) -> None:
    """A ``sys.unraisablehook``: a stop that a finaliser swallowed is delivered again.

    A signal's exception is raised in whatever bytecode the main thread runs next; when that
    is a finaliser (a weakref callback, a ``__del__`` run by the garbage collector) Python
    prints "Exception ignored in ..." and carries on, and the command would run to its end.
    So the signal is sent again, a moment later from another thread (sent from here, its
    exception would be raised inside this hook and lost too); should that land in a finaliser
    as well, this hook sends it once more.
    """
    kind = unraisable.exc_type
    if isinstance(kind, type) and issubclass(kind, KeyboardInterrupt):
        again = signal.SIGTERM if issubclass(kind, Terminated) else signal.SIGINT
        timer = threading.Timer(0.05, os.kill, (os.getpid(), again))
        timer.daemon = True
        timer.start()
        return
    previous(unraisable)


@contextlib.contextmanager
def _sigterm_stops_cleanly() -> typing.Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` in the main thread.

    Only where SIGTERM has its default action (which would end the process on the spot,
    leaving temporary files and, for an A3C, workers that exit only when they notice) and this
    is the main thread; a host that handles SIGTERM itself (Ray, a test runner) keeps its
    handler. A Ctrl-C or SIGTERM that lands in a finaliser is raised again
    (:func:`_redeliver_swallowed_stop`).
    """
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )
    previous_hook = sys.unraisablehook
    if ours:
        signal.signal(signal.SIGTERM, _raise_terminated)
        sys.unraisablehook = lambda u: _redeliver_swallowed_stop(u, previous_hook)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            sys.unraisablehook = previous_hook


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
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        return text + " (default: %(default)s)"


def _number(kind: type, low: float, *, strict: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=``: a ``kind`` (int or float) >= ``low`` (> ``low`` if ``strict``)."""
    what = f"{'an integer' if kind is int else 'a number'} {'>' if strict else '>='} {low:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1)
_non_negative_int = _number(int, 0)
_positive_float = _number(float, 0, strict=True)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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


def error_message(e: BaseException) -> str:
    """The one-line message of an expected failure (``str(e)`` with its whitespace folded); a
    full disk names the file and the disk."""
    import yaml

    from envs.errors import ReprlError
    from envs.storage.files import disk_usage_line, is_no_space

    if is_no_space(e) and not isinstance(e, ReprlError):
        where = getattr(e, "filename", None)
        disk = disk_usage_line(where or ".")
        return (
            f"{where or 'writing'}: no space left on device{f' ({disk})' if disk else ''}; free "
            "some space and rerun: finished stages are reused, the file before this write is "
            "intact"
        )
    if isinstance(e, OSError) and not isinstance(e, ReprlError) and e.filename is not None:
        where = str(e.filename) + (f" -> {e.filename2}" if e.filename2 else "")
        return f"{where}: {e.strerror or type(e).__name__}"
    if isinstance(e, yaml.YAMLError):
        return yaml_problem(e)
    return " ".join(str(e).split()) or type(e).__name__


def _close_progress_bars() -> None:
    """Ends live tqdm bars so the interrupt line starts on a line of its own."""
    tq = sys.modules.get("tqdm")
    if tq is None:
        return
    for bar in list(getattr(tq.tqdm, "_instances", ())):
        with contextlib.suppress(Exception):  # best effort on the way out
            bar.close()


def _fill(text: str) -> str:
    """``text`` wrapped to the help's width (descriptions and epilogs keep their layout)."""
    return textwrap.fill(text, _WIDTH)


# --- the parser ------------------------------------------------------------------------------
def _device(value: str) -> str:
    """``--device``: a torch device this machine has (:func:`envs.devices.check_device`)."""
    from envs.devices import check_device
    from envs.errors import ReprlError

    try:
        check_device(value, "--device")
    except ReprlError as e:
        message = str(e).removeprefix("--device: ").replace("use device=cpu", "use --device cpu")
        raise argparse.ArgumentTypeError(message) from None
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``reprl`` and its sub-commands."""
    p = _Parser(
        prog="reprl",
        allow_abbrev=False,
        description=_fill(
            "Pretrained representations, SB3 agents, zero-shot transfer. Start with `reprl run` "
            "(the whole default experiment); `reprl COMMAND --help` documents each command."
        ),
        epilog=_fill(
            "Exit codes: 0 ok; 2 bad input (one line on stderr: reprl COMMAND: message); "
            "130 interrupted (Ctrl-C); 143 terminated (SIGTERM, stopped as cleanly as Ctrl-C); "
            "1 a bug (a traceback)."
        ),
        formatter_class=_Formatter,
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of every failure, bad input included",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_demo(sub)
    _add_bench_envs(sub)
    _add_collect(sub)
    _add_pretrain(sub)
    _add_probe(sub)
    _add_pictures(sub)
    _add_run_train_evaluate(sub)
    _add_convert_agent(sub)
    _add_report(sub)
    _add_sweep(sub)
    return p


def _command(sub: Any, name: str, help: str, description: str | None = None, **kw: Any) -> _Parser:
    """A sub-command's parser with reprl's formatting and its own ``--debug``."""
    sp = sub.add_parser(
        name,
        help=help,
        description=_fill(description or help),
        formatter_class=_Formatter,
        allow_abbrev=False,
        **kw,
    )
    sp.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the Python traceback of every failure",
    )
    return sp


def _device_option(sp: argparse.ArgumentParser) -> None:
    """``--device``, checked at parse time."""
    sp.add_argument(
        "--device",
        default="cpu",
        type=_device,
        help="torch device: cpu, cuda, cuda:1, ... (one this machine has)",
    )


def _trust_pickle_option(sp: argparse.ArgumentParser, what: str) -> None:
    """``--trust-pickle`` for the zip ``what`` names."""
    sp.add_argument(
        "--trust-pickle",
        action="store_true",
        help=f"{what}: open an agent zip that only unpickling can open (a plain SB3 zip, "
        "an older reprl zip without the safe record); unpickling can run arbitrary code: "
        "only for a zip from a source you trust (default: refuse it; reprl's own zips "
        "open without pickle)",
    )


def _add_demo(sub: Any) -> None:
    """``reprl demo``."""
    d = _command(
        sub,
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
    d.add_argument(
        "--lab",
        action="store_true",
        help="draw the Lab rooms instead: OUT/lab_domains.png (every room look x object set, "
        "held-out test pairs framed in red) and OUT/lab_scenes.png (multi-view scenes with "
        "their cameras on a map: GQN's data)",
    )
    _device_option(d)
    d.set_defaults(func=cmd.demo)


def _add_bench_envs(sub: Any) -> None:
    """``reprl bench-envs``."""
    b = _command(
        sub,
        "bench-envs",
        "env-steps/s of reprl's Breakout vs ALE Breakout-v5 (prints JSON)",
        "Measures env-steps/s with random actions of reprl's Breakout (its SB3 VecEnv and its "
        "bare torch core) against ALE Breakout-v5's native vector env, for each number of "
        "parallel envs: the README's Environments table (python -m experiments.bench.bench_envs)."
        " Prints one JSON object; writes nothing.",
    )
    b.add_argument(
        "--seconds", type=_positive_float, default=3.0, help="timed seconds per measurement"
    )
    b.add_argument(
        "--sizes",
        type=_positive_int,
        nargs="+",
        default=[1, 16, 256, 1024],
        help="numbers of parallel envs to measure",
    )
    b.add_argument(
        "--stack",
        action="store_true",
        help="add the cost of frame stacking (in the env vs SB3's VecFrameStack)",
    )
    b.set_defaults(func=cmd.bench_envs)


def _add_collect(sub: Any) -> None:
    """``reprl collect``; its defaults are the experiment config's (:class:`CollectStage`)."""
    from typing import get_args, get_type_hints

    from experiments.blocks import CollectStage

    defaults = CollectStage()
    policies = list(get_args(get_type_hints(CollectStage)["policy"]))
    c = _command(
        sub,
        "collect",
        "run an exploration policy, write a dataset (HDF5)",
        "Runs an exploration policy on each env id (frames split evenly; each id is one domain "
        "of the dataset) and writes one HDF5 dataset atomically: frames, actions, rewards, "
        "episode ids, ground-truth factors, domain labels.",
    )
    c.add_argument(
        "--env",
        nargs="+",
        required=True,
        metavar="ID",
        help="env id(s), e.g. reprl/BreakoutStandard-v0 ALE/Breakout-v5",
    )
    c.add_argument("--frames", type=_positive_int, required=True, help="total frames to write")
    c.add_argument("--out", required=True, help="dataset path (.h5)")
    c.add_argument(
        "--num-envs", type=_positive_int, default=defaults.num_envs, help="parallel envs per id"
    )
    c.add_argument(
        "--policy",
        default=defaults.policy,
        choices=policies,
        help="random: uniform actions; random_repeat: uniform actions held for 1 to "
        "REPEAT steps; sb3: a trained agent (--model) with epsilon-random actions",
    )
    c.add_argument(
        "--repeat",
        type=_positive_int,
        default=defaults.repeat,
        help="random_repeat: longest hold of an action, in steps",
    )
    c.add_argument("--model", help="sb3: path of the SB3 agent (.zip)")
    c.add_argument(
        "--epsilon", type=float, default=defaults.epsilon, help="sb3: random-action probability"
    )
    _trust_pickle_option(c, "sb3")
    c.add_argument(
        "--views-per-scene",
        type=int,
        default=defaults.views_per_scene,
        metavar="K",
        help="K >= 2: write a scene dataset instead (GQN's data, Lab ids only): FRAMES / K "
        "scenes of K views from random cameras with their 7-d viewpoints; no policy is used",
    )
    c.add_argument(
        "--max-pitch",
        type=float,
        default=defaults.max_pitch,
        help="scenes: cameras pitch uniformly within +-MAX_PITCH degrees (default level views)",
    )
    c.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed of the envs and the policy"
    )
    _device_option(c)
    c.add_argument(
        "--env-kwarg",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="env kwargs (YAML values), e.g. obs_size=[64,64] max_episode_steps=2000",
    )
    c.set_defaults(func=cmd.collect)


def _add_pretrain(sub: Any) -> None:
    """``reprl pretrain``."""
    t = _command(
        sub,
        "pretrain",
        "pretrain a representation on a dataset",
        "Pretrains a representation (representations.pretrain.PretrainConfig: method, model, "
        "dataset, out, steps, batch_size, lr, ...) and writes OUT/encoder.safetensors with its "
        "config and metrics. Fields come from the defaults, then --config, then KEY=VALUE.",
        epilog="example:\n  reprl pretrain --config experiments/configs/darla_beta_vae.yaml "
        "dataset=data/breakout.h5 steps=5000 model.beta=4",
    )
    t.add_argument("--config", help="YAML file of PretrainConfig fields")
    t.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. dataset=d.h5 model.beta=4 steps=3000",
    )
    t.set_defaults(func=cmd.pretrain)


def _add_probe(sub: Any) -> None:
    """``reprl probe``."""
    r = _command(
        sub,
        "probe",
        "score an encoder against a dataset's ground-truth factors",
        "Scores an encoder's latents against a dataset's factors (linear probes on held-out "
        "episodes, MIG, DCI, FactorVAE score); prints a table and writes the JSON (--out).",
    )
    r.add_argument("encoder", help="encoder checkpoint (.safetensors)")
    r.add_argument("dataset", help="exploration dataset (.h5) with factors")
    r.add_argument("--out", help="JSON output (default: <encoder>_probe.json beside the encoder)")
    r.add_argument(
        "--max-frames", type=_positive_int, default=20000, help="frames of the dataset to score"
    )
    r.add_argument(
        "--metrics",
        nargs="+",
        default=["probe", "mig", "dci", "factor_vae"],
        help="metrics to compute",
    )
    r.add_argument("--seed", type=int, default=0, help="seed of the frame sample and the probes")
    _device_option(r)
    r.set_defaults(func=cmd.probe)


def _add_pictures(sub: Any) -> None:
    """``reprl pictures``."""
    g = _command(
        sub,
        "pictures",
        "reconstructions and latent traversals as PNG",
        "Writes reconstructions.png and traversals.png of an encoder that has a decoder.",
    )
    g.add_argument("encoder", help="encoder checkpoint (.safetensors) with a decoder")
    g.add_argument("dataset", help="dataset (.h5) to take frames from")
    g.add_argument("--out", help="output directory (default: <encoder dir>/pictures)")
    g.add_argument("--seed", type=int, default=0, help="seed of the frames shown")
    _device_option(g)
    g.set_defaults(func=cmd.pictures)


def _add_run_train_evaluate(sub: Any) -> None:
    """``reprl run / train / evaluate (experiments)``."""

    def experiment_args(e: argparse.ArgumentParser) -> None:
        e.add_argument(
            "config",
            nargs="?",
            metavar="CONFIG",
            help="experiment YAML (default: the embedded default)",
        )
        e.add_argument(
            "overrides",
            nargs="*",
            metavar="KEY=VALUE",
            help="dotted overrides, e.g. name=mytest seeds=[0] train.timesteps=20000",
        )
        e.add_argument(
            "--dry-run",
            action="store_true",
            help="print the resolved, validated config and exit; run and write nothing",
        )

    for name, until, text in (
        (
            "run",
            "report",
            "the whole transfer experiment: collect, pretrain, probe, train, evaluate, "
            "report (no CONFIG: the embedded DARLA-on-Breakout default)",
        ),
        ("train", "train", "an experiment's stages up to training the agents"),
    ):
        e = _command(
            sub,
            name,
            text,
            text + ". Stages whose artefacts exist for the same config are "
            "reused; each prints its time when done.",
            epilog=experiment_help,
        )
        experiment_args(e)
        e.set_defaults(func=cmd.experiment(until))

    v = _command(
        sub,
        "evaluate",
        "zero-shot evaluation: of an experiment (CONFIG) or of one agent zip (--agent)",
        "Without --agent: runs an experiment's stages up to evaluation (CONFIG and overrides as "
        "for `reprl run`). With --agent: evaluates one agent zip on each --env id and prints "
        "one line per env; --video records a GIF per env.",
        epilog=experiment_help,
    )
    experiment_args(v)
    v.add_argument(
        "--agent",
        help="an agent zip saved by reprl (opens without pickle), or a plain SB3 zip with "
        "--trust-pickle (or converted once by `reprl convert-agent`); its observation and "
        "action spaces are checked against each --env before the first step",
    )
    v.add_argument("--env", nargs="+", default=[], metavar="ID", help="--agent: target env ids")
    v.add_argument("--episodes", type=_positive_int, default=32, help="--agent: episodes per env")
    v.add_argument(
        "--num-envs", type=_positive_int, default=16, help="--agent: parallel envs per evaluation"
    )
    v.add_argument(
        "--max-episode-steps",
        type=_non_negative_int,
        default=None,
        help="--agent: episode time limit in steps, 0 for the env's own (default: "
        "the pipeline's evaluation limit, evaluate.env_kwargs.max_episode_steps = "
        "experiments.pipeline.MAX_EVAL_EPISODE_STEPS)",
    )
    v.add_argument(
        "--action-mapping",
        choices=["none", "by_meaning"],
        default="none",
        help="--agent: on a target whose actions mean other things than the "
        "agent's (ALE's 4 vs reprl's 3), map them by name (by_meaning) or refuse",
    )
    v.add_argument(
        "--stochastic", action="store_true", help="--agent: sample actions (default: greedy)"
    )
    v.add_argument("--seed", type=int, default=10_000, help="--agent: env seed of env 0")
    v.add_argument("--out", help="--agent: write the per-episode returns as JSON here")
    v.add_argument(
        "--video",
        metavar="DIR",
        help="--agent: record one GIF per env into DIR "
        "(<agent>__<env>.gif: the first episode of env 0)",
    )
    v.add_argument(
        "--video-frames", type=_positive_int, default=1000, help="--video: most frames per GIF"
    )
    _trust_pickle_option(v, "--agent")
    _device_option(v)
    v.set_defaults(func=cmd.evaluate)


def _add_convert_agent(sub: Any) -> None:
    """``reprl convert-agent``."""
    ca = _command(
        sub,
        "convert-agent",
        "rewrite a trusted SB3 agent zip in reprl's safe form (opens without pickle)",
        "Loads the agent zip IN (a plain SB3 zip of PPO, A2C or A3C, or an older reprl zip "
        "without the safe record: its pickles run, hence --trust-pickle, only for a zip you "
        "trust) and writes OUT: "
        "the same SB3 zip (PPO.load still opens it) plus a JSON description of its spaces, "
        "policy class and schedules, so that reprl (evaluate, collect, load_agent) opens it "
        "without unpickling anything. reprl's metadata (reprl.json) is kept. Prints what it "
        "wrote.",
    )
    ca.add_argument("src", metavar="IN", help="the agent zip to convert")
    ca.add_argument("dst", metavar="OUT", help="the safe agent zip to write (not IN)")
    _trust_pickle_option(ca, "IN")
    ca.set_defaults(func=cmd.convert_agent)


def _add_report(sub: Any) -> None:
    """``reprl report``."""
    rp = _command(
        sub,
        "report",
        "merge evaluation runs into tables (md, csv) and plots",
        "Merges the evaluation (eval/) and training (train/) artefacts of one or more experiment "
        "directories into OUT/report.md, results.csv, runs.csv and plots; prints the tables.",
    )
    rp.add_argument("roots", nargs="+", metavar="ROOT", help="experiment directories (runs/<name>)")
    rp.add_argument("--out", required=True, help="output directory")
    rp.add_argument(
        "--baseline",
        metavar="NAME",
        help="the agent the rows are compared against (paired differences, "
        "P(improvement)); default: pixels",
    )
    rp.add_argument(
        "--source-env",
        metavar="ID",
        help="training env id: aggregates and comparisons are over the other (target) envs",
    )
    rp.add_argument("--reps", type=_positive_int, default=2000, help="bootstrap replicates")
    rp.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    rp.add_argument(
        "--confidence", type=float, default=0.95, help="coverage of the confidence intervals"
    )
    rp.set_defaults(func=cmd.report)


def _add_sweep(sub: Any) -> None:
    """``reprl sweep``."""
    sw = _command(
        sub,
        "sweep",
        "many experiments (seeds x encoders x domains) as Ray Tune trials; one merged report",
        "Runs a sweep config: a grid (and optional random draws) over dotted keys of an "
        "experiment config, each trial one `reprl run` flow in its own run directory "
        "(ROOT/NAME/trials/TRIAL/). Every trial's config is validated before anything starts; "
        "the collect, pretrain and probe stages trials have in common run once, in this "
        "process, and are shared; the trials run on Ray (this machine's cores, or the cluster "
        "at --address). Finished trials are skipped when a sweep is started again. Ends with "
        "the merged report ROOT/NAME/report/sweep.md. Needs the ray extra: "
        'pip install -e ".[ray]".',
        epilog="sweep config (YAML):\n"
        "  name: beta_sweep          # ROOT/NAME/\n"
        "  root: runs\n"
        "  base: default             # or an experiment YAML\n"
        "  overrides: [train.timesteps=50000]\n"
        "  grid: {seeds: [[0], [1], [2]], encoders.1.model.beta: [1, 4]}\n"
        "  random: {num_samples: 0, seed: 0, space: {}}  # {KEY: {uniform|loguniform|randint|"
        "choice: [...]}}\n"
        "  resources: {cpu: 1, gpu: 0}   # per trial; gpu may be a fraction\n"
        "  max_concurrent: 0         # 0: as the resources allow\n"
        "example:\n"
        "  reprl sweep experiments/configs/sweep_breakout_seeds.yaml\n"
        "  ray start --head --port 6379 && reprl sweep SWEEP.yaml --address 127.0.0.1:6379",
    )
    sw.add_argument("config", metavar="CONFIG", help="sweep YAML")
    sw.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides of the sweep's own fields, e.g. name=s2 resources.cpu=2",
    )
    sw.add_argument(
        "--address",
        metavar="ADDR",
        help="an existing Ray cluster, HOST:PORT (as `ray start --head` prints) or auto; "
        "default: start Ray on this machine",
    )
    sw.add_argument(
        "--dry-run",
        action="store_true",
        help="validate every trial's config and list the trials; run and write nothing",
    )
    sw.add_argument(
        "--report-only",
        action="store_true",
        help="only (re)write the merged report of the trials finished so far",
    )
    sw.set_defaults(func=cmd.sweep)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses, letting KEY=VALUE overrides come after options (``run --dry-run seeds=[0]``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            prog = f"reprl {args.command}"
            parser.exit(
                EXIT_USAGE,
                f"{prog}: unrecognized arguments: {' '.join(extra)} (see: {prog} --help)\n",
            )
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reprl`` console script; returns the exit code (see the module)."""
    args = _parse(build_parser(), argv)
    debug = bool(getattr(args, "debug", False))
    command = f"reprl {args.command}"
    shown = warnings.showwarning
    if not debug:  # a warning is one line too, on stderr
        warnings.showwarning = lambda message, *_args, **_kwargs: _say(f"warning: {message}")
    try:
        with _sigterm_stops_cleanly():
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
            return code
    except KeyboardInterrupt as e:
        if debug:
            raise
        _close_progress_bars()
        if isinstance(e, Terminated):
            _say(f"{command}: terminated")
            return EXIT_TERMINATED
        _say(f"{command}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        if debug:
            raise
        # stdout's reader closed it: point stdout at /dev/null so the interpreter's final
        # flush does not fail again (the recipe of Python's signal module documentation)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as e:
        from envs.storage.files import is_no_space

        if debug or not (isinstance(e, _expected_errors()) or is_no_space(e)):
            raise
        _close_progress_bars()
        _say(f"{command}: {error_message(e)}")
        return EXIT_USAGE
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
