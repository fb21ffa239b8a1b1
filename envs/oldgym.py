"""Importing the old ``gym`` package quietly.

procgen needs the old ``gym`` (0.26), and stable-baselines3 imports it whenever it is installed
(``stable_baselines3/common/vec_env/patch_gym.py``); ``gym`` then prints a four-line notice
about itself to stderr. reprl imports it once, first, with stderr silenced, so no command shows
the notice (importing this module does it). Without ``gym`` installed nothing happens.
"""

from __future__ import annotations

import contextlib
import io
import warnings


def import_old_gym_quietly() -> None:
    """Import ``gym`` (if installed) with its notice and warnings suppressed; idempotent."""
    with (
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
        contextlib.suppress(ImportError),  # no old gym installed: nothing to quiet
    ):
        warnings.simplefilter("ignore")
        import gym  # noqa: F401


import_old_gym_quietly()
