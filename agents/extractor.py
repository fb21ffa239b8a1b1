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

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn

from representations.base import InputSpec, Representation
from representations.checkpoint import CheckpointError, load, read_header
from representations.registry import available, get_class

#: Modes of :class:`PretrainedEncoderExtractor`.
EXTRACTOR_MODES: tuple[str, ...] = ("frozen", "finetune", "scratch")

#: Header fields that fix an encoder's architecture (the rest is provenance).
ARCHITECTURE_KEYS: tuple[str, ...] = ("method", "config", "input_spec", "latent_dim")


def _plain(value: Any) -> Any:
    """JSON round trip: tuples become lists, so headers compare equal however they were built."""
    return json.loads(json.dumps(value))


def check_mode(mode: str, valid: tuple[str, ...] = EXTRACTOR_MODES) -> str:
    """Return ``mode`` if it is one of ``valid``.

    Raises:
        ValueError: Naming the valid modes and the given one.
    """
    if mode not in valid:
        raise ValueError(f"mode: expected one of {list(valid)}, got {mode!r}")
    return mode


def check_features_dim(features_dim: int | None) -> int | None:
    """Return ``features_dim`` as an int (or ``None``) if it is a positive integer.

    Raises:
        ValueError: If it is not a positive integer.
    """
    if features_dim is None:
        return None
    if isinstance(features_dim, bool) or not isinstance(features_dim, (int, np.integer)):
        raise ValueError(f"features_dim: expected a positive int or None, got {features_dim!r}")
    if features_dim <= 0:
        raise ValueError(f"features_dim: expected a positive int or None, got {features_dim}")
    return int(features_dim)


def check_sb3_input_spec(spec: InputSpec) -> None:
    """Check that an encoder accepts what SB3 hands a features extractor.

    Args:
        spec: The encoder's input spec.

    Raises:
        ValueError: Unless the spec is ``float32`` in ``[0, 1]`` (SB3's ``uint8 / 255``).
    """
    if spec.dtype != "float32" or tuple(spec.value_range) != (0.0, 1.0):
        raise ValueError(
            "encoder input_spec: expected float32 values in [0.0, 1.0] (SB3 scales uint8 frames "
            f"by 1/255), got {spec.dtype} in {list(spec.value_range)}"
        )


def check_image_space(
    space: gym.Space, spec: InputSpec, *, channels_last_ok: bool = True, where: str = "observation"
) -> str:
    """Check that an observation space holds ``uint8`` images the encoder accepts.

    Args:
        space: The observation space: ``Box(0, 255, (H, W, C) or (C, H, W), uint8)``.
        spec: The encoder's input spec, ``(C, H, W)`` float32 in ``[0, 1]``.
        channels_last_ok: Accept ``(H, W, C)`` as well as ``(C, H, W)``. SB3 hands a features
            extractor channels-first images, so the extractor passes ``False``.
        where: Prefix of error messages.

    Returns:
        ``"chw"`` or ``"hwc"``: the layout of ``space``.

    Raises:
        ValueError: If the space is not a ``uint8`` image space in ``[0, 255]``, or its shape or
            channels differ from the spec's; the message names the expected and the actual value.
    """
    check_sb3_input_spec(spec)
    c, h, w = spec.shape
    layouts = f"(C, H, W) = {spec.shape}"
    if channels_last_ok:
        layouts += f" or (H, W, C) = {(h, w, c)}"
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        raise ValueError(
            f"{where} space: expected uint8 images Box(0, 255, {layouts}, uint8) for the "
            f"encoder, got {space}"
        )
    if space.dtype != np.uint8:
        raise ValueError(
            f"{where} dtype: expected uint8 images in [0, 255] (SB3 scales them to [0, 1]), "
            f"got dtype {space.dtype} in {space}"
        )
    low, high = np.min(space.low), np.max(space.high)
    if np.any(space.low != 0) or np.any(space.high != 255):
        raise ValueError(
            f"{where} range: expected uint8 images in [0, 255], got low {low} high {high} in "
            f"{space}"
        )
    shape = tuple(int(s) for s in space.shape)
    if shape == (c, h, w):
        return "chw"
    if channels_last_ok and shape == (h, w, c):
        return "hwc"
    if shape[1:] == (h, w):
        got_c, layout = shape[0], "(C, H, W)"
    elif channels_last_ok and shape[:2] == (h, w):
        got_c, layout = shape[2], "(H, W, C)"
    elif not channels_last_ok and shape[:2] == (h, w):
        raise ValueError(
            f"{where} shape: expected channels-first {layouts} (SB3's VecTransposeImage makes "
            f"images channels-first), got channels-last {shape}"
        )
    else:
        raise ValueError(
            f"{where} shape: the encoder expects {layouts} ({spec.channel_order}), got {shape}"
        )
    raise ValueError(
        f"{where} channels: the encoder expects C={c} ({spec.channel_order}) in {layouts}, got "
        f"C={got_c} in {layout} {shape}"
    )


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
    return {k: _plain(header[k]) for k in ARCHITECTURE_KEYS}


def representation_from_header(header: Mapping[str, Any]) -> Representation:
    """Build a representation with fresh (random) weights from a checkpoint header.

    Args:
        header: A checkpoint header (:func:`representations.read_header`) or at least its
            architecture fields ``method``, ``config``, ``input_spec``, ``latent_dim``.

    Returns:
        The model in eval mode on the CPU, ``input_spec`` and ``latent_dim`` as in the header.

    Raises:
        CheckpointError: If fields are missing, the method is not registered, the config does
            not build, or the built model disagrees with the header's input spec or latent size.
    """
    architecture(header)
    method, config = header["method"], header["config"]
    if not isinstance(method, str) or not isinstance(config, Mapping):
        raise CheckpointError(
            f"encoder_header: expected a str method and a dict config, got {method!r} and "
            f"{type(config).__name__}"
        )
    try:
        cls = get_class(method)
    except ValueError:
        raise CheckpointError(
            f"encoder_header: method {method!r} is not registered; known: "
            f"{', '.join(available())}. Import the module that defines it first."
        ) from None
    try:
        model = cls(**config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"encoder_header: cannot build {method!r} from config: {e}") from None
    try:
        spec = InputSpec.from_dict(header["input_spec"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"encoder_header: bad input_spec: {e}") from None
    if spec != model.input_spec or int(header["latent_dim"]) != model.latent_dim:
        raise CheckpointError(
            f"encoder_header: expected input_spec {spec} and latent_dim {header['latent_dim']}, "
            f"the config builds input_spec {model.input_spec} and latent_dim {model.latent_dim}"
        )
    return model.eval()


def resolve_encoder(
    checkpoint: str | os.PathLike[str] | None,
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
        checkpoint: Path of a representation checkpoint, or ``None``.
        encoder_header: The checkpoint's header, or ``None``.
        pretrained: Load the checkpoint's weights (``False``: random init, same architecture).

    Returns:
        ``(encoder, header)``; the encoder is on the CPU in eval mode.

    Raises:
        CheckpointError: The file is not an encoder checkpoint, or it describes another
            architecture than ``encoder_header``.
        FileNotFoundError: The checkpoint does not exist and no header is given.
        ValueError: Neither a checkpoint nor a header is given.
    """
    if checkpoint is not None and Path(checkpoint).is_file():
        header = read_header(checkpoint)
        if encoder_header is not None and architecture(encoder_header) != architecture(header):
            raise CheckpointError(
                f"{checkpoint}: the checkpoint holds another encoder than encoder_header: "
                f"expected {architecture(encoder_header)}, got {architecture(header)}. Pass "
                "checkpoint=None to build from the header, or rebuild the kwargs with "
                "agents.extractor_kwargs"
            )
        encoder = load(checkpoint) if pretrained else representation_from_header(header)
        return encoder, _plain(dict(header))
    if encoder_header is not None:
        return representation_from_header(encoder_header), _plain(dict(encoder_header))
    if checkpoint is not None:
        raise FileNotFoundError(
            f"encoder checkpoint {checkpoint} not found, and no encoder_header to rebuild the "
            "architecture from (build the kwargs with agents.extractor_kwargs)"
        )
    raise ValueError("PretrainedEncoderExtractor: expected a checkpoint or an encoder_header")


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
        observation_space: The policy's observation space: ``Box(0, 255, (C, H, W), uint8)``
            matching the encoder's input spec (SB3 transposes ``(H, W, C)`` env frames).
        checkpoint: Path of a representation checkpoint (``representations.save``).
        mode: ``"frozen"`` (pretrained, no gradients, eval mode), ``"finetune"`` (pretrained,
            trained) or ``"scratch"`` (same architecture, random init).
        features_dim: If given, features pass through ``Linear(latent_dim, features_dim)`` and a
            ReLU (trained in every mode); else the features are the latents.
        encoder_header: The checkpoint's header (:func:`extractor_kwargs` embeds it), used to
            rebuild the architecture when ``checkpoint`` does not exist (``PPO.load`` elsewhere).
            Without the file the weights are random until a state dict is loaded.

    Attributes:
        encoder: The wrapped :class:`~representations.Representation`.
        projection: ``Sequential(Linear, ReLU)`` or ``None``.
        mode: The mode.
        encoder_header: JSON-plain header of the encoder (from the file, else the given one).

    Raises:
        ValueError: Invalid mode or ``features_dim``; an observation space that is not
            ``uint8`` images in ``[0, 255]`` of the encoder's shape and channels.
        CheckpointError: Not an encoder checkpoint, or not the header's encoder.
        FileNotFoundError: Missing checkpoint and no header.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        checkpoint: str | None = None,
        mode: str = "frozen",
        features_dim: int | None = None,
        encoder_header: dict | None = None,
    ) -> None:
        check_mode(mode)
        features_dim = check_features_dim(features_dim)
        encoder, header = resolve_encoder(checkpoint, encoder_header, pretrained=mode != "scratch")
        check_image_space(observation_space, encoder.input_spec, channels_last_ok=False)
        super().__init__(observation_space, features_dim or encoder.latent_dim)
        self.mode = mode
        self.encoder_header = header
        self.encoder = encoder
        self.projection: nn.Sequential | None = None
        if features_dim is not None:
            self.projection = nn.Sequential(nn.Linear(encoder.latent_dim, features_dim), nn.ReLU())
        if mode == "frozen":
            self.encoder.requires_grad_(False)
        else:
            self.encoder.requires_grad_(True)
        self.train(True)

    @property
    def latent_dim(self) -> int:
        """Size of the encoder's code."""
        return self.encoder.latent_dim

    def forward(self, observations: Tensor) -> Tensor:
        """Features of a batch of images.

        Args:
            observations: ``(B, C, H, W)`` float32 in ``[0, 1]`` (SB3's preprocessed images).

        Returns:
            ``(B, features_dim)`` float32.
        """
        if self.mode == "frozen":
            with torch.no_grad():
                z = self.encoder.encode(observations)
        else:
            z = self.encoder.encode(observations)
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
    """``Linear(latent_dim, features_dim)`` + ReLU on latent observations.

    The fast (wrapper) path's counterpart of :class:`PretrainedEncoderExtractor`'s projection:
    its parameters have the same names (``projection.0.weight``, ``projection.0.bias``).

    Args:
        observation_space: ``Box(-inf, inf, (latent_dim,), float32)``.
        features_dim: Output size.
    """

    def __init__(self, observation_space: gym.Space, features_dim: int) -> None:
        features_dim = check_features_dim(features_dim)
        if features_dim is None:
            raise ValueError("features_dim: expected a positive int, got None")
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"observation space: expected latents Box(-inf, inf, (latent_dim,), float32), "
                f"got {observation_space}"
            )
        super().__init__(observation_space, features_dim)
        self.projection = nn.Sequential(
            nn.Linear(int(observation_space.shape[0]), features_dim), nn.ReLU()
        )

    def forward(self, observations: Tensor) -> Tensor:
        """``(B, latent_dim)`` float32 -> ``(B, features_dim)`` float32, non-negative."""
        return self.projection(observations)


def extractor_kwargs(
    checkpoint: str | os.PathLike[str], mode: str = "frozen", features_dim: int | None = None
) -> dict[str, Any]:
    """JSON-plain ``features_extractor_kwargs`` for :class:`PretrainedEncoderExtractor`.

    Args:
        checkpoint: Path of a representation checkpoint; stored as an absolute path.
        mode: ``"frozen"``, ``"finetune"`` or ``"scratch"``.
        features_dim: Optional projection size.

    Returns:
        ``{"checkpoint", "mode", "features_dim", "encoder_header"}`` with the checkpoint's header
        embedded, so an SB3 zip rebuilds the encoder without the file.

    Raises:
        ValueError: Invalid mode or ``features_dim``.
        CheckpointError: The file is not a representation checkpoint.
        FileNotFoundError: There is no file.
    """
    check_mode(mode)
    features_dim = check_features_dim(features_dim)
    header = read_header(checkpoint)
    return {
        "checkpoint": os.path.abspath(checkpoint),
        "mode": mode,
        "features_dim": features_dim,
        "encoder_header": _plain(header),
    }
