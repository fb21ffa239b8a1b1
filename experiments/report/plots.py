"""Learning curves and the report's two figures (small PNGs, every panel labelled)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.storage.files import atomic_path
from experiments.report.reading import TrainRun
from experiments.report.tables import ModeTables

#: Trailing window (episodes) of the learning curves' smoothing.
SMOOTH_EPISODES = 10


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (shorter at the start)."""
    if window <= 1:
        return y
    c = np.concatenate([[0.0], np.cumsum(y)])
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def learning_curves(
    runs: Sequence[TrainRun], *, points: int = 200, smooth: int = SMOOTH_EPISODES
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


def _save_figure(fig: Any, path: Path, dpi: int = 80) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def plot_learning_curves(
    curves: Mapping[str, Mapping[str, Any]], path: Path, *, smooth: int = SMOOTH_EPISODES
) -> None:
    """Mean smoothed episodic return over seeds vs env steps, min-max band over seeds (PNG).

    Args:
        curves: :func:`learning_curves` output.
        path: PNG file, written atomically.
        smooth: the smoothing window the curves were made with (stated in the title).
    """
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
        window = f"trailing mean over {smooth} episodes" if smooth > 1 else "not smoothed"
        ax.set_title(f"Training on the source env (smoothed: {window})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _save_figure(fig, path)


def plot_zero_shot(
    tables: Mapping[str, ModeTables], envs: Sequence[str], source_env: str | None, path: Path
) -> None:
    """One panel per (mode, env): each agent's mean return with its CI, own y scale (PNG).

    Envs keep their own y axis, so one env with large negative returns cannot flatten the
    others. Where the env's min-max normalisation is defined, the random reference
    (``R_min``, dashed) and the best return (``R_max``, dotted) are drawn as lines.

    Args:
        tables: :func:`experiments.report.tables.compute_tables` output.
        envs: env ids in panel order (source first).
        source_env: marks the source panel.
        path: PNG file, written atomically.
    """
    modes = list(tables)
    agents = sorted({a for t in tables.values() for a in t.cells})
    cols = max(len(envs), 1)
    fig = _new_figure(max(4.0, 2.6 * cols), 0.5 + 3.0 * max(len(modes), 1))
    axes = fig.subplots(max(len(modes), 1), cols, squeeze=False)
    colours = [f"C{i % 10}" for i in range(len(agents))]
    x = np.arange(len(agents))
    for row, mode in enumerate(modes):
        t = tables[mode]
        for col, env in enumerate(envs):
            ax = axes[row, col]
            est = [t.cells.get(a, {}).get(env) for a in agents]
            pts = np.array([c.mean.point if c else np.nan for c in est])
            lo = np.array([c.mean.low if c else np.nan for c in est])
            hi = np.array([c.mean.high if c else np.nan for c in est])
            err = np.nan_to_num(np.stack([pts - lo, hi - pts]), nan=0.0)
            ax.bar(x, np.nan_to_num(pts), 0.7, yerr=err.tolist(), capsize=2, color=colours)
            norm = t.normalisers.get(env)
            if norm is not None and math.isfinite(norm.r_min):
                ax.axhline(norm.r_min, color="0.3", ls="--", lw=1, label="random (R_min)")
            if norm is not None and math.isfinite(norm.r_max):
                ax.axhline(norm.r_max, color="0.3", ls=":", lw=1, label="best (R_max)")
            ax.set_xticks(x, agents, rotation=40, ha="right", fontsize="x-small")
            ax.set_xlabel("agent", fontsize="small")
            ax.set_ylabel("mean return (95% CI)", fontsize="small")
            name = env.split("/")[-1] + (" (source)" if env == source_env else "")
            ax.set_title(f"{name}\n{mode}", fontsize="small")
            ax.tick_params(axis="y", labelsize="x-small")
            ax.grid(axis="y", alpha=0.3)
            if row == 0 and col == 0 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="xx-small")
    _save_figure(fig, path)


__all__ = ["SMOOTH_EPISODES", "learning_curves", "plot_learning_curves", "plot_zero_shot"]
