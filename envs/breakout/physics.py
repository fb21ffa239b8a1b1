"""The balls' sub-steps as one pure tensor function: what :class:`~envs.breakout.core.BreakoutBatch`
runs each step, eagerly or compiled (``torch.compile``, one fused kernel on the CPU).

A ball moves ``MAX_SPEED`` sub-steps per step, x then y in each: sub-step ``k`` moves every ball
whose speed on that axis exceeds ``k`` by one pixel, and a ball that would enter a wall, a live
brick, the target or (falling) the paddle bounces instead. A brick hit removes the brick, scores
its value and counts towards the speed-ups, all before the next sub-step looks at the wall, so
the state is carried from one sub-step to the next here. No branch depends on the data and no
value leaves the device, which is what lets ``torch.compile`` take the whole function as one
graph (``fullgraph=True``).

The random target is the exception: a hit moves it by drawing from the games' random streams
before the next sub-step, so that variant runs one sub-step per call
(:data:`SUBSTEPS` one at a time) with the draw between calls, eagerly.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor

from envs.breakout.geometry import (
    BRICK_COLS,
    BRICK_H,
    BRICK_W,
    BRICK_Y0,
    BRICK_Y1,
    MAX_SPEED,
    PADDLE_H,
    PADDLE_W,
    TARGET_H,
    TARGET_W,
    WALL,
    WIDTH,
)

#: Every sub-step of one step, in order: ``(k, axis)``, axis 0 = x, 1 = y.
SUBSTEPS: tuple[tuple[int, int], ...] = tuple(
    (k, axis) for k in range(MAX_SPEED) for axis in (0, 1)
)


@dataclass(frozen=True)
class Layout:
    """What the sub-steps know of a variant besides its state (Python constants).

    Attributes:
        bricks: the variant has the brick wall.
        target: the variant has the random target.
        middle_wall: ``(x0, x1, y0, y1)`` of the middle wall, or None.
        start_speed: the speed limit at an episode's start.
        skip_idle: skip a sub-step's brick bookkeeping where no brick broke, at one host sync
            each (eager on the CPU: cheaper than the ops it skips); False for
            ``torch.compile`` (no data-dependent branch) and on GPUs.
    """

    bricks: bool
    target: bool
    middle_wall: tuple[int, int, int, int] | None
    start_speed: int
    skip_idle: bool = False


class Balls(NamedTuple):
    """The state the sub-steps read and write, ``N`` games of ``B`` balls (int64 unless said).

    A named tuple (``torch.compile`` passes tuples through its graphs at no cost).

    Attributes:
        x, y, vx, vy: ``(N, B)`` positions and velocities (play-area pixels, y down).
        speed: ``(N,)`` the speed limit.
        hits: ``(N,)`` hits counted towards the speed-ups.
        bricks: ``(N, 66)`` bool, live bricks.
        gained: ``(N,)`` reward scored by brick hits so far this step.
    """

    x: Tensor
    y: Tensor
    vx: Tensor
    vy: Tensor
    speed: Tensor
    hits: Tensor
    bricks: Tensor
    gained: Tensor


def speed_limit(hits: Tensor, speedups: Tensor, start_speed: int) -> Tensor:
    """``(K,)`` speed limits after ``hits`` ``(K,)`` hits: ``start_speed`` plus one for each
    count of ``speedups`` ``(S,)`` reached, at most ``MAX_SPEED``."""
    return (start_speed + (hits[:, None] >= speedups).sum(1)).clamp(max=MAX_SPEED)


def substeps(
    balls: Balls,
    paddle_x: Tensor,
    paddle_y: Tensor,
    brick_value: Tensor,
    target_x: Tensor,
    target_y: Tensor,
    english: Tensor,
    speedups: Tensor,
    *,
    layout: Layout,
    steps: tuple[tuple[int, int], ...] = SUBSTEPS,
) -> tuple[Balls, Tensor]:
    """Moves the balls through ``steps`` sub-steps (module docstring).

    Args:
        balls: the state before (not modified).
        paddle_x, paddle_y: ``(N,)`` the paddles (already moved this step).
        brick_value: ``(N, 66)`` each brick's reward.
        target_x, target_y: ``(N,)`` the target's top-left (read with ``layout.target``).
        english: ``(PADDLE_W,)`` the x velocity a paddle hit at each offset gives.
        speedups: ``(S,)`` hit counts at which the speed limit rises by one.
        layout: the variant's constants.
        steps: the sub-steps to run, a slice of :data:`SUBSTEPS` in order.

    Returns:
        ``(balls after, target_hit)``: ``target_hit`` is ``(N, B)`` bool, the balls that hit the
        target in the last sub-step (all False without ``layout.target``).
    """
    x, y, vx, vy = balls.x, balls.y, balls.vx, balls.vy
    speed, hits, bricks, gained = balls.speed, balls.hits, balls.bricks, balls.gained
    target_hit = torch.zeros_like(x, dtype=torch.bool)
    # the bricks broken by earlier sub-steps, (N, B) each: the wall itself is updated once, at
    # the end (an (N, 66) update per sub-step makes the compiled kernel recompute the whole
    # chain per brick: 6x slower at N = 256)
    broken_at: list[Tensor] = []
    broken_by: list[Tensor] = []
    for k, axis in steps:
        v = vx if axis == 0 else vy
        move = v.abs() > k
        step = torch.sign(v) * move
        nx, ny = (x + step, y) if axis == 0 else (x, y + step)
        # what occupies the cells the balls would enter
        static = (nx < WALL) | (nx >= WIDTH - WALL) | (ny < WALL)
        if layout.middle_wall is not None:
            x0, x1, y0, y1 = layout.middle_wall
            static = static | ((nx >= x0) & (nx < x1) & (ny >= y0) & (ny < y1))
        obstacle = static
        if layout.bricks:
            row = ((ny - BRICK_Y0).clamp(0, BRICK_Y1 - BRICK_Y0 - 1)) // BRICK_H
            col = ((nx - WALL).clamp(0, WIDTH - 2 * WALL - 1)) // BRICK_W
            index = row * BRICK_COLS + col
            alive = bricks.gather(1, index)
            for at, by in zip(broken_at, broken_by, strict=True):
                alive = alive & ~((index[:, :, None] == at[:, None, :]) & by[:, None, :]).any(2)
            brick = (ny >= BRICK_Y0) & (ny < BRICK_Y1) & alive
            obstacle = obstacle | brick
        if layout.target:
            tx, ty = target_x[:, None], target_y[:, None]
            target = (nx >= tx) & (nx < tx + TARGET_W) & (ny >= ty) & (ny < ty + TARGET_H)
            obstacle = obstacle | target
            target_hit = target & move
        px, py = paddle_x[:, None], paddle_y[:, None]
        on_paddle = (nx >= px) & (nx < px + PADDLE_W) & (ny >= py) & (ny < py + PADDLE_H)
        paddle = (vy > 0) & on_paddle
        hit = (obstacle | paddle) & move
        if axis == 0:
            vx = torch.where(hit, -vx, vx)
            x = torch.where(hit, x, nx)
        else:
            bounce = paddle & move
            limit = speed[:, None]
            offset = (x - px).clamp(0, PADDLE_W - 1)
            vx = torch.where(
                bounce, torch.minimum(torch.maximum(english[offset], -limit), limit), vx
            )
            vy = torch.where(bounce, -limit, torch.where(hit, -vy, vy))
            y = torch.where(hit, y, ny)
        if layout.bricks:
            broken = brick & move  # (N, B): removes the brick at ``index``, scores its value
            if layout.skip_idle and not bool(broken.any()):
                continue
            gained = gained + (brick_value.gather(1, index) * broken).sum(1)
            broken_at.append(index)
            broken_by.append(broken)
            n_broken = broken.sum(1)
            hits = hits + n_broken
            speed = torch.where(
                n_broken > 0, speed_limit(hits, speedups, layout.start_speed), speed
            )
    if broken_at:
        removed = torch.zeros_like(brick_value).scatter_add_(
            1, torch.cat(broken_at, 1), torch.cat(broken_by, 1).long()
        )
        bricks = bricks & (removed == 0)
    return Balls(x, y, vx, vy, speed, hits, bricks, gained), target_hit


#: :func:`substeps` through ``torch.compile``, one function per layout (:func:`compiled_substeps`).
_COMPILED: dict[Layout, Callable[..., tuple[Balls, Tensor]]] = {}


def compiled_substeps(layout: Layout) -> Callable[..., tuple[Balls, Tensor]]:
    """:func:`substeps` for ``layout`` (all :data:`SUBSTEPS`) through ``torch.compile``
    (``fullgraph=True``): ``fn(balls, paddle_x, ..., speedups)``, the same numbers as
    :func:`substeps`.

    Every layout gets a copy of the function with a code object of its own, compiled once per
    process and shared by every batch of that layout: torch.compile caches compiled graphs per
    code object and allows 8 recompilations each (more is an error with ``fullgraph``), so one
    shared function would fail after a few variants and batch sizes (a zero-shot evaluation
    steps up to six); within a layout a second batch size makes ``N`` dynamic (one more
    compilation for every size after it).
    """
    fn = _COMPILED.get(layout)
    if fn is None:
        code = substeps.__code__.replace()  # a new code object: its own compile cache
        copy = types.FunctionType(code, substeps.__globals__, substeps.__name__)
        copy.__kwdefaults__ = substeps.__kwdefaults__
        fn = torch.compile(partial(copy, layout=layout), fullgraph=True)
        _COMPILED[layout] = fn
    return fn


__all__ = ["SUBSTEPS", "Balls", "Layout", "compiled_substeps", "speed_limit", "substeps"]
