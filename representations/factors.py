"""A dataset's ground-truth factors as the metrics and the supervised baseline read them.

:func:`factor_data` gives the factors of some frames as :class:`FactorData` (the metrics' input);
:func:`factor_targets` gives every frame's factor columns standardised, with a mask of where each
is defined (what the ``"factors"`` batch kind feeds the supervised baseline). An object whose x
position is :data:`FACTOR_VALUES_ABSENT` is not there (:func:`_absent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.errors import ReprlError
from envs.storage.dataset import FrameDataset
from representations.metrics import FactorData

FACTOR_VALUES_ABSENT = -1
"""An object's x position of -1 means "this object does not exist here" (no middle wall, no
second ball): its factors are then undefined (see :func:`_absent`)."""


def factor_data(
    ds: FrameDataset, index: np.ndarray, factor_names: Sequence[str] | None = None
) -> FactorData:
    """Factors of frames ``index`` as :class:`FactorData` (no frames: latents come separately).

    Factor columns that are absent (-1) in every selected frame, or constant, are dropped by
    the metrics themselves (constant); columns absent in only some frames (a second ball in
    juggling only) are kept, with -1 as their value where absent.
    """
    factors = ds.factors(factor_names, index)
    keep = {k: v for k, v in factors.items() if not np.all(v == FACTOR_VALUES_ABSENT)}
    return FactorData(
        frames=None,
        factors=keep,
        episode=ds.episode[index],
        discrete={n for n in ds.info.discrete_factors if n in keep},
    )


def _absent(columns: list[str], values: np.ndarray) -> np.ndarray:
    """(T, K) bool: where an object's factor is undefined because the object is not there.

    An object ``obj`` (``ball``, ``wall``, ``target``) is absent from a frame when its x
    position ``obj_x`` (or ``obj_x[k]`` for the k-th ball) is -1; all its factors (velocities
    too, whose -1 is a real value) are then undefined. Factors of no positioned object are
    always present (``lives`` = -1 means unlimited lives, a real value).
    """
    out = np.zeros(values.shape, dtype=bool)
    for j, col in enumerate(columns):
        name, bracket, rest = col.partition("[")
        ref = f"{name.split('_')[0]}_x" + (bracket + rest if bracket else "")
        if ref in columns:
            out[:, j] = values[:, columns.index(ref)] == FACTOR_VALUES_ABSENT
    return out


@dataclass
class FactorTargets:
    """A dataset's factor columns as regression targets (for ``batch_kind = "factors"``).

    Attributes:
        columns: T column names (``"ball_x[0]"`` for a per-ball column).
        values: (N, T) float32, each column standardised over the frames where it is defined,
            0 elsewhere.
        mask: (N, T) bool, where each column is defined.
        raw: (N, T) float64, the columns as recorded (-1 where undefined), for class labels.
    """

    columns: list[str]
    values: np.ndarray
    mask: np.ndarray
    raw: np.ndarray


def factor_targets(ds: FrameDataset, targets: list[str] | None = None) -> FactorTargets:
    """The factor columns of every frame of ``ds``, standardised, as supervised targets.

    A column is usable where it is defined in some frame and not constant there; an object's
    columns are undefined where the object is absent (its x is -1: no second ball).

    Args:
        ds: a dataset with factors.
        targets: the columns to use; None: every usable column.

    Raises:
        ReprlError: a dataset without factors, or a requested column that is not usable
            (naming the usable ones).
    """
    if not ds.info.factor_names:
        raise ReprlError(
            f"dataset {ds.path} records no factors; the supervised baseline trains on them "
            "(collect from an env with factors, e.g. reprl/Breakout*)"
        )
    columns, values, _ = factor_data(ds, np.arange(len(ds))).factor_matrix()
    present = ~_absent(columns, values)
    usable = [
        c
        for j, c in enumerate(columns)
        if present[:, j].any() and np.ptp(values[present[:, j], j]) > 0
    ]
    chosen = usable if targets is None else list(targets)
    unknown = [t for t in chosen if t not in usable]
    if unknown or not chosen:
        raise ReprlError(
            f"targets: expected factor columns of dataset {ds.path} that vary, one of {usable}; "
            f"got {unknown or chosen}"
        )
    idx = [columns.index(c) for c in chosen]
    v, m = values[:, idx], present[:, idx]
    out = np.zeros(v.shape, np.float32)
    for j in range(len(idx)):
        col = v[m[:, j], j]
        out[m[:, j], j] = (col - col.mean()) / col.std()
    return FactorTargets(columns=chosen, values=out, mask=m, raw=v.astype(np.float64))
