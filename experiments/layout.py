"""The run directory: where every stage of one experiment writes, in one place.

:class:`RunLayout` is the only spelling of the layout; the stages write through it, the report
reads through it and the sweep rebuilds merged roots with it::

    <root>/<name>/
      config.yaml, summary.json
      collect/                 stage.json, config.yaml, explore.h5   exploration data
      pretrain/<encoder>/      encoder.safetensors, ...              one run per encoder
      probe/<encoder>.json (+ .stage.json)                           what each encoder captures
      train/<agent>__<seed>/   stage.json, agent.zip, metrics.jsonl, tb/, provenance.json
      eval/<agent>__<seed>.csv/.json (+ .stage.json)                 zero-shot returns
      report/                  report.md, results.csv, encoders.csv, *.png

A *run* is one agent trained with one seed; its name on disk is the *stem*
``<agent_slug>__<seed>`` (:func:`run_stem`, split again by :func:`parse_stem`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STEM = re.compile(r"^(?P<slug>.+)__(?P<seed>-?\d+)$")
"""A run's stem: ``<agent_slug>__<integer seed>``."""


def agent_slug(agent: str) -> str:
    """File-system-safe form of an agent name (runs of other characters become ``-``).

    Args:
        agent: agent name, e.g. ``beta_vae_dae/frozen``.

    Returns:
        e.g. ``beta_vae_dae-frozen``; names made of ``[A-Za-z0-9._-]`` are unchanged.
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", agent)


def run_stem(agent: str, seed: int) -> str:
    """The on-disk name of a run: ``<agent_slug>__<seed>``."""
    return f"{agent_slug(agent)}__{int(seed)}"


def parse_stem(stem: str) -> tuple[str, int] | None:
    """``(agent_slug, seed)`` of a stem, or None where ``stem`` is not one."""
    m = STEM.match(stem)
    return None if m is None else (m["slug"], int(m["seed"]))


@dataclass(frozen=True)
class RunLayout:
    """The files of one experiment directory (or of a merged report root, which holds only
    ``eval/``, ``train/`` and ``probe/``).

    Args:
        base: the experiment directory, ``<root>/<name>``.
    """

    base: Path

    @classmethod
    def at(cls, root: str | Path, name: str) -> RunLayout:
        """The layout of experiment ``name`` under ``root``."""
        return cls(Path(root) / name)

    # --- the experiment ----------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.base / "config.yaml"

    @property
    def summary(self) -> Path:
        return self.base / "summary.json"

    # --- collect -----------------------------------------------------------------------------
    @property
    def collect_dir(self) -> Path:
        return self.base / "collect"

    @property
    def dataset(self) -> Path:
        return self.collect_dir / "explore.h5"

    # --- pretrain ----------------------------------------------------------------------------
    def pretrain_dir(self, encoder: str) -> Path:
        return self.base / "pretrain" / encoder

    def checkpoint(self, encoder: str) -> Path:
        return self.pretrain_dir(encoder) / "encoder.safetensors"

    # --- probe -------------------------------------------------------------------------------
    @property
    def probe_dir(self) -> Path:
        return self.base / "probe"

    def probe_file(self, encoder: str) -> Path:
        return self.probe_dir / f"{encoder}.json"

    # --- train -------------------------------------------------------------------------------
    @property
    def train_dir(self) -> Path:
        return self.base / "train"

    def run_dir(self, stem: str) -> Path:
        return self.train_dir / stem

    def agent_zip(self, stem: str) -> Path:
        return self.run_dir(stem) / "agent.zip"

    def metrics(self, stem: str) -> Path:
        return self.run_dir(stem) / "metrics.jsonl"

    def provenance(self, stem: str) -> Path:
        return self.run_dir(stem) / "provenance.json"

    # --- evaluate ----------------------------------------------------------------------------
    @property
    def eval_dir(self) -> Path:
        return self.base / "eval"

    def eval_csv(self, stem: str) -> Path:
        return self.eval_dir / f"{stem}.csv"

    def eval_json(self, stem: str) -> Path:
        return self.eval_dir / f"{stem}.json"

    # --- report ------------------------------------------------------------------------------
    @property
    def report_dir(self) -> Path:
        return self.base / "report"

    @property
    def report(self) -> Path:
        return self.report_dir / "report.md"


__all__ = ["STEM", "RunLayout", "agent_slug", "parse_stem", "run_stem"]
