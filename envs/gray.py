"""Grayscale frames: ITU-R 601 luma, rounded exactly as OpenCV's ``cvtColor(RGB2GRAY)``."""

from __future__ import annotations

import torch
from torch import Tensor

LUMA_601 = (4899, 9617, 1868)
"""ITU-R 601 weights of R, G, B (0.299, 0.587, 0.114) in OpenCV's 14-bit fixed point."""


def rgb_to_gray(frames: Tensor) -> Tensor:
    """ITU-R 601 luma of uint8 RGB: ``(4899 R + 9617 G + 1868 B + 8192) >> 14``.

    This is ``0.299 R + 0.587 G + 0.114 B`` rounded to the nearest integer (OpenCV's uint8
    arithmetic; gymnasium's ``GrayscaleObservation`` uses other weights and truncates).

    Args:
        frames: ``(..., 3)`` uint8 RGB, on any device.

    Returns:
        ``(..., 1)`` uint8 on the same device.
    """
    f = frames.to(torch.int32)
    r, g, b = LUMA_601
    y = f[..., 0:1] * r
    y += f[..., 1:2] * g
    y += f[..., 2:3] * b
    y += 1 << 13
    return (y >> 14).to(torch.uint8)
