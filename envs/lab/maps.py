"""Grid maps of the DMLab-style worlds: the text format, single rooms and labmaze mazes.

A map is text, one character a cell, in DeepMind Lab's (and ``labmaze``'s) entity-layer
format: ``*`` a wall, `` `` or ``.`` a free cell, ``P`` a free cell where the agent may spawn,
``G`` a free cell where a goal (or object) may be placed. Row 0 is the top line, column 0 the
first character; a cell spans ``[col, col + 1) x [row, row + 1)`` in cell units, so its centre is
``(col + 0.5, row + 0.5)``. Every map must be rectangular, closed by walls on its border and have
at least one free cell.

Mazes come from DeepMind Lab's own generator, the ``labmaze`` package (``pip install
labmaze``; it installs from wheels here, so reprl uses it rather than a generator of its own):
:func:`maze_text` is ``labmaze.RandomMaze`` seeded, with one spawn ``P`` and one object ``G``
per room. The wheel is compiled code, so a seed gives the same maze on every Linux machine with
the same labmaze version (``tests/envs/test_lab_maps.py`` pins one). Single rooms
(:func:`room_text`) are built here.

Layout splits of LabNavigate (:func:`navigate_layouts`): ``train`` layouts are the mazes of
seeds ``0, 1, ..., n - 1``; ``test`` layouts the mazes of seeds ``TEST_SEED_OFFSET + k``, skipping
any whose walls equal those of one of the ``n`` train layouts, so a test maze is never a training
maze.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np

from envs.errors import ReprlError

WALL = "*"
FREE = (" ", ".")
SPAWN = "P"
GOAL = "G"
MAP_CHARS = (WALL, *FREE, SPAWN, GOAL)

TEST_SEED_OFFSET = 1_000_000
"""labmaze seeds of the ``test`` layouts start here (train layouts use seeds from 0)."""

MAZE_DEFAULTS = {"max_rooms": 4, "room_min_size": 3, "room_max_size": 5}
"""labmaze ``RandomMaze`` settings of :func:`maze_text` (its own defaults)."""


@dataclass(frozen=True)
class GridMap:
    """A parsed map.

    Attributes:
        text: the map, one line per row, normalised (``.`` written as a space), no trailing
            newline.
        walls: (H, W) bool, True where a wall is.
        spawns: (S, 2) int64 (row, col) of the ``P`` cells, in reading order.
        goals: (G, 2) int64 (row, col) of the ``G`` cells, in reading order.
    """

    text: str
    walls: np.ndarray
    spawns: np.ndarray
    goals: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in cells."""
        return (int(self.walls.shape[0]), int(self.walls.shape[1]))

    @property
    def free(self) -> np.ndarray:
        """(F, 2) int64 (row, col) of every free cell, in reading order."""
        return np.argwhere(~self.walls).astype(np.int64)

    def components(self) -> np.ndarray:
        """(H, W) int64 label of each free cell's 4-connected component (-1 on walls)."""
        h, w = self.shape
        label = np.full((h, w), -1, dtype=np.int64)
        k = 0
        for r0, c0 in self.free.tolist():
            if label[r0, c0] >= 0:
                continue
            label[r0, c0] = k
            queue = deque([(r0, c0)])
            while queue:
                r, c = queue.popleft()
                for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                    if not self.walls[rr, cc] and label[rr, cc] < 0:
                        label[rr, cc] = k
                        queue.append((rr, cc))
            k += 1
        return label


def parse_map(text: str, *, name: str = "map") -> GridMap:
    """Parses a map in the text format of this module's docstring.

    Args:
        text: the map; leading and trailing blank lines are ignored.
        name: what to call it in error messages.

    Returns:
        The :class:`GridMap`.

    Raises:
        ReprlError: not a string, rows of different lengths, an unknown character, a free cell
            on the border (the map must be closed by walls), or no free cell at all.
    """
    if not isinstance(text, str):
        raise ReprlError(f"{name}: expected the map as text, got {type(text).__name__}")
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ReprlError(f"{name}: expected a map with at least one row, got empty text")
    widths = {len(line) for line in lines}
    if len(widths) != 1:
        raise ReprlError(
            f"{name}: expected a rectangular map (rows of one length), got row lengths "
            f"{sorted(widths)}"
        )
    bad = sorted({ch for line in lines for ch in line} - set(MAP_CHARS))
    if bad:
        raise ReprlError(f"{name}: expected only the characters {list(MAP_CHARS)}, got {bad}")
    grid = np.array([list(line) for line in lines])
    walls = grid == WALL
    if (~walls).sum() == 0:
        raise ReprlError(f"{name}: a map needs at least one free cell, got none")
    border = np.ones_like(walls)
    border[1:-1, 1:-1] = False
    open_cells = np.argwhere(border & ~walls)
    if len(open_cells):
        r, c = open_cells[0].tolist()
        raise ReprlError(
            f"{name}: expected a map closed by walls ('*') on its border, got a free cell at "
            f"row {r}, column {c}"
        )
    normal = "\n".join("".join(row) for row in np.where(grid == ".", " ", grid))
    return GridMap(
        text=normal,
        walls=walls,
        spawns=np.argwhere(grid == SPAWN).astype(np.int64).reshape(-1, 2),
        goals=np.argwhere(grid == GOAL).astype(np.int64).reshape(-1, 2),
    )


def room_text(height: int, width: int) -> str:
    """A single empty room of ``height`` x ``width`` free cells inside a ring of walls.

    Args:
        height, width: interior size in cells, each >= 1.

    Returns:
        The map text, ``(height + 2)`` lines of ``width + 2`` characters.

    Raises:
        ReprlError: a size below 1.
    """
    for v in (height, width):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ReprlError(f"room size: expected integers >= 1, got {(height, width)}")
    wall = WALL * (width + 2)
    inner = WALL + " " * width + WALL
    return "\n".join([wall, *([inner] * height), wall])


def _labmaze() -> ModuleType:
    try:
        import labmaze
    except ImportError as e:  # pragma: no cover - labmaze is a dependency
        raise ReprlError(
            "LabNavigate's mazes need the labmaze package (DeepMind Lab's maze generator): "
            f"pip install labmaze ({e})"
        ) from None
    return labmaze


@lru_cache(maxsize=4096)
def maze_text(seed: int, height: int = 11, width: int = 11) -> str:
    """The labmaze maze of ``seed``: rooms joined by corridors, one ``P`` and one ``G`` a room.

    Args:
        seed: labmaze's ``random_seed``, an int in [0, 2**31).
        height, width: maze size in cells including the outer walls, odd integers >= 5.

    Returns:
        The map text (see :func:`parse_map`).

    Raises:
        ReprlError: a bad seed or size, or labmaze missing.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise ReprlError(f"maze seed: expected an integer in [0, 2**31), got {seed!r}")
    for v in (height, width):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 5 or v % 2 == 0:
            raise ReprlError(f"maze size: expected odd integers >= 5, got {(height, width)}")
    maze = _labmaze().RandomMaze(
        height=int(height),
        width=int(width),
        random_seed=int(seed),
        spawns_per_room=1,
        objects_per_room=1,
        **MAZE_DEFAULTS,
    )
    return str(maze.entity_layer).strip("\n")


def _walls_key(text: str) -> str:
    return "".join("*" if ch == WALL else " " for ch in text)


def navigate_layouts(split: str, num_layouts: int, size: tuple[int, int] = (11, 11)) -> list[str]:
    """The maze texts of one split of LabNavigate (see this module's docstring).

    Args:
        split: ``"train"`` or ``"test"``.
        num_layouts: layouts in each split, >= 1.
        size: (height, width) of each maze, odd integers >= 5.

    Returns:
        ``num_layouts`` map texts; no test layout has the walls of a train layout.

    Raises:
        ReprlError: an unknown split or a bad count or size.
    """
    if split not in ("train", "test"):
        raise ReprlError(f"layout split: expected 'train' or 'test', got {split!r}")
    if not isinstance(num_layouts, (int, np.integer)) or isinstance(num_layouts, bool):
        raise ReprlError(f"num_layouts: expected an integer >= 1, got {num_layouts!r}")
    if num_layouts < 1:
        raise ReprlError(f"num_layouts: expected an integer >= 1, got {num_layouts!r}")
    if not isinstance(size, Sequence) or len(size) != 2:
        raise ReprlError(f"maze_size: expected (height, width), got {size!r}")
    h, w = size
    train = [maze_text(s, h, w) for s in range(num_layouts)]
    if split == "train":
        return train
    seen = {_walls_key(t) for t in train}
    out: list[str] = []
    seed = TEST_SEED_OFFSET
    while len(out) < num_layouts:
        text = maze_text(seed, h, w)
        seed += 1
        if _walls_key(text) not in seen:
            seen.add(_walls_key(text))
            out.append(text)
        if seed - TEST_SEED_OFFSET > 100 * num_layouts + 1000:
            raise ReprlError(
                f"maze_size {size}: too few distinct mazes for {num_layouts} train and "
                f"{num_layouts} test layouts; use a larger maze or fewer layouts"
            )
    return out
