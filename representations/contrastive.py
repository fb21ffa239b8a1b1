"""What the contrastive methods share: pair batches, InfoNCE with in-batch negatives, random shift.

ST-DIM (:mod:`representations.st_dim`) and ATC (:mod:`representations.atc`) both train on
*pairs*: frame ``t`` of an episode and frame ``t + k`` of the same episode
(:attr:`Representation.batch_kind` ``"pairs"``, offset ``k`` in the method's ``pair_offset``).
The pretraining loop draws them (:meth:`envs.storage.dataset.FrameDataset.iter_pairs`, never
across an episode end) as::

    batch["obs"]       (B, C, H, W) float32 in [0, 1]: frame t
    batch["next_obs"]  (B, C, H, W) float32 in [0, 1]: frame t + k of the same episode

Both score every anchor against every positive of the batch: row ``b`` of a ``(B, B)`` logit
matrix must pick column ``b`` (the other ``B - 1`` positives are the negatives), a
cross-entropy whose chance accuracy is ``1 / B`` (:func:`info_nce`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.batches import PAIRS
from representations.blocks import relu_init_ as relu_init_


def check_offset(offset: Any) -> int:
    """``offset`` as the int ``k >= 1`` that a pair method needs.

    Raises:
        ReprlError: For a non-integer or ``k < 1``, naming both.
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 1:
        raise ReprlError(
            f"offset: expected an integer k >= 1 (frame t is paired with frame t + k of the "
            f"same episode), got {offset!r}"
        )
    return int(offset)


def check_pairs(batch: Any, spec: InputSpec, method: str, offset: int) -> tuple[Tensor, Tensor]:
    """``batch["obs"]`` and ``batch["next_obs"]``, validated against ``spec``.

    Args:
        batch: The batch handed to ``loss``.
        spec: The model's input spec.
        method: The method's name, for the message.
        offset: ``k``, for the message.

    Returns:
        ``(obs, next_obs)``, each ``(B, C, H, W)`` float32 in ``[0, 1]``.

    Raises:
        ReprlError: A bare tensor, missing keys, mismatched shapes, frames off the spec, or
            fewer than 2 pairs (in-batch negatives need at least one other pair).
    """
    c, h, w = spec.shape
    need = (
        f"{method} trains on pairs: batch['obs'] and batch['next_obs'], each (B, {c}, {h}, {w}) "
        f"float32 in [0, 1], frame t and frame t + {offset} of the same episode, B >= 2"
    )
    if not isinstance(batch, Mapping):
        got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
        raise ReprlError(f"{need}; got {got}")
    missing = [k for k in ("obs", "next_obs") if not isinstance(batch.get(k), Tensor)]
    if missing:
        raise ReprlError(
            f"{need}; got keys {sorted(batch)} (pretrain draws pairs for methods whose "
            "batch_kind is 'pairs')"
        )
    obs, nxt = batch["obs"], batch["next_obs"]
    if obs.shape != nxt.shape:
        raise ReprlError(
            f"{need}; got obs {tuple(obs.shape)} and next_obs {tuple(nxt.shape)} of different "
            "shapes"
        )
    for key, x in (("obs", obs), ("next_obs", nxt)):
        try:
            spec.check(x)
        except ReprlError as e:
            raise ReprlError(f"batch[{key!r}]: {e}") from None
    if obs.shape[0] < 2:
        raise ReprlError(f"{need}; got B = {obs.shape[0]}")
    return obs, nxt


def info_nce(logits: Tensor) -> tuple[Tensor, Tensor]:
    """InfoNCE with in-batch negatives: row ``i`` of each score matrix must pick column ``i``.

    Args:
        logits: ``(..., B, B)`` scores of anchor ``i`` against positive ``j`` (any leading
            dimensions, e.g. grid cells, are averaged over).

    Returns:
        ``(loss, accuracy)``: the mean cross-entropy (nats; ``log B`` at chance) and the mean
        top-1 accuracy in ``[0, 1]`` (``1 / B`` at chance, detached).
    """
    b = logits.shape[-1]
    flat = logits.reshape(-1, b)
    target = torch.arange(b, device=logits.device).repeat(flat.shape[0] // b)
    loss = F.cross_entropy(flat, target)
    acc = (flat.detach().argmax(1) == target).float().mean()
    return loss, acc


def check_shift_pad(pad: Any, spec: InputSpec) -> int:
    """``pad`` as the int that :func:`random_shift` takes for frames of ``spec``.

    Raises:
        ReprlError: For a non-integer, a negative pad, or one of at least the frame's height
            or width (a shift that large leaves no pixel of the frame), naming both.
    """
    side = min(spec.height, spec.width)
    if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < side:
        raise ReprlError(
            f"shift_pad: expected an integer in [0, {side}) pixels (0: no augmentation; less "
            f"than the {spec.height} x {spec.width} frame), got {pad!r}"
        )
    return int(pad)


def random_shift(x: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """Random-shift augmentation (DrQ / ATC): pad by repeating edges, crop back at random.

    Each image of the batch gets its own shift of ``-pad .. pad`` pixels in x and in y.

    Args:
        x: ``(B, C, H, W)`` float32 images.
        pad: Largest shift in pixels, ``>= 0``; 0 returns ``x`` itself.
        generator: Generator on ``x``'s device; ``None`` uses the global RNG.

    Returns:
        ``(B, C, H, W)``: image ``b`` is the ``H x W`` window of the edge-padded ``x[b]`` at
        offset ``(dy_b, dx_b)`` in ``[0, 2 * pad]``; channels-last strides.
    """
    if pad == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate").permute(0, 2, 3, 1)
    shifts = torch.randint(0, 2 * pad + 1, (2, b), device=x.device, generator=generator)
    rows = shifts[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = shifts[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def example_pairs(
    spec: InputSpec, batch_size: int, generator: torch.Generator | None = None
) -> dict[str, Tensor]:
    """Random pairs in the format of a ``"pairs"`` method's ``loss`` (for tests, smoke runs).

    Args:
        spec: The model's input spec.
        batch_size: Pairs ``B``.
        generator: CPU generator; ``None`` uses the global RNG.

    Returns:
        ``{"obs", "next_obs"}``, each ``(B, C, H, W)`` float32 uniform in the spec's range.
    """
    lo, hi = spec.value_range
    x = torch.rand((2, batch_size, *spec.shape), generator=generator)
    x = (lo + (hi - lo) * x).to(spec.torch_dtype)
    return {"obs": x[0], "next_obs": x[1]}


class PairMethod(Representation):
    """Base of the methods that train on pairs of frames t and t + k of one episode.

    Subclasses provide :attr:`pair_offset` (k, read by the pretraining loop; ST-DIM and ATC
    as a property of their config's ``offset``) and read their batches with :meth:`pairs`.

    Attributes:
        pair_offset: ``k >= 1``.
    """

    batch_kind = PAIRS
    pair_offset: int

    def pairs(self, batch: Any) -> tuple[Tensor, Tensor]:
        """``(obs, next_obs)`` of a batch, checked (:func:`check_pairs`)."""
        return check_pairs(batch, self.input_spec, self.name, self.pair_offset)

    def example_batch(
        self, batch_size: int = 4, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Random pairs (:func:`example_pairs`), at least 2 (in-batch negatives need one)."""
        return example_pairs(self.input_spec, max(batch_size, 2), generator)
