"""Runs at once (``jobs``): worker processes, their threads, and runs trained or evaluated in a
worker equal to the same runs done here one after another."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from agents import load_agent
from envs.errors import ReprlError
from envs.storage.files import is_no_space, no_space
from experiments.layout import RunLayout
from experiments.parallel import bar_position, run_jobs, threads_per_job
from experiments.pipeline import run
from experiments.stages.probe import stage_probe
from experiments.stages.train import train_key
from tests.experiments.test_pipeline import tiny


def square_here(x: int) -> tuple[int, int, int, int]:
    """What a job sees: its process, torch threads, bar line, and its result."""
    return os.getpid(), torch.get_num_threads(), bar_position(), x * x


def fail_on_two(x: int) -> int:
    if x == 2:
        raise ReprlError(f"job {x} failed")
    return x


def disk_full(path: str) -> None:
    raise no_space(path)


@pytest.mark.parametrize(
    ("jobs", "cpus", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (3, 16, 5)]
)
def test_threads_share_out_the_cores(jobs: int, cpus: int, threads: int) -> None:
    assert threads_per_job(jobs, cpus) == threads


def test_one_job_at_a_time_runs_here_in_order() -> None:
    out = run_jobs(square_here, [3, 1, 2], 1)
    assert [r[3] for r in out] == [9, 1, 4]
    assert {r[0] for r in out} == {os.getpid()}
    assert {r[2] for r in out} == {0}


def test_workers_return_in_order_with_shared_out_threads() -> None:
    out = run_jobs(square_here, list(range(5)), 2)
    assert [r[3] for r in out] == [0, 1, 4, 9, 16]
    pids = {r[0] for r in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {r[1] for r in out} == {threads_per_job(2)}
    assert {r[2] for r in out} <= {1, 2}  # each worker's bars on a line of its own


def test_a_lone_job_still_gets_a_workers_threads() -> None:
    [(pid, threads, position, _)] = run_jobs(square_here, [4], 2)
    assert pid != os.getpid() and threads == threads_per_job(2) and position == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_each_finished_job_is_reported_here(workers: int) -> None:
    seen: list[tuple[int, int]] = []  # (the reporting process, the result)
    out = run_jobs(square_here, [3, 1, 2], workers, done=lambda r: seen.append((os.getpid(), r[3])))
    assert sorted(r for _, r in seen) == [1, 4, 9] and [r[3] for r in out] == [9, 1, 4]
    assert {pid for pid, _ in seen} == {os.getpid()}


def test_a_failing_job_raises_here() -> None:
    with pytest.raises(ReprlError, match="job 2 failed"):
        run_jobs(fail_on_two, [0, 1, 2, 3], 2)


def test_a_workers_full_disk_arrives_whole() -> None:
    """The CLI's one line for a full disk needs the errno and the file: both survive."""
    with pytest.raises(OSError) as e:
        run_jobs(disk_full, ["runs/x/train/a__0/agent.zip", "b"], 2)
    assert is_no_space(e.value) and e.value.filename in ("runs/x/train/a__0/agent.zip", "b")


def test_jobs_is_validated(tmp_path: Path) -> None:
    from experiments.config import ConfigError

    cfg = dataclasses.replace(tiny(tmp_path), jobs=0)
    with pytest.raises(ConfigError, match="jobs: expected an integer >= 1, got 0"):
        run(cfg)
    assert not (tmp_path / "tiny").exists()


def test_jobs_keys_a_seconds_budget_only(tmp_path: Path) -> None:
    cfg = tiny(tmp_path)
    a = cfg.agents[0]
    two = dataclasses.replace(cfg, jobs=2)
    assert train_key(two, a, 0) == train_key(cfg, a, 0)  # steps: the same run either way
    secs = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, budget="seconds"))
    secs_two = dataclasses.replace(secs, jobs=2)
    assert "jobs" not in train_key(secs, a, 0)
    assert train_key(secs_two, a, 0)["jobs"] == 2  # the cores its seconds buy


def _params(zip_path: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_agent(zip_path).policy.state_dict().items()}


def test_runs_in_workers_equal_runs_here(tmp_path: Path) -> None:
    """Two seeds x two agents trained and evaluated two at a time, and two encoders probed two
    at a time, equal the same runs done here, one after another, on the workers' one torch
    thread: same weights, same episodes, same probe scores."""
    base = dataclasses.replace(tiny(tmp_path), seeds=[0, 1])
    base = dataclasses.replace(base, evaluate=dataclasses.replace(base.evaluate, video=False))
    par = dataclasses.replace(base, name="par", jobs=2)
    run(par)
    before = torch.get_num_threads()
    torch.set_num_threads(threads_per_job(2))
    try:
        seq = dataclasses.replace(base, name="seq")
        run(seq)
    finally:
        torch.set_num_threads(before)
    p_dir, s_dir = tmp_path / "par", tmp_path / "seq"
    runs = sorted(d.name for d in (p_dir / "train").iterdir())
    assert runs == ["frozen__0", "frozen__1", "pixels__0", "pixels__1"]
    for r in runs:
        a, b = (
            _params(p_dir / "train" / r / "agent.zip"),
            _params(s_dir / "train" / r / "agent.zip"),
        )
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=f"{r} {k}")
    evals = sorted(p.name for p in (p_dir / "eval").glob("*.csv"))
    assert evals == [f"{r}.csv" for r in runs] + ["random__0.csv", "random__1.csv"]
    for name in evals:
        assert (p_dir / "eval" / name).read_text() == (s_dir / "eval" / name).read_text()
    # the probes, two at a time, score as the same encoders probed here on one thread
    par_layout, here = RunLayout(p_dir), tmp_path / "probed_here"
    encoders = {name: par_layout.checkpoint(name) for name in ("dae", "bvd")}
    torch.set_num_threads(threads_per_job(2))
    try:
        files = stage_probe(dataclasses.replace(par, jobs=1), here, par_layout.dataset, encoders)
    finally:
        torch.set_num_threads(before)
    for name, path in files.items():
        a = json.loads(par_layout.probe_file(name).read_text())
        b = json.loads(path.read_text())
        for record in (a, b):
            for key in ("seconds", "checkpoint", "dataset"):  # paths are relative to the run
                record.pop(key)
        assert a == b and a["encoder"] == name
    # a second run reuses every stage but the report, in workers or not
    stages = run(par)["stages"]
    assert {k: v["status"] for k, v in stages.items() if k != "report"} == dict.fromkeys(
        ("collect", "pretrain", "probe", "train", "evaluate"), "reused"
    )
