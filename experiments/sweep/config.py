"""A sweep's config: the base experiment, overrides, grid, random draws and resources, and
the files of a sweep directory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.config import ConfigError, build, read_yaml

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
        cpu: CPU cores per trial, > 0 (torch uses as many threads; the trial's experiment
            runs at most that many runs at once, its ``jobs`` capped).
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
