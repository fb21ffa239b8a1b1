"""The AtariARI table of a report: each encoder's probe F1 per RAM variable, beside the paper's.

Read from the ``atariari`` entry of ``probe/<encoder>.json`` (``probe.protocol: atariari``,
:func:`representations.metrics.atariari.atariari_probe`); written as ``atariari.csv`` and a
section of ``report.md``. The majority classifier is a row of its own (the same in every probe
file of one run: the same labels and split). The paper's numbers come from
:mod:`experiments.report.atariari_published`, matched by encoder name (``random_init`` is the
paper's random CNN); where it has none the cell says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from experiments.report import atariari_published as published
from experiments.report.reading import EncoderProbe

MAJORITY = "majority"
"""The majority classifier's row."""

PAPER_NAMES = {"random_init": "random_cnn"}
"""reprl's encoder names whose paper row has another name."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "encoder",
    "method",
    "mean_f1",
    "across_categories_f1",
    "paper_mean_f1_22_games",
)
"""Columns of ``atariari.csv`` before the per-variable ``f1:<variable>`` ones."""


def _f1(x: Any) -> float | str:
    """A finite F1 as a float, anything else as ``""``."""
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else ""


def _paper(name: str) -> float | str:
    """The paper's 22-game mean F1 of the row named ``name``, or ``""``."""
    return published.MEAN_F1_22_GAMES.get(PAPER_NAMES.get(name, name), "")


def atariari_rows(probes: Sequence[EncoderProbe]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of ``atariari.csv`` and its variables, in the order the first probe lists them.

    Args:
        probes: the encoders' probe results; those without an ``atariari`` entry (another
            protocol, or skipped) and outdated ones are left out.

    Returns:
        ``(rows, variables)``: one row per encoder, then the majority row; columns
        :data:`SUMMARY_COLUMNS` and ``f1:<variable>``, each F1 in ``[0, 1]`` or ``""`` where
        the encoder's probe did not score that variable. No rows: ``([], [])``.
    """
    scored = [p for p in probes if not p.outdated and isinstance(p.data.get("atariari"), Mapping)]
    variables: list[str] = []
    for p in scored:
        variables += [v for v in p.data["atariari"].get("per_variable", {}) if v not in variables]
    rows: list[dict[str, Any]] = []
    for p in scored:
        a = p.data["atariari"]
        per = a.get("per_variable", {})
        rows.append(
            {
                "encoder": p.name,
                "method": str(p.data.get("method", "")),
                "mean_f1": _f1(a.get("mean_f1")),
                "across_categories_f1": _f1(a.get("across_categories_f1")),
                "paper_mean_f1_22_games": _paper(p.name),
                **{f"f1:{v}": _f1((per.get(v) or {}).get("f1")) for v in variables},
            }
        )
    if scored:
        first = scored[0].data["atariari"]
        per = first.get("per_variable", {})
        majority = first.get("majority") or {}
        rows.append(
            {
                "encoder": MAJORITY,
                "method": "majority class of the training frames",
                "mean_f1": _f1(majority.get("mean_f1")),
                "across_categories_f1": _f1(majority.get("across_categories_f1")),
                "paper_mean_f1_22_games": _paper(MAJORITY),
                **{f"f1:{v}": _f1((per.get(v) or {}).get("majority_f1")) for v in variables},
            }
        )
    return rows, variables


def _cell(x: Any) -> str:
    return f"{x:.2f}" if isinstance(x, float) else "—"


def atariari_section(rows: Sequence[Mapping[str, Any]], variables: Sequence[str]) -> list[str]:
    """The report's AtariARI section (none without rows).

    Args:
        rows: :func:`atariari_rows`' rows.
        variables: their variables, in column order.

    Returns:
        The section's markdown lines.
    """
    if not rows:
        return []
    header = ["encoder", "method", *[f"`{v}`" for v in variables], "mean F1", "across categories"]
    header.append("paper, mean of 22 games")
    lines = [
        "## AtariARI probe (Anand et al. 2019)",
        "",
        "Per RAM variable: the weighted F1 of a linear classifier over the variable's byte "
        "values, trained on the frozen codes of the training episodes (early stopping on the "
        "validation episodes) and scored on the test episodes' frames that occur in no other "
        "split; variables whose label entropy is below the threshold are left out, as the "
        "paper does. Mean F1: over the variables; across categories: the mean over the "
        "paper's categories of the mean within each (what the paper reports per game). "
        "The paper's column is its mean over 22 games, not this game's score: "
        f"{published.MEAN_F1_SOURCE}. Every number: `atariari.csv`.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        cells = [str(r["encoder"]), str(r["method"])]
        cells += [_cell(r.get(f"f1:{v}")) for v in variables]
        cells += [_cell(r["mean_f1"]), _cell(r["across_categories_f1"])]
        cells.append(_cell(r["paper_mean_f1_22_games"]))
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def atariari_columns(variables: Sequence[str]) -> list[str]:
    """The columns of ``atariari.csv``."""
    return [*SUMMARY_COLUMNS, *[f"f1:{v}" for v in variables]]


__all__ = ["MAJORITY", "atariari_columns", "atariari_rows", "atariari_section"]
