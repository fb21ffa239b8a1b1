"""A pretrained :class:`~representations.Representation` as an SB3 features extractor.

SB3 hands a features extractor ``float32 (B, C, H, W)`` images in ``[0, 1]``: environments give
``uint8 (H, W, C)`` frames, ``VecTransposeImage`` makes them channels-first and the policy's
``preprocess_obs`` divides by 255. :class:`PretrainedEncoderExtractor` feeds exactly that to
``Representation.encode`` and returns ``(B, features_dim)`` features, in one of three modes:

- ``"frozen"``: pretrained weights, no gradients, always in eval mode;
- ``"finetune"``: pretrained weights, trained with the policy;
- ``"scratch"``: the same architecture, randomly initialised (SB3's orthogonal init applies).

Plain SB3 users build the policy kwargs with :func:`extractor_kwargs`::

    from stable_baselines3 import PPO
    from agents import PretrainedEncoderExtractor, extractor_kwargs

    model = PPO("CnnPolicy", env, policy_kwargs=dict(
        features_extractor_class=PretrainedEncoderExtractor,
        features_extractor_kwargs=extractor_kwargs("encoder.safetensors", mode="frozen"),
    ))

Temporal context: observations may stack ``k`` frames along the channels (``C * k`` channels,
oldest frame first, as ``envs.make_vec(..., frame_stack=k)`` gives them). The encoder still sees
single frames: the extractor splits the stack, encodes the ``B * k`` frames in one batched call
and concatenates the latents, oldest first, into ``(B, k * latent_dim)`` features.

The kwargs are JSON-plain and embed the checkpoint's header, so ``PPO.load(zip)`` rebuilds the
encoder's architecture from the header even where the checkpoint file does not exist (the
weights then come from the zip).

Two SB3 behaviours are neutralised here:

- ``ActorCriticPolicy`` with ``ortho_init=True`` (the default) calls
  ``features_extractor.apply(init_weights)`` after the extractor's ``__init__``; :meth:`apply`
  skips a pretrained encoder (``frozen``/``finetune``), so its weights survive.
- ``policy.set_training_mode(True)`` calls ``train(True)`` before every update; :meth:`train`
  keeps a frozen encoder in eval mode (batch-norm statistics, dropout).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn

from envs.errors import ReprlError
from envs.storage.files import json_plain
from representations.base import InputSpec, Representation
from representations.checkpoint import Checkpoint, CheckpointError, build_from_header

#: Modes of :class:`PretrainedEncoderExtractor`.
EXTRACTOR_MODES: tuple[str, ...] = ("frozen", "finetune", "scratch")

#: Header fields that fix an encoder's architecture (the rest is provenance).
ARCHITECTURE_KEYS: tuple[str, ...] = ("method", "config", "input_spec", "latent_dim")


class MissingFileError(ReprlError, FileNotFoundError):
    """A file the user named (encoder checkpoint, agent zip) does not exist."""


#: An encoder checkpoint as agents take it: a path, or a :class:`Checkpoint` already read.
EncoderSource = str | os.PathLike[str] | Checkpoint


def open_encoder(encoder: EncoderSource) -> Checkpoint:
    """``encoder`` itself if it is an open :class:`Checkpoint`, else the file read once.

    Raises:
        MissingFileError: There is no file at the path.
        CheckpointError: The file is not a representation checkpoint.
    """
    if isinstance(encoder, Checkpoint):
        return encoder
    if not Path(encoder).is_file():
        raise MissingFileError(f"encoder checkpoint {os.fspath(encoder)} not found")
    return Checkpoint(encoder)


class ImageLayout(NamedTuple):
    """How an observation space holds images for an encoder (see :func:`check_image_space`)."""

    layout: str
    """``"chw"`` (channels-first) or ``"hwc"`` (channels-last)."""
    frame_stack: int
    """Frames stacked along the channels (``C * frame_stack`` channels, oldest first)."""


def _plain(value: Any, where: str) -> Any:
    """JSON-plain copy (tuples become lists), so headers compare equal however they were built.

    Raises:
        ReprlError: If ``value`` does not survive a JSON round trip.
    """
    try:
        return json_plain(value, where)
    except TypeError as e:
        raise ReprlError(f"{where}: expected JSON-plain values, got {e}") from None


def check_mode(mode: str, valid: tuple[str, ...] = EXTRACTOR_MODES) -> str:
    """Return ``mode`` if it is one of ``valid``.

    Raises:
        ReprlError: Naming the valid modes and the given one.
    """
    if mode not in valid:
        raise ReprlError(f"mode: expected one of {list(valid)}, got {mode!r}")
    return mode


def _check_positive(name: str, value: Any, what: str = "a positive int") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ReprlError(f"{name}: expected {what} or None, got {value!r}")
    return int(value)


def check_features_dim(features_dim: int | None) -> int | None:
    """Return ``features_dim`` as an int (or ``None``) if it is a positive integer.

    Raises:
        ReprlError: If it is not a positive integer.
    """
    return _check_positive("features_dim", features_dim)


def check_frame_stack(frame_stack: int | None) -> int | None:
    """Return ``frame_stack`` as an int (or ``None``: infer it) if it is an integer >= 1.

    Raises:
        ReprlError: If it is not an integer >= 1.
    """
    return _check_positive("frame_stack", frame_stack, "an integer >= 1")


def check_sb3_input_spec(spec: InputSpec) -> None:
    """Check that an encoder accepts what SB3 hands a features extractor.

    Args:
        spec: The encoder's input spec.

    Raises:
        ReprlError: Unless the spec is ``float32`` in ``[0, 1]`` (SB3's ``uint8 / 255``).
    """
    if spec.dtype != "float32" or tuple(spec.value_range) != (0.0, 1.0):
        raise ReprlError(
            "encoder input_spec: expected float32 values in [0.0, 1.0] (SB3 scales uint8 frames "
            f"by 1/255), got {spec.dtype} in {list(spec.value_range)}"
        )


def check_image_space(
    space: gym.Space,
    spec: InputSpec,
    *,
    frame_stack: int | None = None,
    channels_last_ok: bool = True,
    where: str = "observation",
) -> ImageLayout:
    """Check that an observation space holds (stacks of) ``uint8`` images the encoder accepts.

    Args:
        space: The observation space: ``Box(0, 255, (H, W, C * k) or (C * k, H, W), uint8)``,
            ``k`` frames of the encoder's ``C`` channels stacked oldest first.
        spec: The encoder's input spec, ``(C, H, W)`` float32 in ``[0, 1]``.
        frame_stack: The expected ``k``; ``None`` infers it from the channel count (which must
            then be a multiple of ``C``). Pass it for grayscale encoders: 3 channels are 3
            grayscale frames or 1 RGB frame, only the caller knows which.
        channels_last_ok: Accept ``(H, W, C * k)`` as well as ``(C * k, H, W)``. SB3 hands a
            features extractor channels-first images, so the extractor passes ``False``.
        where: Prefix of error messages.

    Returns:
        The layout of ``space`` and ``k``.

    Raises:
        ReprlError: If the space is not a ``uint8`` image space in ``[0, 255]``, its height and
            width differ from the spec's, or its channels are not ``C * k``; the message names
            the expected and the actual value.
    """
    check_sb3_input_spec(spec)
    frame_stack = check_frame_stack(frame_stack)
    c, h, w = spec.shape
    layouts = f"(C, H, W) = {spec.shape}"
    if channels_last_ok:
        layouts += f" or (H, W, C) = {(h, w, c)}"
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        raise ReprlError(
            f"{where} space: expected uint8 images Box(0, 255, {layouts}, uint8) for the "
            f"encoder, got {space}"
        )
    if space.dtype != np.uint8:
        raise ReprlError(
            f"{where} dtype: expected uint8 images in [0, 255] (SB3 scales them to [0, 1]), "
            f"got dtype {space.dtype} in {space}"
        )
    low, high = np.min(space.low), np.max(space.high)
    if np.any(space.low != 0) or np.any(space.high != 255):
        raise ReprlError(
            f"{where} range: expected uint8 images in [0, 255], got low {low} high {high} in "
            f"{space}"
        )
    shape = tuple(int(s) for s in space.shape)
    if shape[1:] == (h, w):
        got_c, layout, name = shape[0], "chw", "(C, H, W)"
    elif channels_last_ok and shape[:2] == (h, w):
        got_c, layout, name = shape[2], "hwc", "(H, W, C)"
    elif not channels_last_ok and shape[:2] == (h, w):
        raise ReprlError(
            f"{where} shape: expected channels-first {layouts} (SB3's VecTransposeImage makes "
            f"images channels-first), got channels-last {shape}"
        )
    else:
        raise ReprlError(
            f"{where} shape: the encoder expects {layouts} ({spec.channel_order}), got {shape}"
        )
    if frame_stack is not None and got_c != c * frame_stack:
        raise ReprlError(
            f"{where} channels: the encoder expects C={c} ({spec.channel_order}) x frame_stack "
            f"{frame_stack} = {c * frame_stack} channels in {name}, got C={got_c} in {shape}"
        )
    if got_c % c:
        raise ReprlError(
            f"{where} channels: the encoder expects C={c} ({spec.channel_order}) per frame, "
            f"i.e. a multiple of {c} channels (k stacked frames) in {name}, got C={got_c} in "
            f"{shape}"
        )
    return ImageLayout(layout, got_c // c)


def architecture(header: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture fields of a checkpoint header (:data:`ARCHITECTURE_KEYS`), JSON-plain.

    Raises:
        CheckpointError: If ``header`` is not a dict holding all of them.
    """
    if not isinstance(header, Mapping):
        raise CheckpointError(f"encoder_header: expected a dict, got {type(header).__name__}")
    missing = [k for k in ARCHITECTURE_KEYS if k not in header]
    if missing:
        raise CheckpointError(
            f"encoder_header: expected fields {list(ARCHITECTURE_KEYS)}, missing {missing}"
        )
    return {k: _plain(header[k], f"encoder_header.{k}") for k in ARCHITECTURE_KEYS}


def representation_from_header(header: Mapping[str, Any]) -> Representation:
    """Build a representation with fresh (random) weights from a checkpoint header.

    Args:
        header: A checkpoint header (:func:`representations.read_header`) or at least its
            architecture fields ``method``, ``config``, ``input_spec``, ``latent_dim``.

    Returns:
        The model in eval mode on the CPU, ``input_spec`` and ``latent_dim`` as in the header.

    Raises:
        CheckpointError: See :func:`representations.checkpoint.build_from_header`.
    """
    return build_from_header(header, where="encoder_header")


def resolve_encoder(
    checkpoint: EncoderSource | None,
    encoder_header: Mapping[str, Any] | None,
    *,
    pretrained: bool,
) -> tuple[Representation, dict[str, Any]]:
    """The encoder an extractor wraps, and the header describing it.

    Rules: an existing checkpoint file is read (its weights if ``pretrained``, else only its
    header); a given ``encoder_header`` must then describe the same architecture. Without the
    file, the architecture is built from ``encoder_header`` with random weights (what
    ``PPO.load`` needs: the zip's state dict brings the weights).

    Args:
        checkpoint: Path of a representation checkpoint, a :class:`Checkpoint` already read
            (used as it is, whether or not its file still exists), or ``None``.
        encoder_header: The checkpoint's header, or ``None``.
        pretrained: Load the checkpoint's weights (``False``: random init, same architecture).

    Returns:
        ``(encoder, header)``; the encoder is on the CPU in eval mode.

    Raises:
        CheckpointError: The file is not an encoder checkpoint, or it describes another
            architecture than ``encoder_header``.
        MissingFileError: The checkpoint does not exist and no header is given.
        ReprlError: Neither a checkpoint nor a header is given.
    """
    if isinstance(checkpoint, Checkpoint) or (
        checkpoint is not None and Path(checkpoint).is_file()
    ):
        ckpt = open_encoder(checkpoint)
        header = ckpt.header
        if encoder_header is not None and architecture(encoder_header) != architecture(header):
            raise CheckpointError(
                f"{os.fspath(checkpoint)}: the checkpoint holds another encoder than "
                f"encoder_header: expected {architecture(encoder_header)}, got "
                f"{architecture(header)}. Pass "
                "checkpoint=None to build from the header, or rebuild the kwargs with "
                "agents.extractor_kwargs"
            )
        encoder = ckpt.load() if pretrained else representation_from_header(header)
        return encoder, _plain(dict(header), "encoder_header")
    if encoder_header is not None:
        header = _plain(dict(encoder_header), "encoder_header")
        return representation_from_header(header), header
    if checkpoint is not None:
        raise MissingFileError(
            f"encoder checkpoint {checkpoint} not found, and no encoder_header to rebuild the "
            "architecture from (build the kwargs with agents.extractor_kwargs)"
        )
    raise ReprlError("PretrainedEncoderExtractor: expected a checkpoint or an encoder_header")


def _apply_contiguous(module: nn.Module, fn: Callable[[nn.Module], None]) -> None:
    """``module.apply(fn)`` with channels-last weights made contiguous for the call.

    ``nn.init.orthogonal_`` (SB3's ``init_weights``) views a conv weight as a matrix, which
    fails on the ``channels_last`` weights the representation blocks use.
    """
    moved = []
    for p in module.parameters():
        if p.dim() == 4 and not p.is_contiguous():
            p.data = p.data.contiguous()
            moved.append(p)
    try:
        module.apply(fn)
    finally:
        for p in moved:
            p.data = p.data.contiguous(memory_format=torch.channels_last)


class PretrainedEncoderExtractor(BaseFeaturesExtractor):
    """SB3 features extractor wrapping a (pretrained) representation's ``encode``.

    Args:
        observation_space: The policy's observation space: ``Box(0, 255, (C * k, H, W),
            uint8)``, ``k >= 1`` frames of the encoder's input (SB3 transposes ``(H, W, C * k)``
            env observations), oldest first.
        checkpoint: Path of a representation checkpoint (``representations.save``), or a
            :class:`~representations.checkpoint.Checkpoint` already read (not read again;
            :func:`agents.make_agent` passes it while it builds the policy and leaves the path
            in the JSON-plain kwargs).
        mode: ``"frozen"`` (pretrained, no gradients, eval mode), ``"finetune"`` (pretrained,
            trained) or ``"scratch"`` (same architecture, random init).
        features_dim: If given, features pass through ``Linear(k * latent_dim, features_dim)``
            and a ReLU (trained in every mode); else the features are the ``k`` latents.
        encoder_header: The checkpoint's header (:func:`extractor_kwargs` embeds it), used to
            rebuild the architecture when ``checkpoint`` does not exist (``PPO.load`` elsewhere).
            Without the file the weights are random until a state dict is loaded.
        frame_stack: ``k``; ``None`` infers it from the observation channels (zips written
            before frame stacking carry no ``frame_stack`` and load with ``k = 1``).

    Attributes:
        encoder: The wrapped :class:`~representations.Representation`.
        projection: ``Sequential(Linear, ReLU)`` or ``None``.
        mode: The mode.
        frame_stack: ``k``.
        encoder_header: JSON-plain header of the encoder (from the file, else the given one).

    Raises:
        ReprlError: Invalid mode, ``features_dim`` or ``frame_stack``; an observation space that
            is not ``uint8`` images in ``[0, 255]`` of the encoder's height, width and ``k``
            times its channels.
        CheckpointError: Not an encoder checkpoint, or not the header's encoder.
        MissingFileError: Missing checkpoint and no header.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        checkpoint: str | Checkpoint | None = None,
        mode: str = "frozen",
        features_dim: int | None = None,
        encoder_header: dict | None = None,
        frame_stack: int | None = None,
    ) -> None:
        check_mode(mode)
        features_dim = check_features_dim(features_dim)
        frame_stack = check_frame_stack(frame_stack)
        encoder, header = resolve_encoder(checkpoint, encoder_header, pretrained=mode != "scratch")
        k = check_image_space(
            observation_space, encoder.input_spec, frame_stack=frame_stack, channels_last_ok=False
        ).frame_stack
        stacked_dim = k * encoder.latent_dim
        super().__init__(observation_space, features_dim or stacked_dim)
        self.mode = mode
        self.frame_stack = k
        self.encoder_header = header
        self.encoder = encoder
        self._frame_shape = tuple(encoder.input_spec.shape)
        self.projection: nn.Sequential | None = None
        if features_dim is not None:
            self.projection = nn.Sequential(nn.Linear(stacked_dim, features_dim), nn.ReLU())
        self.encoder.requires_grad_(mode != "frozen")
        self.train(True)

    @property
    def latent_dim(self) -> int:
        """Size of the encoder's code (of one frame)."""
        return self.encoder.latent_dim

    def encode_stack(self, observations: Tensor) -> Tensor:
        """The ``k`` latents of each stacked observation, concatenated oldest first.

        Args:
            observations: ``(B, C * k, H, W)`` float32 in ``[0, 1]``.

        Returns:
            ``(B, k * latent_dim)`` float32; one encoder call over ``B * k`` frames.
        """
        b = observations.shape[0]
        frames = observations.reshape(b * self.frame_stack, *self._frame_shape)
        return self.encoder.encode(frames).reshape(b, self.frame_stack * self.latent_dim)

    def forward(self, observations: Tensor) -> Tensor:
        """Features of a batch of (stacked) images.

        Args:
            observations: ``(B, C * k, H, W)`` float32 in ``[0, 1]`` (SB3's preprocessed images).

        Returns:
            ``(B, features_dim)`` float32.
        """
        if self.mode == "frozen":
            with torch.no_grad():
                z = self.encode_stack(observations)
        else:
            z = self.encode_stack(observations)
        return z if self.projection is None else self.projection(z)

    def train(self, mode: bool = True) -> PretrainedEncoderExtractor:
        """Set training mode; a frozen encoder stays in eval mode."""
        super().train(mode)
        if self.mode == "frozen":
            self.encoder.eval()
        return self

    def apply(self, fn: Callable[[nn.Module], None]) -> PretrainedEncoderExtractor:
        """``nn.Module.apply`` that leaves a pretrained encoder's weights alone.

        SB3's ``ActorCriticPolicy`` calls ``apply(init_weights)`` (orthogonal init) after
        construction: in ``frozen`` and ``finetune`` mode the encoder is skipped (the projection
        is initialised); in ``scratch`` mode everything is.
        """
        for child in self.children():
            if child is self.encoder:
                if self.mode == "scratch":
                    _apply_contiguous(child, fn)
            else:
                child.apply(fn)
        fn(self)
        return self


class LatentProjectionExtractor(BaseFeaturesExtractor):
    """``Linear(k * latent_dim, features_dim)`` + ReLU on (stacked) latent observations.

    The fast (wrapper) path's counterpart of :class:`PretrainedEncoderExtractor`'s projection:
    its parameters have the same names (``projection.0.weight``, ``projection.0.bias``).

    Args:
        observation_space: ``Box(-inf, inf, (k * latent_dim,), float32)``.
        features_dim: Output size.
    """

    def __init__(self, observation_space: gym.Space, features_dim: int) -> None:
        features_dim = check_features_dim(features_dim)
        if features_dim is None:
            raise ReprlError("features_dim: expected a positive int, got None")
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ReprlError(
                f"observation space: expected latents Box(-inf, inf, (latent_dim,), float32), "
                f"got {observation_space}"
            )
        super().__init__(observation_space, features_dim)
        self.projection = nn.Sequential(
            nn.Linear(int(observation_space.shape[0]), features_dim), nn.ReLU()
        )

    def forward(self, observations: Tensor) -> Tensor:
        """``(B, k * latent_dim)`` float32 -> ``(B, features_dim)`` float32, non-negative."""
        return self.projection(observations)


def extractor_kwargs(
    checkpoint: EncoderSource,
    mode: str = "frozen",
    features_dim: int | None = None,
    frame_stack: int | None = None,
) -> dict[str, Any]:
    """JSON-plain ``features_extractor_kwargs`` for :class:`PretrainedEncoderExtractor`.

    Args:
        checkpoint: Path of a representation checkpoint, or a :class:`Checkpoint` already
            read (not read again); stored as an absolute path.
        mode: ``"frozen"``, ``"finetune"`` or ``"scratch"``.
        features_dim: Optional projection size.
        frame_stack: Frames per observation (``envs.make_vec(..., frame_stack=k)``); ``None``
            infers it from the observation channels.

    Returns:
        ``{"checkpoint", "mode", "features_dim", "encoder_header", "frame_stack"}`` with the
        checkpoint's header embedded, so an SB3 zip rebuilds the encoder without the file.

    Raises:
        ReprlError: Invalid mode, ``features_dim`` or ``frame_stack``.
        CheckpointError: The file is not a representation checkpoint.
        MissingFileError: There is no file.
    """
    check_mode(mode)
    features_dim = check_features_dim(features_dim)
    frame_stack = check_frame_stack(frame_stack)
    ckpt = open_encoder(checkpoint)
    return {
        "checkpoint": os.path.abspath(ckpt.path),
        "mode": mode,
        "features_dim": features_dim,
        "encoder_header": _plain(ckpt.header, "encoder_header"),
        "frame_stack": frame_stack,
    }
