"""The networks GQN (:mod:`representations.gqn`) is built of: the representation network of a
view (tower or pool) and the convolutional LSTM core of its generator, and the closed-form KL
between two diagonal Gaussians its loss sums over the generation steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Size of a viewpoint: ``(x, y, z, cos yaw, sin yaw, cos pitch, sin pitch)``.
VIEWPOINT_DIM = 7


def gaussian_kl_between(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """Elementwise ``KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p)))``, closed form.

    ``0.5 * (logvar_p - logvar_q + (exp(logvar_q) + (mu_q - mu_p) ** 2) / exp(logvar_p) - 1)``.

    Args:
        mu_q, logvar_q: Mean and log-variance of ``q``, any shape.
        mu_p, logvar_p: Those of ``p``, broadcastable to ``q``'s.

    Returns:
        The KL per element in nats, ``>= 0``; exactly 0 where ``q`` and ``p`` are equal.
    """
    return 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0
    )


class RepresentationNetwork(nn.Module):
    """GQN's representation network ``f(x, v)`` of one view: the tower, or the tower pooled.

    Args:
        image_channels: ``C`` of the views.
        channels: ``k``, the tower's width (its 3x3 bottlenecks have ``max(k // 2, 1)``).
        r_dim: Channels of ``r`` (the last, 1x1 convolution).
        pool: Average ``r`` over space (the paper's "pool" architecture).
    """

    def __init__(self, image_channels: int, channels: int, r_dim: int, pool: bool) -> None:
        super().__init__()
        k, half, v = channels, max(channels // 2, 1), VIEWPOINT_DIM
        self.pool = pool
        self.conv1 = nn.Conv2d(image_channels, k, 2, stride=2)
        self.conv2 = nn.Conv2d(k, k, 2, stride=2)
        self.conv3 = nn.Conv2d(k, half, 3, padding=1)
        self.conv4 = nn.Conv2d(half, k, 2, stride=2)
        self.conv5 = nn.Conv2d(k + v, k, 3, padding=1)
        self.conv6 = nn.Conv2d(k + v, half, 3, padding=1)
        self.conv7 = nn.Conv2d(half, k, 3, padding=1)
        self.conv8 = nn.Conv2d(k, r_dim, 1)

    def forward(self, x: Tensor, v: Tensor) -> Tensor:
        """``f(x, v)`` of a batch of views.

        Args:
            x: ``(N, C, H, W)`` float32 in ``[0, 1]``, H and W divisible by 4.
            v: ``(N, 7)`` viewpoints (zeros: unknown pose).

        Returns:
            ``(N, r_dim, H/4, W/4)`` (tower) or ``(N, r_dim, 1, 1)`` (pool), non-negative.
        """
        a = F.relu(self.conv1(x))
        b = F.relu(self.conv2(a))
        h = F.relu(self.conv4(F.relu(self.conv3(a)))) + b
        vv = v[:, :, None, None].expand(-1, -1, *h.shape[2:]).to(h.dtype)
        h = torch.cat([h, vv], dim=1)
        c = F.relu(self.conv5(h))
        h = F.relu(self.conv7(F.relu(self.conv6(h)))) + c
        r = F.relu(self.conv8(h))
        return r.mean(dim=(2, 3), keepdim=True) if self.pool else r


class ConvLSTMCore(nn.Module):
    """A convolutional LSTM whose gate convolution is split into a part over inputs that are the
    same at every step (``fixed``, with the bias) and a part over the step's own inputs and the
    hidden state (``step``): ``gates = conv([fixed, step, h]) = fixed_conv(fixed) +
    step_conv([step, h])``.

    Args:
        fixed_channels: Channels of the per-rendering inputs.
        step_channels: Channels of the per-step inputs (the hidden state excluded).
        hidden: Channels of the hidden and cell states.
        kernel_size: Odd kernel size of both convolutions ("same" padding).
    """

    def __init__(
        self, fixed_channels: int, step_channels: int, hidden: int, kernel_size: int
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.hidden = hidden
        self.fixed_conv = nn.Conv2d(fixed_channels, 4 * hidden, kernel_size, padding=pad)
        self.step_conv = nn.Conv2d(
            step_channels + hidden, 4 * hidden, kernel_size, padding=pad, bias=False
        )

    def fixed_gates(self, fixed: Tensor) -> Tensor:
        """The gates' part from the per-rendering inputs, ``(N, 4 hidden, h, w)``."""
        return self.fixed_conv(fixed)

    def forward(
        self, fixed_gates: Tensor, step: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """One step.

        Args:
            fixed_gates: :meth:`fixed_gates` of this rendering.
            step: ``(N, step_channels, h, w)``.
            state: ``(h, c)``, each ``(N, hidden, h, w)``.

        Returns:
            The new ``(h, c)``.
        """
        h, c = state
        gates = fixed_gates + self.step_conv(torch.cat([step, h], dim=1))
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
