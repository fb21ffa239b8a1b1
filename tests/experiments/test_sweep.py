"""``reprl sweep``: trials validated before anything starts, shared upstream stages computed
once, a 2-trial local Ray Tune sweep end to end, resume, the merged report, and Ray kept out
of every import but the sweep's."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.config import ConfigError, to_dict
from experiments.sweep import (
    LOG_FILE,
    TRIAL_FILE,
    check_address,
    load_sweep,
    merge_report,
    plan,
    read_log,
    run_shared,
    run_sweep,
    run_trial,
)
from tests.experiments.test_pipeline import tiny

ROOT = Path(__file__).resolve().parents[2]


def write_base(tmp: Path) -> Path:
    """The tests' tiny experiment as a YAML file (``base: none``: nothing of the default)."""
    cfg = to_dict(tiny(tmp / "unused"))
    cfg["evaluate"]["video"] = False
    cfg["probe"]["frames"] = 128
    del cfg["name"], cfg["root"]
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump({"base": "none", **cfg}, sort_keys=False))
    return path


def write_sweep(tmp: Path, grid: dict, name: str = "sw", **extra) -> Path:
    base = write_base(tmp)
    data = {"name": name, "root": str(tmp / "runs"), "base": str(base), "grid": grid, **extra}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reprl(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


# --- no ray where it is not needed ----------------------------------------------------------
def test_importing_reprl_never_imports_ray() -> None:
    code = (
        "import sys, experiments, experiments.cli, experiments.pipeline, experiments.sweep, "
        "experiments.report, agents, representations, envs; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_only_the_sweep_imports_ray_and_only_inside_functions() -> None:
    found = []
    for package in ("envs", "representations", "agents", "experiments"):
        for f in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(f.read_text())
            top = {id(n) for n in tree.body}
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n == "ray" or n.startswith("ray.") for n in names):
                    found.append((f.relative_to(ROOT).as_posix(), id(node) in top))
    assert found and {f for f, _ in found} == {"experiments/sweep/run.py"}
    assert not any(at_top for _, at_top in found)


# --- bad input: one line, before anything starts -----------------------------------------------
@pytest.mark.parametrize(
    ("grid", "extra", "message"),
    [
        ({"train.no_such_field": [1, 2]}, {}, "grid.train.no_such_field: unknown key"),
        ({}, {}, "empty grid"),
        ({"seeds": []}, {}, "grid.seeds: expected a non-empty list"),
        ({"train.timesteps": ["many"]}, {}, "grid.train.timesteps"),
        ({"name": ["a", "b"]}, {}, "set by the sweep"),
        (
            {"seeds": [[0]]},
            {"random": {"num_samples": 1, "space": {"x.y": {"normal": [0, 1]}}}},
            "random.space.x.y",
        ),
        ({"seeds": [[0]]}, {"bogus": 1}, "unknown key 'bogus'"),
    ],
)
def test_bad_sweeps_are_refused_before_anything_is_written(
    tmp_path: Path, grid: dict, extra: dict, message: str
) -> None:
    path = write_sweep(tmp_path, grid, **extra)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        run_sweep(load_sweep(path), sweep_file=str(path))
    assert not (tmp_path / "runs").exists()


def test_a_trial_invalid_only_in_combination_is_named(tmp_path: Path) -> None:
    # each value alone is valid; the PPO batch arithmetic fails for one combination
    path = write_sweep(tmp_path, {"train.num_envs": [2, 3], "train.ppo.batch_size": [32, 64]})
    with pytest.raises(ConfigError, match=r"trial t003-num_envs=3-batch_size=64 .*train\.ppo"):
        plan(load_sweep(path), str(path))


def test_an_address_that_does_not_answer_is_refused_quickly(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(ConfigError, match=f"--address 127.0.0.1:{port}: no Ray cluster answers"):
        check_address(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        check_address("nowhere")
    path = write_sweep(tmp_path, {"seeds": [[0], [1]]})
    with pytest.raises(ConfigError, match="no Ray cluster answers"):
        run_sweep(load_sweep(path), address=f"127.0.0.1:{port}")
    assert not (tmp_path / "runs").exists()


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    port = free_port()
    unknown = write_sweep(tmp_path, {"agents.0.no_such": [1]}, name="u")
    empty = write_sweep(tmp_path, {}, name="e")
    good = write_sweep(tmp_path, {"seeds": [[0], [1]]}, name="g")
    for args, expected in [
        ((str(unknown),), "grid.agents.0.no_such: unknown key"),
        ((str(empty),), "empty grid"),
        ((str(good), "--address", f"127.0.0.1:{port}"), "no Ray cluster answers"),
        ((str(tmp_path / "missing.yaml"),), "found no such file"),
    ]:
        r = reprl("sweep", *args, cwd=ROOT)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("reprl sweep: "), r.stderr
        assert expected in r.stderr
    assert not (tmp_path / "runs").exists()


def test_dry_run_lists_the_trials_and_writes_nothing(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, {"seeds": [[0], [1]], "encoders.1.model.latent_dim": [4, 6]})
    r = reprl("sweep", str(path), "--dry-run", cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "4 valid trials, 2 shared upstream group(s)" in r.stdout
    assert "t003-seeds=1-latent_dim=6" in r.stdout
    assert not (tmp_path / "runs").exists()


def test_random_draws_are_reproducible(tmp_path: Path) -> None:
    space = {
        "encoders.0.lr": {"loguniform": [1e-4, 1e-3]},
        "train.ppo.ent_coef": {"choice": [0.0, 0.01]},
    }
    path = write_sweep(
        tmp_path, {"seeds": [[0]]}, random={"num_samples": 3, "seed": 5, "space": space}
    )
    a, b = (plan(load_sweep(path)) for _ in range(2))
    assert [t.params for t in a.trials] == [t.params for t in b.trials] and len(a.trials) == 3
    assert all(1e-4 <= t.params["encoders.0.lr"] <= 1e-3 for t in a.trials)
    assert len(a.groups) == 3  # another lr, another encoder


# --- a real sweep on Ray -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def swept(local_ray, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    path = write_sweep(tmp, {"seeds": [[0], [1]]})
    cfg = load_sweep(path)
    lines: list[str] = []
    summary = run_sweep(cfg, sweep_file=str(path), on_line=lines.append)
    return cfg, path, summary, lines


def test_a_two_trial_local_sweep_runs_end_to_end(swept) -> None:
    cfg, _, summary, lines = swept
    d = Path(cfg.root) / cfg.name
    assert summary["ran"] == 2 and summary["skipped"] == 0 and not summary["failed"]
    for tid in ("t000-seeds=0", "t001-seeds=1"):
        run_dir = d / "trials" / tid
        assert (run_dir / "report" / "report.md").is_file()
        assert json.loads((run_dir / TRIAL_FILE).read_text())["status"] == "finished"
    assert sum(line.startswith("trial ") and "finished on node" in line for line in lines) == 2
    state = json.loads((d / "sweep.json").read_text())
    assert {t["status"] for t in state["trials"].values()} == {"finished"}


def test_shared_artefacts_are_computed_once(swept) -> None:
    cfg, _, _, _ = swept
    d = Path(cfg.root) / cfg.name
    log = read_log(d)
    shared = [e for e in log if e["event"] == "shared"]
    assert len(shared) == 1
    assert shared[0]["stages"] == {"collect": "ran", "pretrain": "ran", "probe": "ran"}
    trials = [e for e in log if e["event"] == "trial" and e["status"] == "ran"]
    assert len(trials) == 2
    for e in trials:  # every trial found the dataset, the encoders and the probes finished
        assert {e["stages"][s] for s in ("collect", "pretrain", "probe")} == {"reused"}
        assert e["stages"]["train"] == "ran"
    # one dataset on disk, hard-linked into each trial
    shared_h5 = d / "shared" / shared[0]["group"] / "collect" / "explore.h5"
    assert shared_h5.stat().st_nlink == 3


def test_the_merged_report_links_every_trial(swept) -> None:
    cfg, _, summary, _ = swept
    d = Path(cfg.root) / cfg.name
    text = Path(summary["report"]).read_text()
    assert "(../trials/t000-seeds=0/)" in text and "(../trials/t001-seeds=1/)" in text
    assert "[report](../trials/t001-seeds=1/report/report.md)" in text
    results = (d / "report" / "results.csv").read_text().splitlines()
    frozen = [r for r in results if r.startswith("frozen,reprl/BreakoutJuggling-v0,true,mean,")]
    assert len(frozen) == 1 and frozen[0].split(",")[7] == "2"  # num_seeds: both trials
    assert (d / "report" / "trials.csv").is_file()


def test_a_restarted_sweep_skips_finished_trials(swept) -> None:
    cfg, path, _, _ = swept
    d = Path(cfg.root) / cfg.name
    n = len(read_log(d))
    again = run_sweep(load_sweep(path), sweep_file=str(path), on_line=lambda _: None)
    assert again["ran"] == 0 and again["skipped"] == 2
    new = read_log(d)[n:]
    assert [e["status"] for e in new if e["event"] == "trial"] == ["skipped (finished)"] * 2
    assert not [e for e in new if e["event"] == "shared"]
    # a trial killed before it finished (no marker) runs again; its stages are reused
    (d / "trials" / "t001-seeds=1" / TRIAL_FILE).unlink()
    n = len(read_log(d))
    third = run_sweep(load_sweep(path), sweep_file=str(path), on_line=lambda _: None)
    assert third["ran"] == 1 and third["skipped"] == 1
    ran = [e for e in read_log(d)[n:] if e["event"] == "trial" and e["status"] == "ran"]
    assert [e["trial"] for e in ran] == ["t001-seeds=1"]
    assert set(ran[0]["stages"].values()) <= {"reused", "ran"}
    assert ran[0]["stages"]["train"] == "reused"


def test_reprl_report_merges_a_sweep_directory(swept, tmp_path: Path) -> None:
    cfg, _, _, _ = swept
    r = reprl("report", str(Path(cfg.root) / cfg.name), "--out", str(tmp_path / "m"), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m" / "sweep.md").is_file() and "t000-seeds=0" in r.stdout


# --- the merged report over swept encoders ---------------------------------------------------
@pytest.mark.slow
def test_agents_that_a_swept_key_changes_are_named_by_it(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, {"encoders.1.model.latent_dim": [4, 6], "seeds": [[0]]})
    p = plan(load_sweep(path), str(path))
    p.directory.mkdir(parents=True)
    run_shared(p, on_line=lambda _: None)
    from experiments.sweep.run import _share_into, _trial_spec, _write_state

    _write_state(p, {})
    for t in p.trials:
        _share_into(p, t)
        run_trial(_trial_spec(p, t))
    _write_state(p, {t.id: "finished" for t in p.trials})
    summary = merge_report(p.directory)
    assert set(summary["agents"]) == {
        "pixels",
        "frozen@latent_dim=4",
        "frozen@latent_dim=6",
        "random",
    }
    assert len([e for e in read_log(p.directory) if e["event"] == "shared"]) == 2
    assert LOG_FILE == "sweep.jsonl"


# --- a cluster of two Ray nodes on this machine ------------------------------------------------
@pytest.mark.slow
def test_a_sweep_runs_on_a_two_node_cluster_given_its_address(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=1)
    try:
        path = write_sweep(tmp_path, {"seeds": [[0], [1]]}, name="cl")
        r = reprl("sweep", str(path), "--address", cluster.address, cwd=ROOT, timeout=500)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "2 ran, 0 skipped (finished)" in r.stdout
        ran = [e for e in read_log(tmp_path / "runs" / "cl") if e.get("status") == "ran"]
        # one CPU per node and per trial: the two trials ran at once, one on each node
        assert len(ran) == 2 and len({e["node_id"] for e in ran}) == 2
        nodes = {n.node_id for n in [cluster.head_node, *cluster.worker_nodes]}
        assert {e["node_id"] for e in ran} == nodes
    finally:
        cluster.shutdown()
