"""``build_report`` (read, compute, write) and the ``python -m experiments.report`` command."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envs.errors import ReprlError
from envs.storage.files import atomic_write_text
from experiments import stats
from experiments.report import markdown as md
from experiments.report.atariari_table import atariari_columns, atariari_rows, atariari_section
from experiments.report.plots import (
    SMOOTH_EPISODES,
    learning_curves,
    plot_learning_curves,
    plot_zero_shot,
)
from experiments.report.provenance import (
    PathDisplay,
    RunFacts,
    describe_agent,
    env_kwargs_of,
    run_encoder_sha256,
    run_facts,
    summarise_provenance,
)
from experiments.report.reading import (
    EvalRun,
    InputFile,
    ReportError,
    agent_slug,
    discover,
    discover_probes,
)
from experiments.report.tables import (
    BASELINE_AGENT,
    ENCODER_COLUMNS,
    REFERENCE_AGENT,
    RESULT_COLUMNS,
    Cell,
    ModeTables,
    compute_tables,
    encoder_rows,
    order_envs,
    probe_columns,
    result_rows,
)

#: Columns of ``runs.csv`` (one row per run; empty cell: unknown number; ``budget_kind`` is
#: ``steps``, ``seconds``, ``unknown``, or ``none`` for the untrained random reference).
RUN_COLUMNS: tuple[str, ...] = (
    "agent",
    "seed",
    "encoder_pretraining",
    "target_seen",
    "budget_kind",
    "budget_value",
    "env_steps",
    "train_seconds",
    "encoder_active_latents",
)


def _env_kwargs_variants(evals: Sequence[EvalRun]) -> list[str]:
    """The distinct evaluation env kwargs of the runs, as sorted JSON strings."""
    return sorted({json.dumps(env_kwargs_of(r.provenance) or {}, sort_keys=True) for r in evals})


def best_returns(evals: Sequence[EvalRun], env_ids: Sequence[str]) -> dict[str, float | str]:
    """``R_max`` of every env from ``envs.best_return(env_id, **env_kwargs)``.

    ``env_kwargs`` is each run's ``config.evaluate.env_kwargs`` (runs without it: defaults).

    Args:
        evals: the evaluation runs (all of them: their env kwargs must agree).
        env_ids: the evaluated env ids.

    Returns:
        ``{env: R_max}``, or ``{env: reason}`` where it is unknown (runs evaluated with
        different env kwargs, or ``envs.best_return`` refuses the env).

    Raises:
        ReportError: if this version of ``envs`` has no ``best_return``.
    """
    import envs as envs_lib
    import envs.registry

    fn = getattr(envs_lib, "best_return", None) or getattr(envs.registry, "best_return", None)
    if fn is None:
        raise ReportError(
            "envs.best_return: expected a function giving each env's best attainable return "
            "(R_max of the normalised scores), got none in this version of reprl's envs"
        )
    kwargs = _env_kwargs_variants(evals)
    if len(kwargs) > 1:
        why = f"runs were evaluated with different env_kwargs: {' vs '.join(kwargs)}"
        return dict.fromkeys(env_ids, why)
    kw = json.loads(kwargs[0]) if kwargs else {}
    out: dict[str, float | str] = {}
    for env in env_ids:
        try:
            value = fn(env, **kw)
        except (ReprlError, TypeError) as e:
            out[env] = f"R_max unknown: {e}"
            continue
        ok = isinstance(value, int | float) and math.isfinite(value)
        out[env] = float(value) if ok else f"R_max unknown: envs.best_return gave {value!r}"
    return out


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _write_table(
    path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> str | None:
    """Writes ``rows`` to ``path`` as CSV and returns the path; with no rows, removes an earlier
    report's file there (no table of results no longer present is left behind) and returns
    None."""
    if not rows:
        path.unlink(missing_ok=True)
        return None
    atomic_write_text(path, _csv(columns, rows))
    return str(path)


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
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _level_lines(evals: Sequence[EvalRun], env_ids: Sequence[str]) -> list[str]:
    """``- Levels: ...`` for procedurally generated envs (``envs.level_range``), else none."""
    import envs as envs_lib

    kwargs = _env_kwargs_variants(evals)
    kw = json.loads(kwargs[0]) if len(kwargs) == 1 else {}
    parts = []
    for env in env_ids:
        try:
            levels = envs_lib.level_range(env, **kw)
        except ReprlError:  # an env this version does not know: no level line for it
            continue
        if levels is not None:
            low, high = levels["level_range"]
            parts.append(f"`{env}`: {levels['split'] or 'custom'}, level seeds [{low}, {high})")
    return [f"- Levels: {'; '.join(parts)}"] if parts else []


def _run_row(agent: str, seed: int, f: RunFacts) -> dict[str, Any]:
    def known(x: float) -> Any:
        if x != x or x < 0:  # nan or -1: unknown
            return ""
        return int(x) if float(x).is_integer() else x

    values = (
        agent,
        seed,
        f.pretraining,
        f.target_seen,
        f.budget_kind,
        known(f.budget_value),
        known(f.env_steps),
        known(f.seconds),
        f.active_latents,
    )
    return dict(zip(RUN_COLUMNS, values))


def _agents_by_encoder(
    encoders: Mapping[str, str | None], tables: Mapping[str, ModeTables]
) -> tuple[dict[str, list[tuple[str, float]]], str | None]:
    """Checkpoint sha256 -> ``(agent, aggregate normalised score)`` of the agents trained on it.

    Args:
        encoders: agent -> the sha256 of its encoder checkpoint (from its runs' provenance).
        tables: the report's numbers; the deterministic mode's aggregate is used if present.

    Returns:
        The map, and the evaluation mode of the scores (``None``: no mode).
    """
    mode = "deterministic" if "deterministic" in tables else next(iter(tables), None)
    agg = tables[mode].aggregate if mode is not None else {}
    out: dict[str, list[tuple[str, float]]] = {}
    for agent, sha in sorted(encoders.items()):
        if sha is None:
            continue
        point = agg[agent]["mean"].point if agent in agg else math.nan
        out.setdefault(sha, []).append((agent, float(point)))
    return out, mode


def _probe_report(roots: Sequence[Path], out: Path, probes: Sequence[Any]) -> dict[str, Any]:
    """The report of a probe-only experiment (no agents): the encoder and AtariARI tables."""
    display = PathDisplay(out, roots)
    encoders = encoder_rows(probes)
    factor_columns = probe_columns(probes)
    atariari, atariari_vars = atariari_rows(probes)
    body = [
        *md.encoders_section(encoders, factor_columns),
        *atariari_section(atariari, atariari_vars),
    ]
    head = [
        "# Encoder probe report",
        "",
        f"- Roots: {', '.join(f'`{display(r)}`' for r in roots)}",
        f"- Encoders: {len(probes)}; no agents (a probe-only experiment: nothing was "
        "trained or evaluated)",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.md"
    atomic_write_text(report, "\n".join([*head, *body]))
    for stale in ("results.csv", "runs.csv", "learning_curves.png", "zero_shot.png"):
        (out / stale).unlink(missing_ok=True)  # an earlier report's, of agents no longer here
    columns = [*ENCODER_COLUMNS, *factor_columns]
    return {
        "report": str(report),
        "encoders_csv": _write_table(out / "encoders.csv", columns, encoders),
        "atariari_csv": _write_table(
            out / "atariari.csv", atariari_columns(atariari_vars), atariari
        ),
        "markdown": "\n".join(body),
        "agents": [],
        "envs": [],
        "encoders": encoders,
        "atariari": atariari,
    }


def build_report(
    roots: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    source_env: str | None = None,
    baseline: str | None = None,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Reads the runs under ``roots`` and writes the report into ``out_dir``.

    Args:
        roots: directories following the file contract; their runs are merged.
        out_dir: output directory (created if needed).
        source_env: the training env id: the aggregate and the comparisons are over the other
            (target) envs. Must appear in the evaluation files.
        baseline: agent the others are compared with; ``None``: ``pixels`` if present.
        reps: bootstrap replicates per interval.
        seed: base seed of the bootstrap (the report is reproducible from it).
        confidence: interval coverage.

    Returns:
        JSON-plain summary: ``report``, ``results_csv``, ``runs_csv``, ``learning_curves``,
        ``zero_shot``, ``encoders_csv``, ``atariari_csv`` (paths; the last two ``None``
        without probe results, or without AtariARI ones),
        ``markdown`` (the tables' text), ``agents``, ``envs``,
        ``source_env``, ``baseline``, ``reference``, ``modes`` (``{mode: {"cells",
        "normalisers", "normalised", "aggregate", "comparisons", "targets", "left_out"}}``,
        each estimate as ``[point, low, high]``), ``rows`` (``results.csv``), ``runs``
        (``runs.csv``), ``encoders`` (``encoders.csv``) and ``inputs`` (``[{"path",
        "sha256"}]``, paths as displayed). Roots with probe results but no evaluation file
        (a probe-only experiment) give a report of the encoder tables alone: ``report``,
        ``encoders_csv``, ``atariari_csv``, ``markdown``, ``encoders``, ``atariari`` and
        empty ``agents`` and ``envs``.

    Raises:
        ReportError: on missing or malformed inputs (neither an evaluation file nor a probe
            result), a ``source_env`` never evaluated, or a
            ``baseline`` that is not an agent.
    """
    roots = [Path(r) for r in roots]
    out = Path(out_dir)
    evals, trains = discover(roots, allow_empty=True)
    if not evals:
        probes = [p for p in discover_probes(roots) if not p.outdated]
        if not probes:
            discover(roots)  # raises: no evaluation files (and no probe results either)
        return _probe_report(roots, out, probes)
    all_envs = {e for r in evals for e in r.env_id.tolist()}
    if source_env is not None and source_env not in all_envs:
        raise ReportError(
            f"source env: expected one of the evaluated envs {sorted(all_envs)}, got {source_env!r}"
        )
    agents = sorted({r.agent for r in evals})
    if baseline is not None and baseline not in agents:
        raise ReportError(f"baseline: expected one of the agents {agents}, got {baseline!r}")
    baseline = baseline or (BASELINE_AGENT if BASELINE_AGENT in agents else None)
    envs = order_envs(all_envs, source_env)
    targets = [e for e in envs if e != source_env]
    tables = compute_tables(
        evals,
        best_returns=best_returns(evals, envs),
        source_env=source_env,
        baseline=baseline,
        reps=reps,
        seed=seed,
        confidence=confidence,
    )
    rows = result_rows(tables, baseline)
    curves = learning_curves(trains)
    display = PathDisplay(out, roots)

    facts, encoder_of, run_rows, prov = _runs(evals, trains, source_env, targets, display)
    probes = discover_probes(roots)
    current = [p for p in probes if not p.outdated]
    by_encoder, zero_shot_mode = _agents_by_encoder(encoder_of, tables)
    encoders = encoder_rows(current, by_encoder)
    factor_columns = probe_columns(current)
    described = {a: describe_agent(facts[a]) for a in agents}
    if REFERENCE_AGENT in described:
        described[REFERENCE_AGENT].update(budget="not trained", env_steps="0", seconds="0")

    head = _head(roots, display, evals, trains, envs, described, source_env, baseline)
    head += _intervals(confidence, reps, seed)
    head += ["", *md.agents_section(agents, _seeds_of(evals, agents), described)]
    body: list[str] = md.encoders_section(
        encoders,
        factor_columns,
        agents=by_encoder,
        outdated=[(display(p.file.path), str(p.outdated)) for p in probes if p.outdated],
        zero_shot_mode=zero_shot_mode,
    )
    atariari, atariari_vars = atariari_rows(current)
    body += atariari_section(atariari, atariari_vars)
    for mode, t in tables.items():
        body += md.mode_section(
            mode,
            t,
            envs,
            source_env,
            baseline=baseline,
            reference=REFERENCE_AGENT,
            confidence=confidence,
        )
    inputs = _inputs(evals, trains, probes)
    tail = [*_plots_section(curves), *md.provenance_section(prov, inputs, display)]

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out / "report.md",
        "results_csv": out / "results.csv",
        "runs_csv": out / "runs.csv",
        "learning_curves": out / "learning_curves.png",
        "zero_shot": out / "zero_shot.png",
    }
    atomic_write_text(paths["report"], "\n".join([*head, *body, *tail]))
    atomic_write_text(paths["results_csv"], _csv(RESULT_COLUMNS, rows))
    atomic_write_text(paths["runs_csv"], _csv(RUN_COLUMNS, run_rows))
    encoders_csv = _write_table(out / "encoders.csv", [*ENCODER_COLUMNS, *factor_columns], encoders)
    atariari_csv = _write_table(out / "atariari.csv", atariari_columns(atariari_vars), atariari)
    plot_learning_curves(curves, paths["learning_curves"])
    plot_zero_shot(tables, envs, source_env, paths["zero_shot"])
    return {
        **{k: str(v) for k, v in paths.items()},
        "encoders_csv": encoders_csv,
        "atariari_csv": atariari_csv,
        "markdown": "\n".join(body),
        "agents": agents,
        "envs": envs,
        "source_env": source_env,
        "baseline": baseline,
        "reference": REFERENCE_AGENT,
        "modes": {mode: _mode_summary(t) for mode, t in tables.items()},
        "rows": rows,
        "runs": run_rows,
        "encoders": encoders,
        "inputs": [{"path": display(f.path), "sha256": f.sha256} for f in inputs],
    }


def _runs(
    evals: list[Any],
    trains: list[Any],
    source_env: str | None,
    targets: list[str],
    display: PathDisplay,
) -> tuple[dict[str, list[RunFacts]], dict[str, str | None], list[Any], list[Any]]:
    """Per evaluated run: its facts (by agent), each agent's encoder sha256, the rows of
    ``runs.csv`` and the provenance summaries."""
    train_by_key = {(t.slug, t.seed): t for t in trains}
    facts: dict[str, list[RunFacts]] = {}
    encoder_of: dict[str, str | None] = {}
    run_rows, prov = [], []
    for r in evals:
        t = train_by_key.get((agent_slug(r.agent), r.seed))
        tprov = t.provenance if t is not None else None
        if r.agent != REFERENCE_AGENT:
            encoder_of.setdefault(r.agent, run_encoder_sha256(r.provenance, tprov))
        f = run_facts(r.provenance, tprov, source_env=source_env, targets=targets)
        if r.agent == REFERENCE_AGENT:  # no encoder, not trained
            f = RunFacts(
                "none (uniform-random policy)", "false", "none", math.nan, 0, math.nan, "none"
            )
        facts.setdefault(r.agent, []).append(f)
        run_rows.append(_run_row(r.agent, r.seed, f))
        s = summarise_provenance({"eval": r.provenance, "train": tprov}, display)
        prov.append((r.agent, r.seed, s))
    return facts, encoder_of, run_rows, prov


def _seeds_of(evals: list[Any], agents: list[str]) -> dict[str, list[int]]:
    return {a: sorted(r.seed for r in evals if r.agent == a) for a in agents}


def _head(
    roots: list[Path],
    display: PathDisplay,
    evals: list[Any],
    trains: list[Any],
    envs: list[str],
    described: dict[str, Any],
    source_env: str | None,
    baseline: str | None,
) -> list[str]:
    """The report's first lines: what it read and what it compares."""
    return [
        "# Zero-shot transfer report",
        "",
        f"- Roots: {', '.join(f'`{display(r)}`' for r in roots)}",
        f"- Agents: {len(described)}; evaluation runs: {len(evals)}; training runs: {len(trains)}",
        f"- Source env: `{source_env}`" if source_env else "- Source env: not given",
        f"- Baseline: `{baseline}`" if baseline else "- Baseline: none (no agent `pixels`)",
        *_level_lines(evals, envs),
    ]


def _intervals(confidence: float, reps: int, seed: int) -> list[str]:
    return [
        f"- Intervals: {round(confidence * 100)}% percentile bootstrap over training seeds "
        f"({reps} replicates, seed {seed}). Episode returns are first averaged per seed; the "
        "seeds are the runs (for aggregates, resampled within each env: stratified). A cell "
        "with one seed has no interval; with few seeds percentile intervals are too narrow."
    ]


def _plots_section(curves: Any) -> list[str]:
    """The plots and the final returns of the learning curves."""
    window = f"trailing mean over {SMOOTH_EPISODES} episodes"
    return [
        "## Plots",
        "",
        "![zero-shot returns](zero_shot.png)",
        "",
        "One panel per env and mode with its own y scale: each agent's mean return [CI]; "
        "dashed: R_min (random), dotted: R_max (best).",
        "",
        "![learning curves](learning_curves.png)",
        "",
        f"Learning curves smoothed by a {window}; band: min-max over seeds.",
        "",
        *md.final_returns_section(curves, SMOOTH_EPISODES),
    ]


def _inputs(evals: list[Any], trains: list[Any], probes: list[Any]) -> list[InputFile]:
    """Every file the report read, in the provenance table's order."""
    inputs: list[InputFile] = []
    for r in evals:
        inputs += [r.csv, r.json]
    for t in trains:
        inputs += [t.metrics, t.provenance_file]
    return inputs + [p.file for p in probes]


def _mode_summary(t: ModeTables) -> dict[str, Any]:
    return _plain(
        {
            "cells": t.cells,
            "normalisers": t.normalisers,
            "normalised": t.normalised,
            "aggregate": t.aggregate,
            "comparisons": t.comparisons,
            "targets": t.targets,
            "left_out": t.left_out,
        }
    )


__all__ = ["RUN_COLUMNS", "best_returns", "build_report"]
