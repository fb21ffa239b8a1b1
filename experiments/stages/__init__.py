"""The stages of the transfer experiment, one module each, in the order they run.

=========  ============================================  ==============================
stage      writes                                        module
=========  ============================================  ==============================
collect    ``collect/explore.h5``                        :mod:`~experiments.stages.collect`
pretrain   ``pretrain/<encoder>/``                       :mod:`~experiments.stages.pretrain`
probe      ``probe/<encoder>.json``                      :mod:`~experiments.stages.probe`
train      ``train/<agent>__<seed>/``                    :mod:`~experiments.stages.train`
evaluate   ``eval/<agent>__<seed>.csv`` / ``.json``      :mod:`~experiments.stages.evaluate`
report     ``report/``                                   :mod:`~experiments.stages.report`
=========  ============================================  ==============================

Every stage is a :class:`~experiments.stages.base.Stage`; the paths come from
:class:`experiments.layout.RunLayout`.
"""

from __future__ import annotations

from experiments.stages.base import RunContext, Stage, StageResult
from experiments.stages.collect import Collect
from experiments.stages.evaluate import Evaluate
from experiments.stages.pretrain import Pretrain
from experiments.stages.probe import Probe
from experiments.stages.report import Report
from experiments.stages.train import Train

PIPELINE: tuple[Stage, ...] = (Collect(), Pretrain(), Probe(), Train(), Evaluate(), Report())
"""The stages in the order :func:`experiments.pipeline.run` runs them."""

STAGES: tuple[str, ...] = tuple(s.name for s in PIPELINE)
"""Their names: ``("collect", "pretrain", "probe", "train", "evaluate", "report")``."""

__all__ = ["PIPELINE", "STAGES", "RunContext", "Stage", "StageResult"]
