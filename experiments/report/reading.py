"""Reading the file contract: evaluation CSV + JSON per run, training metrics + provenance.

See :mod:`experiments.report` for the contract. Every reader raises :class:`ReportError` naming
the file and what was expected.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.errors import ReprlError
from experiments.layout import RunLayout, agent_slug, parse_stem, run_stem

EVAL_COLUMNS: tuple[str, ...] = (
    "agent",
    "seed",
    "env_id",
    "episode",
    "return",
    "length",
    "deterministic",
)
STEP_KEY = "global_step"
RETURN_KEY = "charts/episodic_return"


class ReportError(ReprlError):
    """A missing or malformed input file, inputs that cannot be merged, or a bad option."""


class NoEpisodesError(ReportError):
    """A training run whose metrics hold no finished episode (too short to draw a curve)."""


# --- names ---------------------------------------------------------------------------------
def _parse_stem(stem: str, path: Path) -> tuple[str, int]:
    parsed = parse_stem(stem)
    if parsed is None:
        raise ReportError(f"{path}: expected a name '<agent>__<integer seed>', got {stem!r}")
    return parsed


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


@dataclass
class EncoderProbe:
    """One encoder's probe results, ``ROOT/probe/<encoder>.json`` (see the file contract).

    Attributes:
        name: the encoder's name as the report shows it: its ``encoder`` entry, prefixed with
            the root directory's name (``<root>/<encoder>``) where two roots hold different
            results under the same name.
        root: the root it was read from.
        file: the JSON file and its sha256.
        data: the JSON object.
        outdated: why the results no longer describe the encoder (its checkpoint was rewritten
            since), or ``None``.
    """

    name: str
    root: Path
    file: InputFile
    data: dict[str, Any]
    outdated: str | None = None


def read_probe(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> EncoderProbe:
    """Reads ``ROOT/probe/<encoder>.json`` (see the module's contract).

    Args:
        path: the probe JSON.
        root: the root it lies in (its ``checkpoint.path`` is relative to it).

    Returns:
        The results, with ``outdated`` set when ``ROOT/<checkpoint.path>`` exists with another
        sha256 than the one recorded.

    Raises:
        ReportError: naming the file if it is not a JSON object with a non-empty string
            ``encoder``.
    """
    p, r = Path(path), Path(root)
    data, info = _read_json_object(p, "probe results of one encoder")
    name = data.get("encoder")
    if not isinstance(name, str) or not name:
        raise ReportError(
            f"{p}: expected a non-empty string 'encoder' (the encoder's name), got {name!r}"
        )
    outdated = None
    ref = data.get("checkpoint")
    if isinstance(ref, Mapping) and isinstance(ref.get("path"), str) and ref.get("sha256"):
        ckpt = r / ref["path"]
        if ckpt.is_file() and _file_sha256(ckpt) != ref["sha256"]:
            outdated = f"its checkpoint {ref['path']} has changed since it was probed"
    return EncoderProbe(name=name, root=r, file=info, data=data, outdated=outdated)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def discover_probes(roots: Sequence[str | os.PathLike[str]]) -> list[EncoderProbe]:
    """Reads every ``ROOT/probe/*.json`` (none: an empty list; the probes are optional).

    The same encoder name in two roots is read once where the files are byte-identical;
    otherwise each is named ``<root directory name>/<encoder>``.

    Returns:
        The probes, sorted by name.

    Raises:
        ReportError: for a malformed file (see :func:`read_probe`).
    """
    found: list[EncoderProbe] = []
    for r in roots:
        d = RunLayout(Path(r)).probe_dir
        for p in sorted(d.glob("*.json")) if d.is_dir() else []:
            if p.name.endswith(".stage.json"):  # the stage's own record
                continue
            probe = read_probe(p, r)
            if not any(f.name == probe.name and f.file.sha256 == probe.file.sha256 for f in found):
                found.append(probe)
    names = [f.name for f in found]
    for f in found:
        if names.count(f.name) > 1:
            f.name = f"{f.root.name}/{f.name}"
    return sorted(found, key=lambda f: f.name)


def discover(
    roots: Sequence[str | os.PathLike[str]], *, allow_empty: bool = False
) -> tuple[list[EvalRun], list[TrainRun]]:
    """Reads every evaluation file and training run under ``roots``.

    Args:
        roots: directories holding ``eval/`` and/or ``train/``.
        allow_empty: return empty lists where no evaluation file exists (a probe-only
            experiment) instead of raising.

    Returns:
        ``(eval_runs, train_runs)`` sorted by (agent slug, seed).

    Raises:
        ReportError: if a root is missing, no evaluation file is found (unless
            ``allow_empty``), or the same run differs between roots.
    """
    evals: dict[tuple[str, int], EvalRun] = {}
    trains: dict[tuple[str, int], TrainRun] = {}
    for r in roots:
        root = Path(r)
        if not root.is_dir():
            raise ReportError(f"{root}: not a directory (expected a root with eval/ and train/)")
        eval_dir, train_dir = RunLayout(root).eval_dir, RunLayout(root).train_dir
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
    if not evals and not allow_empty:
        raise ReportError(
            "no evaluation files found: expected <root>/eval/<agent>__<seed>.csv under "
            + ", ".join(str(r) for r in roots)
        )
    names = {agent_slug(e.agent): e.agent for e in evals.values()}
    for t in trains.values():
        if t.agent is None:
            t.agent = names.get(t.slug, t.slug)
    return [evals[k] for k in sorted(evals)], [trains[k] for k in sorted(trains)]


__all__ = [
    "EVAL_COLUMNS",
    "RETURN_KEY",
    "STEP_KEY",
    "EncoderProbe",
    "EvalRun",
    "InputFile",
    "NoEpisodesError",
    "ReportError",
    "TrainRun",
    "agent_slug",
    "discover",
    "discover_probes",
    "read_eval_run",
    "read_probe",
    "read_train_run",
    "run_stem",
]
