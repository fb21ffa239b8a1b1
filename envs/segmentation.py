"""Frames with their ground-truth instance segmentation, for scoring object-centric models.

Only envs that draw their own frames can say which object each pixel shows: reprl's batched
Breakout (:meth:`envs.breakout.BreakoutBatch.render_segmentation`) and the DMLab-style lab
worlds (:meth:`envs.lab.lab.LabBatch.render_segmentation`). ALE and procgen render in C++ and
give no such map; asking them for one is an error that says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from envs.errors import ReprlError
from envs.registry import family, known_ids, make_batch


def has_segmentation(env_id: str) -> bool:
    """Whether ``env_id`` can render a ground-truth instance segmentation (its family says:
    :attr:`envs.family.EnvFamily.has_segmentation`); False for unknown ids."""
    return env_id in known_ids() and family(env_id).has_segmentation


def background_ids(env_id: str) -> tuple[int, ...]:
    """The segmentation ids of ``env_id`` that are no object (what foreground ARI leaves out):
    Breakout's background (0); the Lab's ceiling, floor and walls (0, 1, 2).

    Raises:
        ReprlError: an id without segmentation.
    """
    if not has_segmentation(env_id):
        raise ReprlError(f"{env_id} has no ground-truth segmentation")
    return family(env_id).background_ids


def segmented_frames(
    env_id: str,
    num_frames: int,
    *,
    num_envs: int = 16,
    seed: int = 0,
    skip: int = 4,
    device: str | torch.device = "cpu",
    **env_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a uniformly random policy and the object id of every pixel.

    Args:
        env_id: an id with a segmentation (:func:`has_segmentation`).
        num_frames: T >= 1 frames to return.
        num_envs: games played side by side.
        seed: seed of the games and of the policy.
        skip: random steps between two recorded frames of a game (>= 1; frames one step apart
            are nearly the same picture).
        device: torch device of the games.
        **env_kwargs: forwarded to the env (``min_object_size``, ``obs_size``, ...).

    Returns:
        ``frames`` (T, H, W, 3) uint8 RGB and ``ids`` (T, H, W) int64 object ids (see
        :meth:`~envs.breakout.BreakoutBatch.render_segmentation`: 0 the background;
        :meth:`~envs.lab.lab.LabBatch.render_segmentation`: 0 ceiling, 1 floor, 2 walls).

    Raises:
        ReprlError: an id without segmentation (naming the ids that have one), an unknown id,
            ``num_frames`` or ``skip`` < 1.
    """
    if not isinstance(env_id, str) or env_id not in known_ids():
        raise ReprlError(f"unknown env id {env_id!r}; expected one of {list(known_ids())}")
    if not has_segmentation(env_id):
        raise ReprlError(
            f"{env_id} renders in C++ and gives no ground-truth segmentation; ids with one: "
            f"{sorted(i for i in known_ids() if family(i).has_segmentation)}"
        )
    for name, v in (("num_frames", num_frames), ("skip", skip), ("num_envs", num_envs)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ReprlError(f"{name}: expected an integer >= 1, got {v!r}")
    core: Any = make_batch(env_id, num_envs, seed=seed, device=device, **env_kwargs)
    gen = torch.Generator().manual_seed(seed)
    core.reset()
    frames, ids, n = [], [], 0
    while n < num_frames:
        for _ in range(skip):
            core.step(torch.randint(0, core.num_actions, (num_envs,), generator=gen))
        frames.append(core.render().cpu().numpy())
        ids.append(core.render_segmentation().cpu().numpy())
        n += num_envs
    return np.concatenate(frames)[:num_frames], np.concatenate(ids)[:num_frames]
