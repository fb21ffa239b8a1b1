"""The merged report of a sweep: one report over every finished trial, with a table linking
each."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from envs.storage.files import atomic_write_json, atomic_write_text
from experiments.config import ConfigError, read_yaml
from experiments.layout import RunLayout, run_stem
from experiments.sweep.config import SWEEP_FILE, TRIAL_FILE
from experiments.sweep.plan import _labels, _sha, _short


# --- the merged report -----------------------------------------------------------------------
def _agent_identity(exp: dict[str, Any], agent: dict[str, Any]) -> str:
    """What an agent's results depend on besides its seed (a resolved config as a dict)."""
    ident: dict[str, Any] = {
        "agent": agent,
        "train": exp["train"],
        "evaluate": exp["evaluate"],
        "device": exp["device"],
    }
    if agent.get("encoder"):
        ident["encoders"] = exp["encoders"]
        ident["collect"] = exp["collect"]
    return _sha(ident)


def _relevant_keys(
    name: str, trials: list[dict[str, Any]], idents: dict[tuple[str, str], str]
) -> list[str]:
    """The swept keys (seeds aside) that change agent ``name``'s results."""
    keys = [k for k in trials[0]["params"] if k != "seeds"]
    with_name = [t for t in trials if (t["id"], name) in idents]
    if len({idents[(t["id"], name)] for t in with_name}) < 2:
        return []
    out = []
    for k in keys:
        for a, b in itertools.combinations(with_name, 2):
            others = [j for j in keys if j != k]
            if (
                all(a["params"][j] == b["params"][j] for j in others)
                and a["params"][k] != b["params"][k]
                and idents[(a["id"], name)] != idents[(b["id"], name)]
            ):
                out.append(k)
                break
    return out or keys


def merge_report(
    sweep_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """One report over every finished trial of a sweep, with a table linking each trial.

    Runs of the same agent and seed whose results differ between trials (the agent on another
    encoder, source or target) are named ``<agent>@<key>=<value>`` by the swept keys that
    change them; the same run in several trials (pixel PPO in every trial of an encoder sweep)
    is read once. The uniform-random reference of each seed is merged over the trials' targets.
    Writes ``report.md`` etc. (:func:`experiments.report.build_report`) plus ``sweep.md`` (the
    trials table, then the report) and ``trials.csv`` into ``out_dir`` (default:
    ``<sweep>/report``); the per-trial inputs, renamed, go to ``out_dir/view/``.

    Returns:
        :func:`build_report`'s summary plus ``sweep_report`` (the path of ``sweep.md``).

    Raises:
        ConfigError: not a sweep directory, or no finished trial.
    """
    from experiments.report import build_report

    d = Path(sweep_dir)
    try:
        state = json.loads((d / SWEEP_FILE).read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{d}: expected a sweep directory (with {SWEEP_FILE})") from None
    out = Path(out_dir) if out_dir is not None else d / "report"
    trials = _finished_trials(d, state)
    view = out / "view"
    if view.exists():
        shutil.rmtree(view)
    names = _Renamer(trials)
    reference: dict[int, _Reference] = {}
    roots = [_trial_view(t, RunLayout(view / t["id"]), names, reference) for t in trials]
    if reference:
        roots.append(_reference_view(RunLayout(view / "reference"), reference))
    sources = {t["exp"]["train"]["env_id"] for t in trials}
    evaluated = {e for t in trials for e in t["exp"]["evaluate"]["env_ids"]}
    source = next(iter(sources)) if len(sources) == 1 and sources <= evaluated else None
    summary = build_report(roots, out, source_env=source)
    table = _trials_table(d, out, trials, state)
    text = (
        f"# Sweep {state['name']}\n\n{len(trials)} of {len(state['trials'])} trials finished; "
        f"swept: {', '.join(trials[0]['params'])}. Agents whose results depend on a swept key "
        f"are named `<agent>@<key>=<value>`; seeds are the runs of every interval."
        f"{'' if source else ' The source env is swept: every env is a target.'}\n\n"
        f"{table}\n\n{(out / 'report.md').read_text()}"
    )
    atomic_write_text(out / "sweep.md", text)
    summary["sweep_report"] = str(out / "sweep.md")
    return summary


def _finished_trials(d: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """``{"id", "params", "dir", "exp", "rec"}`` of every finished trial (none: an error)."""
    trials = []
    for tid, t in state["trials"].items():
        run_dir = d / t["run_dir"]
        try:
            rec = json.loads((run_dir / TRIAL_FILE).read_text())
        except (OSError, ValueError):
            rec = {}
        if rec.get("status") != "finished":
            continue
        exp = read_yaml(RunLayout(run_dir).config)
        trials.append({"id": tid, "params": t["params"], "dir": run_dir, "exp": exp, "rec": rec})
    if not trials:
        raise ConfigError(f"{d}: no finished trial to report")
    return trials


class _Renamer:
    """Names each (trial, agent) by the swept keys that change its results."""

    def __init__(self, trials: list[dict[str, Any]]) -> None:
        idents = {
            (t["id"], a["name"]): _agent_identity(t["exp"], a)
            for t in trials
            for a in t["exp"]["agents"]
        }
        names = sorted({n for _, n in idents})
        self.labels = _labels([k for k in trials[0]["params"] if k != "seeds"])
        self.relevant = {n: _relevant_keys(n, trials, idents) for n in names}
        self.seen: set[tuple[str, int]] = set()

    def name(self, agent: str, trial: dict[str, Any]) -> str:
        keys = self.relevant.get(agent, [])
        if not keys:
            return agent
        return (
            agent + "@" + ",".join(f"{self.labels[k]}={_short(trial['params'][k])}" for k in keys)
        )


_Reference = tuple[list[dict[str, str]], list[str], Path]
"""A seed's uniform-random reference: its rows over every trial's targets, the columns, and
one of its JSON files."""


def _trial_view(
    t: dict[str, Any], root: RunLayout, names: _Renamer, reference: dict[int, _Reference]
) -> Path:
    """Copies one trial's runs, renamed, into ``root``; collects the random reference rows."""
    src_layout = RunLayout(t["dir"])
    root.eval_dir.mkdir(parents=True)
    root.train_dir.mkdir()
    for src in sorted(src_layout.eval_dir.glob("*.csv")):
        rows = list(csv.DictReader(src.open()))
        if not rows:
            continue
        agent, seed = rows[0]["agent"], int(rows[0]["seed"])
        if agent == "random":
            got, _, _ = reference.setdefault(seed, ([], list(rows[0]), src.with_suffix(".json")))
            have = {(r["env_id"], r["deterministic"], r["episode"]) for r in got}
            got.extend(
                r for r in rows if (r["env_id"], r["deterministic"], r["episode"]) not in have
            )
            continue
        new = names.name(agent, t)
        if (new, seed) in names.seen:  # the same run in another trial: read once
            continue
        names.seen.add((new, seed))
        _copy_run(src, src_layout, root, run_stem(new, seed), new, t["id"], rows)
    if src_layout.probe_dir.is_dir():
        root.probe_dir.mkdir()
        for f in src_layout.probe_dir.glob("*.json"):
            if not f.name.endswith(".stage.json"):
                shutil.copy2(f, root.probe_dir / f.name)
    return root.base


def _copy_run(
    src: Path,
    src_layout: RunLayout,
    root: RunLayout,
    stem: str,
    new: str,
    trial: str,
    rows: list[dict[str, str]],
) -> None:
    """One run's evaluation (CSV + JSON) and training curve, under its new name ``new``."""
    for r in rows:
        r["agent"] = new
    _write_csv(root.eval_csv(stem), list(rows[0]), rows)
    meta = json.loads(src.with_suffix(".json").read_text())
    if isinstance(meta.get("agent"), dict):
        meta["agent"]["name"] = new
    meta["sweep_trial"] = trial
    atomic_write_json(root.eval_json(stem), meta)
    if src_layout.metrics(src.stem).is_file():
        root.run_dir(stem).mkdir()
        shutil.copy2(src_layout.metrics(src.stem), root.metrics(stem))
        prov = json.loads(src_layout.provenance(src.stem).read_text())
        prov["agent"] = {**(prov.get("agent") or {}), "name": new}
        atomic_write_json(root.provenance(stem), prov)


def _reference_view(root: RunLayout, reference: dict[int, _Reference]) -> Path:
    """The random reference of every seed, merged over the trials, as one more root."""
    root.eval_dir.mkdir(parents=True)
    for seed, (rows, cols, js) in reference.items():
        _write_csv(root.eval_csv(run_stem("random", seed)), cols, rows)
        shutil.copy2(js, root.eval_json(run_stem("random", seed)))
    return root.base


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _trials_table(d: Path, out: Path, trials: list[dict[str, Any]], state: dict[str, Any]) -> str:
    keys = list(trials[0]["params"])
    head = ["trial", *keys, "status", "seconds", "node", "run directory", "report"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = []
    done = {t["id"]: t for t in trials}
    for tid, s in state["trials"].items():
        t = done.get(tid)
        rec = t["rec"] if t else {}
        rel = os.path.relpath(d / s["run_dir"], out)
        report = f"[report]({rel}/report/report.md)" if t else ""
        vals = [json.dumps(s["params"][k]) for k in keys]
        node = " ".join(
            str(x)
            for x in (rec.get("host"), rec.get("node_ip"), (rec.get("node_id") or "")[:8])
            if x
        )
        cells = [
            tid,
            *vals,
            s["status"],
            str(rec.get("seconds", "")),
            node,
            f"[{rel}/]({rel}/)",
            report,
        ]
        lines.append("| " + " | ".join(cells) + " |")
        rows.append(dict(zip(head, [*cells[:-2], rel, f"{rel}/report/report.md" if t else ""])))
    _write_csv(out / "trials.csv", head, rows)
    return "\n".join(lines)
