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

The package: :mod:`envs.breakout.geometry` (layout and colours), :mod:`envs.breakout.rules`
(actions, variants, factor names, return bounds), :mod:`envs.breakout.core` (the batched
state, episode starts and physics), :mod:`envs.breakout.physics` (the balls' sub-steps as one
pure tensor function, which ``compile=True`` runs through ``torch.compile``),
:mod:`envs.breakout.render` (frames and segmentation),
:mod:`envs.breakout.family` (the ``reprl/Breakout*-v0`` ids, :data:`BREAKOUT`).
"""

from envs.batched import (
    StepResult,
)
from envs.breakout.core import (
    BreakoutBatch,
)
from envs.breakout.family import (
    BREAKOUT,
    BREAKOUT_IDS,
    SCHEMA_TARGETS,
    make_breakout_batch,
)
from envs.breakout.geometry import (
    BACKGROUND,
    BALL_COLOR,
    BRICK_COLORS,
    BRICK_COLS,
    BRICK_H,
    BRICK_ROWS,
    BRICK_W,
    BRICK_Y0,
    BRICK_Y1,
    HEIGHT,
    LOSE_Y,
    MAX_SPEED,
    MIDDLE_WALL_H,
    MIDDLE_WALL_X,
    NUM_BRICKS,
    OFFSET_HEIGHT_RANGE,
    PADDLE_COLOR,
    PADDLE_ENGLISH,
    PADDLE_H,
    PADDLE_SPEED,
    PADDLE_W,
    PADDLE_X_MAX,
    PADDLE_X_MIN,
    PADDLE_Y,
    SERVE_X_RANGE,
    SERVE_Y_RANGE,
    SPEEDUP_HITS,
    TARGET_BRICKS,
    TARGET_H,
    TARGET_ROWS,
    TARGET_W,
    TARGET_X_RANGE,
    WALL,
    WALL_COLOR,
    WIDTH,
)
from envs.breakout.render import (
    BreakoutRenderer,
)
from envs.breakout.rules import (
    ACTIONS,
    FACTOR_NAMES,
    RANDOM_TARGET_FIRST_HIT,
    RANDOM_TARGET_MIN_GAP,
    RULES,
    SEG_BACKGROUND,
    SEG_PADDLE,
    SEG_WALLS,
    VARIANTS,
    VariantRules,
    variant_best_return,
)

__all__ = [
    "ACTIONS",
    "BACKGROUND",
    "BALL_COLOR",
    "BREAKOUT",
    "BREAKOUT_IDS",
    "BRICK_COLORS",
    "BRICK_COLS",
    "BRICK_H",
    "BRICK_ROWS",
    "BRICK_W",
    "BRICK_Y0",
    "BRICK_Y1",
    "FACTOR_NAMES",
    "HEIGHT",
    "LOSE_Y",
    "MAX_SPEED",
    "MIDDLE_WALL_H",
    "MIDDLE_WALL_X",
    "NUM_BRICKS",
    "OFFSET_HEIGHT_RANGE",
    "PADDLE_COLOR",
    "PADDLE_ENGLISH",
    "PADDLE_H",
    "PADDLE_SPEED",
    "PADDLE_W",
    "PADDLE_X_MAX",
    "PADDLE_X_MIN",
    "PADDLE_Y",
    "RANDOM_TARGET_FIRST_HIT",
    "RANDOM_TARGET_MIN_GAP",
    "RULES",
    "SCHEMA_TARGETS",
    "SEG_BACKGROUND",
    "SEG_PADDLE",
    "SEG_WALLS",
    "SERVE_X_RANGE",
    "SERVE_Y_RANGE",
    "SPEEDUP_HITS",
    "TARGET_BRICKS",
    "TARGET_H",
    "TARGET_ROWS",
    "TARGET_W",
    "TARGET_X_RANGE",
    "VARIANTS",
    "WALL",
    "WALL_COLOR",
    "WIDTH",
    "BreakoutBatch",
    "BreakoutRenderer",
    "StepResult",
    "VariantRules",
    "make_breakout_batch",
    "variant_best_return",
]
