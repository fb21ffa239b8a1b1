"""The lab's maps (text format, rooms, labmaze mazes, layout splits) and domains (looks, splits)."""

import numpy as np
import pytest
import torch

from envs.errors import ReprlError
from envs.lab import LAB_DOMAINS, maze_text, navigate_layouts, parse_map, room_text
from envs.lab.domains import (
    COLOR_NAMES,
    PATTERNS,
    SHAPES,
    TEX_SIZE,
    build_palette,
    pattern,
    shape_mask,
)

# labmaze 1.0.6's maze of seed 0 (DeepMind Lab's generator, as reprl calls it); a new labmaze
# that draws other mazes from the same seeds changes every LabNavigate split: this pins it
LABMAZE_SEED_0 = """\
***********
*         *
* *     * *
* * P  G* *
* *** *** *
* *G      *
* *  P*** *
* *       *
* *** *P  *
*      G  *
***********"""


def test_parse_map_reads_walls_spawns_goals() -> None:
    m = parse_map("\n*****\n*P.G*\n* * *\n*****\n\n")
    assert m.shape == (4, 5)
    assert m.walls.sum() == 4 * 5 - 5
    assert m.spawns.tolist() == [[1, 1]] and m.goals.tolist() == [[1, 3]]
    assert m.free.tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 3]]
    assert m.text == "*****\n*P G*\n* * *\n*****"  # '.' is a free cell, written as a space
    label = m.components()
    assert label[1, 1] == label[2, 3] and label[0, 0] == -1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("***\n***", "at least one free cell, got none"),
        ("", "at least one row"),
        ("****\n*  \n****", "rectangular"),
        ("****\n*  *\n** *", "closed by walls .* row 2, column 2"),
        ("****\n*#P*\n****", r"only the characters .* got \['#'\]"),
        (3, "expected the map as text, got int"),
    ],
)
def test_bad_maps_are_refused(text, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        parse_map(text)


def test_room_text() -> None:
    assert room_text(2, 3) == "*****\n*   *\n*   *\n*****"
    with pytest.raises(ReprlError, match="room size"):
        room_text(0, 3)


def test_labmaze_mazes_are_pinned_and_parse() -> None:
    assert maze_text(0) == LABMAZE_SEED_0
    m = parse_map(maze_text(0))
    assert len(m.spawns) >= 1 and len(m.goals) >= 1
    assert len({int(c) for c in m.components()[~m.walls]}) == 1  # one connected maze
    with pytest.raises(ReprlError, match="odd integers"):
        maze_text(0, 10, 11)
    with pytest.raises(ReprlError, match="maze seed"):
        maze_text(-1)


def test_navigate_layout_splits_are_disjoint_and_deterministic() -> None:
    train = navigate_layouts("train", 32)
    test = navigate_layouts("test", 32)
    assert len(train) == len(test) == 32 and train == navigate_layouts("train", 32)
    walls = lambda t: parse_map(t).walls.tobytes()  # noqa: E731
    assert not {walls(t) for t in train} & {walls(t) for t in test}
    assert len({walls(t) for t in test}) == 32
    assert train[:8] == navigate_layouts("train", 8)  # more layouts extend the same list
    with pytest.raises(ReprlError, match="layout split"):
        navigate_layouts("all", 4)


def test_domain_splits_hold_out_combinations_only() -> None:
    d = LAB_DOMAINS
    train, test, every = (set(d.splits[k]) for k in ("train", "test", "all"))
    assert len(train) == 24 and len(test) == 8 and train | test == every and not train & test
    assert every == {(r, s) for r in range(len(d.room_looks)) for s in range(len(d.object_sets))}
    # every room look and every object set is seen in training, only the pairs are new
    assert {r for r, _ in train} == set(range(len(d.room_looks)))
    assert {s for _, s in train} == set(range(len(d.object_sets)))
    # a look is good in every set or bad in every set; good and bad looks differ in shape and
    # colour within a set
    good = {g for g, _ in d.object_sets}
    bad = {b for _, b in d.object_sets}
    assert not good & bad and d.goal_look not in good | bad
    for g, b in d.object_sets:
        og, ob = d.object_looks[g], d.object_looks[b]
        assert og.shape != ob.shape and og.color != ob.color
    for look in (*d.room_looks,):
        assert look.wall_texture in PATTERNS and look.floor_texture in PATTERNS
        assert look.wall_color in COLOR_NAMES and look.floor_color in COLOR_NAMES
    assert all(o.shape in SHAPES for o in d.object_looks)
    assert len(set(d.room_looks)) == len(d.room_looks)
    with pytest.raises(ReprlError, match="unknown domain split 'dev'"):
        d.combos("dev")


def test_textures_and_palette() -> None:
    for name in PATTERNS:
        p = pattern(name)
        assert p.shape == (TEX_SIZE, TEX_SIZE) and p.dtype == torch.float32
        assert float(p.min()) > 0 and float(p.max()) <= 1
    assert len({pattern(n).numpy().tobytes() for n in PATTERNS}) == len(PATTERNS)
    for name in SHAPES:
        m = shape_mask(name)
        assert 0 < int((m > 0).sum()) <= m.numel() and float(m.max()) <= 1
    assert bool((shape_mask("cube") > 0).all())  # the cube fills its billboard
    pal = build_palette()
    # the renderer takes max(wall texel, floor texel): every wall texel is above every floor's
    assert int(pal.wall_base.min()) > int(pal.floor_base.max()) + TEX_SIZE**2 - 1
    assert int(pal.look_base.min()) >= int(pal.wall_base.max()) + 2 * TEX_SIZE**2
    assert pal.rgba.dtype == torch.int32 and pal.rgba.shape == pal.segment.shape
    rgba = pal.rgba.view(torch.uint8).view(-1, 4)
    assert bool((rgba[:, 3] == 255).all())
    with pytest.raises(ReprlError, match="unknown texture pattern"):
        pattern("zigzag")
    with pytest.raises(ReprlError, match="unknown object shape"):
        shape_mask("torus")


def test_noise_texture_is_fixed_data() -> None:
    a, b = pattern("noise").numpy(), pattern("noise").numpy()
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) > 50
