"""The ``reprl`` console script as a user meets it, run in subprocesses.

Every bad input of issue 9 must end in exit code 2 and ONE stderr line ``reprl <command>:
<message>`` naming what was expected and what came; Ctrl-C in exit 130 and one line; a bug in
a traceback. The subprocesses of one group run concurrently (each imports torch: ~2 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments import cli
from tests.processes import terminal_sigint

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy"
CHECKPOINT = LEGACY / "beta_vae_v0.1.0.safetensors"
AGENT = LEGACY / "ppo_frozen_beta_vae_v0.1.0.zip"
SCRIPT = Path(sys.executable).parent / "reprl"
ENV_ID = "reprl/BreakoutStandard-v0"


def _command(args: list[str]) -> list[str]:
    """The installed console script (what a user runs), else the module."""
    if SCRIPT.exists():
        return [str(SCRIPT), *args]
    return [sys.executable, "-m", "experiments.cli", *args]


def _env(progress: bool = False) -> dict[str, str]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    if not progress:
        env["TQDM_DISABLE"] = "1"  # no progress bars: stderr is exactly what the CLI says
    return env


def reprl(
    args: list[str], cwd: Path, *, progress: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(args),
        cwd=cwd,
        env=_env(progress),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def said(stderr: str) -> list[str]:
    """The CLI's own stderr lines: without progress-bar fragments (tqdm redraws with \\r)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not re.search(r"\d+%\|", ln)]


def run_all(
    cases: dict[str, list[str]], cwd: Path, workers: int = 4
) -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(workers) as pool:
        futures = {k: pool.submit(reprl, args, cwd) for k, args in cases.items()}
        return {k: f.result() for k, f in futures.items()}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a small dataset (made by ``reprl collect``) and bad input files."""
    d = tmp_path_factory.mktemp("cli")
    res = reprl(
        ["collect", "--env", ENV_ID, "--frames", "300", "--out", "d.h5", "--num-envs", "4"],
        d,
        progress=True,
    )
    assert res.returncode == 0, res.stderr
    (d / "collect.out").write_text(res.stdout)
    (d / "collect.err").write_text(res.stderr)
    (d / "notckpt.safetensors").write_text("not a checkpoint\n")
    data = CHECKPOINT.read_bytes()
    (d / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    (d / "notzip.zip").write_text("hello\n")
    (d / "bad.yaml").write_text("name: x\nseeds: [0, 1\n")
    return d


@pytest.fixture(scope="module")
def results(work: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every independent subprocess case of this file, run concurrently."""
    (work / "cfg.yaml").write_text("name: fromfile\nseeds: [1, 2]\n")
    (work / "a=b.yaml").write_text("name: eqfile\n")
    cases = {k: argv for k, (argv, _) in BAD_INPUTS.items()} | DEBUG | HELPS | DRY_RUNS
    return run_all(cases, work)


# --- progress and the summary line ------------------------------------------------------------
def test_collect_shows_progress_and_one_summary_line(work: Path) -> None:
    out = (work / "collect.out").read_text().splitlines()
    assert len(out) == 1, out
    stage, seconds, unit, *_ = out[0].split()
    assert (stage, unit) == ("collect", "s:") and float(seconds) > 0
    assert "300 frames" in out[0] and "d.h5" in out[0]
    assert "collect:" in (work / "collect.err").read_text()  # the tqdm bar
    assert (work / "d.h5").stat().st_size > 0


# --- one line, exit 2 ---------------------------------------------------------------------------
# name -> (argv, the words the line must hold: what was expected and what came)
BAD_INPUTS: dict[str, tuple[list[str], list[str]]] = {
    "unknown env id to collect": (
        ["collect", "--env", "reprl/Nope-v0", "--frames", "100", "--out", "x.h5"],
        ["reprl/Nope-v0", "expected", ENV_ID],
    ),
    "missing dataset to pretrain": (
        ["pretrain", "dataset=missing.h5", "steps=2", "out=p1"],
        ["missing.h5", "dataset"],
    ),
    "unknown model key": (
        ["pretrain", "dataset=d.h5", "model.betta=4", "steps=2", "out=p2"],
        ["betta", "beta,"],
    ),
    "non-checkpoint to probe": (
        ["probe", "notckpt.safetensors", "d.h5"],
        ["notckpt.safetensors", "checkpoint"],
    ),
    "truncated checkpoint to probe": (
        ["probe", "trunc.safetensors", "d.h5"],
        ["trunc.safetensors", "truncated"],
    ),
    "non-zip to evaluate --agent": (
        ["evaluate", "--agent", "notzip.zip", "--env", ENV_ID],
        ["notzip.zip", "zip"],
    ),
    "YAML syntax error (run)": (["run", "bad.yaml"], ["bad.yaml", "YAML", "line"]),
    "YAML syntax error (pretrain)": (
        ["pretrain", "--config", "bad.yaml"],
        ["bad.yaml", "YAML", "line"],
    ),
    "--frames -5": (
        ["collect", "--env", ENV_ID, "--frames", "-5", "--out", "y.h5"],
        ["--frames", ">= 1", "-5"],
    ),
    "--num-envs 0": (
        ["collect", "--env", ENV_ID, "--frames", "10", "--out", "y.h5", "--num-envs", "0"],
        ["--num-envs", ">= 1", "0"],
    ),
    "--episodes 0": (
        ["evaluate", "--agent", str(AGENT), "--env", ENV_ID, "--episodes", "0"],
        ["--episodes", ">= 1", "0"],
    ),
    "steps=-3": (["pretrain", "dataset=d.h5", "steps=-3", "out=p3"], ["steps", ">= 0", "-3"]),
    "evaluate --agent without --env": (
        ["evaluate", "--agent", str(AGENT)],
        ["--env", "expected at least one"],
    ),
    "unknown experiment key": (["run", "stepz=3", "--dry-run"], ["stepz"]),
    "negative timesteps": (["run", "train.timesteps=-5", "--dry-run"], ["timesteps", "-5"]),
    "missing config file": (["run", "nope.yaml"], ["nope.yaml", "expected a YAML"]),
    "a directory as config": (["train", "."], [": .:", "expected a YAML"]),
    "scenes of an env without a camera": (
        ["collect", "--env", ENV_ID, "--frames", "20", "--out", "s.h5", "--views-per-scene", "4"],
        ["camera", "reprl/LabCollect-v0", ENV_ID],
    ),
    "one view per scene": (
        [
            "collect",
            "--env",
            "reprl/LabCollect-v0",
            "--frames",
            "20",
            "--out",
            "s.h5",
            "--views-per-scene",
            "1",
        ],
        ["--views-per-scene", "K >= 2", "got 1"],
    ),
    "scenes in a run of Breakout": (
        ["run", "collect.views_per_scene=5", "--dry-run"],
        ["collect.env_ids", "camera", ENV_ID],
    ),
    "unknown option": (
        ["collect", "--env", ENV_ID, "--frames", "10", "--out", "y.h5", "--frame-rate", "3"],
        ["unrecognized arguments: --frame-rate 3"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case: str, results, work: Path) -> None:
    argv, words = BAD_INPUTS[case]
    res = results[case]
    lines = said(res.stderr)
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    command = argv[0]
    assert lines[0].startswith(f"reprl {command}: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (work / "runs").exists()  # nothing written for an invalid experiment


DEBUG = {
    "--debug first": [
        "--debug",
        "collect",
        "--env",
        "reprl/Nope-v0",
        "--frames",
        "10",
        "--out",
        "x.h5",
    ],
    "--debug after the command": [
        "collect",
        "--debug",
        "--env",
        "reprl/Nope-v0",
        "--frames",
        "10",
        "--out",
        "x.h5",
    ],
}


@pytest.mark.parametrize("case", list(DEBUG))
def test_debug_shows_the_traceback(case: str, results) -> None:
    res = results[case]
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "reprl/Nope-v0" in res.stderr


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli.cmd, "pictures", broken)
    with pytest.raises(RuntimeError, match="a bug"):  # the console script prints it, exit 1
        cli.main(["pictures", "e.safetensors", "d.h5"])


def test_keyboard_interrupt_in_process(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.cmd, "pictures", interrupted)
    assert cli.main(["pictures", "e.safetensors", "d.h5"]) == 130
    assert capsys.readouterr().err == "reprl pictures: interrupted\n"


def test_sigterm_in_process_is_terminated_and_the_handler_restored(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def terminated(args):
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # ours, while it runs
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(cli.cmd, "pictures", terminated)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert cli.main(["pictures", "e.safetensors", "d.h5"]) == 143
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert capsys.readouterr().err == "reprl pictures: terminated\n"

        # a host with a SIGTERM handler of its own (Ray, a test runner) keeps it
        def own(signum, frame):
            pass

        signal.signal(signal.SIGTERM, own)
        monkeypatch.setattr(
            cli.cmd, "pictures", lambda args: 0 if signal.getsignal(signal.SIGTERM) is own else 1
        )
        assert cli.main(["pictures", "e.safetensors", "d.h5"]) == 0
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(
    ("sig", "code", "line"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_is_one_line_its_exit_code_and_no_partial_file(
    work: Path, sig: int, code: int, line: str
) -> None:
    out = work / f"signal{int(sig)}"
    out.mkdir()
    argv = [
        "collect",
        "--env",
        ENV_ID,
        "--frames",
        "10000000",
        "--out",
        "big.h5",
        "--num-envs",
        "4",
    ]
    p = subprocess.Popen(
        _command(argv),
        cwd=out,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=terminal_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(out.iterdir()) and time.monotonic() < deadline:  # collecting has begun
            time.sleep(0.2)
        time.sleep(0.5)
        assert p.poll() is None, p.communicate()
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == code, err
    assert said(err) == [f"reprl collect: {line}"], err
    assert "Traceback" not in err
    assert not (out / "big.h5").exists()


class _StopInFinaliser:
    """Stands for a signal that lands while a finaliser runs: its ``__del__`` raises the stop,
    which Python swallows ("Exception ignored in ...")."""

    def __init__(self, stop: type[BaseException]) -> None:
        self.stop = stop

    def __del__(self) -> None:
        raise self.stop


@pytest.mark.parametrize("stop", [cli.Terminated, KeyboardInterrupt], ids=["sigterm", "ctrl-c"])
def test_a_stop_swallowed_by_a_finaliser_is_delivered_again(
    monkeypatch: pytest.MonkeyPatch, stop: type[BaseException]
) -> None:
    # The CI flake of stop 28: SIGTERM landed in a WeakValueDictionary callback, the exception
    # was printed and ignored, and `reprl collect` ran on.
    # Real signals, to this process: SIGTERM's default action for the command's handler to
    # replace, SIGINT with Python's own handler (raises KeyboardInterrupt).
    previous = {
        s: signal.signal(s, h)
        for s, h in [(signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler)]
    }
    delivered: list[type[BaseException]] = []
    hook = sys.unraisablehook
    try:
        with cli._sigterm_stops_cleanly():
            _StopInFinaliser(stop)  # dropped at once: __del__ raises, Python swallows it
            for _ in range(100):  # the redelivered signal lands here
                time.sleep(0.01)
    except BaseException as e:  # the redelivered stop, whatever its class
        delivered.append(type(e))
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    assert delivered == [stop]
    assert sys.unraisablehook is hook  # restored on the way out


def test_other_unraisable_exceptions_go_to_the_previous_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_type))
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_DFL)
    monkeypatch.setattr(signal, "signal", lambda s, h: None)
    with cli._sigterm_stops_cleanly():
        _StopInFinaliser(ValueError)
    assert seen == [ValueError]


# --- help ------------------------------------------------------------------------------------
COMMANDS = [
    "demo",
    "bench-envs",
    "collect",
    "pretrain",
    "probe",
    "pictures",
    "run",
    "train",
    "evaluate",
    "convert-agent",
    "report",
    "sweep",
]


HELPS = {f"help {c}": [c, "--help"] for c in COMMANDS} | {"help": ["--help"]}


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_exits_0(command: str, results) -> None:
    res = results[f"help {command}".strip()]
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: reprl {command}".rstrip())
    assert res.stderr == ""


def test_every_option_has_help_and_shows_its_default() -> None:
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0]
    assert set(sub.choices) == set(COMMANDS)
    for name, sp in sub.choices.items():
        text = " ".join(sp.format_help().split())
        for action in sp._actions:
            assert action.help, (name, action.dest)
            default = action.default
            shown = default is not None and default is not False and default != []
            if action.option_strings and shown and default is not argparse.SUPPRESS:
                assert f"(default: {default})" in text, (name, action.dest)


def test_report_help_offers_baseline(results) -> None:
    text = " ".join(results["help report"].stdout.split())
    assert "--baseline NAME" in text and "paired differences" in text
    assert "% of source" not in text


def _keys(cls: type, prefix: str) -> list[str]:
    """Every leaf field of dataclass ``cls``, dotted (``[]`` for list items)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        if dataclasses.is_dataclass(tp):
            keys += _keys(tp, f"{prefix}{f.name}.")
        elif item is not None and dataclasses.is_dataclass(item):
            keys += _keys(item, f"{prefix}{f.name}[].")
        else:
            keys.append(prefix + f.name)
    return keys


def test_run_help_lists_every_field_and_how_to_rename_and_shrink(results) -> None:
    text = results["help run"].stdout
    from experiments.pipeline import ExperimentConfig

    keys = _keys(ExperimentConfig, "")
    assert "train.timesteps" in keys and "collect.frames" in keys
    for key in keys:
        assert f"  {key} (default: " in text, key
    assert "reprl run name=mytest" in text
    assert "seeds=[0] train.timesteps=20000 evaluate.episodes=8" in text
    # the field docs come from the docstrings: the text of one of them
    assert "training seeds" in text


# --- overrides on the embedded default --------------------------------------------------------
DRY_RUNS = {
    "overrides only": [
        "run",
        "name=x",
        "seeds=[0]",
        "train.timesteps=20000",
        "evaluate.episodes=8",
        "--dry-run",
    ],
    "rename": ["run", "name=mytest", "--dry-run"],
    "options between": ["train", "name=z", "--dry-run", "seeds=[0]"],
    "file then overrides": ["run", "cfg.yaml", "seeds=[3]", "--dry-run"],
    "a file whose name has =": ["evaluate", "a=b.yaml", "--dry-run"],
}


def _resolved(res: subprocess.CompletedProcess[str]) -> dict:
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


def test_overrides_work_on_the_embedded_default(results, work: Path) -> None:
    dry_runs = results
    from experiments.pipeline import default_config

    default = default_config()
    cfg = _resolved(dry_runs["overrides only"])
    assert (cfg["name"], cfg["seeds"]) == ("x", [0])
    assert cfg["train"]["timesteps"] == 20000 and cfg["evaluate"]["episodes"] == 8
    assert cfg["train"]["env_id"] == default.train.env_id  # the rest: the default's
    assert [a["name"] for a in cfg["agents"]] == [a.name for a in default.agents]
    assert _resolved(dry_runs["rename"])["name"] == "mytest"
    assert _resolved(dry_runs["rename"])["seeds"] == default.seeds
    assert _resolved(dry_runs["options between"])["seeds"] == [0]
    both = _resolved(dry_runs["file then overrides"])
    assert (both["name"], both["seeds"]) == ("fromfile", [3])
    assert _resolved(dry_runs["a file whose name has ="])["name"] == "eqfile"
    assert not (work / "runs").exists()  # a dry run writes nothing


# --- evaluate --agent: time limit, JSON, GIF --------------------------------------------------
def test_evaluate_agent_with_time_limit_json_and_video(work: Path) -> None:
    from PIL import Image

    d = work / "eval"
    d.mkdir()
    shutil.copy(AGENT, d / "agent.zip")
    res = reprl(
        [
            "evaluate",
            "--agent",
            "agent.zip",
            "--env",
            ENV_ID,
            "--episodes",
            "2",
            "--num-envs",
            "2",
            "--max-episode-steps",
            "40",
            "--out",
            "r.json",
            "--video",
            "vids",
            "--video-frames",
            "30",
            "--trust-pickle",  # a 0.1.0 zip: its spaces are pickles
        ],
        d,
    )
    assert res.returncode == 0, res.stderr
    result = json.loads((d / "r.json").read_text())[ENV_ID]
    assert result["episodes"] == 2 and max(result["lengths"]) <= 40
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(f"evaluate {ENV_ID} ") and "over 2 episodes" in lines[0]
    assert lines[-1].startswith("evaluate ")
    gif = Path(result["video"])
    gif = gif if gif.is_absolute() else d / gif
    assert gif.name == "agent__reprl_BreakoutStandard-v0.gif"
    with Image.open(gif) as im:
        assert 1 < im.n_frames <= 30 and im.size == (64, 64)


def test_evaluate_time_limit_defaults_to_the_pipelines() -> None:
    from experiments.cli_commands import _default_max_episode_steps
    from experiments.pipeline import EvalStage

    assert _default_max_episode_steps() == EvalStage().env_kwargs["max_episode_steps"]


# --- the other commands, end to end on tiny sizes (in process) --------------------------------
def test_demo_writes_picture_and_summary(tmp_path: Path, capsys) -> None:
    assert cli.main(["demo", "--out", str(tmp_path), "--num-envs", "4", "--steps", "30"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.rindex("}") + 1])
    assert set(summary["variants"]) >= {"standard", "juggling"}
    assert all(v["steps_per_s"] > 0 for v in summary["variants"].values())
    assert (tmp_path / "breakout_variants.png").stat().st_size > 0
    assert json.loads((tmp_path / "demo.json").read_text())["num_envs"] == 4
    assert out.splitlines()[-1].startswith("demo ")


def test_demo_lab_draws_domains_and_scenes(tmp_path: Path, capsys) -> None:
    from PIL import Image

    assert cli.main(["demo", "--lab", "--out", str(tmp_path)]) == 0
    domains = np.asarray(Image.open(tmp_path / "lab_domains.png"))
    # 4 object sets x 8 room looks of 64 x 64 views (3 px frames), drawn at twice the size
    assert domains.shape == (4 * 70 * 2, 8 * 70 * 2, 3)
    red = (domains[..., 0] > 200) & (domains[..., 1] < 60) & (domains[..., 2] < 60)
    frames = red.reshape(4, 140, 8, 140)[:, 0, :, 0]  # each cell's top-left frame pixel
    assert frames.sum() == 8  # the held-out test pairs
    assert Image.open(tmp_path / "lab_scenes.png").size == (7 * 70 * 2, 3 * 70 * 2)
    assert capsys.readouterr().out.splitlines()[-1].startswith("demo ")


def test_pretrain_probe_pictures(work: Path, tmp_path: Path, capsys) -> None:
    data = work / "d.h5"
    run = tmp_path / "vae"
    assert (
        cli.main(
            [
                "pretrain",
                f"dataset={data}",
                f"out={run}",
                "steps=4",
                "batch_size=8",
                "model.latent_dim=6",
                "log_every=2",
            ]
        )
        == 0
    )
    enc = run / "encoder.safetensors"
    assert enc.exists()
    assert capsys.readouterr().out.startswith("pretrain ")
    assert (
        cli.main(
            [
                "probe",
                str(enc),
                str(data),
                "--metrics",
                "probe",
                "mig",
                "--out",
                str(tmp_path / "p.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "paddle_x" in out and "MIG" in out and out.splitlines()[-1].startswith("probe ")
    res = json.loads((tmp_path / "p.json").read_text())
    assert 0.0 <= res["mig"] <= 1.0 and res["encoder"]["latent_dim"] == 6
    assert cli.main(["pictures", str(enc), str(data), "--out", str(tmp_path / "pics")]) == 0
    assert (tmp_path / "pics" / "traversals.png").exists()


def test_error_message_of_files_and_yaml() -> None:
    assert cli.error_message(FileNotFoundError(2, "No such file or directory", "x.h5")) == (
        "x.h5: No such file or directory"
    )
    assert cli.error_message(IsADirectoryError(21, "Is a directory", "runs")) == (
        "runs: Is a directory"
    )
    try:
        yaml.safe_load("a: [1, 2\n")
    except yaml.YAMLError as e:
        msg = cli.error_message(e)
    assert msg.startswith("not valid YAML: expected ',' or ']'") and "line 2" in msg
    assert cli.error_message(ValueError("two\n  lines")) == "two lines"


# --- issue 23: agents opened safely, spaces checked before the first step ----------------------
def _payload_zip(d: Path, mark: Path) -> Path:
    """A plain SB3 zip whose pickled observation space, unpickled, creates ``mark``."""
    from tests.agents.test_saving import payload_zip

    return payload_zip(d, mark)


@pytest.fixture(scope="module")
def agents_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A payload zip, a plain SB3 zip of a 3-action agent, one of a 4-frame-stack agent."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecFrameStack

    import envs

    d = tmp_path_factory.mktemp("agents")
    _payload_zip(d, d / "PWNED")  # also leaves d / "plain.zip"
    env = VecFrameStack(envs.make_vec(ENV_ID, 2, seed=0), 4)
    PPO("CnnPolicy", env, n_steps=8, batch_size=8, device="cpu").save(d / "stack4.zip")
    return d


_ONE = ["--episodes", "1", "--num-envs", "1"]
_PLAIN = ["evaluate", "--agent", "plain.zip", "--trust-pickle", "--env"]
_COLLECT = ["collect", "--frames", "8", "--num-envs", "1", "--policy", "sb3", "--env"]
# name -> (argv, words of the one line)
SAFETY: dict[str, tuple[list[str], list[str]]] = {
    "payload zip to evaluate": (
        ["evaluate", "--agent", "payload.zip", "--env", ENV_ID, *_ONE],
        ["payload.zip", "refusing to unpickle", "arbitrary code", "--trust-pickle"],
    ),
    "payload zip to collect": (
        [*_COLLECT, ENV_ID, "--out", "c.h5", "--model", "payload.zip"],
        ["payload.zip", "refusing to unpickle", "trust_pickle=True"],
    ),
    "payload zip to convert without the opt-in": (
        ["convert-agent", "payload.zip", "safe.zip"],
        ["refusing to unpickle", "--trust-pickle"],
    ),
    "legacy zip to evaluate": (
        ["evaluate", "--agent", str(AGENT), "--env", ENV_ID, *_ONE],
        ["refusing to unpickle", "convert-agent"],
    ),
    "3-action plain zip on ALE (4)": (
        ["evaluate", "--agent", "plain.zip", "--env", "ALE/Breakout-v5", "--trust-pickle", *_ONE],
        ["Discrete(3)", "ALE/Breakout-v5", "Discrete(4)", "expected the same"],
    ),
    "3-action plain zip on CoinRun (15), video": (
        [*_PLAIN, "reprl/CoinRun-v0", *_ONE, "--max-episode-steps", "0", "--video", "vids"],
        ["Discrete(3)", "reprl/CoinRun-v0", "Discrete(15)"],
    ),
    "plain zip mapped by_meaning": (
        [*_PLAIN, "ALE/Breakout-v5", *_ONE, "--action-mapping", "by_meaning"],
        ["Discrete(3)", "no action meanings"],
    ),
    "4-frame agent on single frames": (
        ["evaluate", "--agent", "stack4.zip", "--env", ENV_ID, "--trust-pickle", *_ONE],
        ["(12, 64, 64) uint8", "(64, 64, 3) uint8", "frame_stack"],
    ),
    "3-action plain zip exploring CoinRun": (
        [*_COLLECT, "reprl/CoinRun-v0", "--out", "c2.h5", "--model", "plain.zip", "--trust-pickle"],
        ["Discrete(3)", "Discrete(15)"],
    ),
    "convert a zip onto itself": (
        ["convert-agent", "plain.zip", "plain.zip", "--trust-pickle"],
        ["other than the input"],
    ),
}


@pytest.fixture(scope="module")
def safety(agents_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    return run_all({k: argv for k, (argv, _) in SAFETY.items()}, agents_dir)


@pytest.mark.parametrize("case", list(SAFETY))
def test_unsafe_or_mismatched_agents_are_one_line_and_exit_2(
    case: str, safety, agents_dir: Path
) -> None:
    argv, words = SAFETY[case]
    res = safety[case]
    lines = said(res.stderr)
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"reprl {argv[0]}: ") and "Traceback" not in res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (agents_dir / "PWNED").exists()  # no payload ran
    assert not any((agents_dir / n).exists() for n in ("c.h5", "c2.h5", "safe.zip", "vids"))


def test_the_payload_runs_only_with_the_opt_in_and_convert_makes_zips_safe(
    agents_dir: Path, safety, tmp_path: Path
) -> None:
    """After the refusals above: ``--trust-pickle`` opens the payload zip (and its payload does
    run: it is real); a converted legacy zip evaluates without the opt-in."""
    d = tmp_path
    for name in ("payload.zip", "plain.zip"):
        shutil.copy(agents_dir / name, d / name)
    res = reprl(["evaluate", "--agent", "payload.zip", "--env", ENV_ID, "--trust-pickle", *_ONE], d)
    assert res.returncode == 0, res.stderr
    assert (agents_dir / "PWNED").exists()  # where the payload was told to write
    (agents_dir / "PWNED").unlink()

    res = reprl(["convert-agent", str(AGENT), "safe.zip", "--trust-pickle"], d)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("convert-agent ") and "safe.zip" in res.stdout
    res = reprl(["evaluate", "--agent", "safe.zip", "--env", ENV_ID, *_ONE, "--out", "r.json"], d)
    assert res.returncode == 0, res.stderr
    assert json.loads((d / "r.json").read_text())[ENV_ID]["episodes"] == 1


def test_evaluation_and_video_check_spaces_before_the_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    import envs
    from envs.errors import ReprlError
    from experiments.evaluation import evaluate_agent
    from experiments.video import record_gif

    env = envs.make_vec(ENV_ID, 2, seed=0)
    model = PPO("CnnPolicy", env, n_steps=8, batch_size=8, device="cpu")
    steps: list = []
    monkeypatch.setattr(DummyVecEnv, "step_async", lambda self, a: steps.append(a))
    kw = {"episodes": 1, "num_envs": 1, "deterministic": True, "seed": 0}
    with pytest.raises(ReprlError, match=r"Discrete\(3\), the target reprl/CoinRun-v0"):
        evaluate_agent(model, "reprl/CoinRun-v0", **kw)
    with pytest.raises(ReprlError, match=r"Discrete\(3\), the target ALE/Breakout-v5"):
        record_gif(model, "ALE/Breakout-v5", tmp_path / "v.gif")
    with pytest.raises(ReprlError, match=r"takes \(3, 64, 64\) uint8, .* \(64, 64, 6\)"):
        evaluate_agent(model, ENV_ID, env_kwargs={"frame_stack": 2}, **kw)
    assert steps == [] and not (tmp_path / "v.gif").exists()
    monkeypatch.undo()
    # meanings recorded: mapped by meaning onto ALE's 4 actions, the episode runs
    meanings = list(envs.action_meanings(ENV_ID))
    res = evaluate_agent(
        model,
        "ALE/Breakout-v5",
        env_kwargs={"max_episode_steps": 20},
        agent_meanings=meanings,
        action_mapping="by_meaning",
        **kw,
    )
    assert len(res) == 1 and res[0][1] <= 20


def test_a_closed_stdout_is_silent_exit_141_not_a_traceback(tmp_path: Path) -> None:
    # `reprl run --dry-run | head`: here the reader has gone before the first line
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            _command(["run", "--dry-run"]),
            cwd=tmp_path,
            env=_env(),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == cli.EXIT_BROKEN_PIPE == 141
