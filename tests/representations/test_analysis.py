"""Probe glue: which factor entries count as absent."""

import numpy as np

from representations.analysis import _absent


def test_absent_follows_the_objects_x_position() -> None:
    columns = ["ball_x[0]", "ball_vx[0]", "ball_x[1]", "ball_vx[1]", "lives", "wall_x", "wall_y"]
    values = np.array([
        [10, -1, -1, -1, -1, 23, 29],   # ball 1 absent; vx=-1 of ball 0 is a real value
        [12, 1, 40, -1, 2, -1, -1],     # no middle wall
    ])  # fmt: skip
    expected = np.array([
        [False, False, True, True, False, False, False],
        [False, False, False, False, False, True, True],
    ])  # fmt: skip
    np.testing.assert_array_equal(_absent(columns, values), expected)
