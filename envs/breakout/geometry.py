"""Breakout's geometry and colours: play-area pixels, y down (see :mod:`envs.breakout`)."""

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
