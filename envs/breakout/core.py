"""The batched Breakout core: N games' state in tensors, episode starts and physics.

The rules are described in :mod:`envs.breakout`; the frames are drawn by
:class:`envs.breakout.render.BreakoutRenderer`, a mixin of :class:`BreakoutBatch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
from torch import Tensor

from envs.actions import validate_actions
from envs.batched import StepResult
from envs.breakout.geometry import (
    BRICK_COLORS,
    BRICK_COLS,
    BRICK_H,
    BRICK_Y0,
    BRICK_Y1,
    HEIGHT,
    LOSE_Y,
    MIDDLE_WALL_H,
    MIDDLE_WALL_X,
    NUM_BRICKS,
    OFFSET_HEIGHT_RANGE,
    PADDLE_ENGLISH,
    PADDLE_H,
    PADDLE_SPEED,
    PADDLE_X_MAX,
    PADDLE_X_MIN,
    PADDLE_Y,
    SERVE_X_RANGE,
    SERVE_Y_RANGE,
    SPEEDUP_HITS,
    TARGET_H,
    TARGET_ROWS,
    TARGET_W,
    TARGET_X_RANGE,
)
from envs.breakout.physics import (
    SUBSTEPS,
    Balls,
    Layout,
    compiled_substeps,
    speed_limit,
    substeps,
)
from envs.breakout.render import BreakoutRenderer
from envs.breakout.rules import ACTIONS, RULES, VARIANTS
from envs.errors import ReprlError
from envs.rng import StreamRNG, fresh_seeds, per_env_seeds


class BreakoutBatch(BreakoutRenderer):
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
        compile: run the balls' sub-steps (:func:`envs.breakout.physics.substeps`) through
            ``torch.compile`` as one graph: the same numbers; on one CPU thread the whole
            step 2.3x faster for one game, 1.5x at N = 16, 1.1x at 256 (each eager op's
            overhead dominates at small N); the first step pays the compilation (seconds;
            cached on disk by torch for later processes). The random target variant steps
            eagerly either way.

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
        compile: bool = False,
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
        r = self.rules
        self.compiled = bool(compile)
        self._layout = Layout(
            r.bricks,
            r.target,
            self._mw if r.middle_wall else None,
            r.start_speed,
            skip_idle=not self.compiled and self.device.type == "cpu",
        )
        self._substeps = (
            compiled_substeps(self._layout)
            if self.compiled
            else partial(substeps, layout=self._layout)
        )
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
    def _physics(self, a: Tensor) -> Tensor:
        """Moves paddle and balls one step; returns the (N,) float32 reward."""
        self.paddle_x = (self.paddle_x + self._paddle_dx[a]).clamp(PADDLE_X_MIN, PADDLE_X_MAX)
        zero = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        balls = Balls(
            self.ball_x, self.ball_y, self.ball_vx, self.ball_vy,
            self.speed, self.hits, self.bricks, zero,
        )  # fmt: skip
        args = (
            self.paddle_x, self.paddle_y, self.brick_value, self.target_x, self.target_y,
            self._english, self._speedups,
        )  # fmt: skip
        if self.rules.target:  # a hit moves the target (random draws) before the next sub-step
            for sub in SUBSTEPS:
                balls, target_hit = substeps(balls, *args, layout=self._layout, steps=(sub,))
                self.hits, self.speed = balls.hits, balls.speed
                gained = balls.gained + self._hit_target(target_hit, balls.x, balls.y)
                balls = balls._replace(gained=gained, hits=self.hits, speed=self.speed)
        else:
            balls, _ = self._substeps(balls, *args)
        if self.rules.bricks:
            removed = self.bricks & ~balls.bricks
            if bool(removed.any()):
                self._erase_bricks(*removed.nonzero(as_tuple=True))
        self.ball_x, self.ball_y, self.ball_vx, self.ball_vy = balls.x, balls.y, balls.vx, balls.vy
        self.speed, self.hits, self.bricks = balls.speed, balls.hits, balls.bricks
        lost = balls.y >= LOSE_Y
        n_lost = lost.sum(1)
        reward = balls.gained - n_lost
        if bool(n_lost.any()):
            games = n_lost.nonzero().squeeze(1)
            self.lives[games] -= n_lost[games]
            self._serve(games, lost[games])
        if self.reward_clip:
            reward = reward.clamp(-1, 1)
        return reward.to(torch.float32)

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
        self.speed[games] = speed_limit(self.hits[games], self._speedups, self.rules.start_speed)
