"""The lab's first-person renderer against scenes worked out by hand.

Geometry of ``envs/lab/render.py`` at the default 64 x 64 and 90 degree field of view: the
focal length is f = 32 px; screen column w looks at lateral offset ``(w + 0.5 - 32) / 32`` per
unit of depth; a wall 1 high at perpendicular distance d fills the rows with
``|h + 0.5 - 32| < 16 / d``; an object (0.5 x 0.5 cells on the floor) at depth D fills the
columns with ``|w + 0.5 - 32| < 8 / D`` and the rows with ``0 <= h + 0.5 - 32 < 16 / D``.
Positions are map units (100 a cell), yaw in degrees (0 along +x, 90 along +y).
"""

import math

import numpy as np
import pytest
import torch

from envs.errors import ReprlError
from envs.lab import LAB_DOMAINS, LabBatch
from envs.lab.domains import SEG_CEILING, SEG_FLOOR, SEG_OBJECTS, SEG_WALLS, build_palette

TURN_RIGHT = 5

# a 7 x 4 room with one wall cell (a pillar) at row 3, column 6
PILLAR = """\
*********
*       *
*       *
*     * *
*       *
*       *
*********"""

HALL = """\
***********
*         *
*         *
*         *
***********"""

CUBE = next(i for i, o in enumerate(LAB_DOMAINS.object_looks) if o.shape == "cube")


def world(layout: str, **kw) -> LabBatch:
    g = LabBatch(1, "collect", seed=0, layouts=[layout], num_good=1, num_bad=0, **kw)
    g.reset()
    return g


def put_object(g: LabBatch, x: int, y: int, look: int = CUBE) -> None:
    g.obj_x[0, 0], g.obj_y[0, 0], g.obj_look[0, 0] = x, y, look
    g.obj_alive[0, 0] = True


def span(mask: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(mask)
    assert idx.size and (np.diff(idx) == 1).all(), "expected one run of pixels"
    return int(idx[0]), int(idx[-1])


@pytest.mark.parametrize(
    ("x", "d", "first", "last"), [(500, 1, 16, 47), (400, 2, 24, 39), (200, 4, 28, 35)]
)
def test_facing_a_wall_at_distance_d_fills_the_expected_columns_and_rows(
    x: int, d: int, first: int, last: int
) -> None:
    """The pillar's face is at x = 6 cells, 1 cell wide (y in [3, 4]); the camera at y = 3.5
    looking along +x sees it at depth d = 6 - x / 100: its rows are |h + 0.5 - 32| < 16 / d and
    its columns |w + 0.5 - 32| < 16 / d (half a cell either side at depth d)."""
    g = world(PILLAR)
    g.obj_alive[:] = False
    seg = g.render_segmentation(poses=[[x, 350, 0]])[0].numpy()
    wall = seg == SEG_WALLS
    height = wall.sum(0)  # wall pixels per column
    assert (height[first : last + 1] == 32 // d).all()  # the pillar's columns, one height
    for w in (first, (first + last) // 2, last):
        assert span(wall[:, w]) == (first, last)  # centred rows: 32 // d of them
    # the back wall at x = 8 cells is farther, so lower, just beside the pillar
    assert height[first - 1] < 32 // d and height[last + 1] < 32 // d
    # above the wall the ceiling, below it the floor
    assert (seg[:first, first:last] == SEG_CEILING).all()
    assert (seg[last + 1 :, first:last] == SEG_FLOOR).all()


@pytest.mark.parametrize(
    ("depth", "cols", "rows"),
    [(1, (24, 39), (32, 47)), (2, (28, 35), (32, 39)), (4, (30, 33), (32, 35))],
)
def test_an_object_straight_ahead_is_centred_and_scales_with_distance(
    depth: int, cols: tuple[int, int], rows: tuple[int, int]
) -> None:
    g = world(HALL)
    put_object(g, 650, 250)
    seg = g.render_segmentation(poses=[[650 - 100 * depth, 250, 0]])[0].numpy()
    obj = seg == SEG_OBJECTS
    r, c = np.nonzero(obj)
    assert (c.min(), c.max()) == cols and (r.min(), r.max()) == rows
    assert c.min() + c.max() == 63  # centred: symmetric about the image's middle
    assert obj.sum() == (16 // depth) ** 2  # 16 / D pixels wide and high (a cube is opaque)
    # the same pixels carry the cube's colours in the RGB frame
    frame = g.render(poses=[[650 - 100 * depth, 250, 0]])[0].numpy()
    palette = build_palette()
    base = int(palette.look_base[CUBE])
    cube_rgb = palette.rgba[base : base + 256].view(torch.uint8).view(256, 4)[:, :3].numpy()
    colours = {tuple(p) for p in cube_rgb}
    assert all(tuple(p) in colours for p in frame[obj])


def test_an_object_at_the_side_appears_on_that_side() -> None:
    g = world(HALL)
    put_object(g, 450, 350)  # 2 cells ahead, 1 cell to the right (+y)
    c = np.nonzero(g.render_segmentation(poses=[[250, 250, 0]])[0].numpy() == SEG_OBJECTS)[1]
    # centre 32 + 32 * 1 / 2 = 48, half-width 8 / 2 = 4: columns 44..51
    assert (c.min(), c.max()) == (44, 51)


def test_a_wall_between_agent_and_object_hides_it() -> None:
    g = world(PILLAR)
    put_object(g, 750, 350)  # behind the pillar (x in [6, 7] cells, row 3)
    seg = g.render_segmentation(poses=[[250, 350, 0]])[0].numpy()
    assert not (seg == SEG_OBJECTS).any()
    # moved one row down, out of the pillar's shadow, it shows
    put_object(g, 750, 450)
    assert (g.render_segmentation(poses=[[250, 450, 0]])[0].numpy() == SEG_OBJECTS).any()
    # and the factor says the same about the agent's own view
    g.agent_x[0], g.agent_y[0], g.heading[0] = 250, 350, 0
    put_object(g, 750, 350)
    g.render_obs()
    assert g.factors()["obj_visible"].tolist() == [[0]]
    g.agent_y[0] = 450
    put_object(g, 750, 450)
    g.render_obs()
    assert g.factors()["obj_visible"].tolist() == [[1]]


def test_a_nearer_object_hides_a_farther_one() -> None:
    g = LabBatch(1, "collect", seed=0, layouts=[HALL], num_good=1, num_bad=1)
    g.reset()
    g.obj_x[0], g.obj_y[0] = torch.tensor([450, 850]), torch.tensor([250, 250])
    g.obj_look[0] = CUBE
    seg = g.render_segmentation(poses=[[250, 250, 0]])[0].numpy()
    near, far = (seg == SEG_OBJECTS).sum(), (seg == SEG_OBJECTS + 1).sum()
    assert near == 64 and far == 0  # the far cube (16 / 6 px) lies wholly behind the near one


def test_turning_360_degrees_returns_the_same_image() -> None:
    g = LabBatch(3, "collect", seed=4)
    first = g.reset().clone()
    pose = {k: g.factors()[k].clone() for k in ("agent_x", "agent_y")}
    frames = [g.step(np.full(3, TURN_RIGHT)).obs.clone() for _ in range(36)]  # 36 x 10 degrees
    assert torch.equal(frames[-1], first)
    assert not any(torch.equal(f, first) for f in frames[:-1])
    for k, v in pose.items():
        assert torch.equal(g.factors()[k], v)  # turning does not move


def test_camera_api_matches_the_agents_own_view() -> None:
    g = LabBatch(4, "navigate", seed=1, num_layouts=4)
    g.reset()
    f = g.factors()
    poses = torch.stack([f["agent_x"], f["agent_y"], f["agent_yaw"]], 1)
    assert torch.equal(g.render(poses=poses), g.render())
    # a zero pitch takes the general (shifted-horizon) path: same pixels
    level = torch.cat([poses, torch.zeros(4, 1, dtype=poses.dtype)], 1)
    assert torch.equal(g.render(poses=level), g.render())
    assert torch.equal(g.render_segmentation(poses=level), g.render_segmentation())
    # one scene from several poses: world 2 three times
    many = g.render(torch.tensor([2, 2, 2]), poses[[2, 2, 2]] + torch.tensor([[0, 0, 0]]))
    assert all(torch.equal(m, g.render()[2]) for m in many)


def test_pitch_shifts_the_horizon_by_whole_rows() -> None:
    g = world(HALL)
    put_object(g, 650, 250)
    pitch = math.degrees(math.atan(5 / 32))  # f tan(pitch) = 5 rows
    level = g.render(poses=[[350, 250, 0]])[0]
    up = g.render(poses=[[350, 250, 0, pitch]])[0]
    down = g.render(poses=[[350, 250, 0, -pitch]])[0]
    assert torch.equal(up[5:], level[:-5])  # looking up moves the picture down
    assert torch.equal(down[:-5], level[5:])


def test_yaw_conventions() -> None:
    """Yaw 90 looks along +y (down the map), 180 along -x."""
    g = world(HALL)
    put_object(g, 250, 350)  # one cell below the camera
    seg = lambda yaw: g.render_segmentation(poses=[[250, 250, yaw]])[0].numpy()  # noqa: E731
    assert (seg(90) == SEG_OBJECTS).any() and not (seg(270) == SEG_OBJECTS).any()
    assert not (seg(0) == SEG_OBJECTS).any()
    put_object(g, 150, 250)  # one cell to the left (-x)
    assert (seg(180) == SEG_OBJECTS).any() and not (seg(0) == SEG_OBJECTS).any()


def test_segmentation_ids_and_frames_agree() -> None:
    g = LabBatch(8, "collect", seed=3)
    g.reset()
    for _ in range(5):
        g.step(np.random.default_rng(0).integers(0, 6, 8))
    seg = g.render_segmentation()
    assert seg.shape == (8, 64, 64) and seg.dtype == torch.int64
    assert int(seg.min()) >= 0 and int(seg.max()) < g.num_segments
    visible = g.factors()["obj_visible"]
    for j in range(g.num_objects):
        shown = (seg == SEG_OBJECTS + j).flatten(1).any(1).to(torch.int64)
        assert torch.equal(shown, visible[:, j])
    assert (seg == SEG_WALLS).any() and (seg == SEG_FLOOR).any() and (seg == SEG_CEILING).any()


def test_room_looks_change_the_pixels_not_the_geometry() -> None:
    g = world(PILLAR)
    g.obj_alive[:] = False
    frames, segs = [], []
    for r in range(len(LAB_DOMAINS.room_looks)):
        g.room_look[0] = r
        frames.append(g.render(poses=[[250, 250, 30]])[0])
        segs.append(g.render_segmentation(poses=[[250, 250, 30]])[0])
    assert all(torch.equal(s, segs[0]) for s in segs)
    assert len({f.numpy().tobytes() for f in frames}) == len(frames)


@pytest.mark.parametrize(
    ("poses", "match"),
    [
        ([[50, 50, 0]], "inside a wall or outside the map"),
        ([[650, 350, 0]], r"inside a wall .*row 3, column 6"),
        ([[-10, 350, 0]], "inside a wall or outside the map"),
        ([[250, 250]], r"expected \(1, 3\) x, y, yaw or \(1, 4\)"),
        ([[250, 250, 0], [250, 250, 0]], r"expected \(1, 3\)"),
        ([[250, 250, float("nan")]], "finite"),
        ([[250, 250, 0, 90]], r"pitch must lie in \(-90, 90\)"),
    ],
)
def test_bad_camera_poses_are_refused(poses: list, match: str) -> None:
    g = world(PILLAR)
    before = {k: v.clone() for k, v in g.factors().items()}
    with pytest.raises(ReprlError, match=match):
        g.render(poses=poses)
    for k, v in g.factors().items():
        assert torch.equal(v, before[k])


def test_segmented_frames_of_a_lab_id() -> None:
    from envs.segmentation import has_segmentation, segmented_frames

    assert has_segmentation("reprl/LabCollectTest-v0")
    frames, ids = segmented_frames("reprl/LabCollect-v0", 6, num_envs=4, seed=0)
    assert frames.shape == (6, 64, 64, 3) and ids.shape == (6, 64, 64)
    assert set(np.unique(ids)) <= set(range(SEG_OBJECTS + 6))
