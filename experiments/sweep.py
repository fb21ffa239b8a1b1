"""Sweeps: many ``reprl run`` flows (seeds x encoders x domains) as Ray Tune trials.

A sweep config (YAML) names an experiment (``base``), dotted ``overrides`` for every trial and
a ``grid`` (and/or ``random`` draws) of dotted keys of :class:`ExperimentConfig`::

    name: beta_sweep
    root: runs
    base: default                    # or the path of an experiment YAML
    overrides: [train.timesteps=50000]
    grid:
      seeds: [[0], [1], [2]]
      encoders.1.model.beta: [1, 4]
    random:                          # optional: draws on top of every grid point
      num_samples: 2
      space: {encoders.0.lr: {loguniform: [1.0e-4, 1.0e-3]}}
    resources: {cpu: 1, gpu: 0}

Each trial is one :func:`experiments.pipeline.run` into its own run directory
``<root>/<name>/trials/<trial>/``. Every trial's full config is loaded and validated before
Ray starts anything. What trials have in common is computed once, in the driver: the collect,
pretrain and probe stages of every distinct upstream config run under
``<root>/<name>/shared/<group>/`` and are hard-linked (copied across file systems) into the
trials' run directories, where the content-keyed stages find them finished and reuse them.
The trials (train, evaluate, report) then run on Ray Tune (``tune.Tuner`` over a function
trainable, ``tune.with_resources``), locally or on a cluster given its address.

Files under ``<root>/<name>/``: ``sweep.yaml`` (the sweep config), ``sweep.json`` (state: every
trial's params, run directory and status; written atomically), ``sweep.jsonl`` (the log, one
JSON line per shared stage group, trial run or skipped, for counting), ``shared/``,
``trials/<trial>/`` (each with ``sweep_trial.json`` once finished and ``trial.log``, the
trial's stdout and stderr), ``tune/`` (Ray Tune's experiment) and ``report/`` (the merged
report, :func:`merge_report`).

Resume: a trial whose ``sweep_trial.json`` records the same resolved config is finished and
skipped (logged ``skipped (finished)``); the others run again, their finished stages reused.

Only this module imports ray, and only inside functions: ``import experiments`` never does.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.storage.files import atomic_write_json, atomic_write_text
from experiments.config import ConfigError, build, read_yaml, to_dict, write_yaml

SWEEP_FILE = "sweep.json"
LOG_FILE = "sweep.jsonl"
TRIAL_FILE = "sweep_trial.json"
SHARED_STAGES = ("collect", "pretrain", "probe")
"""The upstream stages trials share: run once per distinct upstream config, in the driver."""

RAY_HINT = 'reprl sweep needs Ray: pip install -e ".[ray]"'


@dataclass
class Resources:
    """What one trial holds on its Ray node.

    Attributes:
        cpu: CPU cores per trial, > 0 (torch uses as many threads).
        gpu: GPUs per trial, >= 0; a fraction shares a GPU among trials (0.5: two per GPU).
    """

    cpu: float = 1.0
    gpu: float = 0.0


@dataclass
class RandomSearch:
    """Random draws on top of the grid (every grid point is repeated ``num_samples`` times,
    each with its own draw; Ray Tune's ``num_samples`` semantics).

    Attributes:
        num_samples: draws per grid point, >= 0 (0: grid only).
        seed: seed of the draws (a restarted sweep draws the same trials).
        space: dotted key -> ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``,
            ``{randint: [lo, hi]}`` (hi excluded) or ``{choice: [values...]}``.
    """

    num_samples: int = 0
    seed: int = 0
    space: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepConfig:
    """A sweep over an experiment config.

    Attributes:
        name: the sweep's directory under ``root``.
        root: where sweeps live.
        base: the experiment every trial starts from: ``default`` (the embedded default) or
            the path of an experiment YAML (relative to the sweep file, or the working
            directory).
        overrides: dotted ``key=value`` overrides of every trial (as on ``reprl run``).
        grid: dotted key -> list of values; trials are the cartesian product.
        random: random draws (:class:`RandomSearch`).
        resources: per trial (:class:`Resources`).
        max_concurrent: most trials at once, >= 0 (0: as many as the resources allow).
    """

    name: str = "sweep"
    root: str = "runs"
    base: str = "default"
    overrides: list[str] = field(default_factory=list)
    grid: dict[str, Any] = field(default_factory=dict)
    random: RandomSearch = field(default_factory=RandomSearch)
    resources: Resources = field(default_factory=Resources)
    max_concurrent: int = 0

    def validate(self) -> None:
        """Checks the sweep's own fields (the trials' configs are checked by :func:`plan`).

        Raises:
            ConfigError: naming the field.
        """
        if not self.name or "/" in self.name:
            raise ConfigError(f"name: expected a directory name, got {self.name!r}")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(
                    f"grid.{key}: expected a non-empty list of values, got {values!r}"
                )
        r = self.random
        if r.num_samples < 0:
            raise ConfigError(f"random.num_samples: expected an integer >= 0, got {r.num_samples}")
        if r.space and not r.num_samples:
            raise ConfigError("random.space: expected random.num_samples >= 1 to draw from it")
        for key, spec in r.space.items():
            _check_space(key, spec)
        if not self.grid and not r.num_samples:
            raise ConfigError(
                "grid: expected at least one key with values (or random.num_samples >= 1), "
                "got an empty grid: a sweep needs trials"
            )
        both = set(self.grid) & set(r.space)
        if both:
            raise ConfigError(f"random.space: keys also in grid: {sorted(both)}")
        for key in [*self.grid, *r.space]:
            if key.split(".")[0] in ("name", "root"):
                raise ConfigError(f"grid.{key}: set by the sweep (each trial's run directory)")
        if not self.resources.cpu > 0:
            raise ConfigError(f"resources.cpu: expected > 0, got {self.resources.cpu}")
        if self.resources.gpu < 0:
            raise ConfigError(f"resources.gpu: expected >= 0, got {self.resources.gpu}")
        if self.max_concurrent < 0:
            raise ConfigError(f"max_concurrent: expected >= 0, got {self.max_concurrent}")


_DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")


def _check_space(key: str, spec: Any) -> None:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _DISTRIBUTIONS:
        raise ConfigError(
            f"random.space.{key}: expected one of {{{', '.join(_DISTRIBUTIONS)}}}: [...], "
            f"got {spec!r}"
        )
    ((kind, args),) = spec.items()
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"random.space.{key}.choice: expected a non-empty list, got {args!r}")
        return
    ok = isinstance(args, list) and len(args) == 2 and all(isinstance(a, int | float) for a in args)
    if not ok or not args[0] < args[1] or (kind == "loguniform" and args[0] <= 0):
        raise ConfigError(
            f"random.space.{key}.{kind}: expected [low, high], low < high, got {args!r}"
        )


def load_sweep(path: str | os.PathLike[str], overrides: list[str] | tuple = ()) -> SweepConfig:
    """A sweep config from YAML (+ dotted overrides of the sweep's own fields); validated.

    Raises:
        ConfigError: an unknown field, a wrong type, an empty grid.
    """
    data = read_yaml(path)
    where = f"{path} + overrides" if overrides else str(path)
    try:
        cfg = build(SweepConfig, data, overrides=overrides, where=where)
    except ConfigError as e:
        raise ConfigError(str(e) if str(e).startswith(str(path)) else f"{where}: {e}") from None
    if cfg.base != "default":
        b = Path(cfg.base)
        if not b.is_absolute() and not b.is_file() and (Path(path).parent / b).is_file():
            cfg.base = str(Path(path).parent / b)
        if not Path(cfg.base).is_file():
            raise ConfigError(
                f"{path}: base: expected 'default' or an experiment YAML, got {cfg.base!r}"
            )
        cfg.base = str(Path(cfg.base).resolve())  # trials may run in another directory
    return cfg


# --- planning --------------------------------------------------------------------------------
@dataclass
class Trial:
    """One trial: a full experiment config and where it runs.

    Attributes:
        id: stable name, the run directory's.
        params: the swept key -> value of this trial.
        overrides: every dotted override of the trial (sweep's, then params, then its place).
        run_dir: ``<root>/<sweep>/trials/<id>`` (absolute).
        key: sha256 of the resolved config (a finished trial with another key reruns).
        group: its shared upstream group (None: no encoder agent, nothing shared).
    """

    id: str
    params: dict[str, Any]
    overrides: list[str]
    run_dir: str
    key: str
    group: str | None


@dataclass
class Plan:
    """A validated sweep: its trials and shared upstream groups.

    Attributes:
        config: the sweep config.
        directory: ``<root>/<name>`` (absolute).
        trials: in order.
        groups: group id -> overrides of the experiment that computes its shared stages.
    """

    config: SweepConfig
    directory: Path
    trials: list[Trial]
    groups: dict[str, list[str]]


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(_short(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and "/" in value:
        value = value.rsplit("/", 1)[1]
    return str(value)


def _labels(keys: list[str]) -> dict[str, str]:
    """Dotted key -> its shortest unambiguous suffix (``encoders.1.model.beta`` -> ``beta``)."""
    out = {}
    for k in keys:
        parts = k.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if sum(1 for o in keys if o == tail or o.endswith("." + tail)) == 1:
                out[k] = tail
                break
        else:
            out[k] = k
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text)


def _draw(space: dict[str, Any], rng: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, spec in space.items():
        ((kind, args),) = spec.items()
        if kind == "choice":
            out[key] = args[int(rng.integers(len(args)))]
        elif kind == "uniform":
            out[key] = float(rng.uniform(args[0], args[1]))
        elif kind == "loguniform":
            import math

            out[key] = float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
        else:
            out[key] = int(rng.integers(int(args[0]), int(args[1])))
    return out


def _points(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Every trial's params: the grid's product, each repeated with random draws."""
    import numpy as np

    keys = list(cfg.grid)
    grid = [dict(zip(keys, vals)) for vals in itertools.product(*(cfg.grid[k] for k in keys))]
    if not cfg.random.num_samples:
        return grid
    rng = np.random.default_rng(cfg.random.seed)
    return [
        {**p, **_draw(cfg.random.space, rng)} for p in grid for _ in range(cfg.random.num_samples)
    ]


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


def upstream_identity(exp: Any) -> dict[str, Any] | None:
    """What an experiment's shared stages (collect, pretrain, probe) depend on, or None when it
    trains no agent on an encoder (then it runs none of them)."""
    if not exp.encoders or all(a.mode == "pixels" for a in exp.agents):
        return None
    return {
        "collect": to_dict(exp.collect),
        "encoders": [to_dict(e) for e in exp.encoders],
        "probe": to_dict(exp.probe),
        "device": exp.device,
    }


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def plan(cfg: SweepConfig, sweep_file: str | None = None) -> Plan:
    """Expands the sweep into trials and validates every trial's full experiment config.

    Nothing is written and nothing started. With ``resources.gpu > 0`` a trial's device is
    checked on the node that runs it (the driver may have no GPU), the shared stages' here,
    where they run.

    Raises:
        ConfigError: the first invalid trial, naming the swept key and value where one is at
            fault (a key not in the experiment config, a value of the wrong type, ...).
    """

    from experiments.experiment import load_experiment
    from experiments.validation import devices_checked_where_they_run

    if cfg.resources.gpu <= 0:
        return _plan(cfg, sweep_file)
    with devices_checked_where_they_run():  # trials run on GPU nodes, which check theirs
        p = _plan(cfg, sweep_file)
    base = None if cfg.base == "default" else cfg.base
    for group, overrides in p.groups.items():  # shared stages run here, on this machine
        try:
            load_experiment(base, overrides)
        except ConfigError as e:
            where = sweep_file or "sweep"
            raise ConfigError(f"{where}: shared stages {group} (run here): {_why(e)}") from None
    return p


def _plan(cfg: SweepConfig, sweep_file: str | None) -> Plan:
    import numpy as np

    from experiments.experiment import load_experiment

    directory = (Path(cfg.root) / cfg.name).resolve()
    base = None if cfg.base == "default" else cfg.base
    where = sweep_file or "sweep"
    # each swept key alone first, so an unknown key is named as the sweep's fault
    draws = _draw(cfg.random.space, np.random.default_rng(cfg.random.seed))
    for key, sample in [*((k, v[0]) for k, v in cfg.grid.items()), *draws.items()]:
        try:
            load_experiment(base, [*cfg.overrides, _override(key, sample)])
        except ConfigError as e:
            section = "grid" if key in cfg.grid else "random.space"
            raise ConfigError(f"{where}: {section}.{key}: {_why(e, key)}") from None
    points = _points(cfg)
    labels = _labels(list(points[0]))
    trials: list[Trial] = []
    groups: dict[str, list[str]] = {}
    width = max(3, len(str(len(points) - 1)))
    for i, params in enumerate(points):
        desc = "-".join(f"{labels[k]}={_short(v)}" for k, v in params.items())
        tid = _slug(f"t{i:0{width}d}-{desc}")[:96]
        run_dir = directory / "trials" / tid
        overrides = [
            *cfg.overrides,
            *(_override(k, v) for k, v in params.items()),
            _override("root", str(run_dir.parent)),
            _override("name", tid),
        ]
        try:
            exp = load_experiment(base, overrides)
        except ConfigError as e:
            shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())
            raise ConfigError(f"{where}: trial {tid} ({shown}): {_why(e)}") from None
        up = upstream_identity(exp)
        group = None
        if up is not None:
            group = "g" + _sha(up)[:10]
            groups.setdefault(
                group,
                [
                    *overrides[:-2],
                    _override("root", str(directory / "shared")),
                    _override("name", group),
                ],
            )
        key = _sha({k: v for k, v in to_dict(exp).items() if k != "root"})
        trials.append(Trial(tid, params, overrides, str(run_dir), key, group))
    return Plan(cfg, directory, trials, groups)


def _why(e: ConfigError, key: str | None = None) -> str:
    """A loader error without its 'where' prefix (the sweep names the place itself), nor the
    swept ``key`` when the message starts with it."""
    text = " ".join(str(e).split())
    m = re.match(r"^(?:\S+ \+ overrides|config overrides|\S+\.ya?ml): (.*)$", text)
    text = m.group(1) if m else text
    head = re.match(r"^([\w\[\].]+): (.*)$", text)
    if key and head and re.sub(r"\[(\d+)\]", r".\1", head.group(1)) == key:
        return head.group(2)
    return text


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

    torch.set_num_threads(max(1, int(spec.get("cpu", 1))))
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = load_experiment(spec["base"], spec["overrides"])
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


# --- the merged report -----------------------------------------------------------------------
def _agent_identity(exp: dict[str, Any], agent: dict[str, Any]) -> str:
    """What an agent's results depend on besides its seed (a resolved config as a dict)."""
    ident: dict[str, Any] = {
        "agent": agent,
        "train": exp["train"],
        "evaluate": exp["evaluate"],
        "device": exp["device"],
    }
    if agent.get("encoder"):
        ident["encoders"] = exp["encoders"]
        ident["collect"] = exp["collect"]
    return _sha(ident)


def _relevant_keys(
    name: str, trials: list[dict[str, Any]], idents: dict[tuple[str, str], str]
) -> list[str]:
    """The swept keys (seeds aside) that change agent ``name``'s results."""
    keys = [k for k in trials[0]["params"] if k != "seeds"]
    with_name = [t for t in trials if (t["id"], name) in idents]
    if len({idents[(t["id"], name)] for t in with_name}) < 2:
        return []
    out = []
    for k in keys:
        for a, b in itertools.combinations(with_name, 2):
            others = [j for j in keys if j != k]
            if (
                all(a["params"][j] == b["params"][j] for j in others)
                and a["params"][k] != b["params"][k]
                and idents[(a["id"], name)] != idents[(b["id"], name)]
            ):
                out.append(k)
                break
    return out or keys


def merge_report(
    sweep_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """One report over every finished trial of a sweep, with a table linking each trial.

    Runs of the same agent and seed whose results differ between trials (the agent on another
    encoder, source or target) are named ``<agent>@<key>=<value>`` by the swept keys that
    change them; the same run in several trials (pixel PPO in every trial of an encoder sweep)
    is read once. The uniform-random reference of each seed is merged over the trials' targets.
    Writes ``report.md`` etc. (:func:`experiments.report.build_report`) plus ``sweep.md`` (the
    trials table, then the report) and ``trials.csv`` into ``out_dir`` (default:
    ``<sweep>/report``); the per-trial inputs, renamed, go to ``out_dir/view/``.

    Returns:
        :func:`build_report`'s summary plus ``sweep_report`` (the path of ``sweep.md``).

    Raises:
        ConfigError: not a sweep directory, or no finished trial.
    """
    from experiments.report import build_report
    from experiments.report.reading import run_stem

    d = Path(sweep_dir)
    try:
        state = json.loads((d / SWEEP_FILE).read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{d}: expected a sweep directory (with {SWEEP_FILE})") from None
    out = Path(out_dir) if out_dir is not None else d / "report"
    trials = []
    for tid, t in state["trials"].items():
        run_dir = d / t["run_dir"]
        try:
            rec = json.loads((run_dir / TRIAL_FILE).read_text())
        except (OSError, ValueError):
            rec = {}
        if rec.get("status") != "finished":
            continue
        exp = read_yaml(run_dir / "config.yaml")
        trials.append({"id": tid, "params": t["params"], "dir": run_dir, "exp": exp, "rec": rec})
    if not trials:
        raise ConfigError(f"{d}: no finished trial to report")
    idents = {
        (t["id"], a["name"]): _agent_identity(t["exp"], a)
        for t in trials
        for a in t["exp"]["agents"]
    }
    names = sorted({n for _, n in idents})
    labels = _labels([k for k in trials[0]["params"] if k != "seeds"])
    relevant = {n: _relevant_keys(n, trials, idents) for n in names}

    view = out / "view"
    if view.exists():
        shutil.rmtree(view)
    seen: set[tuple[str, int]] = set()
    reference: dict[int, tuple[list[dict[str, str]], list[str], Path]] = {}
    roots = []
    for t in trials:
        root = view / t["id"]
        (root / "eval").mkdir(parents=True)
        (root / "train").mkdir()
        roots.append(root)
        for src in sorted((t["dir"] / "eval").glob("*.csv")):
            rows = list(csv.DictReader(src.open()))
            if not rows:
                continue
            agent, seed = rows[0]["agent"], int(rows[0]["seed"])
            if agent == "random":
                got, cols, js = reference.setdefault(
                    seed, ([], list(rows[0]), src.with_suffix(".json"))
                )
                have = {(r["env_id"], r["deterministic"], r["episode"]) for r in got}
                got.extend(
                    r for r in rows if (r["env_id"], r["deterministic"], r["episode"]) not in have
                )
                continue
            keys = relevant.get(agent, [])
            new = agent
            if keys:
                new += "@" + ",".join(f"{labels[k]}={_short(t['params'][k])}" for k in keys)
            if (new, seed) in seen:  # the same run in another trial: read once
                continue
            seen.add((new, seed))
            stem = run_stem(new, seed)
            for r in rows:
                r["agent"] = new
            _write_csv(root / "eval" / f"{stem}.csv", list(rows[0]), rows)
            meta = json.loads(src.with_suffix(".json").read_text())
            if isinstance(meta.get("agent"), dict):
                meta["agent"]["name"] = new
            meta["sweep_trial"] = t["id"]
            atomic_write_json(root / "eval" / f"{stem}.json", meta)
            tdir = t["dir"] / "train" / src.stem
            if (tdir / "metrics.jsonl").is_file():
                (root / "train" / stem).mkdir()
                shutil.copy2(tdir / "metrics.jsonl", root / "train" / stem / "metrics.jsonl")
                prov = json.loads((tdir / "provenance.json").read_text())
                prov["agent"] = {**(prov.get("agent") or {}), "name": new}
                atomic_write_json(root / "train" / stem / "provenance.json", prov)
        if (t["dir"] / "probe").is_dir():
            (root / "probe").mkdir()
            for f in (t["dir"] / "probe").glob("*.json"):
                if not f.name.endswith(".stage.json"):
                    shutil.copy2(f, root / "probe" / f.name)
    ref_root = view / "reference"
    (ref_root / "eval").mkdir(parents=True)
    for seed, (rows, cols, js) in reference.items():
        _write_csv(ref_root / "eval" / f"{run_stem('random', seed)}.csv", cols, rows)
        shutil.copy2(js, ref_root / "eval" / f"{run_stem('random', seed)}.json")
    if reference:
        roots.append(ref_root)
    sources = {t["exp"]["train"]["env_id"] for t in trials}
    evaluated = {e for t in trials for e in t["exp"]["evaluate"]["env_ids"]}
    source = next(iter(sources)) if len(sources) == 1 and sources <= evaluated else None
    summary = build_report(roots, out, source_env=source)
    table = _trials_table(d, out, trials, state)
    text = (
        f"# Sweep {state['name']}\n\n{len(trials)} of {len(state['trials'])} trials finished; "
        f"swept: {', '.join(trials[0]['params'])}. Agents whose results depend on a swept key "
        f"are named `<agent>@<key>=<value>`; seeds are the runs of every interval."
        f"{'' if source else ' The source env is swept: every env is a target.'}\n\n"
        f"{table}\n\n{(out / 'report.md').read_text()}"
    )
    atomic_write_text(out / "sweep.md", text)
    summary["sweep_report"] = str(out / "sweep.md")
    return summary


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _trials_table(d: Path, out: Path, trials: list[dict[str, Any]], state: dict[str, Any]) -> str:
    keys = list(trials[0]["params"])
    head = ["trial", *keys, "status", "seconds", "node", "run directory", "report"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = []
    done = {t["id"]: t for t in trials}
    for tid, s in state["trials"].items():
        t = done.get(tid)
        rec = t["rec"] if t else {}
        rel = os.path.relpath(d / s["run_dir"], out)
        report = f"[report]({rel}/report/report.md)" if t else ""
        vals = [json.dumps(s["params"][k]) for k in keys]
        node = " ".join(
            str(x)
            for x in (rec.get("host"), rec.get("node_ip"), (rec.get("node_id") or "")[:8])
            if x
        )
        cells = [
            tid,
            *vals,
            s["status"],
            str(rec.get("seconds", "")),
            node,
            f"[{rel}/]({rel}/)",
            report,
        ]
        lines.append("| " + " | ".join(cells) + " |")
        rows.append(dict(zip(head, [*cells[:-2], rel, f"{rel}/report/report.md" if t else ""])))
    _write_csv(out / "trials.csv", head, rows)
    return "\n".join(lines)


__all__ = [
    "LOG_FILE",
    "SWEEP_FILE",
    "TRIAL_FILE",
    "Plan",
    "RandomSearch",
    "Resources",
    "SweepConfig",
    "Trial",
    "check_address",
    "load_sweep",
    "merge_report",
    "plan",
    "read_log",
    "run_sweep",
    "run_trial",
    "start_ray",
    "trial_finished",
    "upstream_identity",
]
