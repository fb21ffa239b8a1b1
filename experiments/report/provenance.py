"""What a report says about where its numbers come from.

Run summaries (encoder, dataset, config hash, version), the encoder's pretraining data and the
training budget of every run, and the display of paths: a report never shows an absolute path
of the machine it was made on (:class:`PathDisplay`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"


# --- paths -----------------------------------------------------------------------------------
class PathDisplay:
    """Shows paths relative to the report's directory or to an experiment root.

    A path inside the parent of the report's directory is shown relative to the report's
    directory (``../eval/pixels__0.csv``; links in ``report.md`` work); else a path inside a
    root as ``<root name>/<path inside the root>``; else only ``…/<file name>``. A relative
    path from a provenance record is shown as recorded.

    Args:
        out_dir: the report's directory.
        roots: the experiment roots the report reads.
    """

    def __init__(self, out_dir: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]):
        self.out_dir = Path(out_dir).resolve()
        self.base = self.out_dir.parent
        self.roots = [Path(r).resolve() for r in roots]

    def __call__(self, path: str | os.PathLike[str], *, recorded: bool = False) -> str:
        """The display form of ``path``.

        Args:
            path: a path.
            recorded: ``path`` comes from a provenance record (a relative one is kept as is);
                otherwise it is a file the report read (relative to the working directory).
        """
        p = Path(path)
        if recorded and not p.is_absolute():
            return p.as_posix()
        a = p.resolve()
        if self.base != Path(self.base.anchor) and a.is_relative_to(self.base):
            return Path(os.path.relpath(a, self.out_dir)).as_posix()
        for root in self.roots:
            if a.is_relative_to(root):
                return (Path(root.name) / a.relative_to(root)).as_posix()
        return f"…/{a.name}"


# --- run summaries ---------------------------------------------------------------------------
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


def _file_ref(obj: Any, key: str) -> tuple[str, str, bool]:
    """``(path, sha256, is_path)`` of the first usable ``key`` entry; ``("none", "")`` for null."""
    values = _bfs(obj, key)
    for v in values:
        if isinstance(v, Mapping) and ("sha256" in v or "path" in v):
            path, sha = v.get("path"), str(v.get("sha256", ""))
            return (str(path), sha, True) if path else ("?", sha, False)
    if any(v is None for v in values):
        return "none", "", False
    for v in values:
        if isinstance(v, str):
            return v, "", True
    return "?", "", False


def summarise_provenance(
    provenance: Mapping[str, Any], display: Callable[..., str] | None = None
) -> dict[str, str]:
    """Encoder, dataset, config hash and version found in a (nested) provenance record.

    Args:
        provenance: JSON-plain record, e.g. ``{"eval": {...}, "train": {...}}``.
        display: shows a recorded path (e.g. a :class:`PathDisplay`); default: as recorded.

    Returns:
        ``{"encoder", "encoder_sha256", "dataset", "dataset_sha256", "config_hash",
        "config_hash_source", "version"}``: ``?`` where nothing was found, ``none`` for a
        recorded null. ``config_hash_source`` is ``recorded`` (the record's ``config_hash``)
        or ``computed`` (the first 16 hex digits of the sha256 of the record's JSON).
    """
    out: dict[str, str] = {}
    for key in ("encoder", "dataset"):
        path, sha, is_path = _file_ref(provenance, key)
        out[key] = display(path, recorded=True) if (is_path and display) else path
        out[f"{key}_sha256"] = sha
    hashes = [h for h in _bfs(provenance, "config_hash") if isinstance(h, str)]
    if hashes:
        out["config_hash"], out["config_hash_source"] = hashes[0], "recorded"
    else:
        blob = json.dumps(provenance, sort_keys=True, default=str).encode()
        out["config_hash"] = hashlib.sha256(blob).hexdigest()[:16]
        out["config_hash_source"] = "computed"
    out["version"] = "?"
    for k in ("reprl_version", "library_version", "version"):
        vs = [v for v in _bfs(provenance, k) if isinstance(v, str | int | float)]
        if vs:
            out["version"] = str(vs[0])
            break
    return out


# --- pretraining data and budget -------------------------------------------------------------
def _train_record(eval_json: Mapping[str, Any], train_json: Mapping[str, Any] | None, key: str):
    """``(found, value)`` of ``key`` in the eval JSON's ``train`` record, else the train JSON."""
    train = eval_json.get("train")
    if isinstance(train, Mapping) and key in train:
        return True, train[key]
    if train_json is not None and key in train_json:
        return True, train_json[key]
    return False, None


@dataclass(frozen=True)
class RunFacts:
    """What one run's encoder saw and what budget it trained with (from its provenance).

    Attributes:
        pretraining: ``none (pixels)``, ``source only: <id>``, the listed env ids (with
            ``(target seen: ...)`` when a target is among them), or ``unknown``.
        target_seen: ``true``, ``false`` or ``unknown``.
        budget_kind: ``steps``, ``seconds`` or ``unknown``.
        budget_value: the budget's value (steps or seconds), nan if unknown.
        env_steps: env steps actually taken, -1 if unknown.
        seconds: wall-clock seconds of training, nan if unknown.
        active_latents: the encoder's active latents as ``a / d`` (``a / d (collapsed)`` when
            none is active), ``n/a (not variational)`` for a non-VAE encoder, ``none`` without
            an encoder, or ``unknown``.
    """

    pretraining: str
    target_seen: str
    budget_kind: str
    budget_value: float
    env_steps: int
    seconds: float
    active_latents: str = UNKNOWN


def run_facts(
    eval_json: Mapping[str, Any],
    train_json: Mapping[str, Any] | None,
    *,
    source_env: str | None,
    targets: Sequence[str],
) -> RunFacts:
    """Reads ``pretraining_domains`` and ``budget`` of a run (``unknown`` where absent).

    Args:
        eval_json: the run's evaluation JSON (its ``train`` entry is the training provenance).
        train_json: the run's ``train/<stem>/provenance.json``, if read (a fallback).
        source_env: the training env id, if known.
        targets: target env ids of the report.
    """
    found, domains = _train_record(eval_json, train_json, "pretraining_domains")
    target_seen = UNKNOWN
    if not found:
        pretraining = UNKNOWN
    elif domains is None or (isinstance(domains, list) and not domains):
        pretraining, target_seen = "none (pixels)", "false"
    elif isinstance(domains, list) and all(isinstance(d, str) for d in domains):
        seen = [d for d in domains if d in targets]
        target_seen = "true" if seen else "false"
        if source_env is not None and domains == [source_env]:
            pretraining = f"source only: {source_env}"
        else:
            pretraining = ", ".join(domains)
        if seen:
            pretraining += f" (target seen: {', '.join(seen)})"
    else:
        pretraining = f"{UNKNOWN} (malformed pretraining_domains: {domains!r})"
    kind, value, steps, seconds = UNKNOWN, float("nan"), -1, float("nan")
    found, budget = _train_record(eval_json, train_json, "budget")
    if found and isinstance(budget, Mapping):
        if budget.get("kind") in ("steps", "seconds"):
            kind = str(budget["kind"])
        value = _number(budget.get("value"), float("nan"))
        steps = int(_number(budget.get("env_steps"), -1))
        seconds = _number(budget.get("seconds"), float("nan"))
    found, active = _train_record(eval_json, train_json, "encoder_active_latents")
    active_latents = "none" if found and active is None else active_latents_text(active)
    return RunFacts(pretraining, target_seen, kind, value, steps, seconds, active_latents)


def active_latents_text(active: Any) -> str:
    """An encoder's active latents (``{"active", "latent_dim", "variational"}``, as
    pretraining measured them) as ``a / d`` (``a / d (collapsed)`` when none is active),
    ``n/a (not variational)`` for a non-VAE encoder, or ``unknown`` (no or another record)."""
    if isinstance(active, Mapping) and not active.get("variational", True):
        return "n/a (not variational)"
    if isinstance(active, Mapping) and {"active", "latent_dim"} <= set(active):
        text = f"{active['active']} / {active['latent_dim']}"
        return text + " (collapsed)" if active["active"] == 0 else text
    return UNKNOWN


def run_encoder_sha256(
    eval_json: Mapping[str, Any], train_json: Mapping[str, Any] | None
) -> str | None:
    """The sha256 of the encoder checkpoint a run trained on (its provenance's
    ``encoder.sha256``); ``None`` without encoder or where the provenance does not say."""
    _, enc = _train_record(eval_json, train_json, "encoder")
    sha = enc.get("sha256") if isinstance(enc, Mapping) else None
    return sha if isinstance(sha, str) and sha else None


def _number(x: Any, default: float) -> float:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else default


def _span(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    """``v`` if all equal, else ``min–max``; ``unknown`` if any is unknown."""
    if not values or any(v != v or v < 0 for v in values):  # nan or -1: unknown
        return UNKNOWN
    lo, hi = min(values), max(values)
    return fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"


def describe_agent(facts: Sequence[RunFacts]) -> dict[str, str]:
    """One agent's pretraining data and budget over its seeds, as report text.

    Args:
        facts: one per seed.

    Returns:
        ``{"pretraining", "active_latents", "budget", "env_steps", "seconds"}``; differing
        seeds are listed (pretraining, active latents, budget) or given as a ``min–max``
        range (env steps, seconds).
    """
    pre = list(dict.fromkeys(f.pretraining for f in facts))
    budgets = []
    for f in facts:
        if f.budget_kind == "steps":
            budgets.append(f"equal env steps: {f.budget_value:,.0f}")
        elif f.budget_kind == "seconds":
            budgets.append(f"equal wall-clock: {f.budget_value:g} s")
        else:
            budgets.append(UNKNOWN)
    active = list(dict.fromkeys(f.active_latents for f in facts))
    return {
        "pretraining": "; ".join(pre) if pre else UNKNOWN,
        "active_latents": "; ".join(active) if active else UNKNOWN,
        "budget": "; ".join(dict.fromkeys(budgets)) if budgets else UNKNOWN,
        "env_steps": _span([float(f.env_steps) for f in facts], lambda v: f"{v:,.0f}"),
        "seconds": _span([f.seconds for f in facts], lambda v: f"{v:.1f}"),
    }


def env_kwargs_of(eval_json: Mapping[str, Any]) -> dict[str, Any] | None:
    """``eval_json["config"]["evaluate"]["env_kwargs"]``, or ``None`` where absent."""
    cfg = eval_json.get("config")
    ev = cfg.get("evaluate") if isinstance(cfg, Mapping) else None
    kw = ev.get("env_kwargs") if isinstance(ev, Mapping) else None
    return dict(kw) if isinstance(kw, Mapping) else None


__all__ = [
    "UNKNOWN",
    "PathDisplay",
    "RunFacts",
    "active_latents_text",
    "describe_agent",
    "env_kwargs_of",
    "run_encoder_sha256",
    "run_facts",
    "summarise_provenance",
]
