"""The probe stage with ``jobs``: an experiment's encoders probed one at a time, then ``jobs`` at
once, side by side in one run.

It reads a finished experiment directory (its resolved ``config.yaml``, collect dataset and
pretrained encoders, left untouched) and runs :func:`experiments.stages.probe.stage_probe` on
those encoders into two fresh temporary directories: first with ``jobs = 1`` (this process,
all its torch threads, as every experiment before ``jobs`` reached the probe stage), then with
``--jobs`` worker processes (the cores shared out as torch threads). Both runs score the same
encoders on the same data with the same seeds; the JSON gives, per encoder, the largest
difference between the two runs' scores (``seconds`` and paths aside): the thread counts
differ, so they agree to float rounding, not bit for bit (on equal thread counts they are
equal: ``tests/experiments/test_parallel.py``).

Usage: ``python -m experiments.bench.bench_probe_jobs RUN_DIR [--jobs 2]
[--only ENCODER ...]``, e.g. ``runs/encoders_breakout`` (``reprl run
experiments/configs/encoders.yaml``, 9 encoders); prints one JSON object.
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # noqa: F401  first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from experiments.bench import with_passive_omp
from experiments.experiment import load_experiment
from experiments.layout import RunLayout
from experiments.stages.probe import stage_probe

_VOLATILE = ("seconds", "checkpoint", "dataset")  # differ between runs by design


def _max_diff(a: Any, b: Any) -> float:
    """The largest absolute difference between two JSON values' numbers; ``inf`` where they
    differ otherwise (keys, lengths, strings)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return math.inf
        return max((_max_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return math.inf
        return max((_max_diff(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return 0.0 if a == b or (math.isnan(a) and math.isnan(b)) else abs(a - b)
    return 0.0 if a == b else math.inf


def _records(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, path in files.items():
        record = json.loads(path.read_text())
        out[name] = {k: v for k, v in record.items() if k not in _VOLATILE}
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    with_passive_omp("experiments.bench.bench_probe_jobs", argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a finished experiment's directory")
    p.add_argument("--jobs", type=int, default=2, help="probes at once in the second run")
    p.add_argument("--only", nargs="+", default=None, help="these encoders (default: all)")
    args = p.parse_args(argv)
    layout = RunLayout(args.run_dir)
    cfg = load_experiment(str(layout.config))  # jobs set per run below
    names = args.only or [e.name for e in cfg.encoders]
    encoders = {n: layout.checkpoint(n) for n in names}
    load_before = os.getloadavg()[0]
    seconds, records = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (1, args.jobs):
            base = Path(tmp) / f"jobs_{jobs}"
            t0 = time.perf_counter()
            files = stage_probe(dataclasses.replace(cfg, jobs=jobs), base, layout.dataset, encoders)
            seconds[jobs] = round(time.perf_counter() - t0, 1)
            records[jobs] = _records(files)
    diff = {n: _max_diff(records[1][n], records[args.jobs][n]) for n in names}
    diff = {n: "records differ beyond numbers" if math.isinf(d) else d for n, d in diff.items()}
    out = {
        "benchmark": "probe stage wall time, jobs=1 beside jobs=N (same encoders, data, seeds)",
        "run_dir": str(args.run_dir),
        "protocol": cfg.probe.protocol,
        "encoders": names,
        "probe_frames": cfg.probe.frames,
        "seconds": {f"jobs_{k}": v for k, v in seconds.items()},
        "speedup": round(seconds[1] / seconds[args.jobs], 2),
        "max_abs_difference_of_scores": diff,
        "machine": {
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_avg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
