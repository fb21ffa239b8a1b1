"""Multi-view scenes for GQN: K views of one world from random cameras, with their poses.

:func:`collect_scenes` resets batched Lab worlds (:mod:`envs.lab`), puts K random cameras into
each (:meth:`envs.lab.lab.LabBatch.sample_cameras`: points and headings the agent could have,
optionally pitched), renders them and writes a *scene dataset* (:mod:`envs.storage.dataset`):
the views as frames, scene s at frames ``[s K, (s + 1) K)``, with each view's 7-d viewpoint
(:func:`viewpoint`) and the world's ground-truth factors as seen from that camera (the agent's
position and yaw are the camera's, ``obj_visible`` says what the view shows). Nothing moves
between the views of a scene.

    >>> from envs.scenes import collect_scenes
    >>> ds = collect_scenes("reprl/LabCollectTrain-v0", 8, "/tmp/scenes.h5", views_per_scene=5,
    ...                     num_envs=4, progress=False)
    >>> ds.num_scenes, ds.views_per_scene, ds.viewpoints(slice(0, 5)).shape
    (8, 5, (5, 7))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from envs.errors import ReprlError
from envs.lab.lab import UNITS_PER_CELL, LabBatch
from envs.lab.render import CAMERA_HEIGHT
from envs.registry import family, known_ids, make_batch
from envs.rng import spawn_seeds
from envs.storage.dataset import DISCRETE_FACTORS, DatasetWriter, FrameDataset

VIEWPOINT_NAMES: tuple[str, ...] = ("x", "y", "z", "cos_yaw", "sin_yaw", "cos_pitch", "sin_pitch")
"""The 7 numbers of a viewpoint (GQN's): position in cells (x along columns, y along rows, z the
camera's height, floor 0 and ceiling 1), then yaw and pitch as cosine and sine."""


def viewpoint(poses: Tensor) -> Tensor:
    """GQN's 7-d viewpoints of Lab camera poses.

    Args:
        poses: (K, 4) x, y in map units (100 a cell), yaw and pitch in degrees
            (:meth:`envs.lab.lab.LabBatch.render`'s poses).

    Returns:
        (K, 7) float32 ``(x, y, z, cos yaw, sin yaw, cos pitch, sin pitch)``, x and y in cells,
        z = :data:`envs.lab.render.CAMERA_HEIGHT` (see :data:`VIEWPOINT_NAMES`).
    """
    p = poses.to(torch.float64)
    yaw, pitch = torch.deg2rad(p[:, 2]), torch.deg2rad(p[:, 3])
    z = torch.full_like(yaw, CAMERA_HEIGHT)
    cols = [p[:, 0] / UNITS_PER_CELL, p[:, 1] / UNITS_PER_CELL, z]
    cols += [torch.cos(yaw), torch.sin(yaw), torch.cos(pitch), torch.sin(pitch)]
    return torch.stack(cols, 1).to(torch.float32)


def collect_scenes(
    env_ids: str | Sequence[str],
    num_scenes: int,
    out: str | Path,
    *,
    views_per_scene: int = 10,
    num_envs: int = 64,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    max_pitch: float = 0.0,
    device: str = "cpu",
    progress: bool = True,
) -> FrameDataset:
    """Writes a scene dataset of Lab worlds (module doc).

    The scenes are split evenly between the ids (each id a domain of the dataset). Everything
    is checked before the file is created.

    Args:
        env_ids: one or several ids whose family has a camera
            (:attr:`envs.family.EnvFamily.has_camera`: the Lab ids).
        num_scenes: total scenes, >= 1.
        out: the dataset path (``.h5``); written atomically.
        views_per_scene: K, views of each scene, >= 2 (GQN needs context and query views).
        num_envs: worlds rendered at once per id, >= 1.
        seed: the collection's seed: world i of domain d gets
            ``spawn_seeds(seed, num_envs, purpose=f"scenes/{d}")[i]``; the cameras of domain d
            come from a generator seeded with ``spawn_seeds(seed, 1,
            purpose=f"scenes/cameras/{d}")``.
        env_kwargs: kwargs of every env (``obs_size``, ``room_size``, ...); no ``frame_stack``
            or ``grayscale`` (views are single RGB frames).
        max_pitch: cameras pitch uniformly in ``[-max_pitch, max_pitch]`` degrees, in [0, 90);
            0 (the default) keeps every view level, as the agent's own views are.
        device: device of the batched worlds.
        progress: show a progress bar.

    Returns:
        The finished dataset, opened for reading.

    Raises:
        ReprlError: an id without a camera (not a Lab id), ``views_per_scene < 2``, a count
            below 1, a pitch outside [0, 90), stacking kwargs, or bad env kwargs.
    """
    ids = [env_ids] if isinstance(env_ids, str) else list(env_ids)
    if not ids:
        raise ReprlError("env_ids: expected at least one env id, got none")
    cameras = [i for i in known_ids() if family(i).has_camera]
    unknown = [i for i in ids if i not in cameras]
    if unknown:
        raise ReprlError(
            f"env_ids: scenes need envs with a camera, one of {sorted(cameras)}; got {unknown}"
        )
    for name, value, low in (
        ("num_scenes", num_scenes, 1),
        ("views_per_scene", views_per_scene, 2),
        ("num_envs", num_envs, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ReprlError(f"{name}: expected an integer >= {low}, got {value!r}")
    if not isinstance(max_pitch, (int, float)) or not 0 <= max_pitch < 90:
        raise ReprlError(f"max_pitch: expected degrees in [0, 90), got {max_pitch!r}")
    env_kwargs = dict(env_kwargs or {})
    stacking = sorted(k for k in ("frame_stack", "grayscale") if k in env_kwargs)
    if stacking:
        raise ReprlError(f"env_kwargs: scenes are single RGB views; expected no {stacking}")
    env_seeds = [spawn_seeds(seed, num_envs, purpose=f"scenes/{d}") for d in range(len(ids))]
    batches: list[LabBatch] = []
    for env_id, s in zip(ids, env_seeds):
        b = make_batch(env_id, num_envs, seed=s, device=device, **env_kwargs)
        assert isinstance(b, LabBatch)
        batches.append(b)
    shape = batches[0].single_obs_shape
    for env_id, b in zip(ids, batches):
        if b.single_obs_shape != shape:
            raise ReprlError(
                f"all envs of one dataset need the same frame shape; {ids[0]} gives {shape}, "
                f"{env_id} gives {b.single_obs_shape}"
            )
    factor_shapes: dict[str, tuple[int, ...]] = {}
    for b in batches:
        b.reset()
        for k, v in b.factors().items():
            factor_shapes[k] = max(factor_shapes.get(k, tuple(v.shape[1:])), tuple(v.shape[1:]))
    attrs = {
        "env_ids": ids,
        "env_kwargs": env_kwargs,
        "domains": ids,
        "policy": {"name": "cameras", "max_pitch": max_pitch},
        "seed": seed,
        "env_seeds": env_seeds,
        "num_envs": num_envs,
        "discrete_factors": [n for n in factor_shapes if n in DISCRETE_FACTORS],
        "views_per_scene": int(views_per_scene),
        "viewpoint_names": list(VIEWPOINT_NAMES),
    }
    shares = [num_scenes // len(ids) + (d < num_scenes % len(ids)) for d in range(len(ids))]
    k = int(views_per_scene)
    bar = tqdm(total=num_scenes * k, unit="view", desc="scenes", disable=not progress)
    arrays = {"viewpoints": (len(VIEWPOINT_NAMES),)}
    with DatasetWriter(out, shape, factor_shapes, attrs, arrays=arrays) as writer:
        first = 0
        for d, (b, share) in enumerate(zip(batches, shares)):
            g = torch.Generator().manual_seed(
                spawn_seeds(seed, 1, purpose=f"scenes/cameras/{d}")[0]
            )
            b.reset(env_seeds[d])
            done = 0
            while done < share:
                m = min(b.num_envs, share - done)
                writer.append(_scene_block(b, g, k, max_pitch, m, first + done, d, factor_shapes))
                bar.update(m * k)
                done += m
                b.reset()  # fresh worlds from each world's stream
            first += share
    bar.close()
    return FrameDataset(out)


def _scene_block(
    b: LabBatch,
    g: torch.Generator,
    k: int,
    max_pitch: float,
    m: int,
    first_scene: int,
    domain: int,
    factor_shapes: dict[str, tuple[int, ...]],
) -> dict[str, Any]:
    """The K views of the first ``m`` worlds of ``b``, scene-major, as a dataset block."""
    views, cams, facs = [], [], []
    for _ in range(k):
        poses = b.sample_cameras(g, max_pitch)
        b.agent_x = poses[:, 0].to(torch.int64)
        b.agent_y = poses[:, 1].to(torch.int64)
        b.heading = (poses[:, 2] / b.turn_degrees).round().to(torch.int64)
        views.append(b.render_obs(poses=poses if max_pitch else None)[:m].cpu().numpy())
        cams.append(viewpoint(poses[:m]).cpu().numpy())
        facs.append({n: v[:m].cpu().numpy() for n, v in b.factors().items()})
    n = m * k

    def scene_major(parts: list[np.ndarray]) -> np.ndarray:  # k x (m, ...) -> (m * k, ...)
        return np.stack(parts, 1).reshape(n, *parts[0].shape[1:])

    factors = {}
    for name, fshape in factor_shapes.items():
        col = np.full((n, *fshape), -1, dtype=np.int64)
        got = scene_major([f[name] for f in facs])
        col[(slice(None), *(slice(0, s) for s in got.shape[1:]))] = got
        factors[name] = col
    view = np.tile(np.arange(k, dtype=np.int64), m)
    return {
        "frames": scene_major(views),
        "viewpoints": scene_major(cams),
        "actions": np.full(n, -1, dtype=np.int64),
        "rewards": np.zeros(n, dtype=np.float32),
        "dones": view == k - 1,
        "episode": np.repeat(np.arange(first_scene, first_scene + m, dtype=np.int64), k),
        "step": view,
        "domain": np.full(n, domain, dtype=np.int64),
        "factors": factors,
    }
