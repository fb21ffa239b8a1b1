"""Running a sweep: the shared upstream stages in the driver, then the trials on Ray Tune;
the log and the state file."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envs.storage.files import atomic_write_json
from experiments.config import ConfigError, to_dict, write_yaml
from experiments.sweep.config import (
    LOG_FILE,
    RAY_HINT,
    SHARED_STAGES,
    SWEEP_FILE,
    TRIAL_FILE,
    SweepConfig,
)
from experiments.sweep.merge import merge_report
from experiments.sweep.plan import Plan, Trial, plan


# --- the log and the state -------------------------------------------------------------------
def log_event(directory: str | os.PathLike[str], event: dict[str, Any]) -> None:
    """Appends one JSON line to ``sweep.jsonl`` (one ``write`` of one line: processes of the
    driver and of the trials may append at once)."""
    line = json.dumps({"time": round(time.time(), 3), **event}) + "\n"
    fd = os.open(Path(directory) / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_log(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every event of ``sweep.jsonl`` (empty if none)."""
    f = Path(directory) / LOG_FILE
    if not f.is_file():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def trial_finished(trial: Trial) -> bool:
    """Whether the trial finished with the same resolved config (its ``sweep_trial.json``)."""
    try:
        rec = json.loads((Path(trial.run_dir) / TRIAL_FILE).read_text())
    except (OSError, ValueError):
        return False
    return rec.get("status") == "finished" and rec.get("key") == trial.key


def _write_state(p: Plan, status: dict[str, str], extra: dict[str, Any] | None = None) -> None:
    trials = {
        t.id: {
            "params": t.params,
            "run_dir": os.path.relpath(t.run_dir, p.directory),
            "group": t.group,
            "key": t.key,
            "status": status.get(t.id, "pending"),
        }
        for t in p.trials
    }
    atomic_write_json(
        p.directory / SWEEP_FILE,
        {"name": p.config.name, "config": to_dict(p.config), "trials": trials, **(extra or {})},
    )


# --- shared stages ---------------------------------------------------------------------------
def _link_tree(src: Path, dst: Path) -> None:
    """``dst`` becomes a copy of ``src`` made of hard links (plain copies across devices)."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=link)


def run_shared(p: Plan, on_line: Callable[[str], None] = print) -> dict[str, dict[str, str]]:
    """Runs (or reuses) the shared stages of every upstream group once; logs each group.

    Returns:
        group -> stage -> ``ran`` | ``reused`` | ``partly reused``.
    """
    from experiments.experiment import load_experiment
    from experiments.pipeline import run

    base = None if p.config.base == "default" else p.config.base
    out: dict[str, dict[str, str]] = {}
    for group, overrides in p.groups.items():
        exp = load_experiment(base, overrides)
        statuses: dict[str, str] = {}

        def on_stage(
            stage: str, seconds: float, status: str, s: dict = statuses, g: str = group
        ) -> None:
            s[stage] = status
            on_line(f"shared {g} {stage} {seconds:.1f} s: {status}")

        run(exp, until="probe", on_stage=on_stage)
        users = [t.id for t in p.trials if t.group == group]
        log_event(
            p.directory, {"event": "shared", "group": group, "stages": statuses, "trials": users}
        )
        out[group] = statuses
    return out


def _share_into(p: Plan, trial: Trial) -> None:
    if trial.group is None:
        return
    src = p.directory / "shared" / trial.group
    for stage in SHARED_STAGES:
        if (src / stage).is_dir():
            _link_tree(src / stage, Path(trial.run_dir) / stage)


# --- one trial (in a Ray worker) ---------------------------------------------------------------
def run_trial(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs one trial's experiment into its run directory; logs it and marks it finished.

    Args:
        spec: ``{"id", "overrides", "base", "run_dir", "key", "sweep_dir", "cpu"}``.

    Returns:
        ``{"trial", "status", "key", "stages", "seconds", "host", "node_ip", "node_id",
        "pid"}``.
    """
    import torch

    from experiments.experiment import load_experiment
    from experiments.pipeline import run

    cores = max(1, int(spec.get("cpu", 1)))
    torch.set_num_threads(cores)
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = load_experiment(spec["base"], spec["overrides"])
    # a trial's runs at once share its cores, never more runs than it has cores
    cfg = dataclasses.replace(cfg, jobs=min(cfg.jobs, cores))
    with (
        (run_dir / "trial.log").open("a") as f,
        contextlib.redirect_stdout(f),
        contextlib.redirect_stderr(f),
    ):
        summary = run(cfg)
    where = {"host": socket.gethostname(), **_ray_node(), "pid": os.getpid()}
    result = {
        "trial": spec["id"],
        "status": "finished",
        "key": spec["key"],
        "stages": {k: v["status"] for k, v in summary["stages"].items()},
        "seconds": round(time.perf_counter() - t0, 1),
        **where,
    }
    atomic_write_json(run_dir / TRIAL_FILE, result)
    log_event(spec["sweep_dir"], {"event": "trial", **{**result, "status": "ran"}})
    return result


def _ray_node() -> dict[str, str | None]:
    """The Ray node this process runs on: ``{"node_ip", "node_id"}`` (None outside Ray)."""
    try:
        import ray

        if not ray.is_initialized():
            raise RuntimeError
        return {
            "node_ip": ray.util.get_node_ip_address(),
            "node_id": ray.get_runtime_context().get_node_id(),
        }
    except Exception:  # a plain call, outside Ray
        return {"node_ip": None, "node_id": None}


def _trainable(config: dict[str, Any]) -> None:
    """Ray Tune's function trainable: one trial (its spec in ``config["trial"]``), its result
    reported once."""
    result = run_trial(config["trial"])
    try:
        from ray.tune import report  # Ray >= 2.40
    except ImportError:  # Ray 2.9 - 2.39
        from ray.train import report
    report(result)


# --- Ray ---------------------------------------------------------------------------------------
def check_address(address: str, timeout: float = 5.0) -> None:
    """Refuses a cluster address that does not answer, before anything runs.

    ``host:port`` (or ``ray://host:port``) must accept a TCP connection; ``auto`` is checked
    by Ray itself (:func:`start_ray`).

    Raises:
        ConfigError: one line naming the address and what went wrong.
    """
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, colon, port = hostport.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ConfigError(f"--address: expected HOST:PORT (or auto), got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({why}); start one with "
            "`ray start --head` and pass the address it prints"
        ) from None


def start_ray(address: str | None) -> bool:
    """Connects to the cluster at ``address`` or starts Ray on this machine; returns whether
    this call started it (and so should shut it down). An initialised Ray is used as it is.

    Raises:
        ConfigError: no Ray installed, or no cluster at ``address``.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_HINT) from None
    if ray.is_initialized():
        return False
    if address is not None:
        check_address(address)
    try:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except ConnectionError as e:
        raise ConfigError(f"--address {address}: {' '.join(str(e).split())}") from None
    return True


def _trial_spec(p: Plan, t: Trial) -> dict[str, Any]:
    return {
        "id": t.id,
        "overrides": t.overrides,
        "base": None if p.config.base == "default" else p.config.base,
        "run_dir": t.run_dir,
        "key": t.key,
        "sweep_dir": str(p.directory),
        "cpu": p.config.resources.cpu,
    }


def _tune(p: Plan, todo: list[Trial], on_line: Callable[[str], None]) -> dict[str, str]:
    """Runs ``todo`` as Ray Tune trials; returns trial id -> ``failed: why`` of those that
    raised."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables on stdout
    from ray import tune

    class Lines(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            r = trial.last_result or {}
            on_line(
                f"trial {r.get('trial', trial.trial_id)} {r.get('seconds', 0.0):.1f} s: "
                f"finished on node {(r.get('node_id') or '?')[:8]} ({r.get('node_ip')})"
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            where = getattr(trial, "path", None) or getattr(trial, "local_path", "")
            on_line(f"trial {trial.config['trial']['id']}: failed (see {where})")

    try:  # Ray >= 2.40
        from ray.tune import FailureConfig, RunConfig
    except ImportError:
        from ray.train import FailureConfig, RunConfig

    res = p.config.resources
    trainable = tune.with_resources(_trainable, {"cpu": res.cpu, "gpu": res.gpu})
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([_trial_spec(p, t) for t in todo])},
        tune_config=tune.TuneConfig(max_concurrent_trials=p.config.max_concurrent or None),
        run_config=RunConfig(
            name=time.strftime("tune_%Y%m%d-%H%M%S"),
            storage_path=str(p.directory),
            verbose=0,
            callbacks=[Lines()],
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    grid = tuner.fit()
    status: dict[str, str] = {}
    for r in grid:
        tid = r.config["trial"]["id"]
        if r.error is not None:
            why = " ".join(str(r.error).split())[:300]
            status[tid] = f"failed: {why}"
            log_event(
                p.directory, {"event": "trial", "trial": tid, "status": "failed", "error": why}
            )
    return status


def run_sweep(
    cfg: SweepConfig,
    *,
    address: str | None = None,
    sweep_file: str | None = None,
    report: bool = True,
    on_line: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Plans, validates, shares, runs and reports a sweep (resuming a previous one).

    Args:
        cfg: the sweep.
        address: a Ray cluster (``host:port``, ``ray://host:port`` or ``auto``); None: Ray on
            this machine (or the Ray this process already initialised).
        sweep_file: the YAML it came from (error messages name it).
        report: end with the merged report (:func:`merge_report`).
        on_line: prints one progress line.

    Returns:
        ``{"directory", "trials": {id: status}, "ran", "skipped", "failed", "report"}``.

    Raises:
        ConfigError: an invalid trial, no Ray, an address that does not answer: before any
            trial starts (and before anything is written).
    """
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ConfigError(RAY_HINT)
    p = plan(cfg, sweep_file)
    if address is not None:
        check_address(address)
    status = {t.id: "finished" for t in p.trials if trial_finished(t)}
    todo = [t for t in p.trials if t.id not in status]
    started = start_ray(address) if todo else False  # a cluster that fails: before any work
    try:
        p.directory.mkdir(parents=True, exist_ok=True)
        write_yaml(p.directory / "sweep.yaml", to_dict(cfg))
        log_event(
            p.directory,
            {"event": "start", "trials": len(p.trials), "todo": len(todo), "address": address},
        )
        for t in p.trials:
            if t.id in status:
                event = {"event": "trial", "trial": t.id, "status": "skipped (finished)"}
                log_event(p.directory, event)
                on_line(f"trial {t.id}: skipped (finished)")
        _write_state(p, status)
        if todo:
            needed = {t.group for t in todo}
            groups = {g: o for g, o in p.groups.items() if g in needed}
            run_shared(Plan(p.config, p.directory, todo, groups), on_line)
            for t in todo:
                _share_into(p, t)
            errors = _tune(p, todo, on_line)
            for t in todo:  # the trial's own record says whether it finished
                status[t.id] = "finished" if trial_finished(t) else errors.get(t.id, "unfinished")

    finally:
        if started:
            import ray

            ray.shutdown()
    _write_state(p, status)
    failed = {k: v for k, v in status.items() if v != "finished"}
    out: dict[str, Any] = {
        "directory": str(p.directory),
        "trials": status,
        "ran": len(todo) - len(failed),
        "skipped": len(p.trials) - len(todo),
        "failed": failed,
        "report": None,
    }
    log_event(
        p.directory,
        {"event": "end", **{k: out[k] for k in ("ran", "skipped")}, "failed": len(failed)},
    )
    if report and len(failed) < len(p.trials):  # a report over the trials that finished
        out["report"] = merge_report(p.directory)["sweep_report"]
    return out
