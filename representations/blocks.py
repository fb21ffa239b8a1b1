"""Shared convolutional blocks: the DARLA / beta-VAE image encoder and its transpose.

The architecture follows Higgins et al. (2017, beta-VAE) and DARLA (Higgins et al., 2017): four
convolutions with 4x4 kernels, stride 2 and padding 1 (32, 32, 64, 64 channels by default), each
followed by a ReLU, then a fully connected layer of 256 units. The decoder mirrors it with
transposed convolutions.

Every size after a convolution is measured with a dummy forward pass (as SB3's ``NatureCNN``
does), never read from a table, so inputs other than 64x64 work: any height and width of at
least 16 pixels (``2 ** len(channels)``), odd sizes included (the decoder picks the transposed
convolutions' ``output_padding`` so it returns exactly the input size).

Memory format: the blocks put their convolution weights in ``torch.channels_last`` when built
(a training step of the 64x64 beta-VAE at batch 64 ran about 20-25% faster on 2 CPU cores than
with contiguous weights). Inputs may be in either format; ``uint8 (B, H, W, C)`` frames become
channels-last tensors after ``permute(0, 3, 1, 2)`` without a copy. Checkpoints store contiguous
tensors, so the format is an in-memory detail.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from envs.errors import ReprlError

#: Channels of the four convolutions of the DARLA / beta-VAE encoder.
DEFAULT_CHANNELS: tuple[int, ...] = (32, 32, 64, 64)
#: Width of the fully connected layer after the convolutions.
DEFAULT_HIDDEN_DIM: int = 256

_KERNEL = 4
_STRIDE = 2
_PADDING = 1


def _check_shape(input_shape: Sequence[int], channels: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s <= 0 for s in shape):
        raise ReprlError(f"input_shape must be (C, H, W) with positive sizes, got {shape}")
    if len(channels) == 0 or any(int(c) <= 0 for c in channels):
        raise ReprlError(f"channels must be a non-empty list of positive ints, got {channels}")
    min_side = 2 ** len(channels)
    if shape[1] < min_side or shape[2] < min_side:
        raise ReprlError(
            f"input H x W must be at least {min_side} x {min_side} for {len(channels)} stride-2 "
            f"convolutions, got {shape[1]} x {shape[2]}"
        )
    return shape  # type: ignore[return-value]


def _conv_stack(in_channels: int, channels: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_channels
    for c in channels:
        layers += [nn.Conv2d(prev, int(c), _KERNEL, _STRIDE, _PADDING), nn.ReLU(inplace=True)]
        prev = int(c)
    return nn.Sequential(*layers)


@torch.no_grad()
def conv_feature_shapes(
    input_shape: Sequence[int], channels: Sequence[int] = DEFAULT_CHANNELS
) -> list[tuple[int, int, int]]:
    """Shapes after each convolution of the encoder stack, measured with a dummy forward pass.

    Args:
        input_shape: ``(C, H, W)`` of the images.
        channels: Output channels of each convolution.

    Returns:
        One ``(C_i, H_i, W_i)`` per convolution, in order.

    Raises:
        ReprlError: If the shape is malformed or too small for the stack.
    """
    shape = _check_shape(input_shape, channels)
    stack = _conv_stack(shape[0], channels)
    x = torch.zeros(1, *shape)
    shapes = []
    for layer in stack:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            shapes.append(tuple(x.shape[1:]))
    return shapes


class ConvEncoder(nn.Module):
    """DARLA / beta-VAE convolutional encoder: conv stack, flatten, FC + ReLU.

    Args:
        input_shape: ``(C, H, W)`` of the input images; H and W at least ``2 ** len(channels)``.
        channels: Output channels of the 4x4 stride-2 convolutions (default 32, 32, 64, 64).
        hidden_dim: Units of the fully connected layer (default 256).

    Attributes:
        feature_shapes: ``(C_i, H_i, W_i)`` after each convolution (dummy forward pass).
        feature_shape: Shape of the last convolution's output, i.e. of :meth:`conv_features`.
        out_dim: ``hidden_dim``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int] = DEFAULT_CHANNELS,
        hidden_dim: int = DEFAULT_HIDDEN_DIM,
    ) -> None:
        super().__init__()
        self.input_shape = _check_shape(input_shape, channels)
        self.feature_shapes = conv_feature_shapes(self.input_shape, channels)
        self.feature_shape = self.feature_shapes[-1]
        self.out_dim = int(hidden_dim)
        self.convs = _conv_stack(self.input_shape[0], channels)
        flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        self.fc = nn.Linear(flat, self.out_dim)
        self.to(memory_format=torch.channels_last)

    def conv_features(self, x: Tensor, layers: int | None = None) -> Tensor:
        """Output of the first ``layers`` convolutions (after their ReLU).

        Args:
            x: ``(B, C, H, W)`` float32 images.
            layers: how many convolutions to run, 1 .. len(channels); ``None``: all.

        Returns:
            ``(B, *feature_shapes[layers - 1])`` float32, non-negative.
        """
        if layers is None:
            return self.convs(x)
        return self.convs[: 2 * layers](x)

    def forward(self, x: Tensor) -> Tensor:
        """Encode images to the hidden layer.

        Args:
            x: ``(B, C, H, W)`` float32 images.

        Returns:
            ``(B, hidden_dim)`` float32, non-negative (ReLU).
        """
        return torch.relu(self.fc(self.convs(x).flatten(1)))


class ConvDecoder(nn.Module):
    """Transpose of :class:`ConvEncoder`: FC layers, then transposed 4x4 stride-2 convolutions.

    Args:
        output_shape: ``(C, H, W)`` of the images to produce (the encoder's ``input_shape``).
        latent_dim: Size of the input code.
        channels: The encoder's convolution channels (used in reverse order).
        hidden_dim: Units of the first fully connected layer (default 256).

    The output is unnormalised logits: apply ``torch.sigmoid`` for images in ``[0, 1]``.
    """

    def __init__(
        self,
        output_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        hidden_dim: int = DEFAULT_HIDDEN_DIM,
    ) -> None:
        super().__init__()
        self.output_shape = _check_shape(output_shape, channels)
        shapes = conv_feature_shapes(self.output_shape, channels)
        self.feature_shape = shapes[-1]
        flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        self.fc = nn.Sequential(
            nn.Linear(int(latent_dim), int(hidden_dim)),
            nn.ReLU(inplace=True),
            nn.Linear(int(hidden_dim), flat),
            nn.ReLU(inplace=True),
        )
        # Spatial sizes from the image down to the last feature map; each transposed conv maps
        # sizes[i + 1] back to sizes[i]; output_padding recovers the odd sizes floor() dropped.
        sizes = [self.output_shape[1:], *[s[1:] for s in shapes]]
        out_channels = [self.output_shape[0], *[int(c) for c in channels[:-1]]]
        layers: list[nn.Module] = []
        for i in reversed(range(len(channels))):
            (h_out, w_out), (h_in, w_in) = sizes[i], sizes[i + 1]
            pad = (h_out - _STRIDE * h_in, w_out - _STRIDE * w_in)
            layers.append(
                nn.ConvTranspose2d(
                    int(channels[i]),
                    out_channels[i],
                    _KERNEL,
                    _STRIDE,
                    _PADDING,
                    output_padding=pad,
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
