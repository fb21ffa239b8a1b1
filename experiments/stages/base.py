"""What every stage of the transfer experiment shares: the context it reads and the result it
returns.

A stage is an object with a ``name``, :meth:`Stage.wanted` (whether this experiment needs it)
and :meth:`Stage.run`, which reads its inputs from the :class:`RunContext`, writes its
artefacts through the context's :class:`~experiments.layout.RunLayout` and puts what the next
stages need back into the context. :func:`experiments.pipeline.run` runs them in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from envs.storage.files import file_sha256
from experiments.evaluation import relative
from experiments.experiment import ExperimentConfig
from experiments.layout import RunLayout
from representations.checkpoint import Checkpoint


@dataclass
class RunContext:
    """The experiment and the artefacts its stages have made so far.

    Attributes:
        cfg: the validated experiment.
        layout: its run directory.
        dataset: the exploration dataset (after collect), or None.
        encoders: encoder name -> its checkpoint, each opened once (after pretrain).
        probes: encoder name -> its probe JSON (after probe).
        agents: run stem -> agent zip (after train).
        evaluations: the evaluation CSVs (after evaluate).
    """

    cfg: ExperimentConfig
    layout: RunLayout
    dataset: Path | None = None
    encoders: dict[str, Checkpoint] = field(default_factory=dict)
    probes: dict[str, Path] = field(default_factory=dict)
    agents: dict[str, Path] = field(default_factory=dict)
    evaluations: list[Path] = field(default_factory=list)

    @property
    def base(self) -> Path:
        """The experiment directory."""
        return self.layout.base


@dataclass(frozen=True)
class StageResult:
    """What a stage did: ``reused`` of its ``total`` artefacts were reused."""

    reused: int
    total: int

    @property
    def status(self) -> str:
        """``"reused"``, ``"partly reused"`` or ``"ran"``."""
        if self.reused == self.total:
            return "reused"
        return "partly reused" if self.reused else "ran"


class Stage(ABC):
    """One stage of the experiment (module doc)."""

    name: ClassVar[str]

    def wanted(self, ctx: RunContext) -> bool:
        """Whether the experiment needs this stage (all of them by default)."""
        return True

    @abstractmethod
    def run(self, ctx: RunContext) -> StageResult:
        """Builds (or reuses) the stage's artefacts and records them in ``ctx``."""


def needs_encoders(cfg: ExperimentConfig) -> bool:
    """Whether collect, pretrain and probe run: some agent is built on a pretrained encoder, or
    the experiment has encoders and no agents (a probe-only one)."""
    return bool(cfg.encoders) and (not cfg.agents or any(a.mode != "pixels" for a in cfg.agents))


def file_ref(path: Path | Checkpoint | None, base: Path) -> dict[str, str] | None:
    """``{"path": relative to base, "sha256"}`` of a file, or None for no file."""
    if path is None:
        return None
    if isinstance(path, Checkpoint):
        return {"path": relative(path.path, base), "sha256": path.sha256}
    return {"path": relative(path, base), "sha256": file_sha256(path)}


def mtime(path: Path) -> int | None:
    """A file's modification time in ns, or None where it does not exist (reuse counting)."""
    return path.stat().st_mtime_ns if path.exists() else None


def open_checkpoint(encoder: Path | Checkpoint) -> Checkpoint:
    """``encoder`` itself if it is already open, else the checkpoint read once."""
    return encoder if isinstance(encoder, Checkpoint) else Checkpoint(encoder)


__all__ = [
    "RunContext",
    "Stage",
    "StageResult",
    "file_ref",
    "mtime",
    "needs_encoders",
    "open_checkpoint",
]
