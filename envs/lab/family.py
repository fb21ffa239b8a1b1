"""The lab's ids as an env family (:data:`LAB`): the collect and navigate tasks, by split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from envs.errors import ReprlError
from envs.family import EnvFamily, stacked
from envs.lab.domains import SEG_OBJECTS
from envs.lab.lab import ACTIONS, LabBatch
from envs.stacking import StackedBatch, check_stack_args

LAB_IDS: dict[str, dict[str, Any]] = {
    "reprl/LabCollect-v0": {"task": "collect"},
    "reprl/LabCollectTrain-v0": {"task": "collect", "split": "train"},
    "reprl/LabCollectTest-v0": {"task": "collect", "split": "test"},
    "reprl/LabNavigate-v0": {"task": "navigate"},
    "reprl/LabNavigateTrain-v0": {"task": "navigate", "split": "train"},
    "reprl/LabNavigateTest-v0": {"task": "navigate", "split": "test"},
}
"""The DMLab-style worlds of :mod:`envs.lab` and the kwargs each id fixes: ``LabCollect-v0`` and
``LabNavigate-v0`` take ``split`` (default ``"train"``); the ``Train``/``Test`` ids fix it, so
the held-out domains (collect) or mazes (navigate) are one more target of an experiment."""


def make_lab_batch(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> LabBatch | StackedBatch:
    """The batched lab core behind one of :data:`LAB_IDS`, stacked (or grayscale) on request."""
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    core = LabBatch(num_envs, seed=seed, device=device, **LAB.resolve(env_id, kwargs))
    return stacked(core, frame_stack, grayscale)


def _best_return(env_id: str, kwargs: dict[str, Any]) -> float:
    """LabNavigate: 1 (the goal, once); LabCollect: ``num_good`` (default 3)."""
    if kwargs["task"] == "navigate":
        return 1.0
    num_good = kwargs.get("num_good", 3)
    if not isinstance(num_good, int) or isinstance(num_good, bool) or num_good < 0:
        raise ReprlError(f"num_good: expected an integer >= 0, got {num_good!r}")
    return float(num_good)


LAB = EnvFamily(
    name="lab",
    ids=LAB_IDS,
    instead={
        i: f"reprl/Lab{kw['task'].capitalize()}-v0 with split=..." for i, kw in LAB_IDS.items()
    },
    action_meanings=ACTIONS,
    best_return=_best_return,
    make_batch=make_lab_batch,
    has_segmentation=True,
    background_ids=tuple(range(SEG_OBJECTS)),  # ceiling, floor, walls
    has_camera=True,
)
"""The lab's batched worlds (:class:`envs.lab.LabBatch`): segmentation and free cameras."""
