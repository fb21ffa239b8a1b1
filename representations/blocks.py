"""Shared convolutional blocks: reprl's family of image encoders and their transposes.

Every method that builds on this family (beta-VAE, DAE, CPC's ``"conv"`` encoder, supervised,
ST-DIM, ATC; a randomly initialised encoder is any of them pretrained for 0 steps) picks one
named **architecture** (:data:`ARCHITECTURES`) of the same layout: a stack of convolutions, each
followed by a ReLU, then flatten, then optionally a fully connected layer of ``hidden_dim``
units with a ReLU; the method puts its own linear head (code, ``(mu, logvar)``) on top.

- ``"darla"`` (the default): Higgins et al. (2017, beta-VAE) and DARLA: convolutions with 4x4
  kernels, stride 2 and padding 1 (32, 32, 64, 64 channels by default, any number of them), an
  FC layer of 256 units. Any height and width of at least ``2 ** len(channels)`` pixels, odd
  sizes included.
- ``"atariari"``: the AtariARI / ST-DIM encoder (Anand et al. 2019, ``atariari/methods/
  encoders.py`` ``NatureCNN`` with ``--no-downsample``, their default): four convolutions
  32@8x8/4, 64@4x4/2, 128@4x4/2, 64@3x3/1 (no padding) on full 210 x 160 frames (their
  README: the RAM labels are meant for full-sized frames), feature maps 51x39, 24x18, 11x8,
  9x6; no FC layer by default (``hidden_dim`` 0): the flattened 64 x 9 x 6 = 3456 features go
  straight into the method's linear map to its code, which is their final ``Linear(3456,
  256)`` (no ReLU after it, as theirs without ``--end-with-relu``). ST-DIM's "local" features
  are the third convolution's output (their ``f5 = main[:6]``, 128 x 11 x 8).

The decoder mirrors an encoder with transposed convolutions.

Every size after a convolution is measured with a dummy forward pass (as SB3's ``NatureCNN``
does), never read from a table; the decoder picks the transposed convolutions'
``output_padding`` so it returns exactly the input size. The encoder checks every input's shape
against the one it was built for and names both when they differ.

Memory format: the blocks put their convolution weights in ``torch.channels_last`` when built
(a training step of the 64x64 beta-VAE at batch 64 ran about 20-25% faster on 2 CPU cores than
with contiguous weights). Inputs may be in either format; ``uint8 (B, H, W, C)`` frames become
channels-last tensors after ``permute(0, 3, 1, 2)`` without a copy. Checkpoints store contiguous
tensors, so the format is an in-memory detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from envs.errors import ReprlError

#: Channels of the four convolutions of the DARLA / beta-VAE encoder.
DEFAULT_CHANNELS: tuple[int, ...] = (32, 32, 64, 64)
#: Width of the fully connected layer after the convolutions.
DEFAULT_HIDDEN_DIM: int = 256
#: The architecture a method's config names when it names none.
DEFAULT_ARCHITECTURE = "darla"


@dataclass(frozen=True)
class ConvLayer:
    """One convolution's geometry: ``kernel x kernel``, ``stride``, zero ``padding``."""

    kernel: int
    stride: int
    padding: int


@dataclass(frozen=True)
class Architecture:
    """A named conv stack of the family (module doc).

    Attributes:
        name: Its name in configs.
        layers: The convolutions' geometry, one per channel entry; ``None``: one 4x4 stride-2
            padding-1 convolution per entry of ``channels``, as many as given.
        channels: Default output channels of the convolutions.
        hidden_dim: Default FC width (0: no FC layer).
        frame_hw: The ``(H, W)`` the architecture is made for; ``None``: any large enough.
        init: How its paper initialises the weights (:func:`relu_init_`), ``None``: torch's
            default. AtariARI's ``init_`` is orthogonal with gain ``sqrt(2)`` and zero biases
            for every layer of every method; under torch's default their encoder's codes of
            Pong frames spread by about 1e-4 and CPC's InfoNCE stays at chance.
    """

    name: str
    layers: tuple[ConvLayer, ...] | None
    channels: tuple[int, ...]
    hidden_dim: int
    frame_hw: tuple[int, int] | None = None
    init: Literal["kaiming", "orthogonal"] | None = None

    def geometry(self, n: int) -> tuple[ConvLayer, ...]:
        """The geometry of ``n`` convolutions."""
        return self.layers if self.layers is not None else (ConvLayer(4, 2, 1),) * n


ARCHITECTURES: dict[str, Architecture] = {
    "darla": Architecture("darla", None, DEFAULT_CHANNELS, DEFAULT_HIDDEN_DIM),
    "atariari": Architecture(
        "atariari",
        (ConvLayer(8, 4, 0), ConvLayer(4, 2, 0), ConvLayer(4, 2, 0), ConvLayer(3, 1, 0)),
        (32, 64, 128, 64),
        0,
        (210, 160),
        "orthogonal",
    ),
}
"""The named architectures of the family (module doc)."""


def architecture_field() -> Any:
    """The ``architecture`` field of a method's config dataclass: default ``"darla"``, left out
    of checkpoint headers while default (:data:`representations.config.OMIT_DEFAULT`), so the
    headers of every model from before the field stay the same."""
    from representations.config import OMIT_DEFAULT

    return field(default=DEFAULT_ARCHITECTURE, metadata={OMIT_DEFAULT: True})


@torch.no_grad()
def relu_init_(module: nn.Module, scheme: Literal["kaiming", "orthogonal"]) -> nn.Module:
    """Initialises every convolution and linear layer of ``module`` for ReLU networks, in place.

    The papers' encoders start this way, not from torch's default (uniform, about 2.4x
    smaller per layer): AtariARI's (ST-DIM) with orthogonal weights of gain ``sqrt(2)``, rlpyt's
    (ATC) with Kaiming-normal weights (fan-in). On Breakout, whose frames differ in a few
    pixels, torch's default leaves the codes of a batch nearly equal (their spread ~1e-4) and
    InfoNCE at chance for hundreds of steps. Biases start at zero.

    Args:
        module: The encoder.
        scheme: ``"orthogonal"`` (gain sqrt(2)) or ``"kaiming"`` (normal, fan-in, ReLU).

    Returns:
        ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            w = torch.empty(m.weight.shape)  # contiguous: the weights may be channels-last
            if scheme == "orthogonal":
                nn.init.orthogonal_(w, gain=nn.init.calculate_gain("relu"))
            else:
                nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")
            m.weight.copy_(w)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def init_for_architecture_(module: nn.Module, architecture: str) -> nn.Module:
    """Initialises ``module``'s convolutions and linear layers as ``architecture``'s paper
    does (:attr:`Architecture.init`; torch's default, i.e. nothing, for ``None``). Returns it."""
    scheme = _architecture(architecture).init
    return module if scheme is None else relu_init_(module, scheme)


def mean_frame_field() -> Any:
    """The ``mean_frame`` field of a method's config dataclass (:class:`MeanFrame`): default
    ``False``, left out of checkpoint headers while default, as :func:`architecture_field`."""
    from representations.config import OMIT_DEFAULT

    return field(default=False, metadata={OMIT_DEFAULT: True})


def check_mean_frame(value: Any) -> bool:
    """``value`` of a ``mean_frame`` field, checked: a bool (YAML ``true`` / ``false``).

    Raises:
        ReprlError: Anything else, naming what came.
    """
    if not isinstance(value, bool):
        raise ReprlError(f"mean_frame: expected true or false, got {value!r}")
    return value


def _architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ReprlError(f"architecture: expected one of {sorted(ARCHITECTURES)}, got {name!r}")
    return ARCHITECTURES[name]


def resolve_architecture(
    architecture: str,
    channels: Sequence[int] | None,
    hidden_dim: int | None,
    input_shape: Sequence[int],
) -> tuple[tuple[int, ...], int]:
    """A method config's conv fields, checked and with the architecture's defaults filled in.

    Args:
        architecture: A name of :data:`ARCHITECTURES`.
        channels: Output channels of the convolutions; ``None``: the architecture's.
        hidden_dim: FC units, >= 0 (0: no FC layer); ``None``: the architecture's.
        input_shape: ``(C, H, W)`` of the frames.

    Returns:
        ``(channels, hidden_dim)`` resolved.

    Raises:
        ReprlError: An unknown architecture, a channel count it cannot take, a negative
            ``hidden_dim``, or frames of a shape it is not made for (naming both shapes).
    """
    arch = _architecture(architecture)
    chans = arch.channels if channels is None else tuple(channels)
    if len(chans) == 0 or any(isinstance(c, bool) or int(c) <= 0 for c in chans):
        raise ReprlError(f"channels must be a non-empty list of positive ints, got {chans}")
    if arch.layers is not None and len(chans) != len(arch.layers):
        raise ReprlError(
            f"channels: architecture {arch.name!r} has {len(arch.layers)} convolutions, "
            f"got {len(chans)} channels {list(chans)}"
        )
    hidden = arch.hidden_dim if hidden_dim is None else hidden_dim
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
        raise ReprlError(f"hidden_dim: expected an integer >= 0 (0: no FC layer), got {hidden!r}")
    shape = tuple(int(s) for s in input_shape)
    if arch.frame_hw is not None and len(shape) == 3 and shape[1:] != arch.frame_hw:
        h, w = arch.frame_hw
        raise ReprlError(
            f"input_shape: architecture {arch.name!r} is made for full-size ({shape[0]}, {h}, "
            f"{w}) frames (C, H, W), got {shape}"
        )
    _check_shape(shape, chans, arch.name)
    return tuple(int(c) for c in chans), int(hidden)


def _check_shape(
    input_shape: Sequence[int], channels: Sequence[int], architecture: str = DEFAULT_ARCHITECTURE
) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s <= 0 for s in shape):
        raise ReprlError(f"input_shape must be (C, H, W) with positive sizes, got {shape}")
    if len(channels) == 0 or any(int(c) <= 0 for c in channels):
        raise ReprlError(f"channels must be a non-empty list of positive ints, got {channels}")
    arch = _architecture(architecture)
    if arch.layers is None:
        min_side = 2 ** len(channels)
        if shape[1] < min_side or shape[2] < min_side:
            raise ReprlError(
                f"input H x W must be at least {min_side} x {min_side} for {len(channels)} "
                f"stride-2 convolutions, got {shape[1]} x {shape[2]}"
            )
        return shape  # type: ignore[return-value]
    if len(channels) != len(arch.layers):
        raise ReprlError(
            f"channels: architecture {arch.name!r} has {len(arch.layers)} convolutions, "
            f"got {len(channels)}"
        )
    h, w = shape[1:]
    for layer in arch.layers:
        h = (h + 2 * layer.padding - layer.kernel) // layer.stride + 1
        w = (w + 2 * layer.padding - layer.kernel) // layer.stride + 1
        if h < 1 or w < 1:
            raise ReprlError(
                f"input_shape: frames of {shape[1]} x {shape[2]} are too small for architecture "
                f"{arch.name!r} (made for {arch.frame_hw}), got {shape}"
            )
    return shape  # type: ignore[return-value]


def _conv_stack(
    in_channels: int, channels: Sequence[int], architecture: str = DEFAULT_ARCHITECTURE
) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_channels
    for c, g in zip(channels, _architecture(architecture).geometry(len(channels))):
        layers += [nn.Conv2d(prev, int(c), g.kernel, g.stride, g.padding), nn.ReLU(inplace=True)]
        prev = int(c)
    return nn.Sequential(*layers)


@torch.no_grad()
def conv_feature_shapes(
    input_shape: Sequence[int],
    channels: Sequence[int] = DEFAULT_CHANNELS,
    architecture: str = DEFAULT_ARCHITECTURE,
) -> list[tuple[int, int, int]]:
    """Shapes after each convolution of the encoder stack, measured with a dummy forward pass.

    Args:
        input_shape: ``(C, H, W)`` of the images.
        channels: Output channels of each convolution.
        architecture: A name of :data:`ARCHITECTURES`.

    Returns:
        One ``(C_i, H_i, W_i)`` per convolution, in order.

    Raises:
        ReprlError: If the shape is malformed or too small for the stack.
    """
    shape = _check_shape(input_shape, channels, architecture)
    stack = _conv_stack(shape[0], channels, architecture)
    x = torch.zeros(1, *shape)
    shapes = []
    for layer in stack:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            shapes.append(tuple(x.shape[1:]))
    return shapes


class MeanFrame(nn.Module):
    """The encoder's input centring: ``x - mean``, ``mean`` the training frames' mean image.

    Atari frames are mostly a constant background: on Pong only about 0.2% of the pixels change
    between frames, so a freshly initialised ReLU stack maps every frame to nearly the same
    code (its std over frames about 1e-4) and the contrastive and supervised losses, starting
    at chance, drive its units dead before any learns the ball. Subtracting the data's mean
    frame leaves the moving objects as the input's only signal (the per-pixel analogue of
    SB3's ``VecNormalize`` for images). The mean is fitted once, before the first optimiser
    step, from the pretraining data (:func:`representations.pretrain.pretrain` calls
    :meth:`fit`), and stored with the weights; until then it is zero (the identity).

    Args:
        shape: ``(C, H, W)`` of the frames.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(tuple(shape)))

    @torch.no_grad()
    def fit(self, mean: Tensor) -> None:
        """Sets the mean frame: ``(C, H, W)`` float32 in ``[0, 1]``.

        Raises:
            ReprlError: A mean of another shape or outside ``[0, 1]``.
        """
        if tuple(mean.shape) != tuple(self.mean.shape):
            raise ReprlError(
                f"mean frame: expected shape {tuple(self.mean.shape)}, got {tuple(mean.shape)}"
            )
        if mean.numel() and (float(mean.min()) < 0.0 or float(mean.max()) > 1.0):
            raise ReprlError(
                f"mean frame: expected values in [0, 1], got [{float(mean.min())}, "
                f"{float(mean.max())}]"
            )
        self.mean.copy_(mean)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` frames in ``[0, 1]`` -> the same minus the mean, in ``[-1, 1]``."""
        return x - self.mean


class ConvEncoder(nn.Module):
    """An encoder of the family: conv stack, flatten, FC + ReLU (none when ``hidden_dim`` is 0).

    Args:
        input_shape: ``(C, H, W)`` of the input images (what the architecture accepts).
        channels: Output channels of the convolutions; ``None``: the architecture's (DARLA:
            32, 32, 64, 64; AtariARI: 32, 64, 128, 64).
        hidden_dim: Units of the FC layer, 0 for none; ``None``: the architecture's (DARLA:
            256; AtariARI: 0).
        architecture: A name of :data:`ARCHITECTURES` (default ``"darla"``).
        mean_frame: Centre the input on the training data's mean frame first
            (:class:`MeanFrame`, the :attr:`center` submodule); default off.

    Attributes:
        center: The :class:`MeanFrame`, or ``None`` without ``mean_frame``.
        feature_shapes: ``(C_i, H_i, W_i)`` after each convolution (dummy forward pass).
        feature_shape: Shape of the last convolution's output, i.e. of :meth:`conv_features`.
        out_dim: ``hidden_dim``, or the flattened ``feature_shape`` without an FC layer.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int] | None = DEFAULT_CHANNELS,
        hidden_dim: int | None = DEFAULT_HIDDEN_DIM,
        architecture: str = DEFAULT_ARCHITECTURE,
        mean_frame: bool = False,
    ) -> None:
        super().__init__()
        chans, hidden = resolve_architecture(architecture, channels, hidden_dim, input_shape)
        self.architecture = architecture
        self.input_shape = _check_shape(input_shape, chans, architecture)
        # A submodule only with the option: checkpoints without it keep their tensors.
        self.center = MeanFrame(self.input_shape) if check_mean_frame(mean_frame) else None
        self.feature_shapes = conv_feature_shapes(self.input_shape, chans, architecture)
        self.feature_shape = self.feature_shapes[-1]
        self.convs = _conv_stack(self.input_shape[0], chans, architecture)
        flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        self.fc = nn.Linear(flat, hidden) if hidden > 0 else None
        self.out_dim = hidden if hidden > 0 else flat
        init_for_architecture_(self, architecture)
        self.to(memory_format=torch.channels_last)

    def check_input(self, x: Tensor) -> None:
        """Raises :class:`ReprlError` naming both shapes unless ``x`` is ``(B, *input_shape)``."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise ReprlError(
                f"{self.architecture} conv encoder: expected input of shape (B, {c}, {h}, {w}), "
                f"got {tuple(x.shape)}"
            )

    def conv_features(self, x: Tensor, layers: int | None = None) -> Tensor:
        """Output of the first ``layers`` convolutions (after their ReLU).

        Args:
            x: ``(B, C, H, W)`` float32 images, ``(C, H, W)`` = ``input_shape``.
            layers: how many convolutions to run, 1 .. len(channels); ``None``: all.

        Returns:
            ``(B, *feature_shapes[layers - 1])`` float32, non-negative.
        """
        self.check_input(x)
        if self.center is not None:
            x = self.center(x)
        if layers is None:
            return self.convs(x)
        return self.convs[: 2 * layers](x)

    def hidden(self, features: Tensor) -> Tensor:
        """The layers after the convolutions: flatten, then FC + ReLU if there is an FC layer.

        Args:
            features: ``(B, *feature_shape)``, the last convolution's output.

        Returns:
            ``(B, out_dim)`` float32, non-negative.
        """
        flat = features.flatten(1)
        return flat if self.fc is None else torch.relu(self.fc(flat))

    def forward(self, x: Tensor) -> Tensor:
        """Encode images to the hidden layer.

        Args:
            x: ``(B, C, H, W)`` float32 images, ``(C, H, W)`` = ``input_shape``.

        Returns:
            ``(B, out_dim)`` float32, non-negative (ReLU).

        Raises:
            ReprlError: An input of another shape, naming the expected and the given one.
        """
        return self.hidden(self.conv_features(x))


class ConvDecoder(nn.Module):
    """Transpose of :class:`ConvEncoder`: FC layers, then the transposed convolutions.

    Args:
        output_shape: ``(C, H, W)`` of the images to produce (the encoder's ``input_shape``).
        latent_dim: Size of the input code.
        channels: The encoder's convolution channels (used in reverse order); ``None``: the
            architecture's.
        hidden_dim: Units of the first fully connected layer; 0: a single FC layer from the
            code to the last feature map (AtariARI's decoder); ``None``: the architecture's.
        architecture: The encoder's architecture (:data:`ARCHITECTURES`).

    The output is unnormalised logits: apply ``torch.sigmoid`` for images in ``[0, 1]``.
    """

    def __init__(
        self,
        output_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] | None = DEFAULT_CHANNELS,
        hidden_dim: int | None = DEFAULT_HIDDEN_DIM,
        architecture: str = DEFAULT_ARCHITECTURE,
    ) -> None:
        super().__init__()
        chans, hidden = resolve_architecture(architecture, channels, hidden_dim, output_shape)
        self.output_shape = _check_shape(output_shape, chans, architecture)
        shapes = conv_feature_shapes(self.output_shape, chans, architecture)
        self.feature_shape = shapes[-1]
        flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        fc: list[nn.Module] = [nn.Linear(int(latent_dim), hidden or flat), nn.ReLU(inplace=True)]
        if hidden > 0:
            fc += [nn.Linear(hidden, flat), nn.ReLU(inplace=True)]
        self.fc = nn.Sequential(*fc)
        # Spatial sizes from the image down to the last feature map; each transposed conv maps
        # sizes[i + 1] back to sizes[i]; output_padding recovers the sizes floor() dropped.
        sizes = [self.output_shape[1:], *[s[1:] for s in shapes]]
        out_channels = [self.output_shape[0], *chans[:-1]]
        geometry = _architecture(architecture).geometry(len(chans))
        layers: list[nn.Module] = []
        for i in reversed(range(len(chans))):
            (h_out, w_out), (h_in, w_in), g = sizes[i], sizes[i + 1], geometry[i]
            pad = tuple(
                out - ((inp - 1) * g.stride - 2 * g.padding + g.kernel)
                for out, inp in ((h_out, h_in), (w_out, w_in))
            )
            layers.append(
                nn.ConvTranspose2d(
                    chans[i], out_channels[i], g.kernel, g.stride, g.padding, output_padding=pad
                )
            )
            if i > 0:
                layers.append(nn.ReLU(inplace=True))
        self.deconvs = nn.Sequential(*layers)
        with torch.no_grad():
            got = tuple(self.deconvs(torch.zeros(1, *self.feature_shape)).shape[1:])
        if got != self.output_shape:
            raise ValueError(f"decoder output shape: expected {self.output_shape}, got {got}")
        self.to(memory_format=torch.channels_last)

    def forward(self, z: Tensor) -> Tensor:
        """Decode codes to image logits.

        Args:
            z: ``(B, latent_dim)`` float32.

        Returns:
            ``(B, C, H, W)`` float32 logits (unbounded).
        """
        h = self.fc(z).view(z.shape[0], *self.feature_shape)
        return self.deconvs(h)
