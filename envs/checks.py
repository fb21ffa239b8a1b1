"""Small value checks that every layer's argument validation shares."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer: a Python or numpy int, not a bool (``True`` is an int
    to Python, never a count or a seed here)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


__all__ = ["is_int"]
