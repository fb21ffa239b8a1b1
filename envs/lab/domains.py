"""The looks of the DMLab-style worlds: textures, colours, object shapes, and domain splits.

A *room look* fixes the walls' texture and colour and the floor's texture and colour; an
*object set* fixes which object look is good (+1) and which is bad (-1). As in DMLab-30's
``rooms_collect_good_objects_{train,test}``, a domain is a (room look, object set) pair and the
pairs are split: :data:`LAB_DOMAINS` ``.splits["train"]`` holds 24 of the 32 pairs,
``["test"]`` the 8 others. Every room look and every object set occurs in training; only the
test *combinations* are new (pair ``(r, s)`` is held out when ``(r + s) % 4 == 0``). A look's
meaning never changes: the good looks are good in every domain.

Textures are procedural, drawn here in torch on the env's device: per-texel brightness
patterns (plain, stripes, checks, bricks, value noise from :func:`envs.rng.mix32` with the
fixed seed :data:`TEXTURE_SEED`) times the look's colour. Everything the renderer draws lives in
one palette of RGBA texels (:class:`Palette`), so a frame is one gather from a table of texel
indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from envs.errors import ReprlError
from envs.rng import mix32

TEX_SIZE = 32
"""Wall and floor textures are TEX_SIZE x TEX_SIZE texels a cell (a power of two)."""

SPRITE_SIZE = 16
"""Object sprites are SPRITE_SIZE x SPRITE_SIZE texels."""

TEXTURE_SEED = 20250101
"""Seed of the value-noise texture (textures are fixed data, the same on every device)."""

DARK_SIDE = 0.7
"""Brightness of wall faces that look north or south (y sides) relative to east/west faces."""

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 50, 45),
    "green": (60, 170, 70),
    "blue": (55, 85, 205),
    "yellow": (230, 205, 50),
    "purple": (150, 65, 180),
    "cyan": (60, 195, 205),
    "orange": (235, 125, 35),
    "white": (225, 225, 225),
    "grey": (125, 125, 125),
    "brown": (125, 90, 55),
}
"""Named colours (RGB) of walls, floors and objects; factor ids index ``COLOR_NAMES``."""

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
CEILING_COLOR = (70, 80, 100)
PATTERNS: tuple[str, ...] = ("plain", "stripes", "checks", "bricks", "noise")
"""Texture patterns of walls and floors; factor ids index this tuple."""
SHAPES: tuple[str, ...] = ("sphere", "cube", "cone", "diamond", "pillar")
"""Object shapes (billboard sprites)."""

SEG_CEILING, SEG_FLOOR, SEG_WALLS = 0, 1, 2
SEG_OBJECTS = 3
"""Segment ids of :meth:`envs.lab.lab.LabBatch.render_segmentation`: object j is 3 + j."""


@dataclass(frozen=True)
class RoomLook:
    """The appearance of a room: wall and floor texture (:data:`PATTERNS`) and colour."""

    wall_texture: str
    wall_color: str
    floor_texture: str
    floor_color: str


@dataclass(frozen=True)
class ObjectLook:
    """The appearance of an object: a shape (:data:`SHAPES`) and a colour."""

    shape: str
    color: str


def _held_out(room: int, object_set: int) -> bool:
    return (room + object_set) % 4 == 0


@dataclass(frozen=True)
class LabDomains:
    """The domain factors of the lab worlds and their train/test split (as data).

    Attributes:
        room_looks: every room look; a world's ``room_look`` factor indexes it.
        object_looks: every object look; ``good_look``, ``bad_look`` index it.
        object_sets: (good look, bad look) pairs; ``object_set`` indexes it.
        goal_look: the look of LabNavigate's goal.
        splits: split name -> the (room look, object set) pairs of LabCollect in that split.
    """

    room_looks: tuple[RoomLook, ...]
    object_looks: tuple[ObjectLook, ...]
    object_sets: tuple[tuple[int, int], ...]
    goal_look: int
    splits: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def combos(self, split: str) -> tuple[tuple[int, int], ...]:
        """The (room look, object set) pairs of ``split``.

        Raises:
            ReprlError: an unknown split (naming the known ones).
        """
        if split not in self.splits:
            raise ReprlError(f"unknown domain split {split!r}; expected one of {list(self.splits)}")
        return self.splits[split]


_ROOMS = (
    RoomLook("bricks", "red", "checks", "grey"),
    RoomLook("bricks", "blue", "noise", "brown"),
    RoomLook("stripes", "green", "checks", "brown"),
    RoomLook("stripes", "yellow", "noise", "grey"),
    RoomLook("checks", "purple", "plain", "grey"),
    RoomLook("checks", "cyan", "stripes", "brown"),
    RoomLook("noise", "orange", "plain", "brown"),
    RoomLook("noise", "white", "stripes", "grey"),
)
_GOOD = (
    ObjectLook("sphere", "yellow"),
    ObjectLook("cube", "cyan"),
    ObjectLook("cone", "white"),
    ObjectLook("diamond", "green"),
)
_BAD = (
    ObjectLook("cube", "red"),
    ObjectLook("cone", "purple"),
    ObjectLook("diamond", "orange"),
    ObjectLook("sphere", "blue"),
)
_PAIRS = tuple((r, s) for r in range(len(_ROOMS)) for s in range(len(_GOOD)))

LAB_DOMAINS = LabDomains(
    room_looks=_ROOMS,
    object_looks=(*_GOOD, *_BAD, ObjectLook("pillar", "yellow")),
    object_sets=tuple((j, len(_GOOD) + j) for j in range(len(_GOOD))),
    goal_look=len(_GOOD) + len(_BAD),
    splits={
        "train": tuple(p for p in _PAIRS if not _held_out(*p)),
        "test": tuple(p for p in _PAIRS if _held_out(*p)),
        "all": _PAIRS,
    },
)
"""The lab worlds' domains: 8 room looks x 4 object sets, 24 train and 8 test combinations."""

LAB_SPLITS: tuple[str, ...] = tuple(LAB_DOMAINS.splits)


def room_factor_ids(domains: LabDomains = LAB_DOMAINS) -> Tensor:
    """(R, 4) int64: wall texture, wall colour, floor texture, floor colour ids of each room."""
    return torch.tensor(
        [
            (
                PATTERNS.index(r.wall_texture),
                COLOR_NAMES.index(r.wall_color),
                PATTERNS.index(r.floor_texture),
                COLOR_NAMES.index(r.floor_color),
            )
            for r in domains.room_looks
        ],
        dtype=torch.int64,
    )


# --- procedural textures --------------------------------------------------------------------
def pattern(name: str, size: int = TEX_SIZE, device: torch.device | str = "cpu") -> Tensor:
    """A texture's brightness, (size, size) float32 in [0, 1], row v (down) by column u.

    Raises:
        ReprlError: an unknown pattern.
    """
    v, u = torch.meshgrid(
        torch.arange(size, device=device), torch.arange(size, device=device), indexing="ij"
    )
    one = torch.ones(size, size, device=device)
    if name == "plain":
        return one * 0.85
    if name == "stripes":
        return torch.where((u // (size // 8)) % 2 == 0, 1.0, 0.6) * one
    if name == "checks":
        q = size // 4
        return torch.where(((u // q) + (v // q)) % 2 == 0, 1.0, 0.6) * one
    if name == "bricks":
        bh, bw = size // 4, size // 2
        off = (v // bh) % 2 * (bw // 2)
        mortar = (v % bh == 0) | ((u + off) % bw == 0)
        return torch.where(mortar, 0.4, 0.9) * one
    if name == "noise":
        h = mix32((v // 2) * 7919 + (u // 2) * 104729 + TEXTURE_SEED)
        return 0.55 + 0.45 * (h.to(torch.float64) / 2**32).to(torch.float32)
    raise ReprlError(f"unknown texture pattern {name!r}; expected one of {PATTERNS}")


def shape_mask(name: str, size: int = SPRITE_SIZE, device: torch.device | str = "cpu") -> Tensor:
    """An object shape: (size, size) float32, 0 where transparent, else its shading in (0, 1].

    Raises:
        ReprlError: an unknown shape.
    """
    v, u = torch.meshgrid(
        torch.arange(size, device=device, dtype=torch.float32),
        torch.arange(size, device=device, dtype=torch.float32),
        indexing="ij",
    )
    c, r = (size - 1) / 2, size / 2
    du, dv = u - c, v - c
    if name == "sphere":
        d2 = (du * du + dv * dv) / (r * r)
        inside = d2 <= 1.0
        return torch.where(inside, 0.55 + 0.45 * torch.sqrt((1.0 - d2).clamp(min=0.0)), 0.0)
    if name == "cube":
        return torch.where(v < size / 4, 1.0, torch.where(u >= 3 * size / 4, 0.65, 0.8))
    if name == "cone":
        half = (v + 1.0) / 2.0
        inside = du.abs() < half
        return torch.where(inside, 1.0 - 0.4 * du.abs() / half, 0.0)
    if name == "diamond":
        inside = du.abs() + dv.abs() <= r
        return torch.where(inside, torch.where(du < 0, 1.0, 0.7), 0.0)
    if name == "pillar":
        inside = du.abs() < size / 4
        return torch.where(inside, torch.where(du < 0, 1.0, 0.75), 0.0)
    raise ReprlError(f"unknown object shape {name!r}; expected one of {SHAPES}")


def _rgb(color: str, shade: Tensor) -> Tensor:
    """(..., 3) uint8: ``color`` times ``shade`` (float32 in [0, 1])."""
    c = torch.tensor(COLORS[color], dtype=torch.float32, device=shade.device)
    return (shade[..., None] * c).round().clamp(0, 255).to(torch.uint8)


@dataclass
class Palette:
    """Every texel the renderer can draw, in one table.

    Layout (texel indices): 0 the ceiling; then each room look's floor texture
    (TEX_SIZE**2 texels, row-major (v, u)); then each room look's wall texture, lit and dark
    (2 * TEX_SIZE**2, every wall texel above every floor texel, which the renderer relies on);
    then each object look's sprite (SPRITE_SIZE**2).

    Attributes:
        rgba: (M,) int32, the texel's R, G, B, 255 bytes (view as uint8 to unpack).
        segment: (M,) int64, :data:`SEG_CEILING`, :data:`SEG_FLOOR` or :data:`SEG_WALLS`
            (sprites: :data:`SEG_OBJECTS`, replaced by the object's own id when drawn).
        opaque: (M,) bool, False where a sprite is transparent.
        floor_base: (R,) int64, first texel of each room look's floor.
        wall_base: (R,) int64, first texel of each room look's lit wall (dark: + TEX_SIZE**2).
        look_base: (O,) int64, first texel of each object look's sprite.
    """

    rgba: Tensor
    segment: Tensor
    opaque: Tensor
    floor_base: Tensor
    wall_base: Tensor
    look_base: Tensor


def build_palette(domains: LabDomains = LAB_DOMAINS, device: torch.device | str = "cpu") -> Palette:
    """Draws every texture of ``domains`` on ``device`` into a :class:`Palette`."""
    t2, s2 = TEX_SIZE * TEX_SIZE, SPRITE_SIZE * SPRITE_SIZE
    ceiling = torch.tensor([CEILING_COLOR], dtype=torch.uint8, device=device)
    floors = [
        _rgb(r.floor_color, pattern(r.floor_texture, device=device)).view(t2, 3)
        for r in domains.room_looks
    ]
    walls = []
    for r in domains.room_looks:
        lit = pattern(r.wall_texture, device=device)
        dark = lit * DARK_SIDE
        walls += [_rgb(r.wall_color, lit).view(t2, 3), _rgb(r.wall_color, dark).view(t2, 3)]
    shapes = [shape_mask(o.shape, device=device) for o in domains.object_looks]
    sprites = [_rgb(o.color, m).view(s2, 3) for o, m in zip(domains.object_looks, shapes)]
    rgb = torch.cat([ceiling, *floors, *walls, *sprites])
    m = rgb.shape[0]
    alpha = torch.full((m, 1), 255, dtype=torch.uint8, device=device)
    rgba = torch.cat([rgb, alpha], 1).contiguous().view(torch.int32).view(m)
    nr, no = len(domains.room_looks), len(domains.object_looks)
    floor0 = 1
    wall0 = floor0 + nr * t2
    look0 = wall0 + 2 * nr * t2
    segment = torch.full((m,), SEG_OBJECTS, dtype=torch.int64, device=device)
    segment[0] = SEG_CEILING
    segment[floor0:wall0] = SEG_FLOOR
    segment[wall0:look0] = SEG_WALLS
    opaque = torch.ones(m, dtype=torch.bool, device=device)
    opaque[look0:] = torch.cat([s.reshape(-1) > 0 for s in shapes])
    ar = lambda k, step: torch.arange(k, device=device, dtype=torch.int64) * step  # noqa: E731
    return Palette(
        rgba=rgba,
        segment=segment,
        opaque=opaque,
        floor_base=floor0 + ar(nr, t2),
        wall_base=wall0 + ar(nr, 2 * t2),
        look_base=look0 + ar(no, s2),
    )
