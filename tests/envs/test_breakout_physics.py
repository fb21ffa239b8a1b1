"""Breakout physics against hand-worked expectations.

Each test places the ball by hand (play-area pixels, y down) and steps with NOOP, so the
expected positions can be worked out on paper from the rules in ``envs/breakout.py``.
"""

import dataclasses

import numpy as np
import pytest
import torch

from envs import breakout as B
from envs.breakout import BreakoutBatch
from envs.errors import ReprlError

NOOP, LEFT, RIGHT = 0, 1, 2


def game(variant: str = "standard", **kw) -> BreakoutBatch:
    g = BreakoutBatch(1, variant, seed=0, **kw)
    g.reset()
    return g


def place(g: BreakoutBatch, x, y, vx, vy, ball: int = 0) -> None:
    g.ball_x[0, ball], g.ball_y[0, ball] = x, y
    g.ball_vx[0, ball], g.ball_vy[0, ball] = vx, vy


def ball(g: BreakoutBatch, i: int = 0) -> tuple[int, int, int, int]:
    f = g.factors()
    return tuple(int(f[k][0, i]) for k in ("ball_x", "ball_y", "ball_vx", "ball_vy"))


def park_paddle(g: BreakoutBatch, x: int = B.PADDLE_X_MAX) -> None:
    g.paddle_x[0] = x


# vicariousinc/schema-games (schema_games/breakout/constants.py), as in shared/REFERENCES.md,
# typed here independently of envs/breakout.py
SCHEMA_WIDTH, SCHEMA_HEIGHT, SCHEMA_WALL = 94, 117, 3
SCHEMA_BRICK = (8, 4)  # width, height
SCHEMA_BRICK_GRID = (11, 6)  # columns, rows
SCHEMA_PADDLE = (23, 4)  # width, height
SCHEMA_MAX_BALL_SPEED, SCHEMA_PADDLE_SPEED, SCHEMA_LIVES = 2, 2, 3
SCHEMA_SPEEDUPS = (4, 8, 12)  # brick hits after which the ball speeds up


def test_geometry_matches_schema_games() -> None:
    """The frame at native resolution (1 px per play-area pixel), measured, against the
    schema-games numbers typed above."""
    g = BreakoutBatch(1, "standard", seed=0, obs_size=(SCHEMA_HEIGHT, SCHEMA_WIDTH))
    frame = g.reset()[0].numpy()
    assert frame.shape == (SCHEMA_HEIGHT, SCHEMA_WIDTH, 3)
    wall = (frame == np.array(B.WALL_COLOR)).all(-1)
    w = SCHEMA_WALL
    assert wall[:, :w].all() and wall[:, -w:].all() and wall[:w].all()
    assert not wall[w:, w : SCHEMA_WIDTH - w].any()  # nothing else is wall
    # bricks: every pixel between the side walls, in 6 bands of 4 rows, one colour per band
    colour = ~(frame == 0).all(-1) & ~wall
    rows = np.flatnonzero(colour[:, w : SCHEMA_WIDTH - w].all(1))
    cols, nrows = SCHEMA_BRICK_GRID
    assert len(rows) == nrows * SCHEMA_BRICK[1]
    assert (np.diff(rows) == 1).all()  # one block of bricks
    bands = frame[rows, w].reshape(nrows, SCHEMA_BRICK[1], 3)
    assert (bands == bands[:, :1]).all() and len({tuple(b[0]) for b in bands}) == nrows
    assert SCHEMA_WIDTH - 2 * w == cols * SCHEMA_BRICK[0]  # 11 bricks of 8 fill the width
    assert g.bricks.shape[1] == cols * nrows and bool(g.bricks.all())
    # the paddle: its bounding box in the bottom quarter
    paddle = (frame[90:] == np.array(B.PADDLE_COLOR)).all(-1)
    ys, xs = np.nonzero(paddle)
    assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == SCHEMA_PADDLE[::-1]
    assert paddle.sum() == SCHEMA_PADDLE[0] * SCHEMA_PADDLE[1]
    # the ball: one pixel of its colour between the bricks and the paddle
    ball = (frame[rows.max() + 1 : 90] == np.array(B.BALL_COLOR)).all(-1)
    assert ball.sum() == 1
    # speeds and lives
    f = g.factors()
    assert int(f["lives"][0]) == SCHEMA_LIVES
    x0 = int(g.paddle_x[0])
    g.step([RIGHT if x0 < 40 else LEFT])
    assert abs(int(g.paddle_x[0]) - x0) == SCHEMA_PADDLE_SPEED
    assert B.MAX_SPEED == SCHEMA_MAX_BALL_SPEED and B.SPEEDUP_HITS == SCHEMA_SPEEDUPS
    assert max(abs(v) for v in B.PADDLE_ENGLISH) == SCHEMA_MAX_BALL_SPEED


def ball_pixels(min_object_size: int, x: int, y: int) -> set[tuple[int, int]]:
    g = BreakoutBatch(1, "juggling", seed=0, min_object_size=min_object_size)
    g.reset()
    g.ball_x[0], g.ball_y[0] = x, y  # all three balls on one spot
    frame = g.render()[0].numpy()
    ys, xs = np.nonzero((frame[:55] == np.array(B.BALL_COLOR)).all(-1))  # above the paddle
    return set(zip(ys.tolist(), xs.tolist()))


def test_min_object_size_draws_the_ball_bigger_at_64() -> None:
    # ball at (x 50, y 70): 1 px at (70 * 64 // 117, 50 * 64 // 94) = (38, 34)
    assert ball_pixels(1, 50, 70) == {(38, 34)}
    # 2 x 2 centred on the ball's centre (50.5 * 64 / 94, 70.5 * 64 / 117) = (34.38, 38.56):
    # columns from floor(34.38 - 1 + 0.5) = 33, rows from floor(38.56 - 0.5) = 38
    assert ball_pixels(2, 50, 70) == {(38, 33), (38, 34), (39, 33), (39, 34)}
    # 3 x 3: from floor(c - 1), i.e. columns 33..35, rows 37..39
    assert ball_pixels(3, 50, 70) == {(y, x) for y in (37, 38, 39) for x in (33, 34, 35)}
    # at the right wall the box stays inside the frame
    assert len(ball_pixels(3, 90, 70)) == 9


def test_min_object_size_leaves_the_factors_unchanged() -> None:
    actions = np.random.default_rng(0).integers(0, 3, (150, 4))
    runs = []
    for m in (1, 2):
        g = BreakoutBatch(4, "standard", seed=6, min_object_size=m, max_episode_steps=60)
        g.reset()
        trace = []
        for a in actions:
            r = g.step(a)
            trace.append((r.reward.clone(), {k: v.clone() for k, v in g.factors().items()}))
        runs.append(trace)
    for (r1, f1), (r2, f2) in zip(*runs):
        assert torch.equal(r1, r2)
        assert all(torch.equal(f1[k], f2[k]) for k in f1)
    big = BreakoutBatch(1, "standard", seed=6, min_object_size=2).reset()[0]
    small = BreakoutBatch(1, "standard", seed=6).reset()[0]
    diff = (big != small).any(-1)
    assert 1 <= int(diff.sum()) <= 3  # only the ball grew (the paddle is already 2 px high)


@pytest.mark.parametrize("bad", [0, 65, 1.5, True])
def test_bad_min_object_size_is_refused(bad) -> None:
    with pytest.raises(ReprlError, match="min_object_size: expected an integer in"):
        BreakoutBatch(1, min_object_size=bad)


def test_left_wall_reflection_speed_1() -> None:
    g = game("juggling")
    for i in (1, 2):
        place(g, 50, 50, 0, 1, ball=i)  # the other balls out of the way, falling slowly
    place(g, 4, 60, -1, 1)
    g.step([NOOP])
    assert ball(g) == (3, 61, -1, 1)  # x=3 is free (wall is x < 3)
    g.step([NOOP])
    assert ball(g) == (3, 62, 1, 1)  # x=2 is wall: move cancelled, vx flips
    g.step([NOOP])
    assert ball(g) == (4, 63, 1, 1)


def test_right_wall_reflection_speed_2() -> None:
    g = game("juggling")
    place(g, 89, 60, 2, 1)
    g.step([NOOP])
    # sub-step 0: x 89 -> 90, y 60 -> 61; sub-step 1: x 91 is wall -> vx = -2, x stays 90
    assert ball(g) == (90, 61, -2, 1)
    g.step([NOOP])
    assert ball(g) == (88, 62, -2, 1)


def test_ceiling_reflection() -> None:
    g = game("juggling")  # no bricks, so the ball reaches the ceiling
    place(g, 50, 4, 0, -1)
    g.step([NOOP])
    assert ball(g) == (50, 3, 0, -1)
    r = g.step([NOOP])
    assert ball(g) == (50, 3, 0, 1)  # y = 2 is wall
    assert float(r.reward[0]) == 0.0


@pytest.mark.parametrize(
    ("offset", "speed", "after"),
    [
        (0, 1, (30, 109, -1, -1)),
        (0, 2, (29, 108, -2, -2)),  # at speed 2 the bounce happens in sub-step 0 ...
        (5, 2, (35, 108, -1, -2)),  # ... and sub-step 1 already moves it up (and sideways
        (11, 2, (41, 108, 0, -2)),  # only if |vx| = 2)
        (13, 1, (43, 109, 1, -1)),
        (22, 2, (53, 108, 2, -2)),
    ],
)
def test_paddle_bounce_depends_on_hit_position(offset: int, speed: int, after: tuple) -> None:
    g = game()
    g.paddle_x[0] = 30
    g.speed[0] = speed
    # falling straight down onto the paddle's top row (y = 110) at x = 30 + offset
    place(g, 30 + offset, 109, 0, 1)
    g.step([NOOP])
    assert ball(g) == after


def test_paddle_moves_two_pixels_and_stops_at_the_walls() -> None:
    g = game()
    park_paddle(g, 30)
    g.step([LEFT])
    assert int(g.paddle_x[0]) == 28
    g.step([RIGHT])
    g.step([RIGHT])
    assert int(g.paddle_x[0]) == 32
    park_paddle(g, B.PADDLE_X_MIN + 1)
    g.step([LEFT])
    assert int(g.paddle_x[0]) == B.PADDLE_X_MIN
    park_paddle(g, B.PADDLE_X_MAX)
    g.step([RIGHT])
    assert int(g.paddle_x[0]) == B.PADDLE_X_MAX


def test_rising_ball_passes_through_paddle() -> None:
    g = game()
    g.paddle_x[0] = 30
    place(g, 40, 112, 0, -1)  # inside the paddle's rows, going up
    g.step([NOOP])
    assert ball(g)[1:] == (111, 0, -1)


def test_middle_wall_reflection() -> None:
    g = game("middle_wall")
    park_paddle(g)
    place(g, 40, 33, 0, -1)
    g.step([NOOP])
    assert ball(g) == (40, 32, 0, -1)
    g.step([NOOP])
    assert ball(g) == (40, 32, 0, 1)  # y = 31 is the wall's bottom row ([29, 32))
    # outside the wall's span (x < 23) the ball goes up to the bricks
    place(g, 20, 33, 0, -1)
    g.step([NOOP])
    g.step([NOOP])
    assert ball(g)[1] == 31


def test_brick_hit_removes_exactly_that_brick() -> None:
    g = game()
    park_paddle(g)
    before = g.bricks.clone()
    place(g, 20, 30, 0, -1)  # column (20 - 3) // 8 = 2, under the bottom row (row 5)
    r = g.step([NOOP])
    assert float(r.reward[0]) == 0.0 and ball(g)[1] == 29
    r = g.step([NOOP])
    assert float(r.reward[0]) == 1.0
    assert ball(g) == (20, 29, 0, 1)
    gone = (before & ~g.bricks).nonzero()[:, 1].tolist()
    assert gone == [5 * B.BRICK_COLS + 2]
    assert int(g.factors()["bricks_left"][0]) == B.NUM_BRICKS - 1
    # the brick's pixels are background now, its neighbours are not
    frame = g.render()[0]
    sy, sx = g.obs_size[0] / B.HEIGHT, g.obs_size[1] / B.WIDTH
    cy, cx = int((5 + 4 * 5 + 2) * sy), int((3 + 8 * 2 + 4) * sx)
    assert frame[cy, cx].tolist() == list(B.BACKGROUND)
    assert frame[cy, int((3 + 8 * 3 + 4) * sx)].tolist() == list(B.BRICK_COLORS[5])


def test_two_bricks_in_one_step_reward_is_clipped() -> None:
    g = game()
    park_paddle(g)
    g.speed[0] = 2
    place(g, 20, 29, 0, -2)  # sub-step 0 hits row 5; bounces down, sub-step 1 moves away
    r = g.step([NOOP])
    assert float(r.reward[0]) == 1.0
    g2 = game(reward_clip=False)
    park_paddle(g2)
    # a ball moving diagonally into the corner between two bricks hits both (x, then y)
    g2.bricks[0, 5 * B.BRICK_COLS + 2] = False  # open a pocket at row 5, column 2
    # in the pocket's top-right pixel: x + 1 = 27 is column 3 (a brick), y - 1 = 24 is row 4
    place(g2, 26, 25, 1, -1)
    r = g2.step([NOOP])
    assert float(r.reward[0]) == 2.0
    assert int(g2.bricks[0].sum()) == B.NUM_BRICKS - 3


def test_speed_rises_after_4_brick_hits() -> None:
    g = game()
    park_paddle(g)
    g.bricks[0, 5 * B.BRICK_COLS : 6 * B.BRICK_COLS] = True
    speeds = []
    for col in range(5):
        place(g, 3 + 8 * col + 4, 29, 0, -1)
        g.step([NOOP])
        speeds.append(int(g.speed[0]))
    assert speeds == [1, 1, 1, 2, 2]


def test_lost_ball_costs_a_life_and_is_served_again() -> None:
    g = game()
    park_paddle(g, B.PADDLE_X_MIN)
    place(g, 80, 112, 0, 1)
    r = g.step([NOOP])
    assert float(r.reward[0]) == 0.0 and ball(g)[1] == 113
    r = g.step([NOOP])
    assert float(r.reward[0]) == -1.0
    assert int(g.lives[0]) == 2
    x, y, vx, vy = ball(g)
    assert B.SERVE_X_RANGE[0] <= x < B.SERVE_X_RANGE[1]
    assert B.SERVE_Y_RANGE[0] <= y < B.SERVE_Y_RANGE[1]
    assert vy > 0 and abs(vx) <= 1
    assert not bool(r.terminated[0])


def test_last_life_ends_the_episode() -> None:
    g = game(num_lives=1)
    park_paddle(g, B.PADDLE_X_MIN)
    place(g, 80, 113, 0, 1)
    r = g.step([NOOP])
    assert bool(r.terminated[0]) and not bool(r.truncated[0])
    assert r.done_index.tolist() == [0]
    assert int(r.final_factors["lives"][0]) == 0
    assert int(g.lives[0]) == 1  # already reset


def test_clearing_the_wall_ends_the_episode_with_zero_extra_reward() -> None:
    g = game()
    park_paddle(g)
    g.bricks[:] = False
    g.bricks[0, 5 * B.BRICK_COLS] = True  # one brick left: row 5, column 0
    place(g, 5, 29, 0, -1)
    r = g.step([NOOP])
    assert float(r.reward[0]) == 1.0 and bool(r.terminated[0])


def test_juggling_keeps_three_balls_and_never_ends_for_lack_of_bricks() -> None:
    g = BreakoutBatch(8, "juggling", seed=1, max_episode_steps=400)
    g.reset()
    rng = np.random.default_rng(0)
    total = np.zeros(8)
    for _t in range(1, 400):
        r = g.step(rng.integers(0, 3, 8))
        total += r.reward.numpy()
        assert g.factors()["ball_x"].shape == (8, 3)
        assert not bool(r.terminated.any())
        assert not bool(r.truncated.any())
        assert bool((r.reward <= 0).all())
    r = g.step(rng.integers(0, 3, 8))
    assert bool(r.truncated.all()) and not bool(r.terminated.any())
    assert (total < 0).any()  # random play loses balls; the best possible score is 0
    assert int(g.factors()["bricks_left"].sum()) == 0


def test_offset_paddle_heights_stay_in_range_and_vary() -> None:
    g = BreakoutBatch(256, "offset_paddle", seed=3)
    g.reset()
    y = g.factors()["paddle_y"].numpy()
    lo, hi = B.OFFSET_HEIGHT_RANGE  # the paddle's bottom is [3, 29) px above the floor
    assert y.min() >= B.HEIGHT - B.PADDLE_H - (hi - 1) == 85
    assert y.max() <= B.HEIGHT - B.PADDLE_H - lo == 110
    assert len(np.unique(y)) > 15
    s = BreakoutBatch(64, "standard", seed=3)
    s.reset()
    assert set(s.factors()["paddle_y"].tolist()) == {B.PADDLE_Y}


def test_random_target_moves_when_hit() -> None:
    g = game("random_target")
    park_paddle(g)
    tx, ty = int(g.target_x[0]), int(g.target_y[0])
    bottom = ty + B.TARGET_H
    place(g, tx + 3, bottom + 1, 0, -1)
    r = g.step([NOOP])
    assert float(r.reward[0]) == 0.0
    r = g.step([NOOP])  # y = bottom - 1 is the block
    assert float(r.reward[0]) == 1.0
    nx, ny = int(g.target_x[0]), int(g.target_y[0])
    assert (nx, ny) != (tx, ty)
    assert B.TARGET_X_RANGE[0] <= nx < B.TARGET_X_RANGE[1]
    assert ny in (5, 9, 13)
    x, y = ball(g)[:2]
    assert not (nx <= x < nx + B.TARGET_W and ny <= y < ny + B.TARGET_H)
    assert int(g.hits[0]) == 1


def test_half_negative_halves_have_opposite_rewards() -> None:
    g = BreakoutBatch(16, "half_negative", seed=5)
    g.reset()
    v = g.brick_value.view(16, B.BRICK_ROWS, B.BRICK_COLS)
    left, right = v[:, :, :5], v[:, :, 6:]
    assert bool((left == left[:, :1, :1]).all()) and bool((right == -left[:, :1, :1]).all())
    assert {int(s) for s in v[:, 0, 0]} == {-1, 1}
    one = BreakoutBatch(1, "half_negative", seed=5)
    one.reset()
    one.paddle_x[0] = B.PADDLE_X_MAX
    place(one, 5, 29, 0, -1)  # left half, bottom row
    r = one.step([NOOP])
    assert float(r.reward[0]) == float(one.brick_value[0, 5 * B.BRICK_COLS])


def test_ball_never_leaves_the_play_area() -> None:
    for variant in B.VARIANTS:
        g = BreakoutBatch(32, variant, seed=11)
        g.reset()
        rng = np.random.default_rng(1)
        for _ in range(300):
            g.step(rng.integers(0, 3, 32))
            f = g.factors()
            x, y = f["ball_x"], f["ball_y"]
            assert bool(((x >= B.WALL) & (x < B.WIDTH - B.WALL)).all()), variant
            assert bool(((y >= B.WALL) & (y < B.LOSE_Y)).all()), variant
            assert bool((f["ball_vy"] != 0).all()), variant  # no purely horizontal balls
            assert bool((f["ball_vx"].abs() <= f["ball_speed"][:, None]).all()), variant


def test_state_tensors_live_on_the_requested_device() -> None:
    g = BreakoutBatch(2, seed=0, device=torch.device("cpu"))
    obs = g.reset()
    assert obs.device.type == "cpu" and obs.dtype == torch.uint8


def _trajectory(g: BreakoutBatch, steps: int) -> list[tuple[torch.Tensor, ...]]:
    """Every step's frames, rewards, ends and factors under one fixed action sequence."""
    rng = np.random.default_rng(4)
    out = [(g.reset(),)]
    for _ in range(steps):
        r = g.step(rng.integers(0, 3, g.num_envs))
        f = g.factors()
        out.append((r.obs, r.reward, r.terminated, r.truncated, r.final_obs, *f.values()))
    return out


def _same(a: list[tuple[torch.Tensor, ...]], b: list[tuple[torch.Tensor, ...]]) -> bool:
    return all(
        len(x) == len(y) and all(torch.equal(u, v) for u, v in zip(x, y)) for x, y in zip(a, b)
    )


@pytest.mark.parametrize("variant", B.VARIANTS)
def test_skipping_idle_substeps_changes_nothing(variant: str) -> None:
    """The CPU's eager shortcut (no brick bookkeeping in sub-steps where no brick broke) and
    the branch-free sub-steps that torch.compile and GPUs run give the same games, frame for
    frame, through brick hits, speed-ups, lost balls and episode ends."""
    skip = BreakoutBatch(16, variant, seed=2, max_episode_steps=300)
    assert skip._layout.skip_idle
    full = BreakoutBatch(16, variant, seed=2, max_episode_steps=300)
    full._layout = dataclasses.replace(full._layout, skip_idle=False)
    a, b = _trajectory(skip, 400), _trajectory(full, 400)
    assert _same(a, b)
    ends = sum(int((s[2] | s[3]).sum()) for s in a[1:])
    scored = sum(int((s[1] != 0).sum()) for s in a[1:])
    assert ends > 0 and scored > 0  # the run went through episode ends and rewards


@pytest.mark.parametrize(
    "variant",
    ["standard", pytest.param("juggling", marks=pytest.mark.slow)]
    + [pytest.param(v, marks=pytest.mark.slow) for v in ("middle_wall", "half_negative")],
)
def test_compiled_physics_is_the_eager_physics(variant: str) -> None:
    """``compile=True`` (the sub-steps as one torch.compile graph) steps the same games as the
    eager physics, bit for bit."""
    eager = BreakoutBatch(16, variant, seed=3, max_episode_steps=300)
    compiled = BreakoutBatch(16, variant, seed=3, max_episode_steps=300, compile=True)
    assert compiled.compiled and not compiled._layout.skip_idle
    assert _same(_trajectory(eager, 400), _trajectory(compiled, 400))


def test_compiled_physics_serves_many_batches() -> None:
    """Ten batch sizes, more than torch.compile's 8 recompilations of one function: the layout's
    compiled sub-steps make the batch size dynamic instead of failing (``fullgraph``), and every
    batch still steps the eager physics' games."""
    for n in range(3, 23, 2):
        compiled = BreakoutBatch(n, seed=n, max_episode_steps=50, compile=True)
        eager = BreakoutBatch(n, seed=n, max_episode_steps=50)
        assert _same(_trajectory(compiled, 60), _trajectory(eager, 60)), n
