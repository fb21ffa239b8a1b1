"""The ground-truth segmentation of Breakout against the rendered frame it describes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs.breakout import (
    BACKGROUND,
    BALL_COLOR,
    NUM_BRICKS,
    PADDLE_COLOR,
    SEG_BACKGROUND,
    SEG_PADDLE,
    SEG_WALLS,
    WALL_COLOR,
    BreakoutBatch,
)
from envs.errors import ReprlError
from envs.segmentation import has_segmentation, segmented_frames


def _played(variant: str, n: int = 8, steps: int = 60, **kw) -> BreakoutBatch:
    core = BreakoutBatch(n, variant, seed=1, **kw)
    core.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        core.step(torch.randint(0, 3, (n,), generator=gen))
    return core


@pytest.mark.parametrize(
    "variant", ["standard", "middle_wall", "random_target", "juggling", "offset_paddle"]
)
@pytest.mark.parametrize("min_object_size", [1, 2])
def test_every_pixel_shows_the_colour_of_its_object(variant: str, min_object_size: int) -> None:
    core = _played(variant, min_object_size=min_object_size)
    rgb = core.render().numpy()
    seg = core.render_segmentation().numpy()
    b = core.num_balls
    assert seg.shape == rgb.shape[:3] and seg.dtype == np.int64
    assert seg.min() >= 0 and seg.max() < core.num_segments
    fixed = {SEG_BACKGROUND: BACKGROUND, SEG_WALLS: WALL_COLOR, SEG_PADDLE: PADDLE_COLOR}
    fixed.update({SEG_PADDLE + 1 + j: BALL_COLOR for j in range(b)})
    for sid, color in fixed.items():
        assert (rgb[seg == sid] == color).all(), sid
    # each brick is one solid colour, and a brick id appears only while the brick stands
    first_brick = SEG_PADDLE + 2 + b
    for g in range(core.num_envs):
        for sid in np.unique(seg[g][seg[g] >= first_brick]):
            assert core.bricks[g, sid - first_brick]
            assert len(np.unique(rgb[g][seg[g] == sid], axis=0)) == 1
    # the paddle and every ball are visible somewhere (nothing covers the paddle but a ball)
    assert all((seg[g] == SEG_PADDLE).any() for g in range(core.num_envs))


def test_bricks_get_their_own_ids_and_disappear_when_hit() -> None:
    core = BreakoutBatch(1, "standard", seed=0)
    core.reset()
    seg = core.render_segmentation()[0]
    first = SEG_PADDLE + 2 + core.num_balls
    assert set(torch.unique(seg[seg >= first]).tolist()) == set(range(first, first + NUM_BRICKS))
    core.bricks[0, 5] = False
    assert not (core.render_segmentation()[0] == first + 5).any()


def test_target_block_has_one_id() -> None:
    core = _played("random_target", steps=5)
    seg = core.render_segmentation().numpy()
    target = SEG_PADDLE + 1 + core.num_balls
    assert all((seg[g] == target).sum() > 0 for g in range(core.num_envs))


def test_segmented_frames_and_envs_without_segmentation() -> None:
    frames, ids = segmented_frames("reprl/BreakoutStandard-v0", 20, num_envs=8, seed=0)
    assert frames.shape == (20, 64, 64, 3) and frames.dtype == np.uint8
    assert ids.shape == (20, 64, 64)
    again = segmented_frames("reprl/BreakoutStandard-v0", 20, num_envs=8, seed=0)
    np.testing.assert_array_equal(again[1], ids)
    assert has_segmentation("reprl/BreakoutMiddleWall-v0")
    assert not has_segmentation("ALE/Breakout-v5")
    with pytest.raises(ReprlError, match="no ground-truth segmentation"):
        segmented_frames("reprl/CoinRun-v0", 4)
    with pytest.raises(ReprlError, match="unknown env id"):
        segmented_frames("reprl/Pong-v0", 4)
    with pytest.raises(ReprlError, match="num_frames: expected an integer >= 1"):
        segmented_frames("reprl/BreakoutStandard-v0", 0)


def test_background_ids_name_what_is_no_object() -> None:
    from envs.segmentation import background_ids

    assert background_ids("reprl/BreakoutStandard-v0") == (SEG_BACKGROUND,)
    assert background_ids("reprl/LabCollect-v0") == (0, 1, 2)  # ceiling, floor, walls
    _, ids = segmented_frames("reprl/LabCollect-v0", 8, num_envs=4, seed=0)
    assert ids.max() >= 3  # some object in view among 8 frames
    with pytest.raises(ReprlError, match="no ground-truth segmentation"):
        background_ids("ALE/Breakout-v5")
