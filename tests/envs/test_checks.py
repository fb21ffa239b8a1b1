"""envs.checks: the one integer check the envs' argument validation shares."""

from __future__ import annotations

import numpy as np
import pytest

from envs.checks import is_int


@pytest.mark.parametrize("value", [0, -3, 2**40, np.int64(5), np.uint8(7), np.int32(-1)])
def test_integers_are_ints(value: object) -> None:
    assert is_int(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, np.float32(2), "3", None])
def test_bools_floats_and_strings_are_not(value: object) -> None:
    assert not is_int(value)
