"""MONet's networks (Burgess et al., 2019, appendix B): the attention U-Net, the component VAE's
encoder and the spatial broadcast decoder. Plain ``nn.Module``s; :mod:`representations.monet`
assembles them, checks the configuration and holds the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.beta_vae import bound_logvar

#: What the component encoder sees besides the image (``encoder_mask_input``).
MASK_INPUTS = ("log", "mask")


def unet_sizes(height: int, width: int, blocks: int) -> list[tuple[int, int]]:
    """``(H, W)`` of the U-Net's feature maps along the down path, ``blocks`` of them: each
    nearest-neighbour halving floors (64 with 4 blocks: 64, 32, 16, 8).

    Raises:
        ReprlError: If the bottom map is smaller than 2 x 2 (instance normalisation needs
            more than one pixel), naming the sizes.
    """
    sizes = [(int(height), int(width))]
    for _ in range(blocks - 1):
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    bottom = sizes[-1]
    if min(bottom) < 2:
        raise ReprlError(
            f"unet_blocks={blocks} halves {height} x {width} images {blocks - 1} times down to "
            f"{bottom[0]} x {bottom[1]}; expected at least 2 x 2 at the bottom: use fewer "
            f"blocks or larger images"
        )
    return sizes


def unet_widths(blocks: int, channels: int) -> list[int]:
    """Channels of the U-Net's down blocks: the first ``blocks // 2`` have ``channels``, the
    rest twice as many (5 blocks of 32: 32, 32, 64, 64, 64)."""
    return [channels if i < blocks // 2 else 2 * channels for i in range(blocks)]


class _INConv(nn.Sequential):
    """3x3 convolution (no bias, padding 1), affine instance normalisation, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(out_channels, affine=True),
            nn.ReLU(inplace=True),
        )


class AttentionUNet(nn.Module):
    """MONet's attention network: a U-Net from ``(image, log scope)`` to one logit per pixel.

    Args:
        input_shape: ``(C, H, W)`` of the images (the network sees ``C + 1`` channels).
        blocks: Blocks on each path; the resolution halves ``blocks - 1`` times, and the bottom
            feature map must keep at least 2 x 2 pixels (instance normalisation needs them).
        channels: Width of the first down blocks (see :func:`unet_widths`).
        mlp_dim: Hidden units of the bottleneck MLP (two hidden layers).

    Raises:
        ReprlError: If the images are too small for ``blocks`` blocks.
    """

    def __init__(
        self, input_shape: Sequence[int], blocks: int, channels: int, mlp_dim: int
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        widths = unet_widths(blocks, channels)
        self.down = nn.ModuleList(
            _INConv(cin, cout) for cin, cout in zip([c + 1, *widths[:-1]], widths)
        )
        sizes = unet_sizes(h, w, blocks)
        bottom = sizes[-1]
        self.sizes = sizes
        self.bottom_shape = (widths[-1], *bottom)
        flat = widths[-1] * bottom[0] * bottom[1]
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, mlp_dim),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, mlp_dim),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, flat),
            nn.ReLU(inplace=True),
        )
        # Up block j joins the path (width of the block below) with the skip of down block
        # blocks-1-j, and outputs the width of down block blocks-2-j (the first's at the end).
        up_in = [widths[-1], *list(reversed(widths))[1:]]
        up_out = [*list(reversed(widths))[1:], widths[0]]
        skips = list(reversed(widths))
        self.up = nn.ModuleList(
            _INConv(a + s, o) for a, s, o in zip(up_in, skips, up_out, strict=True)
        )
        self.head = nn.Conv2d(widths[0], 1, 1)

    @staticmethod
    def _downsample(x: Tensor) -> Tensor:
        return F.interpolate(x, size=(x.shape[2] // 2, x.shape[3] // 2), mode="nearest")

    def forward(self, x: Tensor, log_scope: Tensor) -> Tensor:
        """Attention logits.

        Args:
            x: ``(B, C, H, W)`` images.
            log_scope: ``(B, 1, H, W)`` log of the scope, ``<= 0``.

        Returns:
            ``(B, 1, H, W)`` logits ``a``: ``alpha = sigmoid(a)``.
        """
        h = torch.cat([x, log_scope], dim=1)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h)
            skips.append(h)
            if i < len(self.down) - 1:
                h = self._downsample(h)
        h = self.mlp(h).view(h.shape[0], *self.bottom_shape)
        for j, block in enumerate(self.up):
            skip = skips[-1 - j]
            if h.shape[2:] != skip.shape[2:]:
                h = F.interpolate(h, size=skip.shape[2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1))
        return self.head(h)


class SlotEncoder(nn.Module):
    """Component VAE encoder: ``(image, log mask)`` to ``(mu, logvar)`` of one slot.

    Args:
        input_shape: ``(C, H, W)`` of the images (the network sees ``C + 1`` channels).
        channels: Output channels of the 3x3 stride-2 convolutions (padding 1).
        hidden_dim: Hidden units of the MLP head.
        slot_dim: Latents per slot ``D``.
        hidden_norm: Batch-normalise the MLP's hidden units (before their ReLU) over the
            ``N`` slot rows: batch statistics when ``forward`` is told so (training steps),
            the running ones otherwise.
        slots: With ``slot_hidden_norm``: the rows come in groups of ``slots`` (one image's
            slots, in attention order).
        slot_hidden_norm: Batch-normalise the hidden units with statistics (and affine
            parameters) of their own per slot index: ``N = B * slots`` rows are normalised as
            ``B`` rows of ``slots * hidden_dim`` features, so each slot's hidden units are
            standardised over the frames of the batch, not over all slots pooled.
        mask_input: ``"log"`` (the paper): the mask channel is ``log m_k``; ``"mask"``: it is
            ``m_k = exp(log m_k)`` in ``[0, 1]``, on the image channels' scale.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        hidden_dim: int,
        slot_dim: int,
        hidden_norm: bool = False,
        slots: int = 1,
        slot_hidden_norm: bool = False,
        mask_input: str = "log",
    ) -> None:
        super().__init__()
        if mask_input not in MASK_INPUTS:
            choices = ", ".join(map(repr, MASK_INPUTS))
            raise ReprlError(f"encoder_mask_input: expected one of {choices}, got {mask_input!r}")
        self.mask_input = mask_input
        if hidden_norm and slot_hidden_norm:
            raise ReprlError(
                "hidden_norm and slot_hidden_norm: expected at most one of them true, got both"
            )
        c, h, w = (int(s) for s in input_shape)
        layers: list[nn.Module] = []
        prev = c + 1
        for out in channels:
            layers += [nn.Conv2d(prev, int(out), 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            prev = int(out)
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, c + 1, h, w)).numel()
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, 2 * slot_dim),
        )
        self.hidden_norm = nn.BatchNorm1d(hidden_dim) if hidden_norm else None
        self.slots = int(slots)
        self.slot_hidden_norm = (
            nn.BatchNorm1d(self.slots * hidden_dim) if slot_hidden_norm else None
        )

    def forward(
        self, x: Tensor, log_mask: Tensor, *, batch_stats: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Posterior of one slot per row.

        Args:
            x: ``(N, C, H, W)`` images.
            log_mask: ``(N, 1, H, W)`` log attention masks, ``<= 0``.
            batch_stats: With ``hidden_norm`` or ``slot_hidden_norm``: this batch's statistics
                (updating the running ones) instead of the running statistics.

        Returns:
            ``(mu, logvar)``, each ``(N, D)``; ``logvar`` bounded as in the beta-VAE.
        """
        flat, hidden, relu, head = self.mlp
        mask = log_mask if self.mask_input == "log" else log_mask.exp()
        h = hidden(flat(self.convs(torch.cat([x, mask], dim=1))))
        norm, rows = self.hidden_norm, h.shape[0]
        if self.slot_hidden_norm is not None:
            # One row per image, its slots' hidden units side by side: statistics per slot.
            norm, h = self.slot_hidden_norm, h.reshape(rows // self.slots, -1)
        if norm is not None:
            if batch_stats:
                h = norm(h)
            else:
                h = F.batch_norm(
                    h, norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=norm.eps
                )
        h = h.reshape(rows, -1)
        mu, raw = head(relu(h)).chunk(2, dim=1)
        return mu, bound_logvar(raw)


class BroadcastDecoder(nn.Module):
    """Spatial broadcast decoder (Watters et al., 2019): one slot latent to colour and mask logits.

    Args:
        output_shape: ``(C, H, W)`` of the images.
        slot_dim: Latents per slot ``D``.
        channels: Output channels of the unpadded 3x3 convolutions; the latent is tiled over
            ``(H + 2 * len(channels)) x (W + 2 * len(channels))``.
    """

    def __init__(self, output_shape: Sequence[int], slot_dim: int, channels: Sequence[int]) -> None:
        super().__init__()
        c, h, w = (int(s) for s in output_shape)
        pad = len(channels)
        self.grid_size = (h + 2 * pad, w + 2 * pad)
        self.slot_dim = int(slot_dim)
        self.first = nn.Conv2d(self.slot_dim + 2, int(channels[0]), 3)
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        prev = int(channels[0])
        for out in channels[1:]:
            layers += [nn.Conv2d(prev, int(out), 3), nn.ReLU(inplace=True)]
            prev = int(out)
        layers.append(nn.Conv2d(prev, c + 1, 1))
        self.convs = nn.Sequential(*layers)
        ys = torch.linspace(-1.0, 1.0, self.grid_size[0])
        xs = torch.linspace(-1.0, 1.0, self.grid_size[1])
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, H+2L, W+2L): x, y
        self.register_buffer("coords", grid.unsqueeze(0), persistent=False)

    def first_layer(self, z: Tensor) -> Tensor:
        """The first convolution over the tiled latents and coordinates, before its ReLU.

        Exactly ``self.first(cat([tile(z), coords]))``, computed without tiling: the latent
        channels are constant over the grid and the convolution is unpadded, so their part is
        ``z`` times the kernel summed over its taps, the same at every pixel; the coordinate
        part is the same for every slot and computed once.

        Args:
            z: ``(N, D)`` slot latents.

        Returns:
            ``(N, channels[0], H + 2L - 2, W + 2L - 2)``.
        """
        w = self.first.weight
        d = self.slot_dim
        per_slot = z @ w[:, :d].sum(dim=(2, 3)).t()  # (N, c1)
        coords = F.conv2d(self.coords.to(dtype=z.dtype), w[:, d:], self.first.bias)
        return coords + per_slot[:, :, None, None]

    def forward(self, z: Tensor) -> Tensor:
        """Decode slot latents.

        Args:
            z: ``(N, D)`` slot latents.

        Returns:
            ``(N, C + 1, H, W)`` logits: ``C`` colour logits (``sigmoid`` gives the slot's image
            in ``[0, 1]``) and one mask logit (a softmax over slots gives the decoded masks).
        """
        return self.convs(self.first_layer(z))
