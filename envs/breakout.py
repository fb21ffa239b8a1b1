"""Breakout with the rules of Schema Networks' variants, N games at once in torch tensors.

The rules follow ``vicariousinc/schema-games`` (Kansky et al., ICML 2017): a 94 x 117 play
area with walls 3 px thick on the left, right and top, 11 x 6 bricks of 8 x 4 px, a 23 x 4 px
paddle moving 2 px per step, a 1 x 1 px ball whose per-axis speed is at most 2 px per step
(its speed limit rises by one after 4, 8 and 12 brick hits, capped at 2), 3 lives, +1 per brick,
-1 per lost ball, 0 for clearing the wall, rewards clipped to [-1, 1] per step.

Coordinates are integer pixels of the play area, origin top-left, x to the right, y down
(schema-games has y up; the layout here is its mirror image, so the numbers agree):

- walls: x in [0, 3) and [91, 94), y in [0, 3); the bottom is open, a ball reaching y >= 114
  is lost;
- bricks: row r (0 = top) spans y in [5 + 4r, 9 + 4r), column c spans x in [3 + 8c, 11 + 8c);
- paddle: top edge at y = 110 (``offset_paddle``: drawn each episode from (84, 110], i.e. a
  height above the floor in [3, 29) as in schema-games), x in [3, 68];
- middle wall: y in [29, 32) directly below the lowest brick row, x in [23, 71) (``middle``),
  [3, 47) (``left``) or [47, 91) (``right``);
- random target: a block of 2 x 4 bricks (16 x 16 px) at x in [3, 76), top y in {5, 9, 13}.

Physics: each step the paddle moves (NOOP / LEFT / RIGHT), then every ball advances in
``MAX_SPEED`` sub-steps; in sub-step k it moves one pixel along x if ``|vx| > k`` and then one
along y if ``|vy| > k``. A move into a solid cell is cancelled and that velocity component
flips (a reflection). A ball hitting the paddle from above leaves upwards at the current speed
limit, with a horizontal speed set by where it hit (outer fifths: 2, next: 1, centre pixel:
0, capped by the speed limit), as in Atari Breakout. Bricks hit are removed. The paddle is
solid only for falling balls, so a ball can never be trapped inside it. Balls are served
automatically (no FIRE action): a lost ball reappears at a random place in the middle of the
field, falling. Everything random (paddle height, target position, serves, half-negative
colours) is drawn from one seeded stream per game (:class:`envs.rng.StreamRNG`), so game ``i``
of a batch equals a single game with the same seed, on any device.

(Longer than 500 lines on purpose: the rules, the physics and the renderer all read and write
the same state tensors of one game; split, one game would be spread over several files.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from envs.actions import validate_actions
from envs.errors import ReprlError
from envs.gray import rgb_to_gray
from envs.rng import StreamRNG, fresh_seeds, per_env_seeds

# --- geometry (play-area pixels, y down) --------------------------------------------------
WIDTH, HEIGHT = 94, 117
WALL = 3
BRICK_W, BRICK_H = 8, 4
BRICK_COLS, BRICK_ROWS = 11, 6
NUM_BRICKS = BRICK_COLS * BRICK_ROWS
BRICK_Y0 = 5
BRICK_Y1 = BRICK_Y0 + BRICK_ROWS * BRICK_H  # 29
PADDLE_W, PADDLE_H = 23, 4
PADDLE_SPEED = 2
PADDLE_Y = HEIGHT - WALL - PADDLE_H  # 110
PADDLE_X_MIN, PADDLE_X_MAX = WALL, WIDTH - WALL - PADDLE_W  # 3, 68
OFFSET_HEIGHT_RANGE = (WALL, HEIGHT // 4)  # paddle bottom this far above the floor: [3, 29)
LOSE_Y = HEIGHT - WALL  # 114: a ball reaching this row is lost
MAX_SPEED = 2
SPEEDUP_HITS = (4, 8, 12)
MIDDLE_WALL_H = 3
MIDDLE_WALL_X = {
    "middle": (WIDTH // 4, WIDTH - WIDTH // 4),
    "left": (WALL, WIDTH // 2),
    "right": (WIDTH // 2, WIDTH - WALL),
}
TARGET_BRICKS = (2, 4)  # columns x rows of the random-target block
TARGET_W, TARGET_H = TARGET_BRICKS[0] * BRICK_W, TARGET_BRICKS[1] * BRICK_H
TARGET_X_RANGE = (WALL, WIDTH - WALL - TARGET_W + 1)  # [3, 76)
TARGET_ROWS = BRICK_ROWS - TARGET_BRICKS[1] + 1  # top row of the block in {0, 1, 2}
SERVE_X_RANGE = (WALL + 10, WIDTH - WALL - 10)  # [13, 81)
SERVE_Y_RANGE = (40, 60)
# horizontal speed after a paddle hit, by the hit pixel's offset from the paddle's left edge
PADDLE_ENGLISH = (-2,) * 5 + (-1,) * 6 + (0,) + (1,) * 6 + (2,) * 5

# --- colours (schema-games' classic palette) ----------------------------------------------
BACKGROUND = (0, 0, 0)
WALL_COLOR = (142, 142, 142)
PADDLE_COLOR = (200, 72, 73)
BALL_COLOR = (200, 72, 73)
BRICK_COLORS = (  # row 0 (top) .. row 5
    (66, 72, 200),
    (72, 160, 72),
    (163, 162, 42),
    (180, 122, 48),
    (198, 108, 58),
    (200, 72, 73),
)

ACTIONS = ("NOOP", "LEFT", "RIGHT")
VARIANTS = (
    "standard",
    "offset_paddle",
    "middle_wall",
    "random_target",
    "juggling",
    "half_negative",
)


@dataclass(frozen=True)
class VariantRules:
    """What distinguishes one variant from another.

    Attributes:
        bricks: the 11 x 6 wall of bricks is laid out each episode.
        num_balls: balls in play at once.
        start_speed: speed limit (px per step per axis) at the start of an episode, 1 or 2.
        default_lives: lives per episode; ``None`` means unlimited (the episode only ends at the
            time limit).
        offset_paddle: the paddle's height is drawn each episode.
        middle_wall: an unbreakable wall below the bricks.
        target: a single 2 x 4 brick block that jumps elsewhere when hit.
        half_negative: the left and right halves of the wall get two random colours, one
            worth +1, the other -1; the episode ends when the +1 half is cleared.
    """

    bricks: bool = True
    num_balls: int = 1
    start_speed: int = 1
    default_lives: int | None = 3
    offset_paddle: bool = False
    middle_wall: bool = False
    target: bool = False
    half_negative: bool = False


RULES: dict[str, VariantRules] = {
    "standard": VariantRules(),
    "offset_paddle": VariantRules(offset_paddle=True),
    "middle_wall": VariantRules(middle_wall=True),
    "random_target": VariantRules(bricks=False, target=True, start_speed=2),
    # schema-games juggling: no bricks, three balls; the paper scores it per fixed-length
    # episode (best 0), so lives are unlimited and only the time limit ends an episode.
    "juggling": VariantRules(bricks=False, num_balls=3, start_speed=2, default_lives=None),
    "half_negative": VariantRules(half_negative=True),
}

SEG_BACKGROUND, SEG_WALLS, SEG_PADDLE = 0, 1, 2
"""Fixed ids of :meth:`BreakoutBatch.render_segmentation` (balls, target and bricks follow)."""

FACTOR_NAMES = (
    "paddle_x",
    "paddle_y",
    "ball_x",
    "ball_y",
    "ball_vx",
    "ball_vy",
    "ball_speed",
    "bricks_left",
    "lives",
    "variant",
    "wall_x",
    "wall_y",
    "target_x",
    "target_y",
)
"""Ground-truth factors, in play-area pixels (y down). ``ball_*`` have one column per ball;
``wall_*`` (middle wall's top-left) and ``target_*`` (target block's top-left) are -1 when the
variant has none; ``lives`` is -1 when unlimited; ``variant`` indexes :data:`VARIANTS`."""


def _span(lo: int, hi: int, scale: float) -> tuple[int, int]:
    """Maps the play-area interval [lo, hi) to output pixels, at least one pixel wide."""
    a = int(np.floor(lo * scale))
    return a, max(int(np.floor(hi * scale)), a + 1)


def _box(h: int, w: int) -> tuple[Tensor, Tensor]:
    """Row and column offsets of every pixel of an h x w box, each (h*w,) int64."""
    oy, ox = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return oy.reshape(-1), ox.reshape(-1)


class BreakoutBatch:
    """N games of one Breakout variant, stepped together on ``device``.

    Args:
        num_envs: number of games N >= 1.
        variant: one of :data:`VARIANTS`.
        seed: seed of game 0, game i uses ``seed + i``; or one seed per game (a sequence of
            ``num_envs`` ints >= 0, e.g. from :func:`envs.rng.spawn_seeds`); ``None`` draws
            fresh entropy.
        device: torch device holding all state ("cpu", "cuda", ...).
        obs_size: (height, width) of the rendered observation, each >= 16.
        max_episode_steps: time limit; an episode reaching it is truncated.
        num_lives: lives per episode (>= 1), ``None`` for the variant's default.
        reward_clip: clip the reward to [-1, 1] per step, as schema-games does.
        wall_location: ``middle_wall`` only: "middle", "left" or "right".
        min_object_size: the ball(s), paddle and target are drawn at least this many output
            pixels wide and high (centred on their position, clipped to the frame), e.g. 2
            makes the ball 2 x 2 at 64 x 64 instead of 1 x 1. Bricks and walls keep their
            layout. The physics and the factors do not change.
        grayscale: observations are ITU-R 601 luma, (H, W, 1) (:func:`envs.gray.rgb_to_gray`
            of the RGB frame, drawn directly in luma); :meth:`render` stays RGB.

    Raises:
        ReprlError: an unknown variant or wall location, num_envs < 1, an obs_size under
            16 x 16, a non-positive time limit or number of lives, a bad seed or
            min_object_size.
    """

    def __init__(
        self,
        num_envs: int,
        variant: str = "standard",
        *,
        seed: int | Sequence[int] | None = None,
        device: torch.device | str = "cpu",
        obs_size: tuple[int, int] = (64, 64),
        max_episode_steps: int = 5000,
        num_lives: int | None = None,
        reward_clip: bool = True,
        wall_location: str = "middle",
        min_object_size: int = 1,
        grayscale: bool = False,
    ) -> None:
        if variant not in RULES:
            raise ReprlError(f"unknown Breakout variant {variant!r}; expected one of {VARIANTS}")
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ReprlError(f"num_envs must be a positive integer, got {num_envs!r}")
        if len(obs_size) != 2 or not all(
            isinstance(s, (int, np.integer)) and s >= 16 for s in obs_size
        ):
            raise ReprlError(f"obs_size must be (height, width), each an int >= 16, got {obs_size}")
        if max_episode_steps < 1:
            raise ReprlError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if num_lives is not None and num_lives < 1:
            raise ReprlError(f"num_lives must be >= 1 or None (unlimited), got {num_lives}")
        if wall_location not in MIDDLE_WALL_X:
            raise ReprlError(
                f"unknown wall_location {wall_location!r}; expected one of {tuple(MIDDLE_WALL_X)}"
            )
        if (
            not isinstance(min_object_size, (int, np.integer))
            or isinstance(min_object_size, bool)
            or not 1 <= min_object_size <= min(obs_size)
        ):
            raise ReprlError(
                f"min_object_size: expected an integer in [1, {min(obs_size)}] (pixels), "
                f"got {min_object_size!r}"
            )
        seeds = per_env_seeds(seed, int(num_envs))
        self.num_envs = int(num_envs)
        self.variant = variant
        self.rules = RULES[variant]
        self.device = torch.device(device)
        self.obs_size = (int(obs_size[0]), int(obs_size[1]))
        self.max_episode_steps = int(max_episode_steps)
        self.num_lives = num_lives if num_lives is not None else self.rules.default_lives
        self.reward_clip = reward_clip
        self.wall_location = wall_location
        self.num_balls = self.rules.num_balls
        self.min_object_size = int(min_object_size)
        self.grayscale = bool(grayscale)
        self._seed = seeds
        n, b, dev = self.num_envs, self.num_balls, self.device
        self.rng = StreamRNG(n, dev)
        self._ar = torch.arange(n, device=dev)
        zeros = lambda *s: torch.zeros(*s, dtype=torch.int64, device=dev)  # noqa: E731
        self.paddle_x, self.paddle_y = zeros(n), zeros(n)
        self.ball_x, self.ball_y, self.ball_vx, self.ball_vy = (zeros(n, b) for _ in range(4))
        self.speed, self.hits, self.lives, self.steps = zeros(n), zeros(n), zeros(n), zeros(n)
        self.target_x, self.target_y = zeros(n), zeros(n)
        self.bricks = torch.zeros(n, NUM_BRICKS, dtype=torch.bool, device=dev)
        self.brick_value = torch.ones(n, NUM_BRICKS, dtype=torch.int64, device=dev)
        self.brick_color = torch.zeros(n, NUM_BRICKS, 3, dtype=torch.uint8, device=dev)
        self._english = torch.tensor(PADDLE_ENGLISH, device=dev)
        self._paddle_dx = torch.tensor([0, -PADDLE_SPEED, PADDLE_SPEED], device=dev)
        self._classic = torch.tensor(BRICK_COLORS, dtype=torch.uint8, device=dev)
        self._row_color = self._classic.repeat_interleave(BRICK_COLS, 0)  # (66, 3)
        self._speedups = torch.tensor(SPEEDUP_HITS, device=dev)
        self._mw = (*MIDDLE_WALL_X[wall_location], BRICK_Y1, BRICK_Y1 + MIDDLE_WALL_H)
        self._build_renderer()
        self._needs_reset = True

    num_actions = len(ACTIONS)
    render_mode = "rgb_array"

    def get_action_meanings(self) -> list[str]:
        """The meaning of each action index, as ALE's ``get_action_meanings``:
        ``["NOOP", "LEFT", "RIGHT"]``."""
        return list(ACTIONS)

    # --- public API ------------------------------------------------------------------------
    @property
    def single_obs_shape(self) -> tuple[int, int, int]:
        """(H, W, C): one observation, C = 1 with ``grayscale``, else 3."""
        return (*self.obs_size, 1 if self.grayscale else 3)

    def reset(self, seed: int | Sequence[int | None] | None = None) -> Tensor:
        """Starts a new episode in every game.

        Args:
            seed: ``int`` seeds game i with ``seed + i``; a sequence gives one seed (or None) per
                game; ``None`` continues each game's stream (or, before the first reset, uses
                the constructor's seed).

        Returns:
            (N, H, W, C) uint8 observations (C = 1 with ``grayscale``, else 3).
        """
        if seed is None and self._needs_reset:
            seed = self._seed if self._seed is not None else fresh_seeds(1)[0]
        self.rng.seed_all(seed)
        self._reset_games(self._ar)
        self._needs_reset = False
        return self.render_obs()

    def validate_actions(self, actions: np.ndarray | Tensor) -> Tensor:
        """Checks an action batch (:func:`envs.actions.validate_actions`), moves it to the device.

        Args:
            actions: (N,) integers in {0: NOOP, 1: LEFT, 2: RIGHT}.

        Returns:
            (N,) int64 tensor on ``device``.

        Raises:
            ReprlError: wrong shape, non-integer values, or values outside {0, 1, 2}.
        """
        return validate_actions(actions, self.num_envs, len(ACTIONS)).to(self.device)

    def step(self, actions: np.ndarray | Tensor) -> StepResult:
        """Advances every game one step and resets the games whose episode ended.

        Args:
            actions: (N,) integers in {0: NOOP, 1: LEFT, 2: RIGHT}.

        Returns:
            A :class:`StepResult`; ``obs`` of a finished game is already the first frame of its
            next episode, its last frame is in ``final_obs``.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        a = self.validate_actions(actions)
        reward = self._physics(a)
        self.steps += 1
        if self.rules.half_negative:
            good_left = (self.bricks & (self.brick_value > 0)).any(1)
            terminated = ~good_left
        elif self.rules.bricks:
            terminated = ~self.bricks.any(1)
        else:
            terminated = torch.zeros_like(self.steps, dtype=torch.bool)
        if self.num_lives is not None:
            terminated = terminated | (self.lives <= 0)
        truncated = (self.steps >= self.max_episode_steps) & ~terminated
        obs = self.render_obs()
        done = terminated | truncated
        done_idx = done.nonzero().squeeze(1)
        final_obs = obs[done_idx]  # advanced indexing copies
        if done_idx.numel():
            final_factors = self.factors(done_idx)
            self._reset_games(done_idx)
            obs[done_idx] = self.render_obs(done_idx)
        else:
            final_factors = {}
        return StepResult(obs, reward, terminated, truncated, done_idx, final_obs, final_factors)

    _STATE = (
        "paddle_x",
        "paddle_y",
        "ball_x",
        "ball_y",
        "ball_vx",
        "ball_vy",
        "speed",
        "hits",
        "lives",
        "steps",
        "target_x",
        "target_y",
        "bricks",
        "brick_value",
        "brick_color",
        "_static",
    )

    def get_state(self, index: Tensor) -> dict[str, Tensor]:
        """A copy of the whole state of games ``index`` (int64 (K,)), random streams included."""
        names = (*self._STATE, "_static_gray") if self.grayscale else self._STATE
        state = {k: getattr(self, k)[index].clone() for k in names}
        state["rng_key"], state["rng_counter"] = self.rng.key[index], self.rng.counter[index]
        return state

    def set_state(self, index: Tensor, state: dict[str, Tensor]) -> None:
        """Puts games ``index`` back into a state taken by :meth:`get_state` with that index."""
        for k in (*self._STATE, "_static_gray") if self.grayscale else self._STATE:
            getattr(self, k)[index] = state[k]
        self.rng.key[index], self.rng.counter[index] = state["rng_key"], state["rng_counter"]

    def factors(self, index: Tensor | None = None) -> dict[str, Tensor]:
        """Ground-truth factors of the current state (see :data:`FACTOR_NAMES`).

        Args:
            index: int64 (K,) games to report, default all.

        Returns:
            name -> int64 tensor of shape (K,), or (K, num_balls) for ``ball_*``.
        """
        i = self._ar if index is None else index
        k = i.numel()
        const = lambda v: torch.full((k,), v, dtype=torch.int64, device=self.device)  # noqa: E731
        r = self.rules
        return {
            "paddle_x": self.paddle_x[i],
            "paddle_y": self.paddle_y[i],
            "ball_x": self.ball_x[i],
            "ball_y": self.ball_y[i],
            "ball_vx": self.ball_vx[i],
            "ball_vy": self.ball_vy[i],
            "ball_speed": self.speed[i],
            "bricks_left": self.bricks[i].sum(1),
            "lives": self.lives[i] if self.num_lives is not None else const(-1),
            "variant": const(VARIANTS.index(self.variant)),
            "wall_x": const(self._mw[0] if r.middle_wall else -1),
            "wall_y": const(self._mw[2] if r.middle_wall else -1),
            "target_x": self.target_x[i] if r.target else const(-1),
            "target_y": self.target_y[i] if r.target else const(-1),
        }

    # --- episode start ---------------------------------------------------------------------
    def _reset_games(self, idx: Tensor) -> None:
        """Lays out a new episode in games ``idx`` (int64 (K,)) and renders their background."""
        r, k = self.rules, idx.numel()
        u = self.rng.draw(idx, 6)  # fixed number of draws per reset: batch == single game
        self.steps[idx] = 0
        self.hits[idx] = 0
        self.speed[idx] = r.start_speed
        self.lives[idx] = self.num_lives if self.num_lives is not None else 0
        self.paddle_x[idx] = PADDLE_X_MIN + u[:, 0] % (PADDLE_X_MAX - PADDLE_X_MIN + 1)
        if r.offset_paddle:
            lo, hi = OFFSET_HEIGHT_RANGE
            self.paddle_y[idx] = HEIGHT - PADDLE_H - (lo + u[:, 1] % (hi - lo))
        else:
            self.paddle_y[idx] = PADDLE_Y
        self.bricks[idx] = r.bricks
        if r.half_negative:
            # two distinct colours and which half is worth +1
            c0 = u[:, 2] % len(BRICK_COLORS)
            c1 = (c0 + 1 + u[:, 3] % (len(BRICK_COLORS) - 1)) % len(BRICK_COLORS)
            sign = torch.where(u[:, 4] % 2 == 0, 1, -1)
            left = self._brick_left_half  # (66,) bool
            self.brick_value[idx] = torch.where(left, sign[:, None], -sign[:, None])
            cols = torch.where(
                left[None, :, None], self._classic[c0][:, None], self._classic[c1][:, None]
            )
            self.brick_color[idx] = cols
        else:
            self.brick_color[idx] = self._row_color.expand(k, -1, -1)
        if r.target:
            self.target_x[idx] = TARGET_X_RANGE[0] + u[:, 2] % (
                TARGET_X_RANGE[1] - TARGET_X_RANGE[0]
            )
            self.target_y[idx] = BRICK_Y0 + BRICK_H * (u[:, 3] % TARGET_ROWS)
        self._serve(idx, torch.ones(k, self.num_balls, dtype=torch.bool, device=self.device))
        self._draw_static(idx)

    def _serve(self, idx: Tensor, balls: Tensor) -> None:
        """Puts balls ``balls`` ((K, B) bool) of games ``idx`` back in play, falling."""
        b = self.num_balls
        u = self.rng.draw(idx, 3 * b).view(-1, 3, b)
        s = self.speed[idx, None]
        x = SERVE_X_RANGE[0] + u[:, 0] % (SERVE_X_RANGE[1] - SERVE_X_RANGE[0])
        y = SERVE_Y_RANGE[0] + u[:, 1] % (SERVE_Y_RANGE[1] - SERVE_Y_RANGE[0])
        vx = u[:, 2] % (2 * s + 1) - s
        vy = 1 + (u[:, 2] >> 8) % s
        for state, new in (
            (self.ball_x, x),
            (self.ball_y, y),
            (self.ball_vx, vx),
            (self.ball_vy, vy),
        ):
            state[idx] = torch.where(balls, new, state[idx])

    # --- physics ---------------------------------------------------------------------------
    def _solid(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """What occupies cells (x, y), each (N, B) int64.

        Returns:
            (static, brick, brick_index, target) — static: walls and the middle wall (bool);
            brick: a live brick (bool); brick_index: its flat index (row * 11 + col);
            target: the random-target block (bool).
        """
        static = (x < WALL) | (x >= WIDTH - WALL) | (y < WALL)
        if self.rules.middle_wall:
            x0, x1, y0, y1 = self._mw
            static = static | ((x >= x0) & (x < x1) & (y >= y0) & (y < y1))
        if self.rules.bricks:
            row = ((y - BRICK_Y0).clamp(0, BRICK_Y1 - BRICK_Y0 - 1)) // BRICK_H
            col = ((x - WALL).clamp(0, WIDTH - 2 * WALL - 1)) // BRICK_W
            index = row * BRICK_COLS + col
            inside = (y >= BRICK_Y0) & (y < BRICK_Y1)
            brick = inside & self.bricks.gather(1, index)
        else:
            index = torch.zeros_like(x)
            brick = torch.zeros_like(static)
        if self.rules.target:
            tx, ty = self.target_x[:, None], self.target_y[:, None]
            target = (x >= tx) & (x < tx + TARGET_W) & (y >= ty) & (y < ty + TARGET_H)
        else:
            target = torch.zeros_like(static)
        return static, brick, index, target

    def _on_paddle(self, x: Tensor, y: Tensor) -> Tensor:
        """(N, B) bool: cells (x, y) lie on the paddle."""
        px, py = self.paddle_x[:, None], self.paddle_y[:, None]
        return (x >= px) & (x < px + PADDLE_W) & (y >= py) & (y < py + PADDLE_H)

    def _physics(self, a: Tensor) -> Tensor:
        """Moves paddle and balls one step; returns the (N,) float32 reward."""
        self.paddle_x = (self.paddle_x + self._paddle_dx[a]).clamp(PADDLE_X_MIN, PADDLE_X_MAX)
        x, y, vx, vy = self.ball_x, self.ball_y, self.ball_vx, self.ball_vy
        gained = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        for k in range(MAX_SPEED):
            for axis in (0, 1):
                v = vx if axis == 0 else vy
                move = v.abs() > k
                step = torch.sign(v) * move
                nx, ny = (x + step, y) if axis == 0 else (x, y + step)
                static, brick, index, target = self._solid(nx, ny)
                paddle = (vy > 0) & self._on_paddle(nx, ny)
                hit = (static | brick | target | paddle) & move
                if axis == 0:
                    vx = torch.where(hit, -vx, vx)
                    x = torch.where(hit, x, nx)
                else:
                    bounce = paddle & move
                    speed = self.speed[:, None]
                    offset = (x - self.paddle_x[:, None]).clamp(0, PADDLE_W - 1)
                    english = torch.minimum(torch.maximum(self._english[offset], -speed), speed)
                    vx = torch.where(bounce, english, vx)
                    vy = torch.where(bounce, -speed, torch.where(hit, -vy, vy))
                    y = torch.where(hit, y, ny)
                if self.rules.bricks:
                    gained += self._hit_bricks(brick & move, index)
                if self.rules.target:
                    gained += self._hit_target(target & move, x, y)
        self.ball_x, self.ball_y, self.ball_vx, self.ball_vy = x, y, vx, vy
        lost = y >= LOSE_Y
        n_lost = lost.sum(1)
        reward = gained - n_lost
        if bool(n_lost.any()):
            games = n_lost.nonzero().squeeze(1)
            self.lives[games] -= n_lost[games]
            self._serve(games, lost[games])
        if self.reward_clip:
            reward = reward.clamp(-1, 1)
        return reward.to(torch.float32)

    def _hit_bricks(self, hit: Tensor, index: Tensor) -> Tensor:
        """Removes hit bricks ((N, B) bool at flat ``index``); returns (N,) reward gained."""
        if not bool(hit.any()):
            return torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        games, balls = hit.nonzero(as_tuple=True)
        bricks = index[games, balls]
        value = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        value.index_add_(0, games, self.brick_value[games, bricks])
        self.bricks[games, bricks] = False
        self._erase_bricks(games, bricks)
        self._count_hits(games)
        return value

    def _hit_target(self, hit: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Moves the target of games whose ball hit it; returns (N,) reward gained (+1)."""
        if not bool(hit.any()):
            return torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        scored = hit.any(1)
        games = scored.nonzero().squeeze(1)
        self._count_hits(games)
        # several candidates at once; take the first that moved and covers no ball
        c = 8
        u = self.rng.draw(games, 2 * c).view(-1, 2, c)
        tx = TARGET_X_RANGE[0] + u[:, 0] % (TARGET_X_RANGE[1] - TARGET_X_RANGE[0])
        ty = BRICK_Y0 + BRICK_H * (u[:, 1] % TARGET_ROWS)
        bx, by = x[games][:, None, :], y[games][:, None, :]
        inside_x = (bx >= tx[..., None]) & (bx < tx[..., None] + TARGET_W)
        covers = (inside_x & (by >= ty[..., None]) & (by < ty[..., None] + TARGET_H)).any(2)
        moved = (tx != self.target_x[games, None]) | (ty != self.target_y[games, None])
        pick = (moved & ~covers).to(torch.int8).argmax(1, keepdim=True)
        self.target_x[games] = tx.gather(1, pick).squeeze(1)
        self.target_y[games] = ty.gather(1, pick).squeeze(1)
        return scored.to(torch.int64)

    def _count_hits(self, games: Tensor) -> None:
        """Counts a hit for ``games`` and raises their speed limit at the speed-up counts."""
        self.hits.index_add_(0, games, torch.ones_like(games))
        passed = (self.hits[games, None] >= self._speedups).sum(1)
        self.speed[games] = (self.rules.start_speed + passed).clamp(max=MAX_SPEED)

    # --- rendering -------------------------------------------------------------------------
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


@dataclass
class StepResult:
    """What :meth:`BreakoutBatch.step` returns (all tensors on the env's device).

    Attributes:
        obs: (N, H, W, C) uint8, the current frames (first frame of a new episode where done).
        reward: (N,) float32.
        terminated: (N,) bool, the episode ended by the game's rules.
        truncated: (N,) bool, the episode hit the time limit (and did not terminate).
        done_index: (K,) int64 games whose episode ended this step.
        final_obs: (K, H, W, C) uint8 last frames of those episodes.
        final_factors: factors of those last frames, name -> (K,) or (K, B).
    """

    obs: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    done_index: Tensor
    final_obs: Tensor
    final_factors: dict[str, Tensor]
