"""Runs with known numbers, written in the report's file contract.

Seed ``s`` of an agent has the mean return ``BASE[agent][env] + s`` on an env (deterministic
evaluation; stochastic is 1 lower); its episodes are that mean +-1 and +-2, so every seed mean
is exact. The reference ``random`` (seed 0) has the mean ``BASE["random"][env]`` in both modes.
With ``R_MAX`` as the best returns, the normalised scores are hand-computable:

- pixels, deterministic: OFFSET (5 + s) / 10 = 0.5, 0.6, 0.7; WALL (2 + s - 2) / 10 = 0, 0.1,
  0.2; SOURCE (10 + s) / 20 = 0.5, 0.55, 0.6.
- beta_vae_dae/frozen: OFFSET (8 + s) / 10 = 0.8, 0.9, 1.0; WALL (3 + s - 2) / 10 = 0.1, 0.2,
  0.3; SOURCE (8 + s) / 20 = 0.4, 0.45, 0.5.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from experiments.report import EVAL_COLUMNS, run_stem

SOURCE = "reprl/BreakoutStandard-v0"
OFFSET = "reprl/BreakoutOffsetPaddle-v0"
WALL = "reprl/BreakoutMiddleWall-v0"
ENVS = (SOURCE, OFFSET, WALL)
AGENTS = ("pixels", "beta_vae_dae/frozen")
SEEDS = (0, 1, 2)
BASE = {
    "pixels": {SOURCE: 10.0, OFFSET: 5.0, WALL: 2.0},
    "beta_vae_dae/frozen": {SOURCE: 8.0, OFFSET: 8.0, WALL: 3.0},
    "random": {SOURCE: 0.0, OFFSET: 0.0, WALL: 2.0},
}
R_MAX = {SOURCE: 20.0, OFFSET: 10.0, WALL: 12.0}
SPREAD = (-1.0, 1.0, -2.0, 2.0)
ACTIVE = {"active": 5, "latent_dim": 8, "variational": True}
BUDGET = {"kind": "steps", "value": 3000, "env_steps": 3072, "seconds": 12.5}


def fake_best_return(env_id: str, **env_kwargs: Any) -> float:
    """Stands in for ``envs.best_return`` (checks the env kwargs arrive)."""
    assert env_kwargs == {"max_episode_steps": 1000}, env_kwargs
    return R_MAX[env_id]


def write_run(
    root: Path,
    agent: str,
    seed: int,
    *,
    config: str = "c1",
    domains: Any = "default",
    budget: Any = "default",
    active: Any = "default",
    train_dir: bool = True,
) -> None:
    """One run's eval CSV + JSON (and its train directory), as the pipeline writes them."""
    stem = run_stem(agent, seed)
    prov: dict[str, Any] = {
        "run": stem,
        "agent": {"name": agent},
        "seed": seed,
        "encoder": None if agent == "pixels" else {"path": "/enc.safetensors", "sha256": "ab" * 32},
        "dataset": {"path": str(root / "collect" / "data.h5"), "sha256": "cd" * 32},
        "config_hash": config,
        "reprl_version": "0.1.0",
    }
    if domains != "missing":
        prov["pretraining_domains"] = (
            (None if agent == "pixels" else [SOURCE]) if domains == "default" else domains
        )
    if budget != "missing":
        prov["budget"] = BUDGET if budget == "default" else budget
    if active != "missing":
        prov["encoder_active_latents"] = (
            (None if agent == "pixels" else ACTIVE) if active == "default" else active
        )
    ev = root / "eval"
    ev.mkdir(parents=True, exist_ok=True)
    with (ev / f"{stem}.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EVAL_COLUMNS)
        for det in (True, False):
            for env in ENVS:
                mean = BASE.get(agent, BASE["pixels"])[env]
                if agent != "random":
                    mean += seed - (0.0 if det else 1.0)
                for i, d in enumerate(SPREAD):
                    w.writerow([agent, seed, env, i, mean + d, 100 + i, str(det).lower()])
    meta: dict[str, Any] = {
        "config": {"evaluate": {"episodes": 4, "env_kwargs": {"max_episode_steps": 1000}}}
    }
    # the pipeline's random reference records no encoder and no budget
    meta["train"] = prov if agent != "random" else {"pretraining_domains": None, "budget": None}
    (ev / f"{stem}.json").write_text(json.dumps(meta))
    if not train_dir or agent == "random":
        return
    train = root / "train" / stem
    train.mkdir(parents=True)
    lines = [json.dumps({"global_step": 0, "losses/value_loss": 1.0})]
    lines += [
        json.dumps({"global_step": 100 * i, "charts/episodic_return": float(i + seed)})
        for i in range(1, 21)
    ]
    (train / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (train / "provenance.json").write_text(json.dumps(prov))


def write_experiment(root: Path, seeds: tuple[int, ...] = SEEDS) -> Path:
    """Both agents with ``seeds`` and the random reference."""
    for agent in AGENTS:
        for seed in seeds:
            write_run(root, agent, seed)
    write_run(root, "random", 0)
    return root


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def table_row(markdown: str, section: str, agent: str, after: str = "") -> list[str]:
    """Cells of ``agent``'s row in the first table below ``section`` (itself after ``after``)."""
    text = markdown[markdown.index(after) :] if after else markdown
    text = text[text.index(section) :]
    for line in text.splitlines():
        if line.startswith(f"| {agent} |"):
            return [c.strip() for c in line.strip("|").split("|")][1:]
    raise AssertionError(f"no row for {agent} under {section}")
