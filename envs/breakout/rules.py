"""Breakout's actions, variants and their rules, factor and segment names, return bounds."""

from __future__ import annotations

from dataclasses import dataclass

from envs.breakout.geometry import NUM_BRICKS
from envs.errors import ReprlError

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

RANDOM_TARGET_FIRST_HIT = 76
"""Fewest steps from an episode's start to the first target hit in RandomTarget: the ball is
served at y >= 40 (falling, at most 2 px per step), must reach the paddle (top row 110) and rise
to the lowest target row (bottom edge at y 28): 35 steps down, 1 to bounce, 40 up (measured on
the engine in the tests)."""

RANDOM_TARGET_MIN_GAP = 81
"""Fewest steps between two target hits in RandomTarget when the ball returns to the paddle in
between: from y 29 (just below the lowest possible target) down to the paddle at 2 px per step
(40 steps), the bounce (1) and back up (40)."""


def variant_best_return(variant: str, max_episode_steps: int = 5000) -> float:
    """The best attainable return of one episode of ``variant`` (see
    :func:`envs.registry.best_return` for how each bound is worked out).

    Args:
        variant: one of :data:`VARIANTS`.
        max_episode_steps: the time limit, which bounds RandomTarget's return.

    Returns:
        66 (every brick) for Standard, OffsetPaddle, MiddleWall; 33 for HalfNegative (the
        expected positive half); 0 for Juggling; ``1 + (T - 76) // 81`` (0 for T < 76) for
        RandomTarget.

    Raises:
        ReprlError: an unknown variant.
    """
    if variant not in RULES:
        raise ReprlError(f"unknown Breakout variant {variant!r}; expected one of {VARIANTS}")
    rules = RULES[variant]
    if rules.half_negative:
        return NUM_BRICKS / 2  # the mean of 36 (left half +1) and 30 (right half +1)
    if rules.bricks:
        return float(NUM_BRICKS)
    if rules.target:
        steps = int(max_episode_steps)
        if steps < RANDOM_TARGET_FIRST_HIT:
            return 0.0
        return float(1 + (steps - RANDOM_TARGET_FIRST_HIT) // RANDOM_TARGET_MIN_GAP)
    return 0.0
