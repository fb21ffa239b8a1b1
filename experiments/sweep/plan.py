"""Planning a sweep: every trial's full experiment config, drawn and validated before anything
runs, and the upstream groups trials share."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.config import ConfigError, to_dict
from experiments.sweep.config import SweepConfig


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
