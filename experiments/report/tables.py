"""The numbers of a report: per-cell returns, normalised scores, comparisons with a baseline.

Every estimate is an :class:`experiments.stats.Estimate` ``(point, low, high)``; seeds are the
runs (episode returns are averaged per seed first). See :mod:`experiments.report` for what is
shown and :mod:`experiments.stats` for the definitions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments import stats
from experiments.report.provenance import active_latents_text
from experiments.report.reading import EncoderProbe, EvalRun

AGGREGATE_ENV = "aggregate"
REFERENCE_AGENT = "random"
BASELINE_AGENT = "pixels"
#: An IQM (25% trimmed mean) of fewer scores trims nothing and equals the mean.
MIN_SCORES_FOR_IQM = 4
MODES = {True: "deterministic", False: "stochastic"}
_NAN = stats.Estimate(math.nan, math.nan, math.nan)


def iqm_differs(num_scores: int) -> bool:
    """Whether the IQM of ``num_scores`` values trims anything (``int(0.25 * n) >= 1``)."""
    return num_scores >= MIN_SCORES_FOR_IQM


@dataclass
class Cell:
    """One agent on one env in one mode: returns, or normalised scores, over seeds."""

    mean: stats.Estimate
    iqm: stats.Estimate
    num_seeds: int
    num_episodes: int
    seed_means: dict[int, float]


@dataclass
class Normaliser:
    """The constants of one env's min-max normalisation ``(R - r_min) / (r_max - r_min)``.

    Attributes:
        r_min: mean return of the reference agent (over its seeds), nan if not evaluated.
        r_max: best attainable return, nan if unknown.
        reference_episodes: episodes behind ``r_min``.
        problem: why the score is n/a on this env, or ``None`` if it is defined.
        note: how ``r_min`` was obtained, if not from this mode's own reference episodes.
    """

    r_min: float
    r_max: float
    reference_episodes: int
    problem: str | None
    note: str = ""

    def apply(self, x: float) -> float:
        """Normalised score of return ``x`` (nan if the normalisation is n/a)."""
        if self.problem is not None or not math.isfinite(x):
            return math.nan
        return float(stats.min_max_normalise(x, self.r_min, self.r_max))


@dataclass
class Comparison:
    """An agent against the baseline on one target, or aggregated over targets."""

    diff: stats.Estimate
    prob_improvement: stats.Estimate
    paired: bool
    num_seeds: int
    baseline_num_seeds: int
    num_episodes: int


@dataclass
class ModeTables:
    """All numbers of one evaluation mode (deterministic or stochastic).

    Attributes:
        cells: ``{agent: {env: Cell}}`` of returns (the reference agent included).
        normalisers: ``{env: Normaliser}``.
        normalised: ``{agent: {env: Cell}}`` of normalised scores (agents other than the
            reference, envs whose normalisation is defined).
        aggregate: ``{agent: {...}}`` normalised scores over the targets: ``mean``, ``iqm``,
            ``targets``, ``num_seeds``, ``dropped_seeds``, ``num_episodes``.
        comparisons: ``{agent: {target env or "aggregate": Comparison}}`` against the baseline.
        targets: envs aggregated over (targets with a defined normalisation).
        left_out: ``{target: reason}`` targets without a normalised score.
    """

    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    normalisers: dict[str, Normaliser] = field(default_factory=dict)
    normalised: dict[str, dict[str, Cell]] = field(default_factory=dict)
    aggregate: dict[str, dict[str, Any]] = field(default_factory=dict)
    comparisons: dict[str, dict[str, Comparison]] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)


def order_envs(envs: Iterable[str], source_env: str | None) -> list[str]:
    """Env ids sorted, the source first."""
    out = sorted(set(envs))
    if source_env in out:
        out.remove(source_env)
        out.insert(0, source_env)
    return out


def _episodes(runs: Sequence[EvalRun]) -> dict[str, dict[str, dict[str, dict[int, np.ndarray]]]]:
    """``episodes[mode][agent][env][seed] -> returns``."""
    out: dict[str, dict[str, dict[str, dict[int, np.ndarray]]]] = {}
    for run in runs:
        for det, mode in MODES.items():
            mask = run.deterministic == det
            for env in np.unique(run.env_id[mask]).tolist():
                sel = mask & (run.env_id == env)
                by_env = out.setdefault(mode, {}).setdefault(run.agent, {})
                by_env.setdefault(env, {})[run.seed] = run.returns[sel]
    return out


def _cell(per_seed: Mapping[int, np.ndarray], key: Any, reps: int, conf: float) -> Cell:
    seeds = sorted(per_seed)
    rets = np.concatenate([per_seed[s] for s in seeds])
    sds = np.concatenate([np.full(per_seed[s].size, s) for s in seeds])
    uniq, means = stats.seed_means(rets, sds)
    est = stats.cell_estimates(rets, sds, ("mean", "iqm"), reps=reps, confidence=conf, seed=key)
    return Cell(
        est["mean"], est["iqm"], len(seeds), int(rets.size), dict(zip(uniq.tolist(), means))
    )


def _normalised_cell(cell: Cell, norm: Normaliser) -> Cell:
    """The same cell in normalised units (an increasing affine map: intervals map exactly)."""

    def f(e: stats.Estimate) -> stats.Estimate:
        return stats.Estimate(*(norm.apply(v) for v in e))

    seed_means = {s: norm.apply(v) for s, v in cell.seed_means.items()}
    return Cell(f(cell.mean), f(cell.iqm), cell.num_seeds, cell.num_episodes, seed_means)


def _normaliser(
    env: str, mode: str, episodes: Mapping[str, Any], reference: str, r_max: float | str
) -> Normaliser:
    note = ""
    ref = episodes.get(mode, {}).get(reference, {}).get(env)
    if ref is None:  # a uniform-random policy ignores the mode: take the other one's episodes
        for other in MODES.values():
            ref = episodes.get(other, {}).get(reference, {}).get(env)
            if ref is not None:
                note = f"R_min from the {other} evaluation of {reference!r}"
                break
    if ref is None:
        n, low = 0, math.nan
        problem = f"no {reference!r} reference run evaluated on this env (R_min unknown)"
    else:
        n = int(sum(v.size for v in ref.values()))
        low = float(np.mean([v.mean() for v in ref.values()]))
        problem = None
    if isinstance(r_max, str):
        high, problem = math.nan, problem or r_max
    else:
        high = float(r_max)
        problem = problem or stats.normalisation_problem(low, high)
    return Normaliser(low, high, n, problem, note)


def compute_tables(
    runs: Sequence[EvalRun],
    *,
    best_returns: Mapping[str, float | str],
    source_env: str | None = None,
    baseline: str | None = BASELINE_AGENT,
    reference: str = REFERENCE_AGENT,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, ModeTables]:
    """Per-cell, normalised, aggregate and baseline-comparison estimates for every mode present.

    Args:
        runs: evaluation runs (one per agent and seed).
        best_returns: ``{env: R_max}``, or ``{env: reason}`` where ``R_max`` is unknown.
        source_env: the training env; targets are all other envs. ``None``: all envs are
            targets.
        baseline: agent every other agent is compared with; ``None`` or absent: no comparison.
        reference: agent whose mean return is ``R_min`` (a uniform-random policy).
        reps: bootstrap replicates.
        seed: base seed; each estimate's resampling is keyed by (mode, agent, env, ...), so a
            number does not depend on which other runs are in the report.
        confidence: interval coverage.

    Returns:
        ``{"deterministic" | "stochastic": ModeTables}``, deterministic first.
    """
    episodes = _episodes(runs)
    out: dict[str, ModeTables] = {}
    for mode in (m for m in MODES.values() if m in episodes):
        t = ModeTables()
        by_agent = episodes[mode]
        envs = order_envs({e for a in by_agent.values() for e in a}, source_env)
        for env in envs:
            t.normalisers[env] = _normaliser(
                env, mode, episodes, reference, best_returns.get(env, "R_max unknown")
            )
        targets = [e for e in envs if e != source_env]
        t.targets = [e for e in targets if t.normalisers[e].problem is None]
        t.left_out = {e: str(t.normalisers[e].problem) for e in targets if e not in t.targets}
        for agent in sorted(by_agent):
            t.cells[agent] = {
                env: _cell(
                    by_agent[agent][env],
                    stats.keyed_seed(seed, mode, agent, env),
                    reps,
                    confidence,
                )
                for env in order_envs(by_agent[agent], source_env)
            }
            if agent == reference:
                continue
            t.normalised[agent] = {
                env: _normalised_cell(cell, t.normalisers[env])
                for env, cell in t.cells[agent].items()
                if t.normalisers[env].problem is None
            }
            row = _aggregate(t.normalised[agent], by_agent[agent], t.targets)
            if row is not None:
                key = stats.keyed_seed(seed, mode, agent, AGGREGATE_ENV)
                _aggregate_estimates(row, reps, key, confidence)
                t.aggregate[agent] = row
        if baseline is not None and baseline in t.normalised:
            for agent in t.normalised:
                if agent in (baseline, reference):
                    continue
                comps = _compare(t, agent, baseline, by_agent, mode, reps, seed, confidence)
                if comps:
                    t.comparisons[agent] = comps
        out[mode] = t
    return out


def _common_seeds(cells: Mapping[str, Cell], envs: Sequence[str]) -> tuple[list[int], list[int]]:
    """Seeds present on every env in ``envs``, and the others."""
    every = sorted(set().union(*(cells[e].seed_means for e in envs)))
    common = [s for s in every if all(s in cells[e].seed_means for e in envs)]
    return common, [s for s in every if s not in common]


def _aggregate(
    norm: Mapping[str, Cell],
    by_env: Mapping[str, Mapping[int, np.ndarray]],
    targets: Sequence[str],
) -> dict[str, Any] | None:
    used = [e for e in targets if e in norm]
    if not used:
        return None
    common, dropped = _common_seeds(norm, used)
    return {
        "targets": used,
        "num_seeds": len(common),
        "dropped_seeds": dropped,
        "num_episodes": int(sum(by_env[e][s].size for e in used for s in common)),
        "scores": np.array([[norm[e].seed_means[s] for e in used] for s in common]),
        "mean": _NAN,
        "iqm": _NAN,
    }


def _aggregate_estimates(row: dict[str, Any], reps: int, key: Any, confidence: float) -> None:
    """Stratified bootstrap over seeds, targets as tasks (seeds present on every target)."""
    scores = row.pop("scores")
    if scores.size == 0:
        return
    est = stats.estimates(scores, ("mean", "iqm"), reps=reps, confidence=confidence, seed=key)
    row["mean"], row["iqm"] = est["mean"], est["iqm"]


def _matrix(cells: Mapping[str, Cell], envs: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
    return np.array([[cells[e].seed_means[s] for e in envs] for s in seeds], dtype=np.float64)


def _compare(
    t: ModeTables,
    agent: str,
    baseline: str,
    by_agent: Mapping[str, Mapping[str, Mapping[int, np.ndarray]]],
    mode: str,
    reps: int,
    seed: int,
    confidence: float,
) -> dict[str, Comparison]:
    """Normalised-score difference and P(improvement) of ``agent`` over ``baseline``."""
    x_cells, y_cells = t.normalised[agent], t.normalised[baseline]
    shared = [e for e in t.targets if e in x_cells and e in y_cells]
    out: dict[str, Comparison] = {}
    for key, envs in [*((e, [e]) for e in shared), (AGGREGATE_ENV, shared)]:
        if not envs:
            continue
        xs, _ = _common_seeds(x_cells, envs)
        ys, _ = _common_seeds(y_cells, envs)
        if not xs or not ys:
            continue
        paired = xs == ys
        x, y = _matrix(x_cells, envs, xs), _matrix(y_cells, envs, ys)
        common = dict(reps=reps, confidence=confidence)
        k = (seed, mode, agent, key, "vs", baseline)
        out[key] = Comparison(
            diff=stats.difference_estimate(
                x, y, paired=paired, seed=stats.keyed_seed(*k, "diff"), **common
            ),
            prob_improvement=stats.probability_of_improvement_estimate(
                x, y, seed=stats.keyed_seed(*k, "poi"), **common
            ),
            paired=paired,
            num_seeds=len(xs),
            baseline_num_seeds=len(ys),
            num_episodes=int(sum(by_agent[agent][e][s].size for e in envs for s in xs)),
        )
    return out


# --- results.csv -----------------------------------------------------------------------------
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
    "baseline",
    "baseline_num_seeds",
    "pairing",
    "note",
)


def result_rows(
    tables: Mapping[str, ModeTables], baseline: str | None = BASELINE_AGENT
) -> list[dict[str, Any]]:
    """Long-format rows of ``results.csv`` (columns :data:`RESULT_COLUMNS`).

    Statistics: ``mean`` and ``iqm`` (return over seeds; ``iqm`` only with >= 4 seeds),
    ``normalised_mean`` and ``normalised_iqm`` (per env, and over targets on ``aggregate``
    rows; IQM only where it trims something), ``normalised_mean_diff`` and
    ``prob_improvement`` (against ``baseline``, per target and ``aggregate``). A normalised
    score that is n/a is a ``normalised_mean`` row of ``nan`` with the reason in ``note``.
    ``pairing``: ``paired`` or ``unpaired`` for a difference; ``prob_improvement`` is always
    over all pairs of seeds (``unpaired``).
    """
    rows: list[dict[str, Any]] = []

    def add(agent, env, mode, stat, est, n, e, *, base="", base_n="", pairing="", note=""):
        rows.append(
            dict(
                zip(
                    RESULT_COLUMNS,
                    (
                        agent,
                        env,
                        "true" if mode == "deterministic" else "false",
                        stat,
                        est.point,
                        est.low,
                        est.high,
                        n,
                        e,
                        base,
                        base_n,
                        pairing,
                        note,
                    ),
                )
            )
        )

    for mode, t in tables.items():
        for agent, cells in t.cells.items():
            for env, c in cells.items():
                add(agent, env, mode, "mean", c.mean, c.num_seeds, c.num_episodes)
                if iqm_differs(c.num_seeds):
                    add(agent, env, mode, "iqm", c.iqm, c.num_seeds, c.num_episodes)
            if agent not in t.normalised:
                continue
            for env, c in cells.items():
                nc = t.normalised[agent].get(env)
                if nc is None:
                    problem = t.normalisers[env].problem
                    n, e = c.num_seeds, c.num_episodes
                    add(agent, env, mode, "normalised_mean", _NAN, n, e, note=str(problem))
                    continue
                add(agent, env, mode, "normalised_mean", nc.mean, nc.num_seeds, nc.num_episodes)
                if iqm_differs(nc.num_seeds):
                    add(agent, env, mode, "normalised_iqm", nc.iqm, nc.num_seeds, nc.num_episodes)
            agg = t.aggregate.get(agent)
            if agg is not None:
                n, e = agg["num_seeds"], agg["num_episodes"]
                note = "over " + ", ".join(agg["targets"])
                add(agent, AGGREGATE_ENV, mode, "normalised_mean", agg["mean"], n, e, note=note)
                if iqm_differs(n * len(agg["targets"])):
                    add(agent, AGGREGATE_ENV, mode, "normalised_iqm", agg["iqm"], n, e, note=note)
            for env, cmp in t.comparisons.get(agent, {}).items():
                n, e, base_n = cmp.num_seeds, cmp.num_episodes, cmp.baseline_num_seeds
                pairing = "paired" if cmp.paired else "unpaired"
                add(
                    agent,
                    env,
                    mode,
                    "normalised_mean_diff",
                    cmp.diff,
                    n,
                    e,
                    base=baseline,
                    base_n=base_n,
                    pairing=pairing,
                )
                add(
                    agent,
                    env,
                    mode,
                    "prob_improvement",
                    cmp.prob_improvement,
                    n,
                    e,
                    base=baseline,
                    base_n=base_n,
                    pairing="unpaired",
                )
    return rows


# --- encoders.csv ----------------------------------------------------------------------------
#: Columns of ``encoders.csv`` before the per-factor probe columns ``<metric>:<factor>``
#: (``r2:ball_x[0]``, ``macro_f1:lives``). Empty cell: not computed, or undefined.
ENCODER_COLUMNS: tuple[str, ...] = (
    "encoder",
    "method",
    "latent_dim",
    "active_latents",
    "frames",
    "episodes",
    "mean_r2",
    "mean_f1",
    "mig",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "factor_vae",
    "ari",
    "fg_ari",
    "segmentation_frames",
    "segmentation_env",
    "pred_acc_k1",
    "pred_chance",
    "render_mse",
    "render_baseline_mse",
    "agents",
    "zero_shot_normalised",
    "checkpoint_sha256",
    "note",
)
#: Factors shown first, in this order (a factor belongs to the first prefix its name starts
#: with; ``ball_x[1]`` to ``ball_x``): Breakout's ball above all, then its paddle; the Lab's
#: agent pose, then its domain factors (room look and object set, what the held-out
#: combinations change), before the per-object columns.
FACTOR_PRIORITY: tuple[str, ...] = (
    "ball_x",
    "ball_y",
    "paddle",
    "agent_x",
    "agent_y",
    "agent_yaw",
    "room_look",
    "object_set",
)


def order_factors(names: Iterable[str]) -> list[str]:
    """Factor columns, ``ball_x``, ``ball_y``, ``paddle*`` first, else in their given order."""
    names = list(dict.fromkeys(names))

    def rank(name: str) -> int:
        base = name.split("[")[0]
        hits = [i for i, pre in enumerate(FACTOR_PRIORITY) if base.startswith(pre)]
        return hits[0] if hits else len(FACTOR_PRIORITY)

    return sorted(names, key=lambda n: (rank(n), names.index(n)))


def _value(x: Any) -> float | str:
    """A JSON number as float; ``""`` for null, absent or anything else."""
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return ""


def _count(x: Any) -> int | str:
    """A JSON integer; ``""`` for null, absent or anything else."""
    return x if isinstance(x, int) and not isinstance(x, bool) else ""


def probe_columns(probes: Sequence[EncoderProbe]) -> list[str]:
    """The ``<metric>:<factor>`` columns of every probed factor, ordered (:func:`order_factors`)."""
    metric_of: dict[str, str] = {}
    for p in probes:
        per = (p.data.get("probe") or {}).get("per_factor") or {}
        for factor, r in per.items():
            if isinstance(r, Mapping):
                metric_of.setdefault(factor, str(r.get("metric", "score")))
    return [f"{metric_of[f]}:{f}" for f in order_factors(metric_of)]


def encoder_rows(
    probes: Sequence[EncoderProbe],
    agents: Mapping[str, Sequence[tuple[str, float]]] | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``encoders.csv``: columns :data:`ENCODER_COLUMNS`, then :func:`probe_columns`.

    Args:
        probes: the encoders' probe results (outdated ones are left out).
        agents: checkpoint sha256 -> ``(agent, aggregate normalised zero-shot score)`` of
            every agent trained on that encoder (nan: no score).

    Returns:
        One row per encoder: numbers as floats, ``""`` where not computed or undefined.
    """
    agents = agents or {}
    factor_cols = probe_columns(probes)
    rows = []
    for p in probes:
        if p.outdated:
            continue
        d = p.data
        probe = d.get("probe") if isinstance(d.get("probe"), Mapping) else {}
        per = probe.get("per_factor") or {}
        dci = d.get("dci") if isinstance(d.get("dci"), Mapping) else {}
        fv = d.get("factor_vae")
        seg = d.get("segmentation") if isinstance(d.get("segmentation"), Mapping) else {}
        pred = d.get("prediction") if isinstance(d.get("prediction"), Mapping) else {}
        rend = d.get("rendering") if isinstance(d.get("rendering"), Mapping) else {}
        ckpt = d.get("checkpoint") if isinstance(d.get("checkpoint"), Mapping) else {}
        used = agents.get(str(ckpt.get("sha256")), [])
        row: dict[str, Any] = {
            "encoder": p.name,
            "method": str(d.get("method", "")),
            "latent_dim": _count(d.get("latent_dim")),
            "active_latents": active_latents_text(d.get("active_latents")),
            "frames": _count(d.get("n_samples")),
            "episodes": _count(d.get("n_episodes")),
            "mean_r2": _value(probe.get("mean_r2")),
            "mean_f1": _value(probe.get("mean_f1")),
            "mig": _value(d.get("mig")),
            "dci_disentanglement": _value(dci.get("disentanglement")),
            "dci_completeness": _value(dci.get("completeness")),
            "dci_informativeness": _value(dci.get("informativeness")),
            "factor_vae": _value(fv.get("score") if isinstance(fv, Mapping) else fv),
            "ari": _value(seg.get("ari")),
            "fg_ari": _value(seg.get("fg_ari")),
            "segmentation_frames": _count(seg.get("frames")),
            "segmentation_env": str(seg.get("env_id", "")),
            "pred_acc_k1": _value(pred.get("acc_k1")),
            "pred_chance": _value(pred.get("chance")),
            "render_mse": _value(rend.get("mse")),
            "render_baseline_mse": _value(rend.get("baseline_mse")),
            "agents": ";".join(a for a, _ in used),
            "zero_shot_normalised": ";".join(f"{a}={v:.6g}" for a, v in used),
            "checkpoint_sha256": str(ckpt.get("sha256", "")),
            "note": "; ".join(
                str(x)
                for x in (
                    d.get("skipped"),
                    seg.get("skipped"),
                    pred.get("skipped"),
                    rend.get("skipped"),
                )
                if isinstance(x, str) and x
            ),
        }
        for col in factor_cols:
            r = per.get(col.split(":", 1)[1])
            row[col] = _value(r.get("score")) if isinstance(r, Mapping) else ""
        rows.append(row)
    return rows


__all__ = [
    "AGGREGATE_ENV",
    "BASELINE_AGENT",
    "ENCODER_COLUMNS",
    "FACTOR_PRIORITY",
    "MIN_SCORES_FOR_IQM",
    "MODES",
    "REFERENCE_AGENT",
    "RESULT_COLUMNS",
    "Cell",
    "Comparison",
    "ModeTables",
    "Normaliser",
    "compute_tables",
    "encoder_rows",
    "iqm_differs",
    "order_envs",
    "order_factors",
    "probe_columns",
    "result_rows",
]
