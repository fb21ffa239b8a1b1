"""The real Atari Breakout (``ALE/Breakout-v5``, ale-py) as an SB3 ``VecEnv`` in reprl's format.

Observations are what every reprl environment gives: ``uint8 (H, W, 3)`` RGB, channels-last,
default 64 x 64, area-averaged down from ALE's 210 x 160 screen. Actions are ALE's minimal set
for Breakout, ``Discrete(4)``: NOOP, FIRE, RIGHT, LEFT. Rewards are the game's own score (1, 4
or 7 per brick by row, unclipped); an episode ends when the last of the 5 lives is lost
(``terminated``), or after ``max_episode_steps`` agent steps or 108 000 emulator frames (ALE's
cap), whichever comes first (``truncated``).

Two backends give the same VecEnv semantics:

- ``"ale_vector"``: ale-py's native :class:`ale_py.vector_env.AtariVectorEnv`, a C++ thread
  pool that emulates, resizes (OpenCV ``INTER_AREA``) and auto-resets. It cannot select a game
  mode or difficulty. ``step_async`` really is asynchronous: it hands the actions to the pool
  and ``step_wait`` collects them.
- ``"gymnasium"``: N ``gym.make("ALE/Breakout-v5", ...)`` envs stepped one after the other
  (SB3's ``DummyVecEnv``), each behind :class:`AreaResize`. Slower, but any game mode
  (0, 4, ..., 44) and difficulty (0, 1) can be chosen.

``backend="auto"`` picks ``"ale_vector"`` unless a non-default mode or difficulty is asked for.

SB3 semantics, both backends: a finished env is reset inside ``step``; the returned
observation is the new episode's first frame, ``infos[i]["terminal_observation"]`` the last
frame of the finished one, ``infos[i]["TimeLimit.truncated"]`` is ``truncated and not
terminated``, and ``infos[i]`` otherwise describes the finished episode's last step (its
``lives``, ``episode_frame_number``); the new episode's reset info is in ``venv.reset_infos[i]``.

With ``repeat_action_probability=0`` the emulator is deterministic and the two backends give
bit-identical observations, rewards, dones and infos for the same actions (:class:`AreaResize`
reproduces OpenCV's ``INTER_AREA`` exactly when shrinking), with one exception: after a game
over, ``"ale_vector"``'s ``terminal_observation`` is the frame of the step before (an ale-py
quirk, see :class:`AtariVectorVecEnv`). With sticky actions the backends consume the seed
differently: the same seed repeats a trajectory within one backend, not across them.

(Longer than 500 lines on purpose: both backends, their shared settings and the resize they
must agree on bit for bit are kept side by side, where a difference between them shows.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from envs.actions import validate_actions
from envs.checks import is_int
from envs.errors import ReprlError
from envs.family import EnvFamily
from envs.rng import per_env_seeds

ATARI_ENV_IDS: tuple[str, ...] = ("ALE/Breakout-v5",)
"""The ALE ids this module supports."""

_GAMES = {"ALE/Breakout-v5": "breakout"}  # gymnasium id -> ALE ROM name
BREAKOUT_MODES: tuple[int, ...] = tuple(range(0, 48, 4))
"""Breakout's game variations (ALE ``getAvailableModes``); 0 is the default."""
BREAKOUT_DIFFICULTIES: tuple[int, ...] = (0, 1)
"""Breakout's difficulty switch positions (ALE ``getAvailableDifficulties``); 0 is the default."""
ACTION_MEANINGS: tuple[str, ...] = ("NOOP", "FIRE", "RIGHT", "LEFT")
"""ALE's minimal action set for Breakout, in action-index order."""
MAX_FRAMES_PER_EPISODE = 108_000
"""ALE's default episode cap in emulator frames (30 minutes at 60 Hz), both backends."""
BREAKOUT_BEST_RETURN = 864.0
"""Atari Breakout's maximum score: two walls of 6 x 18 bricks worth 1, 1, 4, 4, 7, 7 by row
(432 each); the game does not refill the wall after the second."""
BACKENDS: tuple[str, ...] = ("auto", "ale_vector", "gymnasium")

_MAX_ALE_SEED = 2**31  # the vector backend takes int32 seeds; negative ones mean "don't reseed"

# Extra keyword arguments each backend accepts, forwarded unchanged to ale-py.
_VECTOR_KWARGS = frozenset(
    {
        "noop_max",
        "maxpool",
        "use_fire_reset",
        "episodic_life",
        "life_loss_info",
        "reward_clipping",
        "thread_affinity_offset",
    }
)
_GYMNASIUM_KWARGS: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class AtariConfig:
    """Validated settings shared by both backends and by :func:`make_atari_env`."""

    env_id: str = "ALE/Breakout-v5"
    """Gymnasium id; one of :data:`ATARI_ENV_IDS`."""
    obs_size: tuple[int, int] = (64, 64)
    """Observation (height, width) in pixels."""
    mode: int | None = None
    """Game variation (one of :data:`BREAKOUT_MODES`); None: the cartridge default (0)."""
    difficulty: int | None = None
    """Difficulty switch (one of :data:`BREAKOUT_DIFFICULTIES`); None: the default (0)."""
    frameskip: int = 4
    """Emulator frames per agent step (the action is repeated)."""
    repeat_action_probability: float = 0.25
    """Sticky actions: chance per frame that the previous action is repeated instead."""
    max_episode_steps: int | None = None
    """Truncate after this many agent steps; None: only ALE's 108 000-frame cap."""

    def __post_init__(self) -> None:
        if self.env_id not in ATARI_ENV_IDS:
            raise ReprlError(f"unknown env id {self.env_id!r}; supported: {ATARI_ENV_IDS}")
        size = self.obs_size
        if (
            not isinstance(size, tuple | list)
            or len(size) != 2
            or not all(is_int(s) and s > 0 for s in size)
        ):
            raise ReprlError(f"obs_size must be (height, width) positive ints, got {size!r}")
        object.__setattr__(self, "obs_size", (int(size[0]), int(size[1])))
        for name in ("mode", "difficulty", "frameskip", "max_episode_steps"):
            value = getattr(self, name)
            if is_int(value):  # numpy ints -> plain ints, as get_attr hands them out
                object.__setattr__(self, name, int(value))
        if self.mode is not None and (not is_int(self.mode) or self.mode not in BREAKOUT_MODES):
            raise ReprlError(
                f"invalid mode {self.mode!r} for {self.env_id}; valid modes: {BREAKOUT_MODES}"
            )
        if self.difficulty is not None and (
            not is_int(self.difficulty) or self.difficulty not in BREAKOUT_DIFFICULTIES
        ):
            raise ReprlError(
                f"invalid difficulty {self.difficulty!r} for {self.env_id}; "
                f"valid difficulties: {BREAKOUT_DIFFICULTIES}"
            )
        if not is_int(self.frameskip) or self.frameskip < 1:
            raise ReprlError(f"frameskip must be an int >= 1, got {self.frameskip!r}")
        p = self.repeat_action_probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ReprlError(f"repeat_action_probability must be in [0, 1], got {p!r}")
        steps = self.max_episode_steps
        if steps is not None and (not is_int(steps) or steps < 1):
            raise ReprlError(f"max_episode_steps must be None or an int >= 1, got {steps!r}")

    @property
    def game(self) -> str:
        """ALE ROM name, e.g. ``"breakout"``."""
        return _GAMES[self.env_id]

    @property
    def uses_default_game(self) -> bool:
        """True if mode and difficulty are the defaults (the vector backend can play it)."""
        return self.mode in (None, 0) and self.difficulty in (None, 0)

    @property
    def max_steps(self) -> int:
        """Agent steps after which an episode is truncated: ``max_episode_steps``, and at most
        ``ceil(108 000 / frameskip)`` (when ALE's frame cap strikes)."""
        cap = -(-MAX_FRAMES_PER_EPISODE // self.frameskip)
        return cap if self.max_episode_steps is None else min(cap, self.max_episode_steps)

    def env_attrs(self) -> dict[str, Any]:
        """The settings as plain attributes, what ``VecEnv.get_attr`` returns for each env."""
        return dataclasses.asdict(self)


def _import_ale() -> Any:
    """ale-py, imported on first use (not by ``import envs``) with its gymnasium ids registered."""
    import ale_py

    gym.register_envs(ale_py)
    return ale_py


# ----------------------------------------------------------------------------------------------
# Resizing


def _area_table(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-averaging weights along one axis, built exactly as OpenCV's ``INTER_AREA`` does.

    Output pixel ``o`` covers the input span ``[o * s, (o + 1) * s)``, ``s = n_in / n_out``;
    its weights are the overlaps with the input pixels it touches divided by ``s`` (OpenCV's
    ``computeResizeAreaTab``: double arithmetic, partial overlaps under 1e-3 dropped, weights
    rounded to float32).

    Returns:
        ``(index, weight)``, both ``(n_out, K)``: input indices (int64) and float32 weights in
        OpenCV's summation order, K the most inputs any output touches; unused slots have
        index 0 and weight 0.
    """
    scale = 1.0 / (n_out / n_in)  # as OpenCV: the inverse of the inverse scale
    rows: list[list[tuple[int, float]]] = []
    for o in range(n_out):
        lo = o * scale
        hi = lo + scale
        cell = min(scale, n_in - lo)
        first, last = math.ceil(lo), min(math.floor(hi), n_in - 1)
        first = min(first, last)
        row = []
        if first - lo > 1e-3:
            row.append((first - 1, (first - lo) / cell))
        row.extend((i, 1.0 / cell) for i in range(first, last))
        if hi - last > 1e-3:
            row.append((last, min(hi - last, 1.0, cell) / cell))
        rows.append(row)
    k = max(len(r) for r in rows)
    index = np.zeros((n_out, k), dtype=np.int64)
    weight = np.zeros((n_out, k), dtype=np.float32)
    for o, row in enumerate(rows):
        for j, (i, w) in enumerate(row):
            index[o, j], weight[o, j] = i, w
    return index, weight


class AreaResizer:
    """Area-averaging resize of uint8 frames, bit-identical to OpenCV's ``INTER_AREA`` shrink.

    ale-py's vector backend resizes with ``cv2.resize(..., interpolation=cv2.INTER_AREA)``;
    this class reproduces its numbers exactly when shrinking (same weight table, same float32
    summation order: the width pass first, then the height pass, then round half to even), so
    both backends see the same pixels. OpenCV is not a dependency of reprl. When enlarging an
    axis this stays a box filter, where OpenCV switches to bilinear: only then do the backends'
    pixels differ.

    Cost: K gather-multiply-adds per axis in numpy, about 0.1-0.2 ms per 210x160 -> 64x64
    frame (PIL's ``BOX`` filter is no faster and not identical; torch's ``area`` mode is
    ``adaptive_avg_pool2d``, which rounds window edges to whole pixels and is slower).

    Args:
        in_size: input (height, width).
        out_size: output (height, width).
    """

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
        self.in_size = (int(in_size[0]), int(in_size[1]))
        self.out_size = (int(out_size[0]), int(out_size[1]))
        self.identity = self.in_size == self.out_size
        self._rows = _area_table(self.in_size[0], self.out_size[0])
        self._cols = _area_table(self.in_size[1], self.out_size[1])

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Resizes one frame or a batch.

        Args:
            frames: ``(H, W, C)`` or ``(B, H, W, C)`` uint8, (H, W) = ``in_size``.

        Returns:
            ``(h, w, C)`` or ``(B, h, w, C)`` uint8, (h, w) = ``out_size``.
        """
        if frames.shape[-3:-1] != self.in_size:
            raise ReprlError(
                f"expected frames of size {self.in_size} (H, W), got shape {frames.shape}"
            )
        if self.identity:
            return frames
        x = frames.astype(np.float32)
        (ci, cw), (ri, rw) = self._cols, self._rows
        buf = np.take(x, ci[:, 0], axis=-2)  # width pass: (..., H, w, C)
        buf *= cw[:, 0, None]
        tmp = np.empty_like(buf)
        for j in range(1, ci.shape[1]):
            np.take(x, ci[:, j], axis=-2, out=tmp)
            tmp *= cw[:, j, None]
            buf += tmp
        out = np.take(buf, ri[:, 0], axis=-3)  # height pass: (..., h, w, C)
        out *= rw[:, 0, None, None]
        tmp = np.empty_like(out)
        for j in range(1, ri.shape[1]):
            np.take(buf, ri[:, j], axis=-3, out=tmp)
            tmp *= rw[:, j, None, None]
            out += tmp
        return np.rint(out, out=out).astype(np.uint8)  # weights sum to 1: stays in [0, 255]


class AreaResize(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Resizes ALE's RGB screen to ``obs_size`` with :class:`AreaResizer`.

    ``render()`` (with ``render_mode="rgb_array"``) returns the resized current screen, the
    frame the agent sees.

    Args:
        env: an ALE env with ``obs_type="rgb"``: observations ``(210, 160, 3)`` uint8.
        obs_size: output (height, width).
    """

    def __init__(self, env: gym.Env, obs_size: tuple[int, int]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, obs_size=tuple(obs_size))
        gym.ObservationWrapper.__init__(self, env)
        shape = env.observation_space.shape
        if shape is None or len(shape) != 3 or shape[2] != 3:
            raise ReprlError(f"AreaResize needs (H, W, 3) RGB observations, got shape {shape}")
        self.resizer = AreaResizer((shape[0], shape[1]), obs_size)
        self.observation_space = gym.spaces.Box(0, 255, (*self.resizer.out_size, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """(210, 160, 3) uint8 -> (H, W, 3) uint8."""
        return self.resizer(observation)

    def render(self) -> np.ndarray | None:
        """(H, W, 3) uint8 current screen, resized (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; pass render_mode='rgb_array'")
            return None
        frame = self.env.render()
        return None if frame is None else self.resizer(np.asarray(frame))


# ----------------------------------------------------------------------------------------------
# Shared VecEnv pieces


def _validate_actions(actions: Any, num_envs: int, num_actions: int) -> np.ndarray:
    """:func:`envs.actions.validate_actions`, as ``(num_envs,)`` int64 numpy."""
    return validate_actions(actions, num_envs, num_actions).cpu().numpy()


def _check_settable(attr_name: str, config: AtariConfig) -> None:
    if attr_name in config.env_attrs() or attr_name == "render_mode":
        raise ReprlError(
            f"{attr_name!r} is fixed when the Atari VecEnv is built; make a new one to change it"
        )


def _observation_space(config: AtariConfig) -> gym.spaces.Box:
    return gym.spaces.Box(0, 255, (*config.obs_size, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# Backend 1: ale-py's native vector env


class AtariVectorVecEnv(VecEnv):
    """ale-py's :class:`~ale_py.vector_env.AtariVectorEnv` with SB3 ``VecEnv`` semantics.

    ale-py's pool is run in ``NEXT_STEP`` autoreset mode (the step that ends an episode returns
    its own last info), and the finished envs are reset at once with a masked ``reset``, so the
    step returns the new episodes' first frames as SB3 expects. (ale-py's ``SAME_STEP`` mode
    gives the last frame in ``info["final_obs"]`` but the new episode's ``lives`` etc.)

    Truncation is counted here, in agent steps, not by ale-py: ale-py 0.12.1 leaves its
    frameskip loop *before* grabbing the screen on the frame that reaches its
    ``max_num_frames_per_episode``, so its last frame of a truncated episode is the previous
    step's (stale) frame, and SB3 bootstraps truncated episodes from exactly that frame. ale-py's
    own cap is set one frame beyond ours so it never fires. The same early exit happens on game
    over and cannot be avoided from Python: for a *terminated* episode (which SB3 does not
    bootstrap) ``terminal_observation`` is the frame of the step before the last one.

    Emulation is left unaltered: no no-op starts, no FIRE on reset, no max-pooling of frames,
    no reward clipping, no life-loss episodes, like ``gym.make("ALE/Breakout-v5")``.

    Args:
        config: validated settings (mode and difficulty must be the defaults).
        num_envs: number of games, >= 1.
        num_threads: ale-py worker threads; 0 lets ale-py choose.
        **ale_kwargs: overrides forwarded to ``AtariVectorEnv`` (``noop_max``, ``maxpool``,
            ``use_fire_reset``, ``episodic_life``, ``life_loss_info``, ``reward_clipping``,
            ``thread_affinity_offset``).
    """

    backend = "ale_vector"

    def __init__(
        self, config: AtariConfig, num_envs: int, *, num_threads: int = 0, **ale_kwargs: Any
    ) -> None:
        if not config.uses_default_game:
            raise ReprlError(
                "the ale_vector backend cannot select a game mode or difficulty "
                f"(got mode={config.mode}, difficulty={config.difficulty}); use "
                "backend='gymnasium'"
            )
        _import_ale()
        from ale_py.vector_env import AtariVectorEnv

        self.config = config
        self._attrs = [{**config.env_attrs(), "render_mode": "rgb_array"} for _ in range(num_envs)]
        settings: dict[str, Any] = {
            "noop_max": 0,
            "maxpool": False,
            "use_fire_reset": False,
            "episodic_life": False,
            "reward_clipping": False,
            **ale_kwargs,
        }
        self.ale = AtariVectorEnv(
            config.game,
            num_envs,
            num_threads=num_threads,
            max_num_frames_per_episode=config.max_steps * config.frameskip + 1,
            repeat_action_probability=float(config.repeat_action_probability),
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
            img_height=config.obs_size[0],
            img_width=config.obs_size[1],
            grayscale=False,
            stack_num=1,
            frameskip=config.frameskip,
            **settings,
        )
        action_space = self.ale.single_action_space
        assert isinstance(action_space, gym.spaces.Discrete)
        super().__init__(num_envs, _observation_space(config), action_space)
        self._obs: np.ndarray | None = None  # (N, H, W, 3) last returned observations
        self._steps = np.zeros(num_envs, dtype=np.int64)  # agent steps into each episode
        self._pending = False
        self._started = False  # a first reset happened (later unseeded resets don't reseed)
        self._closed = False

    # -- core API --------------------------------------------------------------------------------

    def reset(self) -> np.ndarray:
        """Resets all envs.

        Env i is seeded with ``self._seeds[i]`` if :meth:`seed` was called (reduced modulo
        2**31, ale-py's seed range); the very first reset without seeds draws fresh entropy,
        later ones continue each env's random stream.

        Returns:
            ``(N, H, W, 3)`` uint8 first frames.
        """
        self._check_open()
        if self._pending:  # drop a step in flight
            self.ale.recv()
            self._pending = False
        entropy = np.random.default_rng().integers(0, _MAX_ALE_SEED, self.num_envs)
        seeds = np.array(
            [
                (s % _MAX_ALE_SEED) if s is not None else (-1 if self._started else int(e))
                for s, e in zip(self._seeds, entropy)
            ],
            dtype=np.int64,
        )
        obs, info = self.ale.reset(seed=seeds)
        self._started = True
        self._steps[:] = 0
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = _info_dicts(info, range(self.num_envs))
        self._obs = obs[:, 0]
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        """Validates the actions and hands them to ale-py's thread pool.

        Args:
            actions: ``(N,)`` integers in ``[0, 4)``.

        Raises:
            ReprlError: wrong shape, dtype or range (nothing is stepped).
            RuntimeError: closed, not reset yet, or a step is already in flight.
        """
        self._check_open()
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        if self._pending:
            raise RuntimeError("step_async() called twice without step_wait()")
        a = _validate_actions(actions, self.num_envs, int(self.action_space.n))
        self.ale.send(a)
        self._pending = True

    def step_wait(self) -> VecEnvStepReturn:
        """Collects the step; resets finished envs (SB3 semantics, see the module docstring).

        Returns:
            ``obs (N, H, W, 3) uint8``, ``rewards (N,) float32``, ``dones (N,) bool``,
            ``infos``: N dicts with ``lives``, ``episode_frame_number``, ``frame_number``, and on
            a done step ``terminal_observation`` ``(H, W, 3) uint8`` and ``TimeLimit.truncated``.
        """
        if not self._pending:
            raise RuntimeError("step_wait() called without step_async()")
        obs, reward, terminated, truncated, info = self.ale.recv()
        self._pending = False
        obs = obs[:, 0]  # (N, 1, H, W, 3) -> (N, H, W, 3)
        self._steps += 1
        truncated = (truncated | (self._steps >= self.config.max_steps)) & ~terminated
        dones = terminated | truncated
        infos = _info_dicts(info, range(self.num_envs))
        done_index = np.flatnonzero(dones)
        if done_index.size:
            new_obs, new_info = self.ale.reset(options={"reset_mask": dones})
            next_obs = obs.copy()
            next_obs[done_index] = new_obs[done_index, 0]
            reset_infos = _info_dicts(new_info, done_index)
            for j, i in enumerate(done_index.tolist()):
                infos[i]["terminal_observation"] = obs[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
                self.reset_infos[i] = reset_infos[j]
            obs = next_obs
            self._steps[done_index] = 0
        self._obs = obs
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        """Releases ale-py's thread pool; the VecEnv cannot be stepped afterwards."""
        if self._closed:
            return
        if self._pending:
            self.ale.recv()
            self._pending = False
        self.ale.close()
        del self.ale  # the pool's threads stop when its last reference goes
        self._closed = True

    def get_images(self) -> Sequence[np.ndarray | None]:
        """The current observations, N ``(H, W, 3)`` uint8 (what ``render()`` tiles)."""
        if self._obs is None:
            return [np.zeros((*self.config.obs_size, 3), np.uint8) for _ in range(self.num_envs)]
        return list(self._obs)

    # -- attribute access ------------------------------------------------------------------------

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env settings (``env_id``, ``obs_size``, ``mode``, ..., ``render_mode``) or
        attributes stored with :meth:`set_attr`."""
        out = []
        for i in self._get_indices(indices):
            if attr_name not in self._attrs[i]:
                raise AttributeError(
                    f"env {i} has no attribute {attr_name!r}; known: {sorted(self._attrs[i])}"
                )
            out.append(self._attrs[i][attr_name])
        return out

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Stores a user attribute per env; the emulator settings cannot be changed."""
        _check_settable(attr_name, self.config)
        for i in self._get_indices(indices):
            self._attrs[i][attr_name] = value

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        """Supports ``get_action_meanings`` (as ALE's ``AtariEnv``) and ``render``."""
        idx = list(self._get_indices(indices))
        if method_name == "get_action_meanings":
            return [list(ACTION_MEANINGS) for _ in idx]
        if method_name == "render":
            images = self.get_images()
            return [images[i] for i in idx]
        raise AttributeError(
            f"the ale_vector backend has no per-env method {method_name!r}; "
            "supported: get_action_meanings, render"
        )

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """No env here is a gymnasium ``Env``, so none is wrapped."""
        return [False for _ in self._get_indices(indices)]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this VecEnv is closed")


def _info_dicts(info: dict[str, np.ndarray], rows: Any) -> list[dict[str, Any]]:
    """ale-py's batched info -> one plain dict per row index in ``rows``."""
    keys = ("lives", "episode_frame_number", "frame_number")
    cols = [info[k] for k in keys]
    return [{k: int(c[i]) for k, c in zip(keys, cols)} for i in rows]


# ----------------------------------------------------------------------------------------------
# Backend 2: gymnasium envs in a loop


def make_atari_env(
    env_id: str = "ALE/Breakout-v5",
    *,
    obs_size: tuple[int, int] = (64, 64),
    mode: int | None = None,
    difficulty: int | None = None,
    frameskip: int = 4,
    repeat_action_probability: float = 0.25,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    **kwargs: Any,
) -> gym.Env:
    """A single gymnasium ALE env with reprl's observations.

    ``gym.make(env_id, obs_type="rgb", ...)`` behind :class:`AreaResize`. Passes gymnasium's
    and SB3's ``check_env``. Seed it with ``reset(seed=...)``.

    Args:
        env_id: one of :data:`ATARI_ENV_IDS`.
        obs_size: observation (height, width).
        mode: game variation, one of :data:`BREAKOUT_MODES`; None: default.
        difficulty: one of :data:`BREAKOUT_DIFFICULTIES`; None: default.
        frameskip: emulator frames per step, >= 1.
        repeat_action_probability: sticky-action probability in [0, 1].
        max_episode_steps: truncate after this many steps (gymnasium ``TimeLimit``); None: only
            ALE's 108 000-frame cap.
        render_mode: None or ``"rgb_array"`` (renders the resized frame).
        **kwargs: not used; any given raise a ReprlError.

    Returns:
        The env: observations ``(H, W, 3)`` uint8 in [0, 255], ``Discrete(4)`` actions, info
        with ``lives``, ``episode_frame_number``, ``frame_number``. The settings are readable as
        attributes (``env.get_wrapper_attr("mode")``).

    Raises:
        ReprlError: an unknown id, invalid mode/difficulty or other setting.
    """
    config = AtariConfig(
        env_id, obs_size, mode, difficulty, frameskip, repeat_action_probability, max_episode_steps
    )
    _check_kwargs(kwargs, _GYMNASIUM_KWARGS, "make_atari_env")
    return _make_single(config, render_mode=render_mode)


def _make_single(config: AtariConfig, *, render_mode: str | None) -> gym.Env:
    if render_mode not in (None, "rgb_array"):
        raise ReprlError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    _import_ale()
    env = gym.make(
        config.env_id,
        mode=config.mode,
        difficulty=config.difficulty,
        obs_type="rgb",
        frameskip=config.frameskip,
        repeat_action_probability=float(config.repeat_action_probability),
        max_num_frames_per_episode=MAX_FRAMES_PER_EPISODE,
        max_episode_steps=config.max_episode_steps,
        render_mode=render_mode,
    )
    env = AreaResize(env, config.obs_size)
    for name, value in config.env_attrs().items():  # readable via get_wrapper_attr / get_attr
        setattr(env, name, value)
    return env


class AtariGymnasiumVecEnv(DummyVecEnv):
    """N gymnasium ALE envs (:func:`make_atari_env`) stepped in a loop, as an SB3 ``VecEnv``.

    SB3's ``DummyVecEnv`` (which already has the SB3 auto-reset semantics) plus action checks
    before stepping and read-only settings. Any game mode and difficulty.

    Args:
        config: validated settings.
        num_envs: number of games, >= 1.
    """

    backend = "gymnasium"

    def __init__(self, config: AtariConfig, num_envs: int) -> None:
        self.config = config
        super().__init__(
            [lambda: _make_single(config, render_mode="rgb_array") for _ in range(num_envs)]
        )
        self._closed = False

    def step_async(self, actions: np.ndarray) -> None:
        """Validates ``(N,)`` integer actions in ``[0, 4)`` (ReprlError otherwise), then steps."""
        if self._closed:
            raise RuntimeError("this VecEnv is closed")
        super().step_async(_validate_actions(actions, self.num_envs, int(self.action_space.n)))

    def reset(self) -> np.ndarray:
        """Resets all envs; ``(N, H, W, 3)`` uint8 first frames."""
        if self._closed:
            raise RuntimeError("this VecEnv is closed")
        return super().reset()  # type: ignore[return-value]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Sets a user attribute per env; the emulator settings cannot be changed."""
        _check_settable(attr_name, self.config)
        super().set_attr(attr_name, value, indices)

    def close(self) -> None:
        """Closes the ALE envs; the VecEnv cannot be used afterwards."""
        if not self._closed:
            super().close()
            self._closed = True


# ----------------------------------------------------------------------------------------------
# Public factory


def _check_kwargs(kwargs: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ReprlError(
            f"unexpected keyword argument(s) {unknown} for {where}; "
            f"allowed extras: {sorted(allowed) or 'none'}"
        )


def make_atari_vec(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: str = "cpu",
    obs_size: tuple[int, int] = (64, 64),
    mode: int | None = None,
    difficulty: int | None = None,
    frameskip: int = 4,
    repeat_action_probability: float = 0.25,
    max_episode_steps: int | None = None,
    num_threads: int = 0,
    backend: str = "auto",
    **kwargs: Any,
) -> VecEnv:
    """Real Atari Breakout as an SB3 ``VecEnv`` with reprl's observations.

    Args:
        env_id: ``"ALE/Breakout-v5"`` (the only id supported, see :data:`ATARI_ENV_IDS`).
        num_envs: number of parallel games, >= 1.
        seed: env i is seeded with ``seed + i`` at the first ``reset()`` (SB3's convention),
            sticky actions included: the same seed repeats the trajectory; a sequence of
            ``num_envs`` ints >= 0 gives env i ``seed[i]`` (e.g. :func:`envs.rng.spawn_seeds`);
            None: fresh entropy.
        device: accepted for interface parity and ignored (ALE runs on the CPU; observations
            are numpy).
        obs_size: observation (height, width); frames are area-averaged from 210 x 160.
        mode: game variation, one of :data:`BREAKOUT_MODES`; None: default (0).
        difficulty: one of :data:`BREAKOUT_DIFFICULTIES`; None: default (0).
        frameskip: emulator frames per agent step, >= 1.
        repeat_action_probability: sticky-action probability in [0, 1].
        max_episode_steps: truncate episodes after this many agent steps; None: only ALE's
            108 000-frame cap.
        num_threads: worker threads of the ``ale_vector`` backend; 0: ale-py's choice.
        backend: ``"auto"`` (``ale_vector`` unless mode/difficulty are non-default),
            ``"ale_vector"`` or ``"gymnasium"``.
        **kwargs: ``ale_vector`` backend only: ``noop_max``, ``maxpool``, ``use_fire_reset``,
            ``episodic_life``, ``life_loss_info``, ``reward_clipping``,
            ``thread_affinity_offset`` (ale-py's meanings; all off by default).

    Returns:
        The VecEnv (``.backend`` names which): observations ``(N, H, W, 3)`` uint8 in [0, 255],
        ``Discrete(4)`` actions (NOOP, FIRE, RIGHT, LEFT), float32 rewards, infos with
        ``lives``, ``episode_frame_number``, ``frame_number``, and on done steps
        ``terminal_observation`` and ``TimeLimit.truncated``. Call ``reset()`` first.

    Raises:
        ReprlError: an unknown id, ``num_envs < 1``, an invalid mode, difficulty, setting,
            backend or keyword argument.
        TypeError: ``device`` is not a string.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', got {type(device).__name__}")
    if not is_int(num_envs) or num_envs < 1:
        raise ReprlError(f"num_envs must be an int >= 1, got {num_envs!r}")
    seeds = per_env_seeds(seed, int(num_envs))
    if not is_int(num_threads) or num_threads < 0:
        raise ReprlError(f"num_threads must be an int >= 0, got {num_threads!r}")
    if backend not in BACKENDS:
        raise ReprlError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    config = AtariConfig(
        env_id, obs_size, mode, difficulty, frameskip, repeat_action_probability, max_episode_steps
    )
    if backend == "auto":
        backend = "ale_vector" if config.uses_default_game else "gymnasium"
    venv: VecEnv
    if backend == "ale_vector":
        _check_kwargs(kwargs, _VECTOR_KWARGS, "the ale_vector backend")
        venv = AtariVectorVecEnv(config, int(num_envs), num_threads=int(num_threads), **kwargs)
    else:
        _check_kwargs(kwargs, _GYMNASIUM_KWARGS, "the gymnasium backend")
        venv = AtariGymnasiumVecEnv(config, int(num_envs))
    if seeds is not None:
        venv._seeds = list(seeds)  # SB3's per-env seeds for the next reset(), as venv.seed()
    return venv


# ----------------------------------------------------------------------------------------------
# The family


def _family_vec(env_id: str, num_envs: int, *, device: Any = "cpu", **kwargs: Any) -> VecEnv:
    return make_atari_vec(env_id, num_envs, device=str(device), **kwargs)


def _obs_shape(env_id: str, kwargs: dict[str, Any]) -> tuple[int, int, int]:
    """``obs_size`` and 3 channels, checked without starting the emulator."""
    return (*AtariConfig(env_id, kwargs.get("obs_size", (64, 64))).obs_size, 3)


ALE = EnvFamily(
    name="ale",
    ids={env_id: {} for env_id in ATARI_ENV_IDS},
    instead="ALE/Breakout-v5",
    action_meanings=ACTION_MEANINGS,
    best_return=BREAKOUT_BEST_RETURN,
    make_vec=_family_vec,
    obs_shape=_obs_shape,
)
"""The real Atari games through ale-py (imported when an env is built)."""
