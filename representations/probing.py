"""A method's own probe scores: what an experiment's probe adds to the factor metrics.

Beside the linear probes and disentanglement metrics every encoder gets
(:func:`representations.analysis.probe`), a method may score what only it can do: the ARI of a
decomposing encoder's masks (:class:`Decomposer`, MONet), a sequence method's predictions on
fresh episodes (CPC), a scene method's renderings of fresh scenes (GQN). A method offers them
with two hooks of :class:`~representations.base.Representation`:

- the classmethod ``probe_settings(ctx) -> {name: settings}``: the JSON-plain settings each of
  its own scores depends on (the probe puts them into its stage key and its record's
  ``config``); ``{}`` (the default): none;
- the method ``probe_scores(ctx) -> {name: scores}``: the JSON-plain scores, one per name of
  ``probe_settings(ctx)``, each a dict (``{"skipped": reason, ...}`` where it cannot be taken).

Both read a :class:`ScoreContext`: the collect and probe settings, the device, the seed and a
directory for temporary data.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from representations.base import Representation, check_frame_shape

SEGMENTATION_PURPOSE = "probe_segmentation"
"""The :func:`envs.rng.spawn_seeds` purpose of the games the segmentation scores are taken on
(no collect, training or evaluation stream)."""

PREDICTION_PURPOSE = "probe_prediction"
"""Seed purpose of the fresh episodes a sequence method's predictions are scored on."""

RENDERING_PURPOSE = "probe_rendering"
"""Seed purpose of the fresh scenes a scene method's renderings are scored on."""


@dataclass(frozen=True)
class ScoreContext:
    """What a method's own probe scores read (module doc).

    Attributes:
        env_ids: The collect envs; the first is the env of the segmentation scores.
        env_kwargs: Kwargs of every env (those the encoder's training frames were made with).
        collect_key: The collect settings as the experiment's stage keys see them (JSON-plain):
            part of the settings of a score that collects fresh data with them.
        policy: The collect policy: ``"random"``, ``"random_repeat"`` or ``"sb3"`` (fresh
            episodes then use ``"random"``: an agent zip is above this layer).
        repeat: ``random_repeat``'s longest hold of an action.
        num_envs: Parallel envs per id of the collect.
        views_per_scene: The collect's views per scene (0: trajectories).
        max_pitch: The collect's camera pitch bound, in degrees.
        segmentation_frames: Frames of the segmentation scores, 0 to skip them.
        sequence_frames: Frames of the fresh episodes of the prediction scores, 0 to skip.
        rendering_scenes: Fresh scenes of the rendering scores, 0 to skip.
        seed: The probe's seed; each score spawns the env seeds of its own purpose from it.
        device: Torch device of the games and the model.
        tmp_dir: An existing directory where temporary datasets are written (and deleted).
    """

    env_ids: tuple[str, ...]
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    collect_key: Mapping[str, Any] = field(default_factory=dict)
    policy: str = "random"
    repeat: int = 4
    num_envs: int = 64
    views_per_scene: int = 0
    max_pitch: float = 0.0
    segmentation_frames: int = 0
    sequence_frames: int = 0
    rendering_scenes: int = 0
    seed: int = 0
    device: str = "cpu"
    tmp_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    def purpose_seed(self, purpose: str) -> int:
        """The env seed of one score's games or episodes (:func:`envs.rng.spawn_seeds`)."""
        from envs.rng import spawn_seeds

        return spawn_seeds(self.seed, 1, purpose=purpose)[0]

    @contextmanager
    def temporary(self, name: str) -> Iterator[Path]:
        """A path ``name`` in a fresh directory under :attr:`tmp_dir`, deleted on exit."""
        with tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp:
            yield Path(tmp) / name


def segmentation_scores(
    model: Any,
    env_id: str,
    num_frames: int,
    *,
    seed: int,
    device: str = "cpu",
    env_kwargs: Mapping[str, Any] | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """ARI and foreground ARI of a decomposing encoder's masks against the ground truth.

    Frames come from :func:`envs.segmentation.segmented_frames` (uniformly random games seeded
    with ``seed``); each pixel's predicted object is its most probable mask
    (:func:`representations.metrics.segmentation.masks_to_ids`).

    Args:
        model: a representation with ``decompose(obs) -> {"masks": (B, K, 1, H, W)}`` (obs
            ``(B, C, H, W)`` float32 in [0, 1]) and ``to_model_input``.
        env_id: an env with a segmentation (:func:`envs.segmentation.has_segmentation`).
        num_frames: frames to score, >= 1.
        seed: seed of the games.
        device: torch device of the games.
        env_kwargs: kwargs of the env (those the encoder's training frames were made with).
        batch_size: frames per ``decompose`` call.

    Returns:
        ``{"ari", "fg_ari", "frames", "env_id"}``: the mean per-frame ARI over all pixels and
        over the pixels whose true object is an object (not one of
        :func:`envs.segmentation.background_ids`: the Lab's floor and walls are left out too),
        each in [-1, 1] (1: the true partition up to relabelling, about 0: chance).
    """
    from envs.segmentation import background_ids, segmented_frames
    from representations.metrics.segmentation import adjusted_rand_index, masks_to_ids

    frames, true_ids = segmented_frames(
        env_id, num_frames, seed=seed, device=device, **dict(env_kwargs or {})
    )
    check_frame_shape(model.input_spec, frames.shape[1:], f"segmented frames of {env_id}")
    model.eval()
    pred = []
    with torch.inference_mode():
        for lo in range(0, len(frames), batch_size):
            x = model.to_model_input(torch.from_numpy(frames[lo : lo + batch_size]))
            pred.append(masks_to_ids(model.decompose(x)["masks"]))
    pred_ids = np.concatenate(pred)
    background = background_ids(env_id)  # every non-object id, as one label FG-ARI ignores
    fg_true = np.where(np.isin(true_ids, background), background[0], true_ids)
    return {
        "ari": adjusted_rand_index(true_ids, pred_ids),
        "fg_ari": adjusted_rand_index(fg_true, pred_ids, ignore=background[0]),
        "frames": len(frames),
        "env_id": env_id,
    }


class Decomposer:
    """Mixin of the representations that split a frame into slots with ``decompose`` (MONet):
    their probe scores the masks against the collect env's ground-truth segmentation.

    The class it is mixed into defines ``decompose(obs) -> {"masks": (B, K, 1, H, W), ...}``.
    """

    @classmethod
    def probe_settings(cls, ctx: ScoreContext) -> dict[str, Any]:
        """``{"segmentation": {"frames", "env_id", "env_kwargs"}}``, or ``{}`` when
        ``ctx.segmentation_frames`` is 0."""
        if ctx.segmentation_frames <= 0:
            return {}
        return {
            "segmentation": {
                "frames": ctx.segmentation_frames,
                "env_id": ctx.env_ids[0],
                "env_kwargs": ctx.env_kwargs,
            }
        }

    def probe_scores(self, ctx: ScoreContext) -> dict[str, Any]:
        """``{"segmentation": segmentation_scores(...)}`` on the first collect env, or the
        reason it is skipped (the env has no ground-truth segmentation)."""
        from envs import segmentation

        if ctx.segmentation_frames <= 0:
            return {}
        env_id = ctx.env_ids[0]
        if not segmentation.has_segmentation(env_id):
            return {
                "segmentation": {
                    "skipped": f"{env_id} (the collect env) has no ground-truth segmentation",
                    "env_id": env_id,
                }
            }
        assert isinstance(self, Representation)
        scores = segmentation_scores(
            self,
            env_id,
            ctx.segmentation_frames,
            seed=ctx.purpose_seed(SEGMENTATION_PURPOSE),
            device=ctx.device,
            env_kwargs=ctx.env_kwargs,
        )
        return {"segmentation": scores}


def fresh_prediction_scores(model: Representation, ctx: ScoreContext) -> dict[str, Any]:
    """A sequence method's objective (CPC: top-1 accuracy per k, chance) on fresh episodes.

    ``ctx.sequence_frames`` frames of the collect envs, with the collect policy and env kwargs
    but env streams of their own (:data:`PREDICTION_PURPOSE`): episodes the encoder never
    trained on (:func:`representations.analysis.sequence_scores`). They are collected into a
    temporary file under ``ctx.tmp_dir`` and deleted after.

    Returns:
        ``{"frames", "policy", **scores}``, or ``{"skipped": reason}`` where the episodes hold
        no window of the model's sequence length.
    """
    from envs.errors import ReprlError
    from envs.exploration import collect
    from representations.analysis import sequence_scores

    policy = "random" if ctx.policy == "sb3" else ctx.policy
    with ctx.temporary("fresh.h5") as data:
        collect(
            list(ctx.env_ids),
            ctx.sequence_frames,
            data,
            num_envs=ctx.num_envs,
            seed=ctx.purpose_seed(PREDICTION_PURPOSE),
            policy=policy,
            policy_kwargs={"repeat": ctx.repeat} if policy == "random_repeat" else {},
            env_kwargs=dict(ctx.env_kwargs),
            device=ctx.device,
            progress=False,
        )
        try:
            scores = sequence_scores(model, data, seed=ctx.seed)
        except ReprlError as e:
            return {"skipped": str(e)}
    return {"frames": ctx.sequence_frames, "policy": policy, **scores}


def fresh_rendering_scores(model: Representation, ctx: ScoreContext) -> dict[str, Any]:
    """A scene method's (GQN's) rendering of held-back views of fresh scenes, and the baseline.

    ``ctx.rendering_scenes`` scenes of the collect envs with the collect's views per scene, env
    kwargs and pitch, but worlds and cameras of their own (:data:`RENDERING_PURPOSE`): scenes
    the encoder never trained on. Each scene's last view is rendered from the others
    (:func:`representations.analysis.rendering_scores`). The scenes are written to a temporary
    file under ``ctx.tmp_dir`` and deleted after.

    Returns:
        ``{"env_ids", **scores}``, or ``{"skipped": reason}``.
    """
    from envs.errors import ReprlError
    from envs.scenes import collect_scenes
    from representations.analysis import rendering_scores

    with ctx.temporary("fresh_scenes.h5") as data:
        collect_scenes(
            list(ctx.env_ids),
            ctx.rendering_scenes,
            data,
            views_per_scene=ctx.views_per_scene,
            num_envs=min(ctx.num_envs, ctx.rendering_scenes),
            seed=ctx.purpose_seed(RENDERING_PURPOSE),
            env_kwargs=dict(ctx.env_kwargs),
            max_pitch=ctx.max_pitch,
            device=ctx.device,
            progress=False,
        )
        try:
            scores = rendering_scores(model, data)
        except ReprlError as e:
            return {"skipped": str(e)}
    return {"env_ids": list(ctx.env_ids), **scores}
