"""Plain-text table of :func:`representations.metrics.evaluate` results (``reprl probe``)."""

from __future__ import annotations

from typing import Any


def _fmt(x: Any, width: int = 8) -> str:
    """Right-aligned number (3 decimals) or '-' for missing."""
    if x is None:
        return "-".rjust(width)
    if isinstance(x, float):
        return f"{x:.3f}".rjust(width)
    return str(x).rjust(width)


def format_table(results: dict) -> str:
    """Render :func:`evaluate` output as a plain-text table (for ``reprl probe``).

    Args:
        results: Output of :func:`evaluate` (any subset of metrics).

    Returns:
        Multi-line text, no trailing newline.
    """
    lines: list[str] = []
    head = []
    for key, label in (("n_samples", "samples"), ("n_episodes", "episodes"), ("latent_dim", "D")):
        if key in results:
            head.append(f"{label}={results[key]}")
    lines.append("Representation evaluation" + (f"  ({', '.join(head)})" if head else ""))

    probe = results.get("probe")
    if probe:
        per = probe.get("per_factor", {})
        name_w = max([len("factor"), *(len(n) for n in per)])
        lines += ["", "Linear probes (held-out episodes; R^2 continuous, macro-F1 discrete)"]
        lines.append(
            f"{'factor'.ljust(name_w)}  {'kind':<10}  {'metric':<8}  {'score':>8}  "
            f"{'baseline':>8}  {'n_train':>7}  {'n_test':>6}  note"
        )
        for name, r in per.items():
            note = r.get("skipped", "") or r.get("note", "")
            if not note and r.get("unseen_test_classes"):
                note = f"{len(r['unseen_test_classes'])} class(es) unseen in training"
            row = (
                f"{name.ljust(name_w)}  {r['kind']:<10}  {r['metric']:<8}  {_fmt(r['score'])}  "
                f"{_fmt(r['baseline'])}  {_fmt(r['n_train'], 7)}  {_fmt(r['n_test'], 6)}  {note}"
            )
            lines.append(row.rstrip())
        lines.append(
            f"mean R^2 (continuous): {_fmt(probe.get('mean_r2'), 0)}   "
            f"mean F1 (discrete): {_fmt(probe.get('mean_f1'), 0)}"
        )

    rows: list[tuple[str, Any]] = []
    if "mig" in results:
        rows.append(("MIG", results["mig"]))
    if "dci" in results:
        d = results["dci"]
        method = d.get("importance", "")
        rows += [
            (f"DCI disentanglement ({method})", d.get("disentanglement")),
            ("DCI completeness", d.get("completeness")),
            ("DCI informativeness (test)", d.get("informativeness")),
        ]
    if "factor_vae" in results:
        f = results["factor_vae"]
        rows.append(("FactorVAE score", f.get("score")))
        rows.append(("FactorVAE active dims", f.get("num_active_dims")))
    if rows:
        w = max(len(r[0]) for r in rows)
        lines += ["", "Disentanglement"]
        lines += [f"{name.ljust(w)}  {_fmt(value)}" for name, value in rows]
        fv_skipped = results.get("factor_vae", {}).get("skipped_factors") or []
        if fv_skipped:
            lines.append(f"FactorVAE skipped (no group >= batch size): {', '.join(fv_skipped)}")

    skipped = results.get("skipped_factors") or {}
    if skipped:
        lines += ["", "Skipped factors: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    return "\n".join(lines)
