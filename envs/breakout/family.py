"""Breakout's ids as an env family (:data:`BREAKOUT`), and the transfer study's targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from envs.breakout.core import BreakoutBatch
from envs.breakout.rules import ACTIONS, SEG_BACKGROUND, VARIANTS, variant_best_return
from envs.family import EnvFamily
from envs.stacking import StackedBatch, check_stack_args

BREAKOUT_IDS: dict[str, dict[str, Any]] = {
    "reprl/Breakout-v0": {},
    "reprl/BreakoutStandard-v0": {"variant": "standard"},
    "reprl/BreakoutOffsetPaddle-v0": {"variant": "offset_paddle"},
    "reprl/BreakoutMiddleWall-v0": {"variant": "middle_wall"},
    "reprl/BreakoutRandomTarget-v0": {"variant": "random_target"},
    "reprl/BreakoutJuggling-v0": {"variant": "juggling"},
    "reprl/BreakoutHalfNegative-v0": {"variant": "half_negative"},
}
"""Our Breakout ids and the kwargs each fixes (``reprl/Breakout-v0`` takes ``variant``)."""

SCHEMA_TARGETS: tuple[str, ...] = (
    "reprl/BreakoutStandard-v0",
    "reprl/BreakoutOffsetPaddle-v0",
    "reprl/BreakoutMiddleWall-v0",
    "reprl/BreakoutRandomTarget-v0",
    "reprl/BreakoutJuggling-v0",
)
"""The Breakout transfer study of Schema Networks (Kansky et al. 2017): the source domain
(Standard) first, then the four zero-shot targets, in the paper's table order."""


def make_breakout_batch(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> BreakoutBatch | StackedBatch:
    """The batched Breakout core behind one of :data:`BREAKOUT_IDS`, stacked on request.

    Grayscale frames are drawn by the core itself (luma colours), stacks are kept by a
    :class:`envs.stacking.StackedBatch` on the core's device.
    """
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    kw = BREAKOUT.resolve(env_id, kwargs)
    core = BreakoutBatch(num_envs, seed=seed, device=device, grayscale=grayscale, **kw)
    return core if frame_stack == 1 else StackedBatch(core, frame_stack)


def _best_return(env_id: str, kwargs: dict[str, Any]) -> float:
    return variant_best_return(
        kwargs.get("variant", "standard"), kwargs.get("max_episode_steps", 5000)
    )


BREAKOUT = EnvFamily(
    name="breakout",
    ids=BREAKOUT_IDS,
    instead=f"reprl/Breakout-v0 with variant=..., one of {VARIANTS}",
    action_meanings=tuple(ACTIONS),
    best_return=_best_return,
    make_batch=make_breakout_batch,
    has_segmentation=True,
    background_ids=(SEG_BACKGROUND,),
)
"""reprl's batched Breakout (:class:`envs.breakout.BreakoutBatch`), every variant."""
