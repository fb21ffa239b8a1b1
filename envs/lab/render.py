"""A batched first-person raycaster: K views of grid worlds drawn at once with torch tensor ops.

Geometry (cells as units; x = column, y = row, y grows downwards on the map): walls fill whole
grid cells and are 1 high, the camera stands at height 0.5, floor at 0, ceiling at 1. A view is
a position, a unit direction ``(dx, dy)`` (yaw 0 looks along +x, yaw 90 degrees along +y) and a
horizon shift (pitch). The camera plane points to the view's right, ``(-dy, dx)``; screen
column ``w`` looks along ``dir + plane * tan(fov / 2) * cx`` with ``cx = 2 (w + 0.5) / W - 1``
(pixel centres, so the image is symmetric about its middle). The focal length is
``f = (W / 2) / tan(fov / 2)`` pixels, the same vertically (square pixels): a wall at
perpendicular distance ``d`` is ``f / d`` pixels high, centred on the horizon; a point at height
``z`` and depth ``d`` is at ``rel = f (0.5 - z) / d`` pixels below the horizon, and pixel row
``h`` has ``rel = h + 0.5 - H / 2 - shift``.

Steps, each over whole (K, W) or (K, W, H) tensors, no Python loop over views or pixels:

1. walls (:meth:`Raycaster.cast`): every ray is intersected with the first ``G`` vertical and
   ``G`` horizontal grid lines it crosses at once (G = the grid's larger side; the maps are
   closed by walls, so a ray always hits within them); the first crossing into a wall cell of
   each family, the nearer of the two, gives the perpendicular distance (the z-buffer), the face
   (x or y side, y sides drawn darker) and the texture column ``u``.
2. wall rows: the wall's height is quantised to 1/``Q`` pixel and the texture row of each pixel
   is looked up in a precomputed table (height, row) -> row offset, negative off the wall.
3. floor and ceiling: each row below the horizon is at floor distance ``f * 0.5 / rel``; the
   floor texel of each pixel comes from the world point it sees; rows above show the ceiling.
   Wall texels are numbered above all floor texels (:class:`envs.lab.domains.Palette`), so the
   frame's texel index is one ``maximum`` of the two.
4. objects (:meth:`Raycaster.draw_sprites`): billboards ``OBJECT_WIDTH`` wide and
   ``OBJECT_HEIGHT`` high standing on the floor, projected per (view, object); the pixels of
   all their screen boxes are enumerated as one ragged list, depth-tested against the wall
   z-buffer, and the nearest opaque sprite texel of each pixel wins (a ``scatter_reduce`` min
   on a depth key). The loop is over nothing: one list for all views and objects.
5. colour: one gather of the palette's RGBA texels.

Everything is elementwise IEEE arithmetic (no reductions over views, no transcendental
functions per pixel), so view i of a batch gives exactly the pixels of the same view alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from envs.lab.domains import SEG_OBJECTS, SPRITE_SIZE, TEX_SIZE, Palette

Q = 4
"""Wall heights are quantised to 1/Q pixel."""

MAX_WALL_SCREENS = 8
"""Walls taller than this many screen heights (closer than ``f / (8 H)``) are drawn at it."""

CAMERA_HEIGHT = 0.5
"""The camera's height in cells (floor 0, ceiling 1): the geometry above is written for it."""

OBJECT_WIDTH = 0.5
OBJECT_HEIGHT = 0.5
"""Objects are billboards OBJECT_WIDTH x OBJECT_HEIGHT cells standing on the floor."""

NEAR = 0.05
"""Objects nearer than this (in depth, cells) are not drawn."""

_NEG = -(2**30)
_INF_KEY = 2**62


@dataclass
class Views:
    """K camera views, each of one world (views may share a world).

    Attributes:
        grid_offset: (K,) int64, where the view's layout starts in the flat grid.
        pos: (K, 2) float32 camera x, y in cells.
        dir: (K, 2) float32 unit view direction.
        shift: (K,) int64 horizon shift in rows (positive: looking up), or None for 0.
        floor_base: (K,) int64 first floor texel of the world's room look.
        wall_base: (K,) int64 first wall texel of the world's room look.
        obj_pos: (K, J, 2) float32 x and y of each object, in cells.
        obj_base: (K, J) int64 first sprite texel of each object's look.
        obj_alive: (K, J) bool, objects still in the world (the others are not drawn).
    """

    grid_offset: Tensor
    pos: Tensor
    dir: Tensor
    shift: Tensor | None
    floor_base: Tensor
    wall_base: Tensor
    obj_pos: Tensor
    obj_base: Tensor
    obj_alive: Tensor


@dataclass
class Rays:
    """Per-column results of :meth:`Raycaster.cast`, each (K, W).

    Attributes:
        dist: float32 perpendicular distance to the wall (the z-buffer), cells.
        cell: int64 flat index (row * grid width + col) of the wall cell hit.
        y_side: bool, the face hit looks north or south.
        u: int64 texture column in [0, TEX_SIZE).
        dir_x, dir_y: float32 ray direction (not normalised: its component along the view
            direction is 1).
    """

    dist: Tensor
    cell: Tensor
    y_side: Tensor
    u: Tensor
    dir_x: Tensor
    dir_y: Tensor


class Raycaster:
    """Draws views of worlds laid out on a shared flat grid of cells.

    Args:
        cells: (L * Hg * Wg,) uint8, 1 where a wall is: L layouts of Hg x Wg cells, each
            closed by walls (padding is wall).
        grid_shape: (Hg, Wg).
        obs_size: (H, W) of the frames.
        fov_degrees: horizontal field of view, in (0, 180).
        palette: the texels (:func:`envs.lab.domains.build_palette`).
    """

    def __init__(
        self,
        cells: Tensor,
        grid_shape: tuple[int, int],
        obs_size: tuple[int, int],
        fov_degrees: float,
        palette: Palette,
    ) -> None:
        self.cells = cells
        self.device = cells.device
        self.grid_h, self.grid_w = grid_shape
        self.H, self.W = obs_size
        self.palette = palette
        dev = self.device
        h, w = self.H, self.W
        self.tan = math.tan(math.radians(fov_degrees) / 2)
        self.f = (w / 2) / self.tan
        cx = (2 * (torch.arange(w, dtype=torch.float64) + 0.5) / w - 1) * self.tan
        self.cam_x = cx.to(torch.float32).to(dev)
        g = max(self.grid_h, self.grid_w)
        self.k = torch.arange(g, dtype=torch.float32, device=dev)
        self.k1 = torch.arange(1, g + 1, dtype=torch.int64, device=dev)
        # rows of an extended screen: ext row r is rel = r + 0.5 - 3H/2 (screen row h with
        # shift s is ext row h - s + H)
        rel = torch.arange(3 * h, dtype=torch.float32) + 0.5 - 1.5 * h
        self.lq_max = Q * MAX_WALL_SCREENS * h
        lq = torch.arange(self.lq_max + 1, dtype=torch.float32)
        t = (rel[None, :] * Q) / lq[:, None].clamp(min=1e-3) + 0.5
        on = (t >= 0) & (t < 1) & (lq[:, None] > 0)
        v = (t * TEX_SIZE).floor().clamp(0, TEX_SIZE - 1).to(torch.int32)
        table = torch.where(on, v * TEX_SIZE, torch.full_like(v, _NEG))
        self.wall_rows_ext = table.to(dev)  # (lq_max + 1, 3H) int32
        self.wall_rows = table[:, h : 2 * h].contiguous().to(dev)  # shift 0
        half = torch.tensor(0.5 * self.f, dtype=torch.float32)
        dist = torch.where(rel > 0, half / rel.clamp(min=0.25), torch.zeros_like(rel))
        self.row_dist_ext = dist.to(dev)  # (3H,) float32 floor distance, 0 above the horizon
        self.top = (h + 1) // 2  # rows with rel <= 0 at shift 0 (the ceiling)
        self.row_dist = dist[h + self.top : 2 * h].to(dev)
        self.rel_ext = rel.to(dev)
        self._key_buf = torch.empty(0, dtype=torch.int64, device=dev)

    # --- walls ----------------------------------------------------------------------------
    def cast(self, views: Views) -> Rays:
        """Casts one ray per screen column of every view.

        Returns:
            :class:`Rays`, each field (K, W).
        """
        px, py = views.pos[:, 0:1], views.pos[:, 1:2]
        dx, dy = views.dir[:, 0:1], views.dir[:, 1:2]
        rdx = dx - dy * self.cam_x
        rdy = dy + dx * self.cam_x
        off = views.grid_offset[:, None, None]
        tx, cx = self._first_hit(px, py, rdx, rdy, off, along_x=True)
        ty, cy = self._first_hit(py, px, rdy, rdx, off, along_x=False)
        y_side = ty < tx
        dist = torch.minimum(tx, ty)
        cell = torch.where(y_side, cy, cx)
        hit = torch.where(y_side, px + dist * rdx, py + dist * rdy)
        u = ((hit - hit.floor()) * TEX_SIZE).to(torch.int64).clamp(0, TEX_SIZE - 1)
        flip = torch.where(y_side, rdy < 0, rdx > 0)
        u = torch.where(flip, TEX_SIZE - 1 - u, u)
        return Rays(dist, cell, y_side, u, rdx, rdy)

    def _first_hit(
        self, pa: Tensor, pb: Tensor, ra: Tensor, rb: Tensor, off: Tensor, along_x: bool
    ) -> tuple[Tensor, Tensor]:
        """Distance to the first wall entered across the grid lines a = const.

        ``pa``/``ra`` are the coordinate and ray component across those lines (x for vertical
        lines), ``pb``/``rb`` the other. Returns (K, W) float32 distances and int64 cells.
        """
        cell_a = pa.floor()
        pos = ra > 0
        delta = 1.0 / ra.abs().clamp(min=1e-12)
        first = torch.where(pos, cell_a + 1 - pa, pa - cell_a) * delta
        t = first[..., None] + self.k * delta[..., None]  # (K, W, G)
        step = torch.where(pos, 1, -1)[..., None] * self.k1
        a = cell_a.to(torch.int64)[..., None] + step
        b = (pb[..., None] + t * rb[..., None]).floor()
        if along_x:
            col = a.clamp(0, self.grid_w - 1)
            row = b.clamp(0, self.grid_h - 1).to(torch.int64)
        else:
            row = a.clamp(0, self.grid_h - 1)
            col = b.clamp(0, self.grid_w - 1).to(torch.int64)
        flat = row * self.grid_w + col
        wall = self.cells.index_select(0, (flat + off).view(-1)).view(flat.shape)
        j = wall.argmax(-1, keepdim=True)  # the first wall crossed (maps are closed)
        return t.gather(-1, j).squeeze(-1), flat.gather(-1, j).squeeze(-1)

    # --- the frame ------------------------------------------------------------------------
    def texels(self, views: Views, rays: Rays) -> Tensor:
        """Texel index of every pixel, walls, floor and ceiling (no objects).

        Returns:
            (K, W, H) int32 indices into the palette (column-major frames).
        """
        k = views.pos.shape[0]
        h, w = self.H, self.W
        s = TEX_SIZE
        lq = (Q * self.f / rays.dist).clamp(max=self.lq_max).round().to(torch.int64)
        col_base = (views.wall_base[:, None] + rays.y_side * (s * s) + rays.u).to(torch.int32)
        if views.shift is None:
            index = self.wall_rows.index_select(0, lq.view(-1)).view(k, w, h)
            index += col_base[..., None]
            floor = self._floor(views, rays, self.row_dist[None, None, :])
            index[..., : self.top].clamp_(min=0)  # the ceiling is texel 0
            lower = index[..., self.top :]
            torch.maximum(lower, floor, out=lower)
            return index
        rows = torch.arange(h, device=self.device) - views.shift[:, None] + h  # (K, H)
        ext = self.wall_rows_ext.index_select(0, lq.view(-1)).view(k, w, 3 * h)
        index = ext.gather(2, rows[:, None, :].expand(k, w, h))
        index += col_base[..., None]
        dist = self.row_dist_ext[rows][:, None, :]  # (K, 1, H), 0 above the horizon
        floor = self._floor(views, rays, dist)
        floor *= (dist > 0).to(torch.int32)  # the ceiling is texel 0
        return torch.maximum(index, floor, out=index)

    def _floor(self, views: Views, rays: Rays, dist: Tensor) -> Tensor:
        """Floor texel of every pixel of rows at floor distance ``dist`` ((1 or K, 1, R)).

        Returns:
            (K, W, R) int32.
        """
        s = TEX_SIZE
        out = []
        for p, r in ((views.pos[:, 0], rays.dir_x), (views.pos[:, 1], rays.dir_y)):
            t = (r * s)[..., None] * dist
            t += (p * s)[:, None, None]
            c = t.to(torch.int32)
            c &= s - 1
            out.append(c)
        floor = out[1]
        floor *= s
        floor += out[0]
        floor += views.floor_base.to(torch.int32)[:, None, None]
        return floor

    def draw_sprites(
        self, views: Views, rays: Rays, index: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Draws the objects into ``index`` ((K, W, H) int32 texels, in place).

        Returns:
            ``pixels`` (P,) int64 flat positions in ``index`` that show an object, ``objects``
            (P,) int64 which object (0..J-1) each shows, and ``counts`` (K, J) int64 pixels of
            each object in the frame (0: not visible).
        """
        k, j = views.obj_base.shape
        h, w, f = self.H, self.W, self.f
        dev = self.device
        rel_x = views.obj_pos[..., 0] - views.pos[:, 0:1]
        rel_y = views.obj_pos[..., 1] - views.pos[:, 1:2]
        dx, dy = views.dir[:, 0:1], views.dir[:, 1:2]
        depth = rel_x * dx + rel_y * dy
        side = rel_y * dx - rel_x * dy
        ok = views.obj_alive & (depth > NEAR)
        d = torch.where(ok, depth, torch.ones_like(depth))
        centre = (w / 2) + (f * side) / d
        half_w = (f * (OBJECT_WIDTH / 2)) / d
        left, right = centre - half_w, centre + half_w
        top, bottom = (f * (0.5 - OBJECT_HEIGHT)) / d, (f * 0.5) / d
        horizon = torch.full((k, 1), h / 2, device=dev)
        if views.shift is not None:
            horizon = horizon + views.shift[:, None].to(torch.float32)

        def first(edge: Tensor, n: int) -> Tensor:  # first pixel whose centre is >= edge
            return (edge - 0.5).clamp(-1, n + 1).ceil().to(torch.int64).clamp(0, n)

        c0, c1 = first(left, w), first(right, w)
        r0, r1 = first(top + horizon, h), first(bottom + horizon, h)
        bw, bh = c1 - c0, (r1 - r0).clamp(min=0)
        area = (bw.clamp(min=0) * bh * ok).view(-1)
        pairs = area.nonzero().squeeze(1)  # (P,) flat (view, object)
        counts = torch.zeros(k * j, dtype=torch.int64, device=dev)
        none = torch.zeros(0, dtype=torch.int64, device=dev)
        if pairs.numel() == 0:
            return none, none, counts.view(k, j)
        a = area[pairs]
        pid = torch.repeat_interleave(torch.arange(pairs.numel(), device=dev), a)
        start = torch.cumsum(a, 0) - a
        local = torch.arange(pid.numel(), device=dev) - start[pid]
        pair = pairs[pid]
        box_w = bw.view(-1)[pair]
        lr = torch.div(local, box_w, rounding_mode="floor")
        col = c0.view(-1)[pair] + (local - lr * box_w)
        row = r0.view(-1)[pair] + lr
        view = torch.div(pair, j, rounding_mode="floor")
        ss = SPRITE_SIZE
        lf, wf = left.view(-1)[pair], (2 * half_w).view(-1)[pair]
        u = (((col.to(torch.float32) + 0.5) - lf) / wf * ss).floor().clamp(0, ss - 1)
        tf, bf = top.view(-1)[pair], bottom.view(-1)[pair]
        rel = (row.to(torch.float32) + 0.5) - horizon.view(-1)[view]
        v = ((rel - tf) / (bf - tf) * ss).floor().clamp(0, ss - 1)
        texel = views.obj_base.view(-1)[pair] + v.to(torch.int64) * ss + u.to(torch.int64)
        z = d.view(-1)[pair]
        keep = self.palette.opaque[texel] & (z < rays.dist.view(-1)[view * w + col])
        pix = ((view * w + col) * h + row)[keep]
        key = (z[keep] * 65536).to(torch.int64) * (k * j) + pair[keep]
        buf = self._keys(k * w * h)
        buf.scatter_reduce_(0, pix, key, "amin")
        win = buf[pix] == key
        buf[pix] = _INF_KEY
        pix, pair, texel = pix[win], pair[keep][win], texel[keep][win]
        index.view(-1)[pix] = texel.to(torch.int32)
        counts += torch.bincount(pair, minlength=k * j)
        return pix, pair % j, counts.view(k, j)

    def _keys(self, n: int) -> Tensor:
        """A depth-key buffer of at least ``n`` entries, all ``_INF_KEY``."""
        if self._key_buf.numel() < n:
            self._key_buf = torch.full((n,), _INF_KEY, dtype=torch.int64, device=self.device)
        return self._key_buf[:n]

    def render(self, views: Views) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Draws the views.

        Returns:
            ``index`` (K, W, H) int32 texel of every pixel (column-major), ``pixels`` and
            ``objects`` (P,) int64: flat positions in ``index`` showing an object and which,
            ``counts`` (K, J) int64 visible pixels per object.
        """
        rays = self.cast(views)
        index = self.texels(views, rays)
        pixels, objects, counts = self.draw_sprites(views, rays, index)
        return index, pixels, objects, counts

    def rgb(self, index: Tensor) -> Tensor:
        """(K, W, H) int32 texels -> (K, H, W, 3) uint8 RGB frames (a new tensor)."""
        k, w, h = index.shape
        rgba = self.palette.rgba.index_select(0, index.view(-1)).view(torch.uint8)
        rgba = rgba.view(k, w, h, 4)
        out = torch.empty(k, h, w, 3, dtype=torch.uint8, device=self.device)
        for c in range(3):  # per channel: torch copies a last dimension of 3 slowly
            out[..., c].copy_(rgba[..., c].transpose(1, 2))
        return out

    def segmentation(self, index: Tensor, pixels: Tensor, objects: Tensor) -> Tensor:
        """(K, W, H) texels and the object pixels -> (K, H, W) int64 segment ids."""
        k, w, h = index.shape
        seg = self.palette.segment.index_select(0, index.view(-1))
        seg[pixels] = SEG_OBJECTS + objects
        return seg.view(k, w, h).transpose(1, 2).contiguous()
