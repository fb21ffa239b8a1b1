"""Probe glue: which factor entries count as absent; frames that do not fit the encoder."""

import numpy as np
import pytest

from envs.errors import ReprlError
from envs.exploration import collect
from representations import InputSpec, check_frame_shape, make_representation
from representations.analysis import _absent, probe


def test_absent_follows_the_objects_x_position() -> None:
    columns = ["ball_x[0]", "ball_vx[0]", "ball_x[1]", "ball_vx[1]", "lives", "wall_x", "wall_y"]
    values = np.array(
        [
            [10, -1, -1, -1, -1, 23, 29],  # ball 1 absent; vx=-1 of ball 0 is a real value
            [12, 1, 40, -1, 2, -1, -1],  # no middle wall
        ]
    )
    expected = np.array(
        [
            [False, False, True, True, False, False, False],
            [False, False, False, False, False, True, True],
        ]
    )
    np.testing.assert_array_equal(_absent(columns, values), expected)


def test_frames_that_do_not_fit_the_encoder_are_refused(tmp_path) -> None:
    data = tmp_path / "d.h5"
    collect("reprl/BreakoutStandard-v0", 32, data, num_envs=4, progress=False)
    model = make_representation("beta_vae", input_shape=(1, 64, 64), latent_dim=4)
    with pytest.raises(
        ReprlError,
        match=r"dataset .*d\.h5 has frames \(H, W, C\) = \(64, 64, 3\) \(3 channel\(s\)\); the "
        r"model expects \(C, H, W\) = \(1, 64, 64\) \(L\).*input_shape=\[3, 64, 64\]",
    ):
        probe(model, data)


def test_check_frame_shape() -> None:
    spec = InputSpec.for_shape((3, 64, 64))
    check_frame_shape(spec, (64, 64, 3), "env")  # fits: no error
    with pytest.raises(ReprlError, match=r"env has frames \(H, W, C\) = \(32, 64, 3\)"):
        check_frame_shape(spec, (32, 64, 3), "env")
    with pytest.raises(ReprlError, match=r"env: expected frames of shape \(H, W, C\), got"):
        check_frame_shape(spec, (64, 64), "env")
