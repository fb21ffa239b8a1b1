"""The sections of ``report.md``: agents, per-mode tables, plots, provenance."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from experiments import stats
from experiments.report.reading import InputFile
from experiments.report.tables import (
    AGGREGATE_ENV,
    MIN_SCORES_FOR_IQM,
    Cell,
    ModeTables,
    iqm_differs,
)


def num(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, ``n/a`` if not finite."""
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def ci(est: stats.Estimate, n: int, digits: int = 2) -> str:
    """``point [low, high]``; says why where there is no interval (one seed)."""
    if not math.isfinite(est.point):
        return "n/a"
    p = num(est.point, digits)
    if n <= 1:
        return f"{p} (1 seed: no CI)"
    if not (math.isfinite(est.low) and math.isfinite(est.high)):
        return f"{p} [CI n/a]"
    return f"{p} [{num(est.low, digits)}, {num(est.high, digits)}]"


def md_text(s: str) -> str:
    """``s`` safe inside a markdown table cell."""
    return s.replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _env_header(env: str, source_env: str | None) -> str:
    return f"`{env}`" + (" (source)" if env == source_env else "")


_IQM_OMITTED = (
    f"IQM omitted: no cell has {MIN_SCORES_FOR_IQM} or more seeds, and the IQM (rliable's 25% "
    f"trimmed mean) of fewer than {MIN_SCORES_FOR_IQM} values trims nothing, so it would equal "
    "the mean."
)


def agents_section(
    agents: Sequence[str],
    seeds_of: Mapping[str, Sequence[int]],
    described: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """Every agent's seeds, encoder pretraining data and training budget."""
    lines = [
        "## Agents",
        "",
        "Encoder pretraining data: `none (pixels)` for agents without an encoder, `source only` "
        "when the encoder saw nothing but the source env (zero-shot in the strict sense: no "
        "target frame reached encoder or policy), otherwise the listed env ids, flagged "
        "`target seen` when an evaluated target is among them. Budget: every agent trained "
        "with equal env steps or equal wall-clock seconds; env steps taken and training seconds "
        "are per seed (a range when seeds differ). Active latents: how many of the encoder's "
        "latents vary over 2,000 of its pretraining frames (variance of the code > 0.01, Burda "
        "et al. 2016; VAEs only); `collapsed`: none does, the agent saw a constant. `unknown`: "
        "the run's files predate these records.",
        "",
    ]
    rows = []
    for a in agents:
        d = described[a]
        rows.append(
            [
                md_text(a),
                ", ".join(map(str, seeds_of[a])),
                md_text(d["pretraining"]),
                d["active_latents"],
                d["budget"],
                d["env_steps"],
                d["seconds"],
            ]
        )
    head = [
        "agent",
        "seeds",
        "encoder pretraining data",
        "active latents",
        "budget",
        "env steps taken",
        "seconds",
    ]
    return [*lines, *table(head, rows), ""]


def _row(t_cells: Mapping[str, Cell], envs: Sequence[str], fn: Callable[[Cell], str]) -> list[str]:
    return [fn(t_cells[e]) if e in t_cells else "—" for e in envs]


def mode_section(
    mode: str,
    t: ModeTables,
    envs: Sequence[str],
    source_env: str | None,
    *,
    baseline: str | None,
    reference: str,
    confidence: float,
) -> list[str]:
    """Returns, normalised scores, the aggregate and the baseline comparison of one mode."""
    pct = f"{round(confidence * 100)}%"
    header = ["agent", *(_env_header(e, source_env) for e in envs)]
    lines = [f"## {mode.capitalize()} evaluation", "", f"### Mean return [{pct} CI]", ""]
    lines += table(
        header,
        (
            [md_text(a), *_row(c, envs, lambda x: ci(x.mean, x.num_seeds))]
            for a, c in t.cells.items()
        ),
    )
    lines += [""]
    if any(iqm_differs(c.num_seeds) for cells in t.cells.values() for c in cells.values()):
        lines += [f"### IQM return over seeds [{pct} CI] · seeds / episodes", ""]

        def fn(x: Cell) -> str:
            return f"{ci(x.iqm, x.num_seeds)} · {x.num_seeds} / {x.num_episodes}"

        lines += table(header, ([md_text(a), *_row(c, envs, fn)] for a, c in t.cells.items()))
        lines += [""]
    else:
        lines += [_IQM_OMITTED, ""]
    lines += _normalised(t, envs, source_env, reference, pct)
    lines += _aggregate(t, pct)
    lines += _comparison(t, baseline, reference, pct)
    return lines


def _normalised(
    t: ModeTables, envs: Sequence[str], source_env: str | None, reference: str, pct: str
) -> list[str]:
    lines = [
        f"### Normalised score (R - R_min) / (R_max - R_min) [{pct} CI]",
        "",
        f"R_min: the mean return of the uniform-random reference `{reference}`, evaluated with "
        "the same episodes and env seeds as the agents (a constant here: its own uncertainty is "
        "not in the intervals). R_max: the best attainable return of the env with the "
        "evaluation's env kwargs (`envs.best_return`). 0 = random, 1 = best.",
        "",
    ]
    rows = []
    for env in envs:
        n = t.normalisers[env]
        status = "defined" if n.problem is None else f"n/a: {n.problem}"
        if n.note:
            status += f" ({n.note})"
        rows.append(
            [
                _env_header(env, source_env),
                num(n.r_min),
                str(n.reference_episodes),
                num(n.r_max),
                md_text(status),
            ]
        )
    lines += table(["env", "R_min", "reference episodes", "R_max", "normalised score"], rows)
    lines += [""]
    if not t.normalised:
        return [*lines, f"No agent other than the reference `{reference}` in this mode.", ""]
    if all(n.problem is not None for n in t.normalisers.values()):
        return [*lines, "No normalised scores: no env has both constants (see above).", ""]

    def cell(agent: str, env: str) -> str:
        if env not in t.cells[agent]:
            return "—"
        c = t.normalised[agent].get(env)
        return ci(c.mean, c.num_seeds) if c else "n/a"

    header = ["agent", *(_env_header(e, source_env) for e in envs)]
    lines += table(header, ([md_text(a), *(cell(a, e) for e in envs)] for a in t.normalised))
    lines += [""]
    if any(iqm_differs(c.num_seeds) for cells in t.normalised.values() for c in cells.values()):
        lines += [f"Normalised IQM over seeds [{pct} CI]:", ""]
        lines += table(
            header,
            (
                [md_text(a), *_row(c, envs, lambda x: ci(x.iqm, x.num_seeds))]
                for a, c in t.normalised.items()
            ),
        )
        lines += [""]
    return lines


def _aggregate(t: ModeTables, pct: str) -> list[str]:
    lines = [f"### Aggregate normalised score over targets [{pct} CI]", ""]
    if not t.targets:
        why = "; ".join(f"`{e}`: {p}" for e, p in t.left_out.items()) or "no target env"
        return [*lines, f"No aggregate: no target has a normalised score ({md_text(why)}).", ""]
    left = ""
    if t.left_out:
        left = (
            " Left out (no normalised score): "
            + "; ".join(f"`{e}`: {md_text(p)}" for e, p in t.left_out.items())
            + "."
        )
    lines += [
        "Targets: " + ", ".join(f"`{e}`" for e in t.targets) + "." + left + " Stratified "
        "bootstrap: seeds resampled within each target, targets as tasks; only seeds evaluated "
        "on every target. Mean = mean over targets of the mean over seeds; IQM = rliable's 25% "
        "trimmed mean of all (seed, target) scores.",
        "",
    ]
    rows_iqm = any(iqm_differs(g["num_seeds"] * len(g["targets"])) for g in t.aggregate.values())
    head = ["agent", "mean", *(["IQM"] if rows_iqm else []), "targets", "seeds", "episodes"]
    rows = []
    for a, g in t.aggregate.items():
        n = g["num_seeds"]
        dropped = f" (dropped {g['dropped_seeds']})" if g["dropped_seeds"] else ""
        r = [md_text(a), ci(g["mean"], n)]
        if rows_iqm:
            r.append(ci(g["iqm"], n) if iqm_differs(n * len(g["targets"])) else "= mean")
        rows.append([*r, str(len(g["targets"])), f"{n}{dropped}", str(g["num_episodes"])])
    lines += table(head, rows)
    if not rows_iqm:
        lines += ["", f"IQM omitted: fewer than {MIN_SCORES_FOR_IQM} (seed, target) scores."]
    return [*lines, ""]


def _comparison(t: ModeTables, baseline: str | None, reference: str, pct: str) -> list[str]:
    if baseline is None:
        return []
    lines = [f"### Against the baseline `{baseline}`", ""]
    if baseline not in t.cells:
        return [*lines, f"No agent named `{baseline}` in this mode: no comparison.", ""]
    if not t.comparisons:
        why = "no target has a normalised score" if not t.targets else "no other agent"
        return [*lines, f"No comparison: {why}.", ""]
    lines += [
        f"Difference: the agent's normalised score minus `{baseline}`'s, per target and over "
        "the targets. Paired by training seed where both agents have the same seeds (bootstrap "
        "of the per-seed differences); otherwise unpaired (each agent resampled on its own), "
        f"marked. P(agent > {baseline}): rliable's probability of improvement, the "
        "Mann-Whitney U statistic over all n·m seed pairs divided by n·m (ties count 1/2), "
        "averaged over targets (all pairs: never paired); 0.5 = no difference. Intervals: "
        "stratified bootstrap "
        f"({pct}); none with a single seed on either side.",
        "",
    ]
    cols = [*t.targets, AGGREGATE_ENV]

    def fmt(cmp: Any, est: stats.Estimate, mark: bool) -> str:
        s = ci(est, min(cmp.num_seeds, cmp.baseline_num_seeds))
        if mark and not cmp.paired:
            s += f" (unpaired: {cmp.num_seeds} vs {cmp.baseline_num_seeds} seeds)"
        return s

    for title, attr in (
        (f"#### Normalised score, agent - `{baseline}` [{pct} CI]", "diff"),
        (f"#### P(agent > `{baseline}`) [{pct} CI]", "prob_improvement"),
    ):
        paired_table = attr == "diff"
        head = ["agent", *(f"`{e}`" for e in t.targets), "over targets"]
        head.append("pairing" if paired_table else "seeds (agent vs baseline)")
        rows = []
        for a, comps in t.comparisons.items():
            agg = comps.get(AGGREGATE_ENV)
            last = "—"
            if agg is not None and not paired_table:
                last = f"{agg.num_seeds} vs {agg.baseline_num_seeds}"
            elif agg is not None:
                last = (
                    f"paired ({agg.num_seeds} seeds)"
                    if agg.paired
                    else f"unpaired ({agg.num_seeds} vs {agg.baseline_num_seeds} seeds)"
                )
            cells = [
                fmt(comps[e], getattr(comps[e], attr), paired_table and e != AGGREGATE_ENV)
                if e in comps
                else "—"
                for e in cols
            ]
            rows.append([md_text(a), *cells, last])
        lines += [title, "", *table(head, rows), ""]
    return lines


def final_returns_section(curves: Mapping[str, Mapping[str, Any]], smooth: int) -> list[str]:
    """Each agent's final training return (mean of each run's last ``smooth`` episodes)."""
    if not curves:
        return []
    lines = [f"Final training return (mean of each run's last {smooth} episodes):", ""]
    lines += table(
        ["agent", "seeds", "mean over seeds [min, max]", "last step"],
        (
            [
                md_text(a),
                str(c["num_seeds"]),
                f"{num(float(np.mean(c['final'])))} [{num(float(np.min(c['final'])))}, "
                f"{num(float(np.max(c['final'])))}]",
                str(int(c["steps"][-1])),
            ]
            for a, c in curves.items()
        ),
    )
    return [*lines, ""]


def provenance_section(
    runs: Sequence[tuple[str, int, Mapping[str, str]]],
    inputs: Sequence[InputFile],
    display: Callable[..., str],
) -> list[str]:
    """Per-run provenance summaries and every input file with its sha256."""
    lines = [
        "## Provenance",
        "",
        "Paths are relative to this report's directory; a file outside its parent directory is "
        "shown as `<root name>/<path in the root>`, or as `…/<file name>` outside every root. "
        "Config hash: the run's recorded `config_hash`; `(computed)`: the run records none, "
        "shown is the first 16 hex digits of the sha256 of its provenance JSON.",
        "",
        "### Runs",
        "",
    ]
    rows = []
    for agent, seed, s in runs:
        chash = s["config_hash"] + (" (computed)" if s["config_hash_source"] == "computed" else "")
        rows.append(
            [
                md_text(agent),
                str(seed),
                f"`{md_text(s['encoder'])}`",
                s["encoder_sha256"][:12],
                f"`{md_text(s['dataset'])}`",
                s["dataset_sha256"][:12],
                md_text(chash),
                s["version"],
            ]
        )
    head = [
        "agent",
        "seed",
        "encoder",
        "encoder sha256",
        "dataset",
        "dataset sha256",
        "config hash",
        "version",
    ]
    lines += table(head, rows)
    lines += ["", "### Input files", ""]
    lines += table(
        ["file", "sha256"], ([f"`{md_text(display(f.path))}`", f.sha256] for f in inputs)
    )
    return [*lines, ""]


#: Factor columns of the Encoders table at most (every factor is in ``encoders.csv``).
MAX_FACTOR_COLUMNS = 8


def _cell(x: Any, digits: int = 3) -> str:
    return "—" if x == "" or x is None else num(float(x), digits)


def encoders_section(
    rows: Sequence[Mapping[str, Any]],
    factor_columns: Sequence[str],
    *,
    agents: Mapping[str, Sequence[tuple[str, float]]] | None = None,
    outdated: Sequence[tuple[str, str]] = (),
    zero_shot_mode: str | None = None,
    max_factors: int = MAX_FACTOR_COLUMNS,
) -> list[str]:
    """One row per encoder: probe score per factor, mean R^2, MIG, DCI, ARI, its agents.

    Args:
        rows: rows of ``encoders.csv`` (:func:`experiments.report.tables.encoder_rows`).
        factor_columns: their ``<metric>:<factor>`` columns, in display order.
        agents: checkpoint sha256 -> ``(agent, aggregate normalised zero-shot score)`` of the
            agents trained on it (nan: no score).
        outdated: ``(probe file, reason)`` of probe results left out.
        zero_shot_mode: the evaluation mode of the agents' normalised scores.
        max_factors: factor columns shown at most (those scored for some encoder).

    Returns:
        The section's lines; none when there is neither a row nor a left-out file.
    """
    if not rows and not outdated:
        return []
    lines = ["## Encoders", ""]
    if rows:
        frames = sorted({int(r["frames"]) for r in rows if r["frames"] != ""})
        scored = [c for c in factor_columns if any(r.get(c, "") != "" for r in rows)]
        shown, hidden = scored[:max_factors], scored[max_factors:]
        lines += [
            "What each pretrained encoder captures, scored on "
            + (" / ".join(f"{n:,}" for n in frames) or "unknown numbers of")
            + " frames of its pretraining data (`probe/<encoder>.json`). Per factor: a linear "
            "probe fitted on training episodes and scored on held-out episodes, R^2 for "
            "continuous factors (0: no better than the mean, negative: worse) and macro-F1 for "
            "discrete ones (marked F1); mean R^2 over the continuous factors. MIG (Chen et al. "
            "2018) and DCI disentanglement (Eastwood & Williams 2018): 0 to 1, higher is more "
            "disentangled. ARI / FG-ARI: how well a decomposing encoder's masks match the true "
            "objects on fresh frames (1: perfectly, 0: chance; FG-ARI leaves out the "
            "background). Top-1 k=1: a sequence method's (CPC's) accuracy at picking the next "
            "frame's code among all codes of a batch, on fresh episodes, beside chance. Query "
            "MSE: a scene method's (GQN's) error rendering the last view of fresh scenes from "
            "their other views, beside the mean-of-context baseline (the context views' "
            "average image; lower is better). `—`: not computed or undefined. Every number, "
            "every factor included: `encoders.csv`.",
            "",
        ]
        extra = [
            (key, label)
            for key, label in (
                ("mean_r2", "mean R^2"),
                ("mig", "MIG"),
                ("dci_disentanglement", "DCI disentanglement"),
                ("ari", "ARI"),
                ("fg_ari", "FG-ARI"),
                ("pred_acc_k1", "top-1 k=1"),
                ("pred_chance", "chance"),
                ("render_mse", "query MSE"),
                ("render_baseline_mse", "mean-of-context MSE"),
            )
            if any(r.get(key, "") != "" for r in rows)
        ]
        agents = agents or {}
        linked = any(agents.get(r["checkpoint_sha256"]) for r in rows)
        head = ["encoder", "method", "active latents"]
        for c in shown:
            metric, factor = c.split(":", 1)
            head.append(f"`{md_text(factor)}`" + (" F1" if metric == "macro_f1" else ""))
        head += [label for _, label in extra]
        if linked:
            head.append(f"agents (normalised zero-shot score, {zero_shot_mode or 'n/a'})")
        body = []
        for r in rows:
            cells = [md_text(str(r["encoder"])), md_text(str(r["method"])), r["active_latents"]]
            cells += [_cell(r.get(c, "")) for c in shown]
            cells += [_cell(r.get(key, "")) for key, _ in extra]
            if linked:
                used = agents.get(r["checkpoint_sha256"], [])
                cells.append(", ".join(f"`{md_text(a)}` {num(v, 3)}" for a, v in used) or "none")
            body.append(cells)
        lines += table(head, body)
        lines += [""]
        if hidden:
            lines += [
                f"{len(hidden)} more factor(s) in `encoders.csv`: "
                + ", ".join(f"`{md_text(c.split(':', 1)[1])}`" for c in hidden)
                + ".",
                "",
            ]
        if linked:
            lines += [
                "Agents: those trained on the encoder's checkpoint (same sha256), with their "
                f"aggregate normalised score over the targets ({zero_shot_mode or 'n/a'} "
                "evaluation, mean over seeds; `n/a`: no aggregate).",
                "",
            ]
        for r in rows:
            if r.get("note"):
                lines += [f"- `{md_text(str(r['encoder']))}`: {md_text(str(r['note']))}."]
        if any(r.get("note") for r in rows):
            lines += [""]
    for path, why in outdated:
        lines += [f"- Left out `{md_text(path)}`: {md_text(why)} (rerun the probe stage)."]
    if outdated:
        lines += [""]
    return lines


__all__ = [
    "MAX_FACTOR_COLUMNS",
    "agents_section",
    "ci",
    "encoders_section",
    "final_returns_section",
    "md_text",
    "mode_section",
    "num",
    "provenance_section",
    "table",
]
