"""The interface every representation implements, and the description of what it accepts.

Inside representations, images are ``float32 (B, C, H, W)`` in ``[0, 1]``. Environments give
``uint8 (B, H, W, C)`` frames (channels-last, as gymnasium, procgen and ALE do); use
:meth:`Representation.to_model_input` (or :func:`to_model_input`) to convert and validate them.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from envs.errors import ReprlError
from envs.storage.files import json_plain
from representations.batches import FRAMES, BatchKind
from representations.checkpoint_file import save

if TYPE_CHECKING:
    from representations.probing import ScoreContext

#: Channel orders with a fixed meaning; any other string names one channel per character.
_DEFAULT_ORDERS: dict[int, str] = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class InputSpec:
    """What a representation's :meth:`Representation.encode` accepts.

    Attributes:
        shape: ``(C, H, W)`` of one image.
        dtype: Name of the torch dtype of the model input (``"float32"``).
        channel_order: One letter per channel, e.g. ``"RGB"`` or ``"L"`` (grayscale).
        value_range: Inclusive ``(low, high)`` bounds of the pixel values.
    """

    shape: tuple[int, int, int] = (3, 64, 64)
    dtype: str = "float32"
    channel_order: str = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or any(s <= 0 for s in shape):
            raise ReprlError(f"InputSpec.shape must be (C, H, W) with positive sizes, got {shape}")
        if not isinstance(getattr(torch, self.dtype, None), torch.dtype):
            raise ReprlError(f"InputSpec.dtype must name a torch dtype, got {self.dtype!r}")
        if len(self.channel_order) != shape[0]:
            raise ReprlError(
                f"InputSpec.channel_order {self.channel_order!r} names {len(self.channel_order)} "
                f"channels but shape has C={shape[0]}"
            )
        lo, hi = (float(v) for v in self.value_range)
        if not lo < hi:
            raise ReprlError(f"InputSpec.value_range must be (low, high), got {self.value_range}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "value_range", (lo, hi))

    @classmethod
    def for_shape(cls, shape: Sequence[int]) -> InputSpec:
        """The default spec for images of ``shape``: float32 in ``[0, 1]``, RGB or L.

        Args:
            shape: ``(C, H, W)`` with ``C`` 1 (``"L"``) or 3 (``"RGB"``).

        Raises:
            ReprlError: For other channel counts (build an :class:`InputSpec` explicitly).
        """
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or shape[0] not in _DEFAULT_ORDERS:
            raise ReprlError(
                f"no default channel order for input_shape {shape}: expected (C, H, W) with "
                f"C in {sorted(_DEFAULT_ORDERS)}"
            )
        return cls(shape=shape, channel_order=_DEFAULT_ORDERS[shape[0]])

    @property
    def channels(self) -> int:
        """Number of channels ``C``."""
        return self.shape[0]

    @property
    def height(self) -> int:
        """Image height ``H``."""
        return self.shape[1]

    @property
    def width(self) -> int:
        """Image width ``W``."""
        return self.shape[2]

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype named by :attr:`dtype`."""
        return getattr(torch, self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain form (lists, not tuples)."""
        return {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "channel_order": self.channel_order,
            "value_range": list(self.value_range),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ReprlError: If keys are missing or unknown, or values are invalid.
        """
        keys = {"shape", "dtype", "channel_order", "value_range"}
        if set(d) != keys:
            raise ReprlError(f"InputSpec dict: expected keys {sorted(keys)}, got {sorted(d)}")
        return cls(
            shape=tuple(d["shape"]),
            dtype=str(d["dtype"]),
            channel_order=str(d["channel_order"]),
            value_range=tuple(d["value_range"]),
        )

    def check(self, obs: Tensor) -> None:
        """Validate a model input batch against this spec.

        Args:
            obs: ``(B, C, H, W)`` tensor of dtype :attr:`dtype` with values in
                :attr:`value_range`.

        Raises:
            ReprlError: Naming the expected and the actual shape, channels, dtype or range.
        """
        if not isinstance(obs, Tensor):
            raise ReprlError(f"observation: expected a torch.Tensor, got {type(obs).__name__}")
        expected = f"(B, {', '.join(str(s) for s in self.shape)})"
        actual = tuple(obs.shape)
        if obs.dim() != 4:
            raise ReprlError(
                f"observation shape: expected {expected} (batched, channels-first), got {actual}"
            )
        if obs.shape[1] != self.channels:
            raise ReprlError(
                f"observation channels: expected C={self.channels} ({self.channel_order}) in "
                f"shape {expected}, got C={obs.shape[1]} in shape {actual}"
            )
        if tuple(obs.shape[2:]) != self.shape[1:]:
            raise ReprlError(
                f"observation H x W: expected {self.height} x {self.width} in shape {expected}, "
                f"got {obs.shape[2]} x {obs.shape[3]} in shape {actual}"
            )
        if obs.dtype != self.torch_dtype:
            raise ReprlError(f"observation dtype: expected {self.torch_dtype}, got {obs.dtype}")
        if obs.numel() == 0:
            return
        lo, hi = self.value_range
        mn, mx = (float(v) for v in torch.aminmax(obs.detach()))
        if not (lo <= mn and mx <= hi):  # also catches NaN
            raise ReprlError(
                f"observation values: expected range [{lo}, {hi}], got [{mn}, {mx}] "
                "(uint8 frames? use Representation.to_model_input)"
            )


def check_frame_shape(spec: InputSpec, frame_shape: Sequence[int], source: str) -> None:
    """Check that frames of a dataset or environment fit a model's input.

    Args:
        spec: The model's input spec, ``(C, H, W)``.
        frame_shape: ``(H, W, C)`` of one frame (channels-last, as datasets and envs store them).
        source: What the frames come from, for the message (e.g. ``"dataset d.h5"``).

    Raises:
        ReprlError: Naming the frames' ``(H, W, C)``, the model's ``(C, H, W)`` and channel order,
            and the ``input_shape`` that would fit the frames.
    """
    shape = tuple(int(s) for s in frame_shape)
    if len(shape) != 3:
        raise ReprlError(f"{source}: expected frames of shape (H, W, C), got shape {shape}")
    h, w, c = shape
    if spec.shape != (c, h, w):
        raise ReprlError(
            f"{source} has frames (H, W, C) = {shape} ({c} channel(s)); the model expects "
            f"(C, H, W) = {spec.shape} ({spec.channel_order}), i.e. frames (H, W, C) = "
            f"{(spec.height, spec.width, spec.channels)}: build it with "
            f"input_shape=[{c}, {h}, {w}]"
        )


def to_model_input(
    obs: Tensor | np.ndarray, spec: InputSpec, device: torch.device | str | None = None
) -> Tensor:
    """Convert environment frames or model tensors to the model input described by ``spec``.

    Accepted inputs:

    - ``uint8 (B, H, W, C)`` frames (channels-last, as environments give them), or
      ``uint8 (B, C, H, W)`` (as SB3's ``VecTransposeImage`` gives them): scaled to the spec's
      range. Channels-last frames come out with ``torch.channels_last`` strides (no layout
      copy), the fast format for a model converted with ``to(memory_format=...)``.
    - float ``(B, C, H, W)`` of the spec's dtype, values already in the spec's range: returned
      as is (moved to ``device``).

    Args:
        obs: A torch tensor or numpy array, batched (4-D).
        spec: The model's input spec.
        device: Where to put the result; ``None`` keeps the input's device.

    Returns:
        ``(B, C, H, W)`` tensor of ``spec.dtype`` with values in ``spec.value_range``.

    Raises:
        ReprlError: On wrong rank, channels, height/width, dtype or value range, naming the
            expected and the actual value.
    """
    if isinstance(obs, np.ndarray):
        obs = torch.from_numpy(np.ascontiguousarray(obs))
    if not isinstance(obs, Tensor):
        raise ReprlError(f"observation: expected a torch.Tensor or numpy array, got {type(obs)}")
    c, h, w = spec.shape
    if obs.dim() != 4:
        raise ReprlError(
            f"observation shape: expected a batch (B, {h}, {w}, {c}) uint8 or (B, {c}, {h}, {w}) "
            f"{spec.dtype}, got {tuple(obs.shape)} (add a batch dimension with obs[None])"
        )
    if device is not None:
        obs = obs.to(device)
    if obs.dtype == torch.uint8:
        if tuple(obs.shape[1:]) == (h, w, c):
            obs = obs.permute(0, 3, 1, 2)
        elif tuple(obs.shape[1:]) != (c, h, w):
            raise ReprlError(
                f"uint8 observation shape: expected (B, {h}, {w}, {c}) channels-last or "
                f"(B, {c}, {h}, {w}) channels-first, got {tuple(obs.shape)}"
            )
        lo, hi = spec.value_range
        obs = obs.to(spec.torch_dtype).mul_((hi - lo) / 255.0)
        if lo != 0.0:
            obs = obs.add_(lo)
        return obs
    if obs.is_floating_point() and tuple(obs.shape[1:]) == (h, w, c) and (h, w, c) != (c, h, w):
        raise ReprlError(
            f"float observation shape: expected channels-first (B, {c}, {h}, {w}), got "
            f"channels-last {tuple(obs.shape)}; permute(0, 3, 1, 2) first"
        )
    spec.check(obs)
    return obs


class Representation(nn.Module, abc.ABC):
    """Base class of all representations (beta-VAE, DAE, MONet, CPC, ...).

    Subclasses set the class attribute :attr:`name` (the registry key), call
    ``super().__init__(input_spec=..., latent_dim=..., config=...)`` where ``config`` holds
    every constructor keyword argument (so ``type(model)(**model.config)`` rebuilds the same
    architecture), and implement :meth:`_encode` and :meth:`loss`. Methods that reconstruct also
    define ``decode(z: (B, latent_dim)) -> (B, C, H, W) in [0, 1]``.

    Attributes:
        name: Registry name of the method (class attribute).
        checkpoint_args: Constructor arguments that may be a checkpoint path (class attribute).
        variational: Whether :meth:`encode` gives posterior means under a unit-Gaussian prior
            (class attribute): then a latent that does not vary over the data is collapsed
            (:mod:`representations.metrics.activity`).
        batch_kind: What :meth:`loss` trains on (class attribute), a
            :class:`representations.batches.BatchKind` named ``"frames"`` (the default,
            ``batch["obs"]``: ``(B, C, H, W)`` single frames) or ``"sequences"``
            (``batch["seq"]``: ``(B, L, C, H, W)`` consecutive frames of one episode per row,
            e.g. CPC); a ``"sequences"`` method also has an int attribute ``sequence_length``
            (the ``L`` that :func:`representations.pretrain.pretrain` draws); or
            ``"factors"`` (``batch["obs"]`` with ``batch["targets"]``: ``(B, T)`` float32, the
            ground-truth factor columns named by the method's ``targets`` attribute,
            standardised, and ``batch["mask"]``: ``(B, T)`` bool, where they are defined; the
            supervised baseline); or ``"scenes"`` (``batch["views"]``: ``(B, K, C, H, W)``, K
            views of one scene per row, and ``batch["viewpoints"]``: ``(B, K, 7)`` float32 their
            cameras, :data:`envs.scenes.VIEWPOINT_NAMES`; GQN), where the class may set an int
            ``views_per_scene_min`` (default 2) that the data's K must reach; or ``"pairs"``
            (``batch["obs"]`` and ``batch["next_obs"]``: ``(B, C, H, W)`` frame t and frame
            t + k of the same episode per row, never across an episode end; ST-DIM, ATC), where
            the model has an int attribute ``pair_offset`` (the k that
            :func:`representations.pretrain.pretrain` draws).
        input_spec: What :meth:`encode` accepts.
        latent_dim: Size of the code :meth:`encode` returns.
        config: JSON-plain constructor keyword arguments.
        provenance: Dataset provenance read from a checkpoint (``None`` for fresh models);
            :meth:`save` writes it back unless given another one.
    """

    name: ClassVar[str]
    #: Constructor arguments that may name a checkpoint file (a pretrained sub-model, say):
    #: pretraining keys its reuse on the content of those files, not on their paths.
    checkpoint_args: ClassVar[tuple[str, ...]] = ()
    #: Codes are posterior means under a unit-Gaussian prior (VAE-style).
    variational: ClassVar[bool] = False
    #: What ``loss`` trains on, a :class:`representations.batches.BatchKind`: ``FRAMES``
    #: (``batch["obs"]``), ``SEQUENCES`` (``batch["seq"]``, with an int attribute
    #: ``sequence_length``), ``FACTORS`` (``"obs"``, ``"targets"``, ``"mask"``, with a list
    #: attribute ``targets``), ``SCENES`` (``"views"``, ``"viewpoints"``) or ``PAIRS``
    #: (``"obs"``, ``"next_obs"``, with an int attribute ``pair_offset``). ``str()`` of it is
    #: the name (``"frames"``, ...), and it compares equal to that name.
    batch_kind: ClassVar[BatchKind] = FRAMES

    def __init__(self, *, input_spec: InputSpec, latent_dim: int, config: Mapping[str, Any]):
        super().__init__()
        if int(latent_dim) <= 0:
            raise ReprlError(f"latent_dim must be positive, got {latent_dim}")
        self.input_spec = input_spec
        self.latent_dim = int(latent_dim)
        self.config: dict[str, Any] = json_plain(dict(config), f"{type(self).__name__}.config")
        self.provenance: dict[str, Any] | None = None

    def encode(self, obs: Tensor, *, check: bool = True) -> Tensor:
        """Deterministic code of a batch of images.

        Args:
            obs: ``(B, C, H, W)`` float32 in ``[0, 1]``, exactly :attr:`input_spec`.
            check: validate ``obs`` first (:meth:`InputSpec.check`: its shape, dtype and value
                range, one host sync); False for callers whose input is valid by
                construction (uint8 frames of a checked shape divided by 255, in a training
                loop's hot path).

        Returns:
            ``(B, latent_dim)`` float32. Gradients flow (for fine-tuning); wrap in
            ``torch.no_grad()`` for a frozen encoder.

        Raises:
            ReprlError: If ``obs`` does not match :attr:`input_spec`.
        """
        if check:
            self.input_spec.check(obs)
        return self._encode(obs)

    def forward(self, obs: Tensor) -> Tensor:
        """Same as :meth:`encode`."""
        return self.encode(obs)

    @abc.abstractmethod
    def _encode(self, obs: Tensor) -> Tensor:
        """Method-specific encoding of validated input ``(B, C, H, W)`` to ``(B, latent_dim)``."""

    @abc.abstractmethod
    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Training loss on one batch.

        Args:
            batch: At least ``"obs"``: ``(B, C, H, W)`` float32 in ``[0, 1]``; methods that need
                more (sequences, viewpoints) document their keys.

        Returns:
            ``(total, logs)``: a scalar tensor to minimise (averaged per example) and plain
            floats to log, including ``"loss"``.
        """

    def after_step(self) -> None:
        """Called by the pretraining loop after every optimiser step; nothing by default.

        Methods with state that follows the trained weights outside the gradient (ATC's
        momentum target encoder) update it here.
        """

    def after_training(self, batches: Iterable[dict[str, Tensor]]) -> None:
        """Called by the pretraining loop once after the last step, in eval mode and without
        gradients, with an endless iterator of training batches; nothing by default.

        Methods whose evaluation-mode state is estimated during training (MONet's batch-norm
        running statistics with ``recalibrate_norm``) re-estimate it here from the final weights.
        """

    @classmethod
    def probe_settings(cls, ctx: ScoreContext) -> dict[str, Any]:
        """The settings of this method's own probe scores (:mod:`representations.probing`).

        Args:
            ctx: The collect and probe settings, device, seed and temporary directory.

        Returns:
            Score name -> its JSON-plain settings (the probe's stage key and record hold
            them); ``{}`` (this default): the method has no scores of its own.
        """
        return {}

    def probe_scores(self, ctx: ScoreContext) -> dict[str, Any]:
        """This method's own probe scores (:mod:`representations.probing`).

        Args:
            ctx: The same context as :meth:`probe_settings`'s.

        Returns:
            Score name -> JSON-plain dict of scores (or ``{"skipped": reason, ...}``), one per
            name of ``probe_settings(ctx)``; ``{}`` by default.
        """
        return {}

    def example_batch(
        self, batch_size: int = 4, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """A random batch in the format :meth:`loss` expects (for tests and smoke runs).

        Methods whose ``loss`` needs more than single frames (sequences, viewpoints) override
        this, so the registry-wide interface test exercises them on arrival.

        Args:
            batch_size: Number of examples ``B``.
            generator: CPU generator; ``None`` uses the global RNG.

        Returns:
            ``{"obs": (B, C, H, W) float32 uniform in the input spec's value range}``.
        """
        lo, hi = self.input_spec.value_range
        x = torch.rand((batch_size, *self.input_spec.shape), generator=generator)
        return {"obs": (lo + (hi - lo) * x).to(self.input_spec.torch_dtype)}

    def to_model_input(self, obs: Tensor | np.ndarray) -> Tensor:
        """Convert env frames (``uint8 (B, H, W, C)``) or model tensors to this model's input.

        Args:
            obs: See :func:`to_model_input`.

        Returns:
            ``(B, C, H, W)`` float32 in ``[0, 1]`` on this model's device.
        """
        param = next(self.parameters(), None)
        return to_model_input(obs, self.input_spec, None if param is None else param.device)

    def save(
        self, path: str | os.PathLike[str], provenance: Mapping[str, Any] | None = None
    ) -> None:
        """Write a checkpoint atomically (see :func:`representations.checkpoint_file.save`).

        Args:
            path: Destination file, conventionally ``*.safetensors``.
            provenance: JSON-plain record of the training data (e.g. path and sha256 of the
                dataset); ``None`` keeps :attr:`provenance`.
        """
        save(self, path, provenance=provenance)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, latent_dim={self.latent_dim}, config={json.dumps(self.config)}"
