"""Zero-shot transfer report: tables with confidence intervals, plots and provenance.

Reads the artefacts of the train and evaluate stages from one or more roots and writes
``report.md``, ``results.csv``, ``learning_curves.png`` and ``zero_shot.png``.

File contract
-------------
A *run* is one agent trained with one seed. Its name on disk is the *stem*
``<agent_slug>__<seed>``, where ``seed`` is a (possibly negative) integer and ``agent_slug`` is
the agent name with every run of characters outside ``[A-Za-z0-9._-]`` replaced by ``-``
(:func:`agent_slug`; a name such as ``beta_vae_dae/frozen`` becomes ``beta_vae_dae-frozen``,
a plain name such as ``pixels`` is unchanged). :func:`run_stem` builds stems. The stem is split
at its last ``__``.

Each ``ROOT`` may hold ``ROOT/eval/`` and ``ROOT/train/``; several roots merge into one report.

``ROOT/eval/<stem>.csv`` (required for a run to appear in the tables): UTF-8 CSV, one row per
evaluation episode, with a header containing at least these columns (order free, extra columns
ignored)::

    agent,seed,env_id,episode,return,length,deterministic

- ``agent``: the agent name, the same on every row, with ``agent_slug(agent)`` equal to the
  stem's slug; this is the name shown in the report.
- ``seed``: integer training seed, equal to the stem's seed on every row.
- ``env_id``: gymnasium id of the evaluation env (the source env itself included).
- ``episode``: integer episode index; unique per ``(env_id, deterministic)``.
- ``return``: finite float, undiscounted episode return.
- ``length``: integer episode length in steps.
- ``deterministic``: ``true`` or ``false`` (case-insensitive): greedy or sampled actions.

``ROOT/eval/<stem>.json`` (required next to every CSV): a JSON object, the provenance of the
evaluation (config, agent file and its sha256, the training provenance, library version, ...).

``ROOT/train/<stem>/`` (optional; feeds the learning curves), a directory holding:

- ``metrics.jsonl``: one JSON object per line; lines having both ``"global_step"`` (int, env
  steps so far) and ``"charts/episodic_return"`` (float) are the learning curve, other lines
  (other metrics) are ignored; blank lines are ignored; at least one curve line is required.
- ``provenance.json``: a JSON object (config, encoder path and sha256, dataset, version, ...).
  Its ``agent`` entry, a string or an object with a ``name``, names the agent; otherwise the
  name comes from the evaluation CSV of the same stem, otherwise the slug is shown.

Provenance summaries look, breadth-first through the run's eval JSON and train
``provenance.json``, for the keys ``encoder`` and ``dataset`` (an object with ``path`` and
``sha256``, or a string; ``null`` means none), ``config_hash`` (otherwise the sha256 of the
JSON is shown, marked ``*``) and ``reprl_version``/``library_version``/``version``.

The same stem in two roots is read once if the CSVs are byte-identical and is an error
otherwise (give runs of different configs different agent names). A malformed or missing file
raises :class:`ReportError` naming the file and what was expected.

Outputs (in ``out_dir``, each written to a temporary name and renamed)
-----------------------------------------------------------------------
``report.md``: per evaluation mode present (deterministic, then stochastic): mean return
[95% CI] per agent (rows) and env (columns, source first); IQM over seeds [CI] with seeds /
episodes per cell; with a source env, transfer (each target's mean as % of the same agent's
source mean, seeds paired); an aggregate over target envs (all envs without a source env) per
agent: mean and IQM [CI], also as % of source. Then the plots, final training returns, a
provenance summary per run and every input file with its sha256.

``learning_curves.png``: per agent, mean over seeds of the (smoothed) episodic return vs
``global_step`` on a common grid, min-max band over seeds. ``zero_shot.png``: grouped bars,
envs on x, one bar per agent, error bars the 95% CI of the mean; one panel per mode.

``results.csv`` columns: ``agent,env_id,deterministic,statistic,point,ci_low,ci_high,
num_seeds,num_episodes``; ``statistic`` is ``mean`` or ``iqm`` (over seeds, per env),
``pct_of_source`` (transfer), and on rows with ``env_id`` ``aggregate`` (over target envs):
``mean``, ``iqm``, ``mean_pct_of_source``, ``iqm_pct_of_source``. Undefined values are ``nan``.

Statistics are those of :mod:`experiments.stats`: episode returns are averaged per seed, seeds
are the runs, 95% percentile bootstrap intervals (stratified by env for aggregates).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.storage.files import atomic_path, atomic_write_text
from experiments import stats

EVAL_COLUMNS: tuple[str, ...] = (
    "agent",
    "seed",
    "env_id",
    "episode",
    "return",
    "length",
    "deterministic",
)
RESULT_COLUMNS: tuple[str, ...] = (
    "agent",
    "env_id",
    "deterministic",
    "statistic",
    "point",
    "ci_low",
    "ci_high",
    "num_seeds",
    "num_episodes",
)
STEP_KEY = "global_step"
RETURN_KEY = "charts/episodic_return"
AGGREGATE_ENV = "aggregate"
_MODES = {True: "deterministic", False: "stochastic"}
_STEM = re.compile(r"^(?P<slug>.+)__(?P<seed>-?\d+)$")


class ReportError(ValueError):
    """A missing or malformed input file, or inputs that cannot be merged."""


class NoEpisodesError(ReportError):
    """A training run whose metrics hold no finished episode (too short to draw a curve)."""


# --- names -----------------------------------------------------------------------------------
def agent_slug(agent: str) -> str:
    """File-system-safe form of an agent name (runs of other characters become ``-``).

    Args:
        agent: agent name, e.g. ``beta_vae_dae/frozen``.

    Returns:
        e.g. ``beta_vae_dae-frozen``; names made of ``[A-Za-z0-9._-]`` are unchanged.
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", agent)


def run_stem(agent: str, seed: int) -> str:
    """The on-disk name of a run: ``<agent_slug>__<seed>``."""
    return f"{agent_slug(agent)}__{int(seed)}"


def _parse_stem(stem: str, path: Path) -> tuple[str, int]:
    m = _STEM.match(stem)
    if m is None:
        raise ReportError(f"{path}: expected a name '<agent>__<integer seed>', got {stem!r}")
    return m["slug"], int(m["seed"])


# --- readers ---------------------------------------------------------------------------------
@dataclass
class InputFile:
    """A file the report read, with its content hash."""

    path: Path
    sha256: str


@dataclass
class EvalRun:
    """One run's evaluation episodes (arrays of shape ``(num_episodes,)``) and provenance."""

    agent: str
    seed: int
    csv: InputFile
    json: InputFile
    env_id: np.ndarray
    episode: np.ndarray
    returns: np.ndarray
    length: np.ndarray
    deterministic: np.ndarray
    provenance: dict[str, Any]


@dataclass
class TrainRun:
    """One run's learning curve (``steps``, ``returns``: ``(num_points,)``) and provenance."""

    slug: str
    seed: int
    directory: Path
    metrics: InputFile
    provenance_file: InputFile
    steps: np.ndarray
    returns: np.ndarray
    provenance: dict[str, Any]
    agent: str | None = None


def _read_bytes(path: Path, what: str) -> tuple[bytes, InputFile]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{path}: missing ({what})") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read ({what}): {e}") from None
    return data, InputFile(path, hashlib.sha256(data).hexdigest())


def _read_json_object(path: Path, what: str) -> tuple[dict[str, Any], InputFile]:
    data, info = _read_bytes(path, what)
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: not valid JSON ({what}): {e}") from None
    if not isinstance(obj, dict):
        raise ReportError(f"{path}: expected a JSON object ({what}), got {type(obj).__name__}")
    return obj, info


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t == "true":
        return True
    if t == "false":
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {text!r}")
    return x


def read_eval_run(csv_path: str | os.PathLike[str]) -> EvalRun:
    """Reads ``<stem>.csv`` and its ``<stem>.json`` provenance (see the module's contract).

    Args:
        csv_path: path of the evaluation CSV.

    Returns:
        The run's episodes and provenance.

    Raises:
        ReportError: naming the file if it is missing, lacks columns, has a bad value, or
            disagrees with its file name.
    """
    path = Path(csv_path)
    slug, seed = _parse_stem(path.stem, path)
    data, csv_info = _read_bytes(path, f"evaluation CSV with columns {','.join(EVAL_COLUMNS)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ReportError(f"{path}: not UTF-8 text: {e}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in EVAL_COLUMNS if c not in header]
    if missing:
        raise ReportError(
            f"{path}: missing columns {missing}; expected a header with the columns "
            f"{','.join(EVAL_COLUMNS)}, got {','.join(header) or '(empty file)'}"
        )
    reader.fieldnames = header
    parsers = {
        "seed": _parse_int,
        "episode": _parse_int,
        "return": _parse_float,
        "length": _parse_int,
        "deterministic": _parse_bool,
    }
    cols: dict[str, list[Any]] = {c: [] for c in EVAL_COLUMNS}
    for row in reader:
        line = reader.line_num
        for c in EVAL_COLUMNS:
            value = row.get(c)
            if value is None:
                raise ReportError(
                    f"{path}:{line}: too few fields; expected the columns {','.join(header)}"
                )
            try:
                cols[c].append(parsers[c](value) if c in parsers else value.strip())
            except ValueError as e:
                raise ReportError(f"{path}:{line}: column {c!r}: {e}") from None
    if not cols["agent"]:
        raise ReportError(f"{path}: no episodes (header only)")
    agents = set(cols["agent"])
    if len(agents) != 1:
        raise ReportError(f"{path}: expected one agent per file, got {sorted(agents)}")
    agent = cols["agent"][0]
    if not agent:
        raise ReportError(f"{path}: empty agent name")
    if agent_slug(agent) != slug:
        raise ReportError(
            f"{path}: agent {agent!r} does not match the file name: expected the file "
            f"{run_stem(agent, seed)}.csv"
        )
    bad_seeds = sorted(set(cols["seed"]) - {seed})
    if bad_seeds:
        raise ReportError(f"{path}: seed column has {bad_seeds}, the file name says {seed}")
    env_id = np.array(cols["env_id"], dtype=object)
    det = np.array(cols["deterministic"], dtype=bool)
    episode = np.array(cols["episode"], dtype=np.int64)
    keys = list(zip(env_id.tolist(), det.tolist(), episode.tolist()))
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ReportError(
            f"{path}: episode {dup[2]} of {dup[0]} (deterministic={str(dup[1]).lower()}) "
            "appears more than once"
        )
    json_path = path.with_suffix(".json")
    provenance, json_info = _read_json_object(json_path, f"provenance of {path.name}")
    return EvalRun(
        agent=agent,
        seed=seed,
        csv=csv_info,
        json=json_info,
        env_id=env_id,
        episode=episode,
        returns=np.array(cols["return"], dtype=np.float64),
        length=np.array(cols["length"], dtype=np.int64),
        deterministic=det,
        provenance=provenance,
    )


def read_train_run(directory: str | os.PathLike[str]) -> TrainRun:
    """Reads ``train/<stem>/metrics.jsonl`` and ``provenance.json`` (see the module's contract).

    Args:
        directory: the run directory.

    Returns:
        The learning curve, sorted by step, and provenance.

    Raises:
        ReportError: naming the file if it is missing or malformed.
    """
    d = Path(directory)
    slug, seed = _parse_stem(d.name, d)
    mpath = d / "metrics.jsonl"
    data, minfo = _read_bytes(mpath, f"JSON lines with {STEP_KEY!r} and {RETURN_KEY!r}")
    steps: list[int] = []
    rets: list[float] = []
    for i, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReportError(f"{mpath}:{i}: not valid JSON: {e}") from None
        if not isinstance(obj, dict):
            raise ReportError(f"{mpath}:{i}: expected a JSON object per line")
        if STEP_KEY not in obj or RETURN_KEY not in obj:
            continue
        try:
            steps.append(int(obj[STEP_KEY]))
            rets.append(_parse_float(obj[RETURN_KEY]))
        except (TypeError, ValueError) as e:
            raise ReportError(
                f"{mpath}:{i}: expected an int {STEP_KEY!r} and a finite {RETURN_KEY!r}: {e}"
            ) from None
    if not steps:
        raise NoEpisodesError(f"{mpath}: no line has both {STEP_KEY!r} and {RETURN_KEY!r}")
    prov, pinfo = _read_json_object(d / "provenance.json", "training provenance")
    order = np.argsort(np.array(steps), kind="stable")
    named = prov.get("agent")
    if isinstance(named, Mapping):
        named = named.get("name")
    return TrainRun(
        slug=slug,
        seed=seed,
        directory=d,
        metrics=minfo,
        provenance_file=pinfo,
        steps=np.array(steps, dtype=np.int64)[order],
        returns=np.array(rets, dtype=np.float64)[order],
        provenance=prov,
        agent=named if isinstance(named, str) and named else None,
    )


def discover(roots: Sequence[str | os.PathLike[str]]) -> tuple[list[EvalRun], list[TrainRun]]:
    """Reads every evaluation file and training run under ``roots``.

    Args:
        roots: directories holding ``eval/`` and/or ``train/``.

    Returns:
        ``(eval_runs, train_runs)`` sorted by (agent slug, seed).

    Raises:
        ReportError: if a root is missing, nothing is found, or the same run differs between
            roots.
    """
    evals: dict[tuple[str, int], EvalRun] = {}
    trains: dict[tuple[str, int], TrainRun] = {}
    for r in roots:
        root = Path(r)
        if not root.is_dir():
            raise ReportError(f"{root}: not a directory (expected a root with eval/ and train/)")
        eval_dir, train_dir = root / "eval", root / "train"
        for p in sorted(eval_dir.glob("*.csv")) if eval_dir.is_dir() else []:
            run = read_eval_run(p)
            key = (agent_slug(run.agent), run.seed)
            if key in evals:
                other = evals[key]
                if other.csv.sha256 != run.csv.sha256:
                    raise ReportError(
                        f"{p} and {other.csv.path}: the same run with different results; "
                        "give runs of different configs different agent names"
                    )
                continue
            evals[key] = run
        for d in sorted(train_dir.iterdir()) if train_dir.is_dir() else []:
            if not d.is_dir() or d.name.startswith("."):
                continue
            try:
                run_t = read_train_run(d)
            except NoEpisodesError:  # no episode finished during training: no curve to draw
                continue
            key = (run_t.slug, run_t.seed)
            if key in trains:
                other_t = trains[key]
                if other_t.metrics.sha256 != run_t.metrics.sha256:
                    raise ReportError(
                        f"{d} and {other_t.directory}: the same run with different metrics; "
                        "give runs of different configs different agent names"
                    )
                continue
            trains[key] = run_t
    if not evals:
        raise ReportError(
            "no evaluation files found: expected <root>/eval/<agent>__<seed>.csv under "
            + ", ".join(str(r) for r in roots)
        )
    names = {agent_slug(e.agent): e.agent for e in evals.values()}
    for t in trains.values():
        if t.agent is None:
            t.agent = names.get(t.slug, t.slug)
    return [evals[k] for k in sorted(evals)], [trains[k] for k in sorted(trains)]


# --- provenance summaries --------------------------------------------------------------------
def _bfs(obj: Any, key: str) -> list[Any]:
    """Values of ``key`` in nested dicts/lists, shallowest first."""
    found, queue = [], deque([obj])
    while queue:
        node = queue.popleft()
        if isinstance(node, Mapping):
            if key in node:
                found.append(node[key])
            queue.extend(node.values())
        elif isinstance(node, list):
            queue.extend(node)
    return found


def _file_ref(obj: Any, key: str) -> tuple[str, str]:
    """``(path, sha256)`` of the first usable ``key`` entry; ``("none", "")`` for null."""
    values = _bfs(obj, key)
    for v in values:
        if isinstance(v, Mapping) and ("sha256" in v or "path" in v):
            return str(v.get("path", "?")), str(v.get("sha256", ""))
    if any(v is None for v in values):
        return "none", ""
    for v in values:
        if isinstance(v, str):
            return v, ""
    return "?", ""


def summarise_provenance(provenance: Mapping[str, Any]) -> dict[str, str]:
    """Encoder, dataset, config hash and version found in a (nested) provenance record.

    Args:
        provenance: JSON-plain record, e.g. ``{"eval": {...}, "train": {...}}``.

    Returns:
        ``{"encoder", "encoder_sha256", "dataset", "dataset_sha256", "config_hash",
        "version"}``; ``?`` where nothing was found. A computed hash ends with ``*``.
    """
    enc, enc_sha = _file_ref(provenance, "encoder")
    data, data_sha = _file_ref(provenance, "dataset")
    hashes = [h for h in _bfs(provenance, "config_hash") if isinstance(h, str)]
    if hashes:
        chash = hashes[0]
    else:
        blob = json.dumps(provenance, sort_keys=True, default=str).encode()
        chash = hashlib.sha256(blob).hexdigest()[:16] + "*"
    version = "?"
    for k in ("reprl_version", "library_version", "version"):
        vs = [v for v in _bfs(provenance, k) if isinstance(v, str | int | float)]
        if vs:
            version = str(vs[0])
            break
    return {
        "encoder": enc,
        "encoder_sha256": enc_sha,
        "dataset": data,
        "dataset_sha256": data_sha,
        "config_hash": chash,
        "version": version,
    }


# --- statistics ------------------------------------------------------------------------------
@dataclass
class Cell:
    """Statistics of one agent on one env in one evaluation mode."""

    mean: stats.Estimate
    iqm: stats.Estimate
    num_seeds: int
    num_episodes: int
    seed_means: dict[int, float]


@dataclass
class ModeTables:
    """All numbers of one evaluation mode (deterministic or stochastic)."""

    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    transfer: dict[str, dict[str, tuple[stats.Estimate, int, int]]] = field(default_factory=dict)
    aggregate: dict[str, dict[str, Any]] = field(default_factory=dict)


def _order_envs(envs: Iterable[str], source_env: str | None) -> list[str]:
    envs = sorted(set(envs))
    if source_env in envs:
        envs.remove(source_env)
        envs.insert(0, source_env)
    return envs


def compute_tables(
    runs: Sequence[EvalRun],
    *,
    source_env: str | None = None,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, ModeTables]:
    """Per-cell, transfer and aggregate estimates for every evaluation mode present.

    Args:
        runs: evaluation runs (one per agent and seed).
        source_env: env id of the training env; targets are all other envs. ``None``: no
            transfer, and the aggregate is over all envs.
        reps: bootstrap replicates.
        seed: base seed; every cell's resampling is keyed by (mode, agent, env), so a number
            does not depend on which other runs are in the report.
        confidence: interval coverage.

    Returns:
        ``{"deterministic" | "stochastic": ModeTables}``, deterministic first.
    """
    # episodes[mode][agent][env][seed] -> returns
    episodes: dict[str, dict[str, dict[str, dict[int, np.ndarray]]]] = {}
    for run in runs:
        for det in (True, False):
            mask = run.deterministic == det
            if not mask.any():
                continue
            for env in np.unique(run.env_id[mask]).tolist():
                sel = mask & (run.env_id == env)
                by_env = episodes.setdefault(_MODES[det], {}).setdefault(run.agent, {})
                by_env.setdefault(env, {})[run.seed] = run.returns[sel]
    out: dict[str, ModeTables] = {}
    for mode in (m for m in _MODES.values() if m in episodes):
        tables = ModeTables()
        for agent in sorted(episodes[mode]):
            by_env = episodes[mode][agent]
            cells: dict[str, Cell] = {}
            for env in _order_envs(by_env, source_env):
                per_seed = by_env[env]
                seeds = sorted(per_seed)
                rets = np.concatenate([per_seed[s] for s in seeds])
                sds = np.concatenate([np.full(per_seed[s].size, s) for s in seeds])
                uniq, means = stats.seed_means(rets, sds)
                est = stats.cell_estimates(
                    rets,
                    sds,
                    ("mean", "iqm"),
                    reps=reps,
                    confidence=confidence,
                    seed=stats.keyed_seed(seed, mode, agent, env),
                )
                cells[env] = Cell(
                    mean=est["mean"],
                    iqm=est["iqm"],
                    num_seeds=len(seeds),
                    num_episodes=int(rets.size),
                    seed_means=dict(zip(uniq.tolist(), means.tolist())),
                )
            tables.cells[agent] = cells
            targets = [e for e in cells if e != source_env]
            src = cells.get(source_env) if source_env is not None else None
            if src is not None:
                tables.transfer[agent] = {}
                for env in targets:
                    common = sorted(set(cells[env].seed_means) & set(src.seed_means))
                    num = [cells[env].seed_means[s] for s in common]
                    den = [src.seed_means[s] for s in common]
                    eps = int(sum(by_env[env][s].size for s in common))
                    est_t = stats.ratio_estimate(
                        num,
                        den,
                        reps=reps,
                        confidence=confidence,
                        seed=stats.keyed_seed(seed, mode, agent, env, "transfer"),
                    )
                    tables.transfer[agent][env] = (est_t, len(common), eps)
            if targets:
                tables.aggregate[agent] = _aggregate_row(
                    cells, targets, by_env, src, mode, agent, reps, seed, confidence
                )
        out[mode] = tables
    return out


def _aggregate_row(
    cells: Mapping[str, Cell],
    targets: Sequence[str],
    by_env: Mapping[str, Mapping[int, np.ndarray]],
    src: Cell | None,
    mode: str,
    agent: str,
    reps: int,
    seed: int,
    confidence: float,
) -> dict[str, Any]:
    """Stratified bootstrap over seeds with target envs as tasks (seeds present on every one)."""
    all_seeds = sorted(set().union(*(cells[e].seed_means for e in targets)))
    common = [s for s in all_seeds if all(s in cells[e].seed_means for e in targets)]
    nan = stats.Estimate(math.nan, math.nan, math.nan)
    row: dict[str, Any] = {
        "targets": list(targets),
        "num_seeds": len(common),
        "dropped_seeds": [s for s in all_seeds if s not in common],
        "num_episodes": int(sum(by_env[e][s].size for e in targets for s in common)),
        "mean": nan,
        "iqm": nan,
        "mean_pct_of_source": nan,
        "iqm_pct_of_source": nan,
    }
    if not common:
        return row
    scores = np.array([[cells[e].seed_means[s] for e in targets] for s in common])
    key = stats.keyed_seed(seed, mode, agent, AGGREGATE_ENV)
    est = stats.estimates(scores, ("mean", "iqm"), reps=reps, confidence=confidence, seed=key)
    row["mean"], row["iqm"] = est["mean"], est["iqm"]
    if src is not None and src.mean.point > 0:
        norm = stats.estimates(
            100.0 * scores / src.mean.point,
            ("mean", "iqm"),
            reps=reps,
            confidence=confidence,
            seed=key,
        )
        row["mean_pct_of_source"], row["iqm_pct_of_source"] = norm["mean"], norm["iqm"]
    return row


def result_rows(tables: Mapping[str, ModeTables]) -> list[dict[str, Any]]:
    """Long-format rows of ``results.csv`` (columns :data:`RESULT_COLUMNS`)."""
    rows: list[dict[str, Any]] = []

    def add(agent: str, env: str, mode: str, stat: str, est: stats.Estimate, n: int, e: int):
        rows.append(
            {
                "agent": agent,
                "env_id": env,
                "deterministic": "true" if mode == "deterministic" else "false",
                "statistic": stat,
                "point": est.point,
                "ci_low": est.low,
                "ci_high": est.high,
                "num_seeds": n,
                "num_episodes": e,
            }
        )

    for mode, t in tables.items():
        for agent, cells in t.cells.items():
            for env, c in cells.items():
                add(agent, env, mode, "mean", c.mean, c.num_seeds, c.num_episodes)
                add(agent, env, mode, "iqm", c.iqm, c.num_seeds, c.num_episodes)
            for env, (est, n, e) in t.transfer.get(agent, {}).items():
                add(agent, env, mode, "pct_of_source", est, n, e)
            agg = t.aggregate.get(agent)
            if agg is not None:
                for stat in ("mean", "iqm", "mean_pct_of_source", "iqm_pct_of_source"):
                    add(
                        agent,
                        AGGREGATE_ENV,
                        mode,
                        stat,
                        agg[stat],
                        agg["num_seeds"],
                        agg["num_episodes"],
                    )
    return rows


# --- markdown --------------------------------------------------------------------------------
def _num(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _ci(est: stats.Estimate, n: int, digits: int = 2, unit: str = "") -> str:
    if not math.isfinite(est.point):
        return "n/a"
    p = _num(est.point, digits) + unit
    if n <= 1:
        return f"{p} (1 seed: no CI)"
    if not (math.isfinite(est.low) and math.isfinite(est.high)):
        return f"{p} [CI n/a]"
    return f"{p} [{_num(est.low, digits)}, {_num(est.high, digits)}]"


def _md_text(s: str) -> str:
    return s.replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _env_header(env: str, source_env: str | None) -> str:
    return f"`{env}`" + (" (source)" if env == source_env else "")


def _mode_markdown(
    mode: str, t: ModeTables, envs: Sequence[str], source_env: str | None, confidence: float
) -> list[str]:
    pct = f"{round(confidence * 100)}%"
    lines = [f"## {mode.capitalize()} evaluation", ""]
    agents = list(t.cells)
    header = ["agent", *(_env_header(e, source_env) for e in envs)]

    def row(agent: str, fn) -> list[str]:
        cells = t.cells[agent]
        return [_md_text(agent), *(fn(cells[e]) if e in cells else "—" for e in envs)]

    lines += [f"### Mean return [{pct} CI]", ""]
    lines += _table(header, (row(a, lambda c: _ci(c.mean, c.num_seeds)) for a in agents))
    lines += ["", f"### IQM over seeds [{pct} CI] · seeds / episodes", ""]
    lines += _table(
        header,
        (
            row(a, lambda c: f"{_ci(c.iqm, c.num_seeds)} · {c.num_seeds} / {c.num_episodes}")
            for a in agents
        ),
    )
    targets = [e for e in envs if e != source_env]
    if source_env is not None and targets:
        lines += ["", f"### Transfer: target mean return as % of source [{pct} CI]", ""]
        if t.transfer:
            lines += [
                f"Each agent's mean return on a target over its mean return on `{source_env}`, "
                "seeds paired and resampled jointly.",
                "",
            ]
            rows = []
            for a in agents:
                tr = t.transfer.get(a)
                if tr is None:
                    rows.append([_md_text(a), *("— (no source)" for _ in targets)])
                    continue
                rows.append(
                    [
                        _md_text(a),
                        *(_ci(tr[e][0], tr[e][1], 1, "%") if e in tr else "—" for e in targets),
                    ]
                )
            lines += _table(["agent", *(f"`{e}`" for e in targets)], rows)
        else:
            lines += [f"No agent was evaluated on the source `{source_env}` in this mode.", ""]
    if t.aggregate:
        over = "target envs" if source_env is not None else "all envs (no source env given)"
        lines += [
            "",
            f"### Aggregate over {over} [{pct} CI]",
            "",
            "Stratified bootstrap: seeds resampled within each env, envs as tasks; seeds "
            "evaluated on every env only. Mean = mean over envs of the mean over seeds; "
            "IQM over all (seed, env) scores."
            + (
                " % of source: the scores divided by the agent's mean source return (a "
                "constant: the source's own uncertainty is not in these intervals)."
                if source_env is not None
                else ""
            ),
            "",
        ]
        head = ["agent", "mean return", "IQM return"]
        if source_env is not None:
            head += ["mean, % of source", "IQM, % of source"]
        head += ["envs", "seeds", "episodes"]
        rows = []
        for a in agents:
            g = t.aggregate.get(a)
            if g is None:
                continue
            n = g["num_seeds"]
            r = [_md_text(a), _ci(g["mean"], n), _ci(g["iqm"], n)]
            if source_env is not None:
                r += [
                    _ci(g["mean_pct_of_source"], n, 1, "%"),
                    _ci(g["iqm_pct_of_source"], n, 1, "%"),
                ]
            dropped = f" (dropped {g['dropped_seeds']})" if g["dropped_seeds"] else ""
            r += [str(len(g["targets"])), f"{n}{dropped}", str(g["num_episodes"])]
            rows.append(r)
        lines += _table(head, rows)
    return [*lines, ""]


# --- learning curves -------------------------------------------------------------------------
def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (shorter at the start)."""
    if window <= 1:
        return y
    c = np.concatenate([[0.0], np.cumsum(y)])
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def learning_curves(
    runs: Sequence[TrainRun], *, points: int = 200, smooth: int = 10
) -> dict[str, dict[str, np.ndarray | int]]:
    """Per-agent learning curves on a common step grid.

    Each run's episodic returns are smoothed by a trailing mean over ``smooth`` episodes,
    averaged where several episodes end at the same step, and linearly interpolated onto
    ``points`` steps spanning the range every seed of the agent covers (the union of ranges
    if they do not overlap).

    Args:
        runs: training runs.
        points: grid size.
        smooth: smoothing window in episodes (1 = none).

    Returns:
        ``{agent: {"steps": (points,), "mean", "min", "max": (points,) over seeds,
        "num_seeds": int, "final": (num_seeds,) mean of each run's last ``smooth`` returns}}``.
    """
    by_agent: dict[str, list[TrainRun]] = {}
    for r in runs:
        by_agent.setdefault(r.agent or r.slug, []).append(r)
    out: dict[str, dict[str, np.ndarray | int]] = {}
    for agent in sorted(by_agent):
        curves = []
        for r in by_agent[agent]:
            y = _smooth(r.returns, smooth)
            steps, inv = np.unique(r.steps, return_inverse=True)
            y = np.bincount(inv, weights=y) / np.bincount(inv)
            curves.append((steps.astype(np.float64), y))
        lo = max(c[0][0] for c in curves)
        hi = min(c[0][-1] for c in curves)
        if hi <= lo:
            lo, hi = min(c[0][0] for c in curves), max(c[0][-1] for c in curves)
        grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
        ys = np.stack([np.interp(grid, x, y) for x, y in curves])
        out[agent] = {
            "steps": grid,
            "mean": ys.mean(axis=0),
            "min": ys.min(axis=0),
            "max": ys.max(axis=0),
            "num_seeds": len(curves),
            "final": np.array([r.returns[-max(smooth, 1) :].mean() for r in by_agent[agent]]),
        }
    return out


# --- plots -----------------------------------------------------------------------------------
def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def plot_learning_curves(curves: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Mean episodic return over seeds vs env steps, min-max band over seeds (PNG)."""
    fig = _new_figure(7, 4.5)
    ax = fig.add_subplot()
    if not curves:
        ax.text(
            0.5,
            0.5,
            "no training runs found (train/<agent>__<seed>/metrics.jsonl)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
    for agent, c in curves.items():
        (line,) = ax.plot(c["steps"], c["mean"], label=f"{agent} ({c['num_seeds']} seeds)")
        ax.fill_between(c["steps"], c["min"], c["max"], color=line.get_color(), alpha=0.2)
    if curves:
        ax.set_xlabel("env steps (global_step)")
        ax.set_ylabel("episodic return (mean over seeds; band: min-max)")
        ax.set_title("Training on the source env")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _save_figure(fig, path)


def plot_zero_shot(
    tables: Mapping[str, ModeTables], envs: Sequence[str], source_env: str | None, path: Path
) -> None:
    """Grouped bars: envs on x, one bar per agent, error bars the mean's CI (PNG)."""
    modes = list(tables)
    fig = _new_figure(max(6.0, 1.6 * len(envs) + 2), 3.8 * len(modes))
    axes = fig.subplots(len(modes), 1, squeeze=False)[:, 0]
    agents = sorted({a for t in tables.values() for a in t.cells})
    width = 0.8 / max(len(agents), 1)
    x = np.arange(len(envs))
    for ax, mode in zip(axes, modes):
        cells = tables[mode].cells
        for i, agent in enumerate(agents):
            est = [cells.get(agent, {}).get(e) for e in envs]
            pts = np.array([c.mean.point if c else np.nan for c in est])
            lo = np.array([c.mean.low if c else np.nan for c in est])
            hi = np.array([c.mean.high if c else np.nan for c in est])
            err = np.nan_to_num(np.stack([pts - lo, hi - pts]), nan=0.0)
            ax.bar(
                x + (i - (len(agents) - 1) / 2) * width,
                np.nan_to_num(pts),
                width,
                yerr=err,
                capsize=3,
                label=agent,
            )
        labels = [e.split("/")[-1] + ("\n(source)" if e == source_env else "") for e in envs]
        ax.set_xticks(x, labels, fontsize="small")
        ax.set_ylabel("mean return (95% CI over seeds)")
        ax.set_title(f"Zero-shot return, {mode} evaluation")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    _save_figure(fig, path)


# --- the report ------------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _results_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(RESULT_COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _plain(obj: Any) -> Any:
    if isinstance(obj, stats.Estimate):
        return [float(v) for v in obj]
    if isinstance(obj, Cell):
        return {
            "mean": _plain(obj.mean),
            "iqm": _plain(obj.iqm),
            "num_seeds": obj.num_seeds,
            "num_episodes": obj.num_episodes,
            "seed_means": {str(k): v for k, v in obj.seed_means.items()},
        }
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def build_report(
    roots: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    source_env: str | None = None,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Reads the runs under ``roots`` and writes the report into ``out_dir``.

    Args:
        roots: directories following the module's file contract; their runs are merged.
        out_dir: output directory (created if needed).
        source_env: the training env id: enables the transfer section and restricts the
            aggregate to the other (target) envs. Must appear in the evaluation files.
        reps: bootstrap replicates per interval.
        seed: base seed of the bootstrap (the report is reproducible from it).
        confidence: interval coverage.

    Returns:
        JSON-plain summary: ``report``, ``results_csv``, ``learning_curves``, ``zero_shot``
        (paths), ``markdown`` (the tables' text), ``agents``, ``envs``, ``source_env``,
        ``modes`` (``{mode: {"cells": {agent: {env: {...}}}, "transfer", "aggregate"}}``, each
        estimate as ``[point, low, high]``), ``rows`` (``results.csv`` rows) and ``inputs``
        (``[{"path", "sha256"}]``).

    Raises:
        ReportError: on missing or malformed inputs, or a ``source_env`` never evaluated.
    """
    roots = [Path(r) for r in roots]
    evals, trains = discover(roots)
    all_envs = {e for r in evals for e in r.env_id.tolist()}
    if source_env is not None and source_env not in all_envs:
        raise ReportError(
            f"source env {source_env!r} is not in the evaluation files; evaluated envs: "
            f"{sorted(all_envs)}"
        )
    envs = _order_envs(all_envs, source_env)
    tables = compute_tables(
        evals, source_env=source_env, reps=reps, seed=seed, confidence=confidence
    )
    rows = result_rows(tables)
    curves = learning_curves(trains)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out / "report.md",
        "results_csv": out / "results.csv",
        "learning_curves": out / "learning_curves.png",
        "zero_shot": out / "zero_shot.png",
    }

    agents = sorted({r.agent for r in evals})
    seeds_of = {a: sorted(r.seed for r in evals if r.agent == a) for a in agents}
    head = [
        "# Zero-shot transfer report",
        "",
        f"- Roots: {', '.join(f'`{r}`' for r in roots)}",
        f"- Agents: {len(agents)}; evaluation runs: {len(evals)}; training runs: {len(trains)}",
        *(f"  - {_md_text(a)}: seeds {seeds_of[a]}" for a in agents),
        f"- Source env: `{source_env}`" if source_env else "- Source env: not given",
        f"- Intervals: {round(confidence * 100)}% percentile bootstrap over training seeds "
        f"({reps} replicates, seed {seed}). Episode returns are first averaged per seed; the "
        "seeds are the runs (for aggregates, resampled within each env: stratified). A cell "
        "with one seed has no interval. With fewer than 4 seeds the IQM trims nothing and "
        "equals the mean; with few seeds percentile intervals are too narrow.",
        "",
    ]
    body: list[str] = []
    for mode, t in tables.items():
        body += _mode_markdown(mode, t, envs, source_env, confidence)
    tail = ["## Plots", "", "![zero-shot returns](zero_shot.png)", ""]
    tail += ["![learning curves](learning_curves.png)", ""]
    if curves:
        tail += ["Final training return (mean of each run's last 10 episodes):", ""]
        tail += _table(
            ["agent", "seeds", "mean over seeds [min, max]", "last step"],
            (
                [
                    _md_text(a),
                    str(c["num_seeds"]),
                    f"{_num(float(np.mean(c['final'])))} [{_num(float(np.min(c['final'])))}, "
                    f"{_num(float(np.max(c['final'])))}]",
                    str(int(c["steps"][-1])),
                ]
                for a, c in curves.items()
            ),
        )
        tail += [""]
    tail += ["## Provenance", "", "### Runs", ""]
    train_by_key = {(t.slug, t.seed): t for t in trains}
    prov_rows = []
    for r in evals:
        t = train_by_key.get((agent_slug(r.agent), r.seed))
        s = summarise_provenance(
            {"eval": r.provenance, "train": t.provenance if t is not None else None}
        )
        prov_rows.append(
            [
                _md_text(r.agent),
                str(r.seed),
                f"`{s['encoder']}`",
                s["encoder_sha256"][:12],
                f"`{s['dataset']}`",
                s["dataset_sha256"][:12],
                s["config_hash"],
                s["version"],
            ]
        )
    tail += _table(
        [
            "agent",
            "seed",
            "encoder",
            "encoder sha256",
            "dataset",
            "dataset sha256",
            "config hash",
            "version",
        ],
        prov_rows,
    )
    inputs: list[InputFile] = []
    for r in evals:
        inputs += [r.csv, r.json]
    for t in trains:
        inputs += [t.metrics, t.provenance_file]
    tail += ["", "### Input files", ""]
    tail += _table(["file", "sha256"], ([f"`{f.path}`", f.sha256] for f in inputs))
    tail += [""]
    markdown = "\n".join(body)
    _write_text(paths["report"], "\n".join([*head, *body, *tail]))
    _write_text(paths["results_csv"], _results_csv(rows))
    plot_learning_curves(curves, paths["learning_curves"])
    plot_zero_shot(tables, envs, source_env, paths["zero_shot"])
    return {
        **{k: str(v) for k, v in paths.items()},
        "markdown": markdown,
        "agents": agents,
        "envs": envs,
        "source_env": source_env,
        "modes": {
            mode: {
                "cells": _plain(t.cells),
                "transfer": {
                    a: {
                        e: {"pct_of_source": _plain(v[0]), "num_seeds": v[1], "num_episodes": v[2]}
                        for e, v in tr.items()
                    }
                    for a, tr in t.transfer.items()
                },
                "aggregate": _plain(t.aggregate),
            }
            for mode, t in tables.items()
        },
        "rows": rows,
        "inputs": [{"path": str(f.path), "sha256": f.sha256} for f in inputs],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m experiments.report ROOT [ROOT ...] --out DIR [--source-env ID]``.

    Prints the results tables (markdown) to stdout; returns 0, or 2 on bad inputs.
    """
    p = argparse.ArgumentParser(
        prog="python -m experiments.report",
        description="Zero-shot transfer report (tables with bootstrap CIs, plots, provenance) "
        "from <root>/eval/<agent>__<seed>.csv(+.json) and <root>/train/<agent>__<seed>/.",
    )
    p.add_argument("roots", nargs="+", help="run roots to merge (each with eval/ and train/)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--source-env", default=None, help="training env id (enables transfer %%)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    args = p.parse_args(argv)
    try:
        summary = build_report(
            args.roots, args.out, source_env=args.source_env, reps=args.reps, seed=args.seed
        )
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary["markdown"])
    print(f"wrote {summary['report']}", file=sys.stderr)
    return 0


__all__ = [
    "EVAL_COLUMNS",
    "RESULT_COLUMNS",
    "Cell",
    "EvalRun",
    "InputFile",
    "ModeTables",
    "ReportError",
    "TrainRun",
    "agent_slug",
    "build_report",
    "compute_tables",
    "discover",
    "learning_curves",
    "main",
    "plot_learning_curves",
    "plot_zero_shot",
    "read_eval_run",
    "read_train_run",
    "result_rows",
    "run_stem",
    "summarise_provenance",
]

if __name__ == "__main__":
    sys.exit(main())
