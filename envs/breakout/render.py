"""Breakout's renderer: RGB and luma frames and the ground-truth segmentation of one batch.

A mixin of :class:`envs.breakout.BreakoutBatch`: it draws the state tensors the physics in
:mod:`envs.breakout.core` writes, at any ``obs_size`` (play-area pixels scaled to output
pixels; ``min_object_size`` widens the small moving objects).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from envs.breakout.geometry import (
    BACKGROUND,
    BALL_COLOR,
    BRICK_COLS,
    BRICK_H,
    BRICK_ROWS,
    BRICK_W,
    BRICK_Y0,
    HEIGHT,
    NUM_BRICKS,
    PADDLE_COLOR,
    PADDLE_H,
    PADDLE_W,
    TARGET_BRICKS,
    TARGET_H,
    TARGET_W,
    WALL,
    WALL_COLOR,
    WIDTH,
)
from envs.breakout.rules import SEG_BACKGROUND, SEG_PADDLE, SEG_WALLS, VariantRules
from envs.gray import rgb_to_gray


def _span(lo: int, hi: int, scale: float) -> tuple[int, int]:
    """Maps the play-area interval [lo, hi) to output pixels, at least one pixel wide."""
    a = int(np.floor(lo * scale))
    return a, max(int(np.floor(hi * scale)), a + 1)


def _box(h: int, w: int) -> tuple[Tensor, Tensor]:
    """Row and column offsets of every pixel of an h x w box, each (h*w,) int64."""
    oy, ox = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return oy.reshape(-1), ox.reshape(-1)


class BreakoutRenderer:
    """Draws the frames of :class:`envs.breakout.BreakoutBatch` (its state, its settings)."""

    num_envs: int
    num_balls: int
    obs_size: tuple[int, int]
    min_object_size: int
    grayscale: bool
    rules: VariantRules
    device: torch.device
    bricks: Tensor
    brick_color: Tensor
    paddle_x: Tensor
    paddle_y: Tensor
    ball_x: Tensor
    ball_y: Tensor
    target_x: Tensor
    target_y: Tensor
    _ar: Tensor
    _classic: Tensor
    _mw: tuple[int, int, int, int]

    def _build_renderer(self) -> None:
        """Precomputes the output-pixel layout of every object at ``obs_size``."""
        oh, ow = self.obs_size
        sy, sx = oh / HEIGHT, ow / WIDTH
        self._sx, self._sy = sx, sy
        dev = self.device
        bg = torch.zeros(oh, ow, 3, dtype=torch.uint8)
        bg[:] = torch.tensor(BACKGROUND, dtype=torch.uint8)
        wall = torch.tensor(WALL_COLOR, dtype=torch.uint8)
        rects = [(0, WALL, 0, HEIGHT), (WIDTH - WALL, WIDTH, 0, HEIGHT), (0, WIDTH, 0, WALL)]
        if self.rules.middle_wall:
            rects.append(self._mw)
        seg = torch.full((oh, ow), SEG_BACKGROUND, dtype=torch.int64)
        for x0, x1, y0, y1 in rects:
            (a, b), (c, d) = _span(x0, x1, sx), _span(y0, y1, sy)
            bg[c:d, a:b] = wall
            seg[c:d, a:b] = SEG_WALLS
        self._background = bg.to(dev)
        self._seg_background = seg.to(dev)
        # every brick's output pixels (flat within one frame), padded by repetition
        pix = []
        for r in range(BRICK_ROWS):
            for c in range(BRICK_COLS):
                x0 = WALL + c * BRICK_W
                y0 = BRICK_Y0 + r * BRICK_H
                (a, b), (cc, d) = _span(x0, x0 + BRICK_W, sx), _span(y0, y0 + BRICK_H, sy)
                yy, xx = torch.meshgrid(torch.arange(cc, d), torch.arange(a, b), indexing="ij")
                pix.append((yy * ow + xx).reshape(-1))
        k = max(len(p) for p in pix)
        self._brick_pix = torch.stack([torch.cat([p, p[:1].repeat(k - len(p))]) for p in pix]).to(
            dev
        )
        col = torch.arange(NUM_BRICKS) % BRICK_COLS
        self._brick_left_half = ((WALL + BRICK_W * col) < WIDTH // 2).to(dev)
        # dynamic objects: fixed-size boxes anchored at the object's mapped top-left; an axis
        # under min_object_size pixels is widened to it and centred on the object instead
        m = self.min_object_size

        def spec(hp: int, wp: int) -> tuple[tuple[Tensor, Tensor], tuple[int, int]]:
            h, w = max(1, int(hp * sy)), max(1, int(wp * sx))  # floor: never overlaps a wall
            by, bx = _box(max(h, m), max(w, m))
            return (by.to(dev), bx.to(dev)), (hp if h < m else 0, wp if w < m else 0)

        self._paddle_box, self._paddle_grow = spec(PADDLE_H, PADDLE_W)
        self._ball_box, self._ball_grow = spec(1, 1)
        self._target_box, self._target_grow = spec(TARGET_H, TARGET_W)
        ty, th = self._target_box[0].cpu(), int(self._target_box[0].max()) + 1
        self._target_row = ((ty.float() + 0.5) * TARGET_BRICKS[1] / th).long().clamp(max=3).to(dev)
        self._colors = {
            name: torch.tensor(c, dtype=torch.uint8, device=dev)
            for name, c in (("paddle", PADDLE_COLOR), ("ball", BALL_COLOR), ("bg", BACKGROUND))
        }
        n = self.num_envs
        self._static = self._background.expand(n, -1, -1, -1).clone()
        if self.grayscale:  # a luma twin of the static frames and colours, drawn alongside
            self._static_gray = rgb_to_gray(self._static)
            self._gray = {k: rgb_to_gray(c) for k, c in self._colors.items()}
            self._classic_gray = rgb_to_gray(self._classic)

    def _draw_static(self, idx: Tensor) -> None:
        """Redraws background and bricks of games ``idx`` into the cached static frames."""
        self._static[idx] = self._background
        if self.rules.bricks:
            oh, ow = self.obs_size
            flat = self._static.view(-1, 3)
            where = idx[:, None, None] * (oh * ow) + self._brick_pix[None]
            k = self._brick_pix.shape[1]
            flat[where] = self.brick_color[idx][:, :, None, :].expand(-1, -1, k, -1)
        if self.grayscale:
            self._static_gray[idx] = rgb_to_gray(self._static[idx])

    def _erase_bricks(self, games: Tensor, bricks: Tensor) -> None:
        """Paints bricks ``bricks`` of ``games`` (both (K,)) with the background colour."""
        oh, ow = self.obs_size
        where = games[:, None] * (oh * ow) + self._brick_pix[bricks]
        self._static.view(-1, 3)[where] = self._colors["bg"]
        if self.grayscale:
            self._static_gray.view(-1)[where] = self._gray["bg"]

    def _blit(
        self,
        frame: Tensor,
        x: Tensor,
        y: Tensor,
        box: tuple[Tensor, Tensor],
        color: Tensor,
        grow: tuple[int, int] = (0, 0),
    ) -> None:
        """Paints a box at play-area positions (x, y) ((K,) or (K, B)) into frames (K, H, W, C).

        The box starts at the position's output pixel; along an axis where ``grow`` gives the
        object's play-area size (non-zero), it is centred on the object's centre instead
        (the widened objects of ``min_object_size``). Pixels outside the frame are clipped.
        """
        oh, ow = self.obs_size
        m = self.min_object_size
        gy, gx = grow
        # centred start: floor(c - m / 2 + 1 / 2) with c = (pos + size / 2) * out / play
        ox = ((2 * x + gx) * ow - (m - 1) * WIDTH) // (2 * WIDTH) if gx else (x * ow) // WIDTH
        oy = ((2 * y + gy) * oh - (m - 1) * HEIGHT) // (2 * HEIGHT) if gy else (y * oh) // HEIGHT
        by, bx = box
        k = frame.shape[0]
        base = torch.arange(k, device=self.device).view(k, *([1] * (x.ndim - 1))) * (oh * ow)
        yy = (oy[..., None] + by).clamp(0, oh - 1)
        xx = (ox[..., None] + bx).clamp(0, ow - 1)
        c = frame.shape[-1]
        frame.view(-1, c)[(base[..., None] + yy * ow + xx).reshape(-1)] = color

    @property
    def num_segments(self) -> int:
        """Number of object ids :meth:`render_segmentation` can give (background included)."""
        return SEG_PADDLE + 1 + self.num_balls + 1 + NUM_BRICKS

    def render_segmentation(self, index: Tensor | None = None) -> Tensor:
        """Ground-truth instance segmentation of :meth:`render`'s frames: one object id a pixel.

        Drawn like the frame, object by object in the same order (walls and bricks, the target,
        the paddle, the balls on top), so every pixel has the id of the object whose colour it
        shows. Ids: ``SEG_BACKGROUND`` 0, ``SEG_WALLS`` 1 (side and top walls and the middle
        wall), ``SEG_PADDLE`` 2, ball ``b`` ``3 + b``, the target block ``3 + num_balls``,
        brick ``j`` (row-major, top row first) ``4 + num_balls + j``; ids run below
        :attr:`num_segments`.

        Args:
            index: int64 (K,) games, default all.

        Returns:
            (K, H, W) int64 on the env's device.
        """
        oh, ow = self.obs_size
        i = self._ar if index is None else index
        k, b = len(i), self.num_balls
        seg = self._seg_background.expand(k, oh, ow).clone()
        if self.rules.bricks:
            games, bricks = self.bricks[i].nonzero(as_tuple=True)
            where = games[:, None] * (oh * ow) + self._brick_pix[bricks]
            ids = (SEG_PADDLE + 2 + b + bricks)[:, None].expand_as(where)
            seg.view(-1)[where.reshape(-1)] = ids.reshape(-1)
        frame = seg[..., None]
        one = lambda v: torch.tensor([v], dtype=torch.int64, device=self.device)  # noqa: E731
        if self.rules.target:
            self._blit(
                frame,
                self.target_x[i],
                self.target_y[i],
                self._target_box,
                one(SEG_PADDLE + 1 + b),
                self._target_grow,
            )
        self._blit(
            frame,
            self.paddle_x[i],
            self.paddle_y[i],
            self._paddle_box,
            one(SEG_PADDLE),
            self._paddle_grow,
        )
        for j in range(b):
            self._blit(
                frame,
                self.ball_x[i, j],
                self.ball_y[i, j],
                self._ball_box,
                one(SEG_PADDLE + 1 + j),
                self._ball_grow,
            )
        return seg

    def render(self, index: Tensor | None = None) -> Tensor:
        """Renders the current frames in RGB (also with ``grayscale``: for videos).

        Args:
            index: int64 (K,) games to render, default all.

        Returns:
            (K, H, W, 3) uint8, a new tensor (safe to keep).
        """
        return self._render(index, gray=False)

    def render_obs(self, index: Tensor | None = None) -> Tensor:
        """Renders the current observations: (K, H, W, 1) luma with ``grayscale``, else RGB.

        The luma frame is drawn from luma colours, so it equals
        :func:`envs.gray.rgb_to_gray` of :meth:`render` exactly, at a third of the cost.
        """
        return self._render(index, gray=self.grayscale)

    def _render(self, index: Tensor | None, gray: bool) -> Tensor:
        static = self._static_gray if gray else self._static
        colors = self._gray if gray else self._colors
        if index is None:
            frame, i = static.clone(), self._ar
        else:
            frame, i = static[index], index
        if self.rules.target:
            row = (self.target_y[i] - BRICK_Y0) // BRICK_H
            palette = self._classic_gray if gray else self._classic
            color = palette[(row[:, None] + self._target_row).clamp(max=BRICK_ROWS - 1)]
            tx, ty = self.target_x[i], self.target_y[i]
            color = color.reshape(-1, frame.shape[-1])
            self._blit(frame, tx, ty, self._target_box, color, self._target_grow)
        px, py = self.paddle_x[i], self.paddle_y[i]
        self._blit(frame, px, py, self._paddle_box, colors["paddle"], self._paddle_grow)
        bx, by = self.ball_x[i], self.ball_y[i]
        self._blit(frame, bx, by, self._ball_box, colors["ball"], self._ball_grow)
        return frame
