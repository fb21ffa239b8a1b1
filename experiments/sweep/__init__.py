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

from experiments.sweep.config import (
    LOG_FILE,
    SWEEP_FILE,
    TRIAL_FILE,
    RandomSearch,
    Resources,
    SweepConfig,
    load_sweep,
)
from experiments.sweep.merge import merge_report
from experiments.sweep.plan import Plan, Trial, plan, upstream_identity
from experiments.sweep.run import (
    check_address,
    log_event,
    read_log,
    run_shared,
    run_sweep,
    run_trial,
    start_ray,
    trial_finished,
)

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
    "log_event",
    "merge_report",
    "plan",
    "read_log",
    "run_shared",
    "run_sweep",
    "run_trial",
    "start_ray",
    "trial_finished",
    "upstream_identity",
]
