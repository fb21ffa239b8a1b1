"""DMLab-style 3D worlds, N at once in torch tensors: collect good objects, navigate mazes.

Each world is a grid map (:mod:`envs.lab.maps`) seen in first person by the raycaster of
:mod:`envs.lab.render`, with textures and objects from :mod:`envs.lab.domains`. Two tasks:

- ``collect`` (``reprl/LabCollect-v0``, DMLab-30's ``rooms_collect_good_objects``): a single
  room with ``num_good`` good objects (+1 when touched) and ``num_bad`` bad ones (-1), each on
  its own random free cell; touched objects disappear. Episodes have a fixed length
  (``max_episode_steps``, truncation; nothing terminates them). Each episode draws a domain,
  a (room look, object set) pair, from the ``split``'s pairs (:data:`LAB_DOMAINS`).
- ``navigate`` (``reprl/LabNavigate-v0``): a labmaze maze from the ``split``'s layouts
  (:func:`envs.lab.maps.navigate_layouts`), a goal on one of the maze's ``G`` cells, the agent on
  one of its ``P`` cells (any free cell where a map has none); touching the goal gives +1 and
  terminates the episode. The room look is drawn from all room looks.

Units and conventions (also of the factors): positions are integers in map units, 100 a cell
(DeepMind Lab's), x along columns, y along rows (down the map text); cell (row r, col c) spans
``[100 c, 100 c + 100) x [100 r, 100 r + 100)``. Yaw is in degrees, 0 looking along +x, 90
along +y (turning right is clockwise on the map as printed). The agent is a square of half-width
:data:`AGENT_RADIUS` that never overlaps a wall cell: a move into a wall stops flush against it
(per axis, x then y, so the agent slides along walls). It touches an object when their centres
are closer than ``AGENT_RADIUS + OBJECT_RADIUS``.

Actions (DMLab's): FORWARD, BACKWARD, STRAFE_LEFT, STRAFE_RIGHT (:data:`MOVE_STEP` units, the
displacement rounded to whole units per heading), TURN_LEFT, TURN_RIGHT (``turn_degrees``; the
heading is an integer multiple of it, so turning round returns exactly to the same view).
Everything random (domain, layout, cells, heading) is drawn from one seeded stream per world
(:class:`envs.rng.StreamRNG`, a fixed number of draws per episode), so world i of a batch equals
a single world with the same seed, on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from envs.actions import validate_actions
from envs.batched import StepResult
from envs.checks import is_int
from envs.errors import ReprlError
from envs.lab.domains import (
    LAB_DOMAINS,
    LAB_SPLITS,
    SEG_OBJECTS,
    build_palette,
    room_factor_ids,
)
from envs.lab.maps import GridMap, navigate_layouts, parse_map, room_text
from envs.lab.render import Raycaster, Views
from envs.rng import StreamRNG, fresh_seeds, per_env_seeds

UNITS_PER_CELL = 100
MOVE_STEP = 25
"""Map units moved per FORWARD, BACKWARD or STRAFE step."""
AGENT_RADIUS = 20
OBJECT_RADIUS = 20
TASKS: tuple[str, ...] = ("collect", "navigate")
ACTIONS: tuple[str, ...] = (
    "FORWARD",
    "BACKWARD",
    "STRAFE_LEFT",
    "STRAFE_RIGHT",
    "TURN_LEFT",
    "TURN_RIGHT",
)
KIND_GOOD, KIND_BAD, KIND_GOAL = 0, 1, 2
KIND_REWARD = (1.0, -1.0, 1.0)
DEFAULT_STEPS = {"collect": 200, "navigate": 400}
"""Default ``max_episode_steps`` per task."""

FACTOR_NAMES: tuple[str, ...] = (
    "agent_x",
    "agent_y",
    "agent_yaw",
    "obj_x",
    "obj_y",
    "obj_kind",
    "obj_look",
    "obj_alive",
    "obj_visible",
    "room_look",
    "wall_texture",
    "wall_color",
    "floor_texture",
    "floor_color",
    "object_set",
    "good_look",
    "bad_look",
    "layout",
)
"""Ground-truth factors, all int64. ``agent_x``, ``agent_y`` in map units (100 a cell),
``agent_yaw`` in degrees [0, 360); ``obj_*`` have one column per object: position in map units
(its cell's centre), ``obj_kind`` (0 good, 1 bad, 2 goal), ``obj_look`` (index into
``LAB_DOMAINS.object_looks``), ``obj_alive`` (1 until touched), ``obj_visible`` (1 if at least
one pixel of it is in the observation beside these factors); ``room_look`` indexes
``LAB_DOMAINS.room_looks``, ``wall_texture`` and ``floor_texture`` index
:data:`~envs.lab.domains.PATTERNS`, ``wall_color`` and ``floor_color``
:data:`~envs.lab.domains.COLOR_NAMES`; ``object_set``, ``good_look``, ``bad_look`` are the
collect domain's object set (-1 in navigate); ``layout`` the index of the world's map among the
env's layouts."""

_BIG = 2**62


class LabBatch:
    """N DMLab-style worlds of one task, stepped together on ``device``.

    Args:
        num_envs: number of worlds N >= 1.
        task: ``"collect"`` or ``"navigate"`` (:data:`TASKS`).
        split: ``"train"``, ``"test"`` or ``"all"``: collect's (room look, object set) pairs
            (:data:`envs.lab.domains.LAB_DOMAINS`); navigate's maze layouts
            (:func:`envs.lab.maps.navigate_layouts`; ``"all"``: the train and the test ones).
        seed: seed of world 0, world i uses ``seed + i``; or one seed per world; ``None`` draws
            fresh entropy.
        device: torch device holding all state.
        obs_size: (height, width) of the observation, each >= 16.
        max_episode_steps: time limit (>= 1); default 200 (collect) or 400 (navigate).
        fov_degrees: horizontal field of view, in [30, 150].
        turn_degrees: degrees per TURN action, an integer dividing 360, at most 90.
        room_size: collect: (height, width) of the room's interior in cells.
        num_good: collect: good objects per episode (>= 0).
        num_bad: collect: bad objects per episode (>= 0; at least one object in all).
        num_layouts: navigate: mazes per split (>= 1).
        maze_size: navigate: (height, width) of each maze, odd, >= 5 (labmaze's).
        layouts: map texts (:func:`envs.lab.maps.parse_map`) to use instead of the task's own
            (a room, or the split's mazes); the ``split`` then only picks collect's domains.

    Raises:
        ReprlError: an unknown task or split, a bad count, size, seed or angle, a map that
            does not parse, has no free cell, or too few free cells for the agent and the
            objects; navigate: a goal no spawn cell can reach.
    """

    render_mode = "rgb_array"
    num_actions = len(ACTIONS)

    def __init__(
        self,
        num_envs: int,
        task: str = "collect",
        *,
        split: str = "train",
        seed: int | Sequence[int] | None = None,
        device: torch.device | str = "cpu",
        obs_size: tuple[int, int] = (64, 64),
        max_episode_steps: int | None = None,
        fov_degrees: float = 90.0,
        turn_degrees: int = 10,
        room_size: tuple[int, int] = (7, 7),
        num_good: int = 3,
        num_bad: int = 3,
        num_layouts: int = 64,
        maze_size: tuple[int, int] = (11, 11),
        layouts: Sequence[str] | None = None,
    ) -> None:
        if task not in TASKS:
            raise ReprlError(f"unknown lab task {task!r}; expected one of {TASKS}")
        if split not in LAB_SPLITS:
            raise ReprlError(f"unknown domain split {split!r}; expected one of {LAB_SPLITS}")
        if not is_int(num_envs) or num_envs < 1:
            raise ReprlError(f"num_envs must be a positive integer, got {num_envs!r}")
        if (
            not isinstance(obs_size, Sequence)
            or len(obs_size) != 2
            or not all(is_int(s) and s >= 16 for s in obs_size)
        ):
            raise ReprlError(f"obs_size must be (height, width), each an int >= 16, got {obs_size}")
        steps = DEFAULT_STEPS[task] if max_episode_steps is None else max_episode_steps
        if not is_int(steps) or steps < 1:
            raise ReprlError(f"max_episode_steps must be an integer >= 1, got {steps!r}")
        if not isinstance(fov_degrees, (int, float)) or not 30 <= fov_degrees <= 150:
            raise ReprlError(f"fov_degrees: expected a number in [30, 150], got {fov_degrees!r}")
        if not is_int(turn_degrees) or not 1 <= turn_degrees <= 90 or 360 % turn_degrees:
            raise ReprlError(
                f"turn_degrees: expected an integer in [1, 90] dividing 360, got {turn_degrees!r}"
            )
        for name, v in (("num_good", num_good), ("num_bad", num_bad)):
            if not is_int(v) or v < 0:
                raise ReprlError(f"{name}: expected an integer >= 0, got {v!r}")
        if task == "collect" and num_good + num_bad < 1:
            raise ReprlError("collect needs at least one object: num_good + num_bad >= 1, got 0")
        seeds = per_env_seeds(seed, int(num_envs))
        self.num_envs = int(num_envs)
        self.task = task
        self.split = split
        self.device = torch.device(device)
        self.obs_size = (int(obs_size[0]), int(obs_size[1]))
        self.max_episode_steps = int(steps)
        self.turn_degrees = int(turn_degrees)
        self.num_headings = 360 // self.turn_degrees
        self.fov_degrees = float(fov_degrees)
        self._seed = seeds
        self.num_objects = num_good + num_bad if task == "collect" else 1
        self.num_good = num_good if task == "collect" else 0
        self.domains = LAB_DOMAINS
        self.combos = self.domains.combos(split)
        self.maps = self._layouts(task, split, layouts, room_size, num_layouts, maze_size)
        self._check_maps()
        self._build_tables()
        n, j, dev = self.num_envs, self.num_objects, self.device
        self.rng = StreamRNG(n, dev)
        self._ar = torch.arange(n, device=dev)
        zeros = lambda *s: torch.zeros(*s, dtype=torch.int64, device=dev)  # noqa: E731
        self.agent_x, self.agent_y, self.heading, self.steps = (zeros(n) for _ in range(4))
        self.layout, self.room_look, self.object_set = zeros(n), zeros(n), zeros(n)
        self.obj_x, self.obj_y, self.obj_kind, self.obj_look = (zeros(n, j) for _ in range(4))
        self.obj_alive = torch.zeros(n, j, dtype=torch.bool, device=dev)
        self.obj_pixels = zeros(n, j)
        self._needs_reset = True

    # --- construction -----------------------------------------------------------------------
    @staticmethod
    def _layouts(
        task: str,
        split: str,
        layouts: Sequence[str] | None,
        room_size: tuple[int, int],
        num_layouts: int,
        maze_size: tuple[int, int],
    ) -> list[GridMap]:
        if layouts is not None:
            if isinstance(layouts, str) or not isinstance(layouts, Sequence) or not layouts:
                raise ReprlError("layouts: expected a non-empty list of map texts")
            texts = list(layouts)
        elif task == "collect":
            if not isinstance(room_size, Sequence) or len(room_size) != 2:
                raise ReprlError(f"room_size: expected (height, width), got {room_size!r}")
            texts = [room_text(*room_size)]
        elif split == "all":
            texts = navigate_layouts("train", num_layouts, maze_size)
            texts += navigate_layouts("test", num_layouts, maze_size)
        else:
            texts = navigate_layouts(split, num_layouts, maze_size)
        return [parse_map(t, name=f"layout {i}") for i, t in enumerate(texts)]

    def _check_maps(self) -> None:
        for i, m in enumerate(self.maps):
            free = len(m.free)
            if self.task == "collect" and free < 1 + self.num_objects:
                raise ReprlError(
                    f"layout {i}: collect needs {1 + self.num_objects} free cells (the agent "
                    f"and {self.num_objects} objects), the map has {free}"
                )
            if self.task == "navigate":
                goals = m.goals if len(m.goals) else m.free
                spawns = m.spawns if len(m.spawns) else m.free
                if len(spawns) == 1 and (goals == spawns[0]).all(1).any():
                    raise ReprlError(
                        f"layout {i}: navigate needs a spawn cell apart from every goal cell; "
                        f"the only spawn {spawns[0].tolist()} is a goal cell"
                    )
                label = m.components()
                comps = {int(label[r, c]) for r, c in np.concatenate([goals, spawns]).tolist()}
                if len(comps) > 1:
                    raise ReprlError(
                        f"layout {i}: every goal must be reachable from every spawn cell; the "
                        f"map's spawn and goal cells lie in {len(comps)} separate regions"
                    )

    def _build_tables(self) -> None:
        """Pads the layouts into one wall grid; tables of cells, headings and moves."""
        dev = self.device
        hg = max(m.shape[0] for m in self.maps)
        wg = max(m.shape[1] for m in self.maps)
        self.grid_shape = (hg, wg)
        nl = len(self.maps)
        walls = np.ones((nl, hg, wg), dtype=np.uint8)
        fmax = max(len(m.free) for m in self.maps)
        free = np.zeros((nl, fmax), dtype=np.int64)
        ok = np.zeros((nl, fmax), dtype=bool)
        spawn_ok = np.zeros((nl, fmax), dtype=bool)
        goal_ok = np.zeros((nl, fmax), dtype=bool)
        for i, m in enumerate(self.maps):
            h, w = m.shape
            walls[i, :h, :w] = m.walls
            cells = m.free[:, 0] * wg + m.free[:, 1]
            f = len(cells)
            free[i, :f], ok[i, :f] = cells, True
            for mask, marked in ((spawn_ok, m.spawns), (goal_ok, m.goals)):
                if len(marked):
                    mask[i, :f] = np.isin(cells, marked[:, 0] * wg + marked[:, 1])
                else:
                    mask[i, :f] = True
        self.num_free = fmax
        self._cells = torch.from_numpy(walls.reshape(-1)).to(dev)
        self._free = torch.from_numpy(free).to(dev)
        self._free_ok = torch.from_numpy(ok).to(dev)
        self._spawn_ok = torch.from_numpy(spawn_ok).to(dev)
        self._goal_ok = torch.from_numpy(goal_ok).to(dev)
        self._combos = torch.tensor(self.combos, dtype=torch.int64, device=dev)
        self._object_sets = torch.tensor(self.domains.object_sets, dtype=torch.int64, device=dev)
        self._room_ids = room_factor_ids(self.domains).to(dev)
        self._kind_reward = torch.tensor(KIND_REWARD, dtype=torch.float32, device=dev)
        # headings: unit vectors (float32) and whole-unit moves per action
        yaw = torch.arange(self.num_headings, dtype=torch.float64) * self.turn_degrees
        self._dir = self._unit(yaw).to(dev)
        rad = torch.deg2rad(yaw)
        fwd = torch.stack([torch.cos(rad), torch.sin(rad)], 1) * MOVE_STEP
        right = torch.stack([-fwd[:, 1], fwd[:, 0]], 1)
        zero = torch.zeros_like(fwd)
        move = torch.stack([fwd, -fwd, -right, right, zero, zero])  # (A, T, 2)
        self._move = move.round().to(torch.int64).to(dev)
        self._turn = torch.tensor([0, 0, 0, 0, -1, 1], dtype=torch.int64, device=dev)
        self.palette = build_palette(self.domains, dev)
        self.raycaster = Raycaster(
            self._cells, self.grid_shape, self.obs_size, self.fov_degrees, self.palette
        )

    @staticmethod
    def _unit(yaw_degrees: Tensor) -> Tensor:
        """(K,) float64 degrees -> (K, 2) float32 unit vectors (cos, sin)."""
        rad = torch.deg2rad(yaw_degrees.to(torch.float64))
        return torch.stack([torch.cos(rad), torch.sin(rad)], 1).to(torch.float32)

    # --- public API -------------------------------------------------------------------------
    def get_action_meanings(self) -> list[str]:
        """The meaning of each action index (:data:`ACTIONS`)."""
        return list(ACTIONS)

    @property
    def single_obs_shape(self) -> tuple[int, int, int]:
        """(H, W, 3): one RGB observation."""
        return (*self.obs_size, 3)

    @property
    def num_segments(self) -> int:
        """Number of ids :meth:`render_segmentation` can give (ceiling, floor, walls, objects)."""
        return SEG_OBJECTS + self.num_objects

    def reset(self, seed: int | Sequence[int | None] | None = None) -> Tensor:
        """Starts a new episode in every world.

        Args:
            seed: ``int`` seeds world i with ``seed + i``; a sequence gives one seed (or None)
                per world; ``None`` continues each world's stream (or, before the first reset,
                uses the constructor's seed).

        Returns:
            (N, H, W, 3) uint8 observations.
        """
        if seed is None and self._needs_reset:
            seed = self._seed if self._seed is not None else fresh_seeds(1)[0]
        self.rng.seed_all(seed)
        self._reset_worlds(self._ar)
        self._needs_reset = False
        return self.render_obs()

    def validate_actions(self, actions: np.ndarray | Tensor) -> Tensor:
        """Checks an action batch (:func:`envs.actions.validate_actions`), moves it to the device.

        Args:
            actions: (N,) integers in [0, 6) (:data:`ACTIONS`).

        Returns:
            (N,) int64 tensor on ``device``.

        Raises:
            ReprlError: wrong shape, non-integer values, or values outside [0, 6).
        """
        return validate_actions(actions, self.num_envs, len(ACTIONS)).to(self.device)

    def step(self, actions: np.ndarray | Tensor) -> StepResult:
        """Advances every world one step and resets the worlds whose episode ended.

        Args:
            actions: (N,) integers in [0, 6) (:data:`ACTIONS`).

        Returns:
            A :class:`envs.breakout.StepResult`; ``obs`` of a finished world is already the
            first frame of its next episode, its last frame is in ``final_obs``.

        Raises:
            ReprlError: bad actions (nothing changes then).
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        a = self.validate_actions(actions)
        self.heading = (self.heading + self._turn[a]) % self.num_headings
        move = self._move[a, self.heading]
        self.agent_x = self._slide(self.agent_x, self.agent_y, move[:, 0], along_x=True)
        self.agent_y = self._slide(self.agent_y, self.agent_x, move[:, 1], along_x=False)
        dx = self.obj_x - self.agent_x[:, None]
        dy = self.obj_y - self.agent_y[:, None]
        touch = (AGENT_RADIUS + OBJECT_RADIUS) ** 2
        got = self.obj_alive & (dx * dx + dy * dy < touch)
        self.obj_alive &= ~got
        reward = (self._kind_reward[self.obj_kind] * got).sum(1)
        self.steps += 1
        if self.task == "navigate":
            terminated = got.any(1)
        else:
            terminated = torch.zeros_like(self.steps, dtype=torch.bool)
        truncated = (self.steps >= self.max_episode_steps) & ~terminated
        obs = self.render_obs()
        done = terminated | truncated
        done_idx = done.nonzero().squeeze(1)
        final_obs = obs[done_idx]
        if done_idx.numel():
            final_factors = self.factors(done_idx)
            self._reset_worlds(done_idx)
            obs[done_idx] = self.render_obs(done_idx)
        else:
            final_factors = {}
        return StepResult(obs, reward, terminated, truncated, done_idx, final_obs, final_factors)

    _STATE = (
        "agent_x",
        "agent_y",
        "heading",
        "steps",
        "layout",
        "room_look",
        "object_set",
        "obj_x",
        "obj_y",
        "obj_kind",
        "obj_look",
        "obj_alive",
        "obj_pixels",
    )

    def get_state(self, index: Tensor) -> dict[str, Tensor]:
        """A copy of the whole state of worlds ``index`` (int64 (K,)), random streams included."""
        state = {k: getattr(self, k)[index].clone() for k in self._STATE}
        state["rng_key"], state["rng_counter"] = self.rng.key[index], self.rng.counter[index]
        return state

    def set_state(self, index: Tensor, state: dict[str, Tensor]) -> None:
        """Puts worlds ``index`` back into a state taken by :meth:`get_state` with that index."""
        for k in self._STATE:
            getattr(self, k)[index] = state[k]
        self.rng.key[index], self.rng.counter[index] = state["rng_key"], state["rng_counter"]

    def factors(self, index: Tensor | None = None) -> dict[str, Tensor]:
        """Ground-truth factors of the current state (see :data:`FACTOR_NAMES`).

        Args:
            index: int64 (K,) worlds to report, default all.

        Returns:
            name -> int64 tensor of shape (K,), or (K, num_objects) for ``obj_*``.
        """
        i = self._ar if index is None else index
        room = self.room_look[i]
        ids = self._room_ids[room]
        oset = self.object_set[i]
        looks = self._object_sets[oset.clamp(min=0)]
        none = torch.full_like(oset, -1)
        has_set = oset >= 0
        return {
            "agent_x": self.agent_x[i],
            "agent_y": self.agent_y[i],
            "agent_yaw": self.heading[i] * self.turn_degrees,
            "obj_x": self.obj_x[i],
            "obj_y": self.obj_y[i],
            "obj_kind": self.obj_kind[i],
            "obj_look": self.obj_look[i],
            "obj_alive": self.obj_alive[i].to(torch.int64),
            "obj_visible": (self.obj_pixels[i] > 0).to(torch.int64),
            "room_look": room,
            "wall_texture": ids[:, 0],
            "wall_color": ids[:, 1],
            "floor_texture": ids[:, 2],
            "floor_color": ids[:, 3],
            "object_set": oset,
            "good_look": torch.where(has_set, looks[:, 0], none),
            "bad_look": torch.where(has_set, looks[:, 1], none),
            "layout": self.layout[i],
        }

    def sample_cameras(self, generator: torch.Generator, max_pitch: float = 0.0) -> Tensor:
        """One random camera per world, where its agent could stand and look.

        The position is uniform over the free cells that hold no object, at least
        :data:`AGENT_RADIUS` from the cell's sides (a point the agent reaches), in whole map
        units; the yaw a uniform multiple of ``turn_degrees`` (an agent heading); the pitch
        uniform in ``[-max_pitch, max_pitch]`` degrees. Nothing in the worlds changes.

        Args:
            generator: CPU generator of every draw (the cameras are a function of it and of
                the worlds' layouts and objects).
            max_pitch: largest pitch in degrees, in [0, 90).

        Returns:
            (N, 4) float64 poses ``x, y, yaw, pitch`` on the env's device, for :meth:`render`.

        Raises:
            ReprlError: ``max_pitch`` outside [0, 90).
        """
        if not isinstance(max_pitch, (int, float)) or not 0 <= max_pitch < 90:
            raise ReprlError(f"max_pitch: expected degrees in [0, 90), got {max_pitch!r}")
        n, dev, u, r = self.num_envs, self.device, UNITS_PER_CELL, AGENT_RADIUS
        wg = self.grid_shape[1]
        free = self._free[self.layout]  # (N, F) flat cells
        ok = self._free_ok[self.layout].clone()
        obj_cells = (self.obj_y // u) * wg + self.obj_x // u  # (N, J)
        ok &= ~(free[:, :, None] == obj_cells[:, None, :]).any(2)
        keys = torch.rand((n, self.num_free), generator=generator).to(dev)
        cell = free.gather(1, torch.where(ok, keys, -1.0).argmax(1, keepdim=True))[:, 0]
        off = torch.randint(r, u - r + 1, (n, 2), generator=generator).to(dev)
        heading = torch.randint(0, self.num_headings, (n,), generator=generator).to(dev)
        pitch = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * max_pitch
        return torch.stack(
            [
                ((cell % wg) * u + off[:, 0]).to(torch.float64),
                ((cell // wg) * u + off[:, 1]).to(torch.float64),
                (heading * self.turn_degrees).to(torch.float64),
                pitch.to(dev),
            ],
            1,
        )

    # --- episodes and physics ---------------------------------------------------------------
    def _reset_worlds(self, idx: Tensor) -> None:
        """Lays out a new episode in worlds ``idx`` (int64 (K,))."""
        k, j = idx.numel(), self.num_objects
        u = self.rng.draw(idx, 3 + self.num_free)  # a fixed number a reset: batch == single
        self.steps[idx] = 0
        lay = u[:, 1] % len(self.maps)
        self.layout[idx] = lay
        self.heading[idx] = u[:, 2] % self.num_headings
        ar = torch.arange(k, device=self.device)
        key = u[:, 3:] * self.num_free + torch.arange(self.num_free, device=self.device)
        big = torch.full_like(key, _BIG)
        free = self._free[lay]
        if self.task == "collect":
            combo = self._combos[u[:, 0] % len(self.combos)]
            self.room_look[idx], self.object_set[idx] = combo[:, 0], combo[:, 1]
            spawn = torch.where(self._spawn_ok[lay], key, big).argmin(1)
            rest = torch.where(self._free_ok[lay], key, big)
            rest[ar, spawn] = _BIG
            slots = rest.topk(j, 1, largest=False).indices  # (K, J), ascending keys
            kind = (torch.arange(j, device=self.device) >= self.num_good).to(torch.int64)
            kind = kind.expand(k, j)
            looks = self._object_sets[combo[:, 1]]  # (K, 2) good, bad
            look = looks.gather(1, kind)
        else:
            self.room_look[idx] = u[:, 0] % len(self.domains.room_looks)
            self.object_set[idx] = -1
            goal = torch.where(self._goal_ok[lay], key, big).argmin(1)
            others = torch.where(self._spawn_ok[lay], key, big)
            others[ar, goal] = _BIG
            spawn = others.argmin(1)
            slots = goal[:, None]
            kind = torch.full((k, 1), KIND_GOAL, dtype=torch.int64, device=self.device)
            look = torch.full_like(kind, self.domains.goal_look)
        wg = self.grid_shape[1]
        a_cell = free[ar, spawn]
        o_cell = free.gather(1, slots)
        half = UNITS_PER_CELL // 2
        self.agent_x[idx] = (a_cell % wg) * UNITS_PER_CELL + half
        self.agent_y[idx] = (a_cell // wg) * UNITS_PER_CELL + half
        self.obj_x[idx] = (o_cell % wg) * UNITS_PER_CELL + half
        self.obj_y[idx] = (o_cell // wg) * UNITS_PER_CELL + half
        self.obj_kind[idx] = kind
        self.obj_look[idx] = look
        self.obj_alive[idx] = True

    def _wall(self, row: Tensor, col: Tensor) -> Tensor:
        """(N,) bool: cell (row, col) of each world's layout is a wall."""
        hg, wg = self.grid_shape
        flat = self.layout * (hg * wg) + row * wg + col
        return self._cells[flat].bool()

    def _slide(self, a: Tensor, b: Tensor, da: Tensor, along_x: bool) -> Tensor:
        """Moves coordinate ``a`` by ``da`` (other coordinate ``b``), stopping at walls.

        All (N,) int64 map units. The agent's square [a - R, a + R) x [b - R, b + R) never
        overlaps a wall: the column (or row) its leading edge enters is checked over the rows
        (columns) the square spans, and a blocked move ends flush with that cell.
        """
        r, u = AGENT_RADIUS, UNITS_PER_CELL
        na = a + da
        lead = torch.where(da > 0, (na + r - 1) // u, (na - r) // u)
        b0, b1 = (b - r) // u, (b + r - 1) // u
        if along_x:
            blocked = self._wall(b0, lead) | self._wall(b1, lead)
        else:
            blocked = self._wall(lead, b0) | self._wall(lead, b1)
        blocked &= da != 0
        flush = torch.where(da > 0, lead * u - r, (lead + 1) * u + r)
        return torch.where(blocked, flush, na)

    # --- rendering --------------------------------------------------------------------------
    def _views(self, index: Tensor | None, poses: Any = None) -> tuple[Tensor, Views]:
        """The views of worlds ``index`` from their agents, or from ``poses``."""
        i = self._ar if index is None else torch.as_tensor(index, device=self.device)
        hg, wg = self.grid_shape
        shift = None
        if poses is None:
            pos = torch.stack([self.agent_x[i], self.agent_y[i]], 1).to(torch.float32)
            direction = self._dir[self.heading[i]]
        else:
            pos, direction, shift = self._check_poses(i, poses)
        obj = torch.stack([self.obj_x[i], self.obj_y[i]], 2).to(torch.float32)
        views = Views(
            grid_offset=self.layout[i] * (hg * wg),
            pos=pos / UNITS_PER_CELL,
            dir=direction,
            shift=shift,
            floor_base=self.palette.floor_base[self.room_look[i]],
            wall_base=self.palette.wall_base[self.room_look[i]],
            obj_pos=obj / UNITS_PER_CELL,
            obj_base=self.palette.look_base[self.obj_look[i]],
            obj_alive=self.obj_alive[i],
        )
        return i, views

    def _check_poses(self, i: Tensor, poses: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        """Validates camera poses; returns (K, 2) float32 positions, directions, shifts."""
        p = torch.as_tensor(poses, device=self.device)
        k = i.numel()
        if p.ndim != 2 or p.shape[0] != k or p.shape[1] not in (3, 4):
            raise ReprlError(
                f"poses: expected ({k}, 3) x, y, yaw or ({k}, 4) x, y, yaw, pitch (one per "
                f"rendered world), got shape {tuple(p.shape)}"
            )
        p = p.to(torch.float64)
        if not bool(torch.isfinite(p).all()):
            raise ReprlError("poses: expected finite numbers, got inf or nan")
        hg, wg = self.grid_shape
        col = torch.div(p[:, 0], UNITS_PER_CELL, rounding_mode="floor").to(torch.int64)
        row = torch.div(p[:, 1], UNITS_PER_CELL, rounding_mode="floor").to(torch.int64)
        shapes = torch.tensor([m.shape for m in self.maps], device=self.device)[self.layout[i]]
        inside = (row >= 0) & (col >= 0) & (row < shapes[:, 0]) & (col < shapes[:, 1])
        flat = self.layout[i] * (hg * wg) + row.clamp(0, hg - 1) * wg + col.clamp(0, wg - 1)
        bad = ~inside | self._cells[flat].bool()
        if bool(bad.any()):
            b = int(bad.nonzero()[0, 0])
            raise ReprlError(
                f"poses: camera {b} at (x, y) = ({float(p[b, 0])}, {float(p[b, 1])}) map units "
                f"is inside a wall or outside the map (cell row {int(row[b])}, column "
                f"{int(col[b])}); expected a free cell"
            )
        shift = None
        if p.shape[1] == 4:
            pitch = p[:, 3]
            if bool((pitch.abs() >= 90).any()):
                raise ReprlError(
                    f"poses: pitch must lie in (-90, 90) degrees, got {pitch.tolist()}"
                )
            h = self.obs_size[0]
            s = (self.raycaster.f * torch.tan(torch.deg2rad(pitch))).round().clamp(-h, h)
            shift = s.to(torch.int64)
        yaw = torch.remainder(p[:, 2], 360.0)
        steps = yaw / self.turn_degrees
        exact = steps == steps.round()
        table = self._dir[steps.round().to(torch.int64) % self.num_headings]
        direction = torch.where(exact[:, None], table, self._unit(yaw))
        return p[:, :2].to(torch.float32), direction, shift

    def _draw(
        self, index: Tensor | None, poses: Any
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        i, views = self._views(index, poses)
        return (i, *self.raycaster.render(views))

    def render_obs(self, index: Tensor | None = None, poses: Any = None) -> Tensor:
        """Renders the current observations of worlds ``index`` (default all) and records which
        objects they show (the ``obj_visible`` factor).

        Args:
            index: int64 (K,) distinct worlds, default all.
            poses: None (the agents' views) or cameras as in :meth:`render` (then
                ``obj_visible`` describes those views).

        Returns:
            (K, H, W, 3) uint8.
        """
        i, texels, _, _, counts = self._draw(index, poses)
        self.obj_pixels[i] = counts
        return self.raycaster.rgb(texels)

    def render(self, index: Tensor | None = None, poses: Any = None) -> Tensor:
        """Renders RGB frames of the current scenes, from the agents or from given poses.

        The camera API (for GQN-style multi-view data): ``render(index, poses)`` draws world
        ``index[k]`` from ``poses[k]``; ``index`` may repeat a world to see one scene from
        many poses. Nothing in the worlds changes.

        Args:
            index: int64 (K,) worlds, default all (K = N).
            poses: None (each agent's own view), or (K, 3) x, y, yaw, or (K, 4) x, y, yaw,
                pitch: x, y in map units (100 a cell), yaw in degrees (0 along +x, 90 along
                +y), pitch in degrees in (-90, 90) (positive looks up; drawn as a shift of the
                horizon by ``round(f tan(pitch))`` rows, clamped to the frame height).

        Returns:
            (K, H, W, 3) uint8, a new tensor.

        Raises:
            ReprlError: poses of the wrong shape, not finite, a pitch outside (-90, 90), or a
                camera inside a wall or outside the map (checked before anything is drawn).
        """
        _, texels, _, _, _ = self._draw(index, poses)
        return self.raycaster.rgb(texels)

    def render_segmentation(self, index: Tensor | None = None, poses: Any = None) -> Tensor:
        """Ground-truth instance segmentation of :meth:`render`'s frames: one id a pixel.

        Ids: 0 ceiling, 1 floor, 2 walls, ``3 + j`` object j (the column of the ``obj_*``
        factors); ids run below :attr:`num_segments`.

        Args:
            index, poses: as :meth:`render`.

        Returns:
            (K, H, W) int64 on the env's device.
        """
        _, texels, pixels, objects, _ = self._draw(index, poses)
        return self.raycaster.segmentation(texels, pixels, objects)
