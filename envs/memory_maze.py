"""Memory Maze (Pasukonis et al. 2022): DMLab-style mazes rendered by MuJoCo, through reprl's API.

A third-party check on results from :mod:`envs.lab`: the ``memory-maze`` package (jurgisp) builds
its mazes with DeepMind Lab's generator (``labmaze``) and renders them with MuJoCo through
``dm_control``. An agent in a random maze of 9x9 to 15x15 cells must reach, again and again,
the one of 3 to 6 coloured balls whose colour the frame's border shows (+1 per ball reached,
then another colour is asked for); episodes end only at the time limit (truncation).
:class:`MemoryMazeBatch` holds N such worlds and meets the batched-env API of
:class:`envs.lab.LabBatch`, so the ids ``reprl/MemoryMaze-{9x9,11x11,13x13,15x15}-v0`` (and
``reprl/MemoryMaze-v0`` with ``size=...``) are served by :func:`envs.make_vec` (an SB3
``VecEnv``; ``frame_stack``, ``grayscale``, ``info_factors`` as for every id),
``gym.make`` and ``gym.make_vec`` like the lab's.

Install: ``pip install -e ".[dmc]"`` (``memory-maze``, ``dm-control``, ``mujoco==3.17.0``; the
old ``gym``, which memory-maze imports). Without it, building an env raises a
:class:`~envs.errors.ReprlError` naming that command; importing this module needs nothing.

Rendering: MuJoCo draws offscreen through the backend named by the ``MUJOCO_GL`` environment
variable. reprl sets ``MUJOCO_GL=egl`` when it is unset (memory-maze's own default): EGL uses
the GPU where there is one and mesa's software renderer (llvmpipe, Debian ``libegl-mesa0``)
where there is none. A value you set yourself is kept (``osmesa`` needs Debian ``libosmesa6``;
``glfw`` needs a display). It is read once, when ``dm_control`` is first imported in the process,
so set it before that.

Costs (measured on 2 CPU cores, no GPU, EGL on llvmpipe): a world takes 2 to 3 s and about
0.75 GB of memory to build (88 textures of 1024 x 1024), about 1 s per episode reset (MuJoCo
recompiles the regenerated maze), and steps at about 50 steps/s, one world after another in
this process.
Use N of a few, not hundreds; ``experiments/bench/bench_lab.py`` measures it beside the lab.

Seeds: world i's episodes follow from its seed alone, as memory-maze's own ``seed=`` argument
(``memory_maze.tasks.memory_maze_9x9(seed=s)`` gives the same mazes, balls and starts): a seed
(``reset(seed)``, or ``make_vec(..., seed=...)`` at the first reset) re-seeds the world's
random state and its maze generator in place, without rebuilding it.

Actions (memory-maze's discrete set, named as the lab names the same motions):
:data:`ACTIONS`. Factors (:data:`FACTOR_NAMES`, int64) use the lab's units and frame.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from envs.actions import validate_actions
from envs.batched import StepResult
from envs.checks import is_int
from envs.errors import ReprlError
from envs.family import EnvFamily, stacked
from envs.oldgym import import_old_gym_quietly
from envs.rng import fresh_seeds, per_env_seeds
from envs.stacking import check_stack_args

INSTALL = 'pip install -e ".[dmc]"'
"""The command that installs memory-maze and its MuJoCo stack."""

DEFAULT_MUJOCO_GL = "egl"
"""The ``MUJOCO_GL`` backend reprl sets when the variable is unset."""

SIZES: dict[str, tuple[int, int, int]] = {
    "9x9": (9, 3, 1000),
    "11x11": (11, 4, 2000),
    "13x13": (13, 5, 3000),
    "15x15": (15, 6, 4000),
}
"""memory-maze's mazes: size -> (cells per side inside the outer wall, balls, steps per episode
at its 4 Hz control)."""

ACTIONS: tuple[str, ...] = (
    "NOOP",
    "FORWARD",
    "TURN_LEFT",
    "TURN_RIGHT",
    "FORWARD_TURN_LEFT",
    "FORWARD_TURN_RIGHT",
)
"""memory-maze's six discrete actions, in index order (FORWARD, TURN_LEFT and TURN_RIGHT mean
what the lab's actions of those names mean; ``by_meaning`` action mapping uses that)."""

COLOR_NAMES: tuple[str, ...] = ("red", "green", "blue", "purple", "yellow", "salmon")
"""The balls' colours, in the order of ``memory_maze.maze.TARGET_COLORS`` (``obj_color`` and
``target_color`` index this)."""

UNITS_PER_CELL = 100
"""Map units per maze cell (the lab's, DeepMind Lab's)."""

FACTOR_NAMES: tuple[str, ...] = (
    "agent_x",
    "agent_y",
    "agent_yaw",
    "obj_x",
    "obj_y",
    "obj_color",
    "target",
    "target_color",
)
"""Ground-truth factors, all int64, in the lab's frame (:mod:`envs.lab.lab`): positions in map
units (100 a cell), x along the maze text's columns, y along its rows (down), the outer wall
being row and column 0, so cell (row r, col c) spans ``[100 c, 100 c + 100) x [100 r, 100 r +
100)``; ``agent_yaw`` in whole degrees [0, 360), 0 looking along +x, 90 along +y. ``agent_x``,
``agent_y`` (the agent's centre, rounded to a unit); ``obj_x``, ``obj_y`` one column per ball
(its cell's centre); ``obj_color`` each ball's colour (index into :data:`COLOR_NAMES`; the ball
index without ``randomize_colors``); ``target`` the ball to reach now (a column of ``obj_*``),
``target_color`` its colour (the colour of the frame's border)."""

KWARGS: tuple[str, ...] = (
    "size",
    "obs_size",
    "max_episode_steps",
    "good_visibility",
    "randomize_colors",
)
"""The env kwargs of the memory-maze ids (besides ``seed``, ``device`` and what every id takes:
``frame_stack``, ``grayscale``, ``info_factors``)."""

_QUIET = "Cannot set velocity on Entity with no free joint."


class _DropMessage(logging.Filter):
    """Drops one benign log line dm_control writes on every memory-maze reset."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _QUIET not in str(record.msg)


def import_memory_maze() -> ModuleType:
    """``memory_maze.tasks``, imported with ``MUJOCO_GL`` defaulted (see the module docstring).

    Returns:
        The module of memory-maze's env factories (``memory_maze_9x9``, ...).

    Raises:
        ReprlError: memory-maze, dm-control, mujoco or the old gym is missing (the message names
            ``pip install -e ".[dmc]"``), or MuJoCo cannot set up the ``MUJOCO_GL`` backend.
    """
    os.environ.setdefault("MUJOCO_GL", DEFAULT_MUJOCO_GL)
    import_old_gym_quietly()  # memory_maze imports the old gym, which prints a notice
    try:
        from memory_maze import tasks
    except ModuleNotFoundError as e:
        raise ReprlError(
            f"the memory-maze ids need the 'dmc' extra: {INSTALL} (memory-maze, dm-control, "
            f"mujoco==3.17.0 and gym); missing module {e.name!r}"
        ) from None
    except Exception as e:  # dm_control's renderer import fails on a missing GL library
        gl = os.environ.get("MUJOCO_GL")
        raise ReprlError(
            f"MuJoCo could not set up rendering with MUJOCO_GL={gl!r} ({type(e).__name__}: "
            f"{e}); try MUJOCO_GL=egl (libEGL, e.g. Debian libegl1 libegl-mesa0) or "
            "MUJOCO_GL=osmesa (Debian libosmesa6), set before anything imports dm_control"
        ) from None
    logging.getLogger("absl").addFilter(_DropMessage())
    return tasks


def check_kwargs(kwargs: dict[str, Any], where: str = "memory-maze") -> None:
    """Refuses env kwargs the memory-maze ids do not take (a ReprlError naming :data:`KWARGS`)."""
    unknown = sorted(k for k in kwargs if k not in KWARGS)
    if unknown:
        raise ReprlError(
            f"{where}: unknown kwargs {unknown}; expected any of {list(KWARGS)} (and seed, "
            "device, frame_stack, grayscale, info_factors)"
        )


def check_size(size: Any) -> str:
    """``size`` if it is one of :data:`SIZES`, else a ReprlError naming them."""
    if size not in SIZES:
        raise ReprlError(f"size: expected one of {list(SIZES)}, got {size!r}")
    return size


def check_obs_size(obs_size: Any) -> tuple[int, int]:
    """``obs_size`` as ``(height, width)`` ints if both are equal and >= 64 (memory-maze's
    camera is square), else a ReprlError."""
    if (
        not isinstance(obs_size, Sequence)
        or len(obs_size) != 2
        or not all(is_int(s) for s in obs_size)
        or obs_size[0] != obs_size[1]
        or obs_size[0] < 64
    ):
        raise ReprlError(
            f"obs_size: expected (height, width), equal (memory-maze's camera is square) "
            f"and >= 64, got {obs_size!r}"
        )
    return int(obs_size[0]), int(obs_size[1])


def _seed_list(seed: Any, n: int) -> list[int | None]:
    """A ``reset(seed)`` argument as one seed (or None) per world."""
    if seed is None:
        return [None] * n
    if is_int(seed):
        return list(per_env_seeds(int(seed), n) or [])
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise ReprlError(f"seed: expected None, an integer >= 0 or {n} of them, got {seed!r}")
    seeds = list(seed)
    if len(seeds) != n:
        raise ReprlError(f"seed: expected {n} seeds, got {len(seeds)}")
    given = [s for s in seeds if s is not None]
    per_env_seeds(given, len(given))  # ints >= 0, else ReprlError
    return [None if s is None else int(s) for s in seeds]


class MemoryMazeBatch:
    """N memory-maze worlds of one size, stepped one after another on the CPU.

    The batched-env API of :class:`envs.lab.LabBatch` (the adapters of :mod:`envs.adapters`
    serve it): finished worlds are reset inside :meth:`step`, their last frame and factors
    handed back in the :class:`~envs.breakout.StepResult`.

    Args:
        num_envs: N >= 1 (each world costs about 0.75 GB and 2 to 3 s to build).
        size: ``"9x9"``, ``"11x11"``, ``"13x13"`` or ``"15x15"`` (:data:`SIZES`).
        seed: seed of world 0, world i uses ``seed + i``; or one seed per world; ``None`` draws
            fresh entropy at the first reset.
        device: torch device of the returned tensors (MuJoCo runs on the CPU either way).
        obs_size: (height, width) of the camera, equal, >= 64 (memory-maze's camera is
            square, and its colour border needs 64 pixels).
        max_episode_steps: time limit, 1 to the size's own (:data:`SIZES`: 1000 steps at 9x9,
            the default).
        good_visibility: raise the balls above the walls' line of sight (memory-maze's
            ``Vis`` variants).
        randomize_colors: draw the balls' colours from all six each episode (memory-maze's
            ``6CL`` variants; else ball i has colour i).

    Raises:
        ReprlError: a bad size, count, obs size, limit or flag (checked before anything is
            built), or the ``dmc`` extra missing (:func:`import_memory_maze`).
    """

    render_mode = "rgb_array"
    num_actions = len(ACTIONS)

    def __init__(
        self,
        num_envs: int,
        size: str = "9x9",
        *,
        seed: int | Sequence[int] | None = None,
        device: torch.device | str = "cpu",
        obs_size: tuple[int, int] = (64, 64),
        max_episode_steps: int | None = None,
        good_visibility: bool = False,
        randomize_colors: bool = False,
    ) -> None:
        self.size = check_size(size)
        if not is_int(num_envs) or num_envs < 1:
            raise ReprlError(f"num_envs must be a positive integer, got {num_envs!r}")
        check_obs_size(obs_size)
        cells, balls, native = SIZES[self.size]
        steps = native if max_episode_steps is None else max_episode_steps
        if not is_int(steps) or not 1 <= steps <= native:
            raise ReprlError(
                f"max_episode_steps: expected an integer in [1, {native}] (memory-maze "
                f"{self.size} ends its episodes after {native} steps), got {steps!r}"
            )
        for name, flag in (
            ("good_visibility", good_visibility),
            ("randomize_colors", randomize_colors),
        ):
            if not isinstance(flag, (bool, np.bool_)):
                raise ReprlError(f"{name}: expected True or False, got {flag!r}")
        self._seed = per_env_seeds(seed, int(num_envs))
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.obs_size = (int(obs_size[0]), int(obs_size[1]))
        self.max_episode_steps = int(steps)
        self.cells, self.num_objects = cells, balls
        tasks = import_memory_maze()
        factory = getattr(tasks, "memory_maze_" + self.size)
        self._envs = [
            factory(
                seed=0,  # replaced at the first reset
                global_observables=True,
                camera_resolution=self.obs_size[0],
                good_visibility=bool(good_visibility),
                randomize_colors=bool(randomize_colors),
            )
            for _ in range(self.num_envs)
        ]
        self._roots = [self._composer_env(e) for e in self._envs]
        self._colors = np.asarray(tasks.TARGET_COLORS)
        self._obs = np.zeros((self.num_envs, *self.single_obs_shape), np.uint8)
        self._raw: list[dict[str, np.ndarray]] = [{} for _ in range(self.num_envs)]
        self.steps = np.zeros(self.num_envs, np.int64)
        self._held = np.zeros(self.num_envs, dtype=bool)
        self._needs_reset = True

    # --- memory-maze internals ----------------------------------------------------------------
    @staticmethod
    def _composer_env(env: Any) -> Any:
        """The ``dm_control.composer.Environment`` inside memory-maze's wrappers."""
        root = env
        while not hasattr(root, "random_state") or not hasattr(root, "task"):
            root = root.env
        return root

    def _reseed(self, i: int, seed: int) -> None:
        """Re-seeds world i in place as memory-maze's ``seed=`` does at construction.

        memory-maze draws the maze generator's seed from a ``RandomState(seed)``, then lets that
        state drive the episodes; the generator (labmaze's, seeded once) is replaced by a fresh
        one with the same settings. Colours go back to their initial order, and the balls'
        touched flags are cleared: memory-maze picks the first target before the balls clear
        them, so a ball touched at the end of the last episode would cost another draw.
        """
        from memory_maze.maze import TARGET_COLORS

        root = self._roots[i]
        state = root.random_state
        state.seed(seed if seed < 2**32 else np.random.SeedSequence(seed).generate_state(4))
        arena = root.task.root_entity
        old = arena.maze
        arena._maze = type(old)(
            height=old.height,
            width=old.width,
            max_rooms=old.max_rooms,
            room_min_size=old.room_min_size,
            room_max_size=old.room_max_size,
            max_variations=old.max_variations,
            spawns_per_room=old.spawns_per_room,
            objects_per_room=old.objects_per_room,
            simplify=True,
            random_seed=state.randint(2147483648),
        )
        root.task._target_colors = list(TARGET_COLORS)
        for ball in root.task._targets:
            ball.initialize_episode_mjcf(state)  # clears its touched flag, draws nothing

    def _start(self, i: int) -> None:
        """Starts world i's next episode (about 1 s: MuJoCo recompiles the new maze)."""
        ts = self._envs[i].reset()
        self._take(i, ts.observation)
        self.steps[i] = 0

    def _take(self, i: int, observation: dict[str, np.ndarray]) -> None:
        self._raw[i] = observation
        self._obs[i] = observation["image"]

    def _check_open(self) -> None:
        if not self._envs:
            raise RuntimeError("these memory-maze worlds were closed")

    def _tensor(self, a: np.ndarray) -> Tensor:
        return torch.from_numpy(a).to(self.device)

    # --- public API ---------------------------------------------------------------------------
    @property
    def single_obs_shape(self) -> tuple[int, int, int]:
        """(H, W, 3): one RGB observation."""
        return (*self.obs_size, 3)

    def get_action_meanings(self) -> list[str]:
        """The meaning of each action index (:data:`ACTIONS`)."""
        return list(ACTIONS)

    def reset(self, seed: int | Sequence[int | None] | None = None) -> Tensor:
        """Starts a new episode in every world.

        Args:
            seed: ``int`` seeds world i with ``seed + i``; a sequence gives one seed (or None)
                per world; ``None`` continues each world's stream (or, before the first reset,
                uses the constructor's seed).

        Returns:
            (N, H, W, 3) uint8 observations.

        Raises:
            ReprlError: a bad seed.
        """
        self._check_open()
        if seed is None and self._needs_reset:
            seed = self._seed if self._seed is not None else fresh_seeds(self.num_envs)
        seeds = _seed_list(seed, self.num_envs)
        for i, s in enumerate(seeds):
            if s is not None:
                self._reseed(i, s)
            self._start(i)
        self._held[:] = False
        self._needs_reset = False
        return self._tensor(self._obs.copy())

    def step(self, actions: np.ndarray | Tensor) -> StepResult:
        """Advances every world one step (held ones stay) and resets the finished ones.

        Args:
            actions: (N,) integers in [0, 6) (:data:`ACTIONS`).

        Returns:
            A :class:`envs.breakout.StepResult`; ``obs`` of a finished world is already the
            first frame of its next episode, its last frame is in ``final_obs``. Episodes are
            truncated at the time limit; memory-maze never terminates one.

        Raises:
            ReprlError: bad actions (nothing changes then).
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        self._check_open()
        a = validate_actions(actions, self.num_envs, self.num_actions).cpu().numpy()
        n = self.num_envs
        reward = np.zeros(n, np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        for i, env in enumerate(self._envs):
            if self._held[i]:
                continue
            ts = env.step(int(a[i]))
            self._take(i, ts.observation)
            reward[i] = ts.reward or 0.0
            self.steps[i] += 1
            end = ts.last() and ts.discount == 0.0
            terminated[i] = end
            truncated[i] = not end and (ts.last() or self.steps[i] >= self.max_episode_steps)
        done = np.flatnonzero(terminated | truncated)
        done_index = torch.from_numpy(done).to(self.device)
        final_obs = self._tensor(self._obs[done].copy())
        final_factors = self.factors(done_index) if done.size else {}
        for i in done:
            self._start(int(i))
        return StepResult(
            self._tensor(self._obs.copy()),
            self._tensor(reward),
            self._tensor(terminated),
            self._tensor(truncated),
            done_index,
            final_obs,
            final_factors,
        )

    def factors(self, index: Tensor | None = None) -> dict[str, Tensor]:
        """Ground-truth factors of the current observations (see :data:`FACTOR_NAMES`).

        Args:
            index: int64 (K,) worlds to report, default all.

        Returns:
            name -> int64 tensor of shape (K,), or (K, num_objects) for ``obj_*``.
        """
        rows = range(self.num_envs) if index is None else index.tolist()
        cols: dict[str, list[Any]] = {k: [] for k in FACTOR_NAMES}
        n = self.cells
        for i in rows:
            raw = self._raw[i]
            x, y = raw["agent_pos"]
            dx, dy = raw["agent_dir"]
            balls = raw["targets_pos"]
            target = int(np.flatnonzero((balls == raw["target_pos"]).all(1))[0])
            colors = self._roots[int(i)].task._target_colors[: self.num_objects]
            cols["agent_x"].append(round((x + 1) * UNITS_PER_CELL))
            cols["agent_y"].append(round((n + 1 - y) * UNITS_PER_CELL))
            cols["agent_yaw"].append(round(math.degrees(math.atan2(-dy, dx))) % 360)
            cols["obj_x"].append(np.rint((balls[:, 0] + 1) * UNITS_PER_CELL))
            cols["obj_y"].append(np.rint((n + 1 - balls[:, 1]) * UNITS_PER_CELL))
            cols["obj_color"].append([self._color_index(c) for c in colors])
            cols["target"].append(target)
            cols["target_color"].append(self._color_index(raw["target_color"]))
        j = self.num_objects
        out = {}
        for k, v in cols.items():
            shape = (len(v), j) if k.startswith("obj_") else (len(v),)
            out[k] = self._tensor(np.asarray(v, dtype=np.int64).reshape(shape))
        return out

    def _color_index(self, rgb: np.ndarray) -> int:
        return int(np.argmin(np.abs(self._colors - np.asarray(rgb)).sum(1)))

    def render(self, index: Tensor | None = None) -> Tensor:
        """(K, H, W, 3) uint8 current frames of worlds ``index`` (default all), for videos."""
        obs = self._obs if index is None else self._obs[index.cpu().numpy()]
        return self._tensor(obs.copy())

    def get_state(self, index: Tensor) -> dict[str, Tensor]:
        """Holds worlds ``index`` where they are until :meth:`set_state` releases them.

        MuJoCo's state is not copied: held worlds do not advance in :meth:`step` (reward 0,
        same frame, no episode end), which is what a saved-and-restored state amounts to for
        the one caller, gymnasium's ``NEXT_STEP`` autoreset in
        :class:`envs.adapters.TorchVectorEnv` (a world that showed its last frame shows its
        next episode's first frame on the following step without advancing).

        Args:
            index: int64 (K,) worlds.

        Returns:
            ``{"held": index}``, to pass to :meth:`set_state`.
        """
        self._held[index.cpu().numpy()] = True
        return {"held": index.clone()}

    def set_state(self, index: Tensor, state: dict[str, Tensor]) -> None:
        """Releases worlds held by :meth:`get_state` (with the same ``index``)."""
        if "held" not in state or not torch.equal(state["held"].cpu(), index.cpu()):
            raise ReprlError(
                "memory-maze worlds can only be released with the state get_state(index) gave "
                "for the same index"
            )
        self._held[index.cpu().numpy()] = False

    def close(self) -> None:
        """Frees the worlds' MuJoCo and OpenGL resources."""
        for env in getattr(self, "_envs", []):
            env.close()
        self._envs = []


# ----------------------------------------------------------------------------------------------
# The family

MEMORY_MAZE_IDS: dict[str, dict[str, Any]] = {
    "reprl/MemoryMaze-v0": {},
    "reprl/MemoryMaze-9x9-v0": {"size": "9x9"},
    "reprl/MemoryMaze-11x11-v0": {"size": "11x11"},
    "reprl/MemoryMaze-13x13-v0": {"size": "13x13"},
    "reprl/MemoryMaze-15x15-v0": {"size": "15x15"},
}
"""The Memory Maze ids and the kwargs each fixes: ``reprl/MemoryMaze-v0`` takes ``size``
(default ``"9x9"``)."""


def _resolve(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    kw = MEMORY_MAZE.resolve(env_id, kwargs)
    check_kwargs(kw, env_id)
    return kw


def make_memory_maze_batch(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> Any:
    """The batched Memory Maze worlds behind one of :data:`MEMORY_MAZE_IDS`
    (:class:`MemoryMazeBatch`), stacked (or grayscale) on request.

    Raises:
        ReprlError: kwargs the id does not take, bad values, or the ``dmc`` extra missing.
    """
    frame_stack, grayscale = check_stack_args(frame_stack, grayscale)
    core = MemoryMazeBatch(num_envs, seed=seed, device=device, **_resolve(env_id, kwargs))
    return stacked(core, frame_stack, grayscale)


def _best_return(env_id: str, kwargs: dict[str, Any]) -> float:
    _resolve(env_id, kwargs)
    raise ReprlError(
        f"{env_id} has no best return: each ball reached gives +1 and the next is asked "
        "for, so only the time limit and the agent's speed bound an episode's return"
    )


def _obs_shape(env_id: str, kwargs: dict[str, Any]) -> tuple[int, int, int]:
    """``obs_size`` and 3 channels, checked without starting MuJoCo."""
    kw = _resolve(env_id, kwargs)
    check_size(kw.get("size", "9x9"))
    return (*check_obs_size(kw.get("obs_size", (64, 64))), 3)


MEMORY_MAZE = EnvFamily(
    name="memory_maze",
    ids=MEMORY_MAZE_IDS,
    instead="reprl/MemoryMaze-v0 with size=...",
    action_meanings=ACTIONS,
    best_return=_best_return,
    make_batch=make_memory_maze_batch,
    obs_shape=_obs_shape,
)
"""Memory Maze as a reprl batched env (:class:`MemoryMazeBatch`, the ``dmc`` extra)."""
