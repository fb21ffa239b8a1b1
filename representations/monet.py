"""MONet: unsupervised scene decomposition and representation (Burgess et al., 2019).

A recurrent attention network carves an image into ``K`` soft masks; a component VAE encodes
the image under each mask into a slot latent and decodes every slot into an RGB image and a
mask logit. With ``s_0 = 1`` (the scope: what is not yet explained)::

    alpha_k = attention(x, log s_{k-1})              k = 1 .. K-1  (a U-Net, sigmoid output)
    m_k     = s_{k-1} * alpha_k,   s_k = s_{k-1} * (1 - alpha_k),   m_K = s_{K-1}

so the masks sum to one at every pixel. Everything runs in log space
(``log alpha = logsigmoid(a)``, ``log(1 - alpha) = logsigmoid(-a)``): a mask that underflows to 0
in probability space keeps a finite log and a finite gradient.

Loss per example, averaged over the batch (the paper's objective)::

    -sum_pixels log sum_k m_k N(x; x_k, sigma_k^2 I)                   "recon"
    + beta  * sum_k KL(q(z_k | x, m_k) || N(0, I))                      "kl"
    + gamma * sum_pixels KL(m || softmax_k(decoded mask logits))        "mask_kl"

The mixture is per pixel, over the colour channels jointly (each pixel belongs to one slot);
``sigma_0 = sigma_bg`` (0.09) for the first slot and ``sigma_fg`` (0.11) for the others, which
nudges the background into slot 0. ``recon`` is the full Gaussian NLL in nats, constants
included, so it goes negative on a good fit: its floor is
``H * W * C * log(sigma_bg * sqrt(2 pi))`` (every pixel reconstructed exactly by slot 0).

Architecture (paper, appendix B, with every size a constructor argument):

- Attention network: a U-Net over ``(image, log scope)``. Each block is a 3x3 convolution
  without bias, instance normalisation (affine), ReLU; the down path halves the resolution by
  nearest-neighbour resizing after every block but the last, a 3-layer MLP joins the two paths
  at the bottom, the up path mirrors the down path with skip connections and nearest-neighbour
  upsampling, and a final 1x1 convolution gives one logit per pixel.
- Component VAE encoder: 3x3 stride-2 convolutions (padding 1) with ReLU over
  ``(image, log m_k)``, an MLP with one hidden layer to ``(mu, logvar)`` of ``slot_dim`` latents.
- Spatial broadcast decoder (Watters et al., 2019): ``z_k`` tiled over an
  ``(H + 2L) x (W + 2L)`` grid with two coordinate channels (x and y in ``[-1, 1]``), ``L``
  unpadded 3x3 convolutions with ReLU (``L = len(decoder_channels)``; each trims one pixel per
  side, back to ``H x W``), a 1x1 convolution to ``C`` colour logits and one mask logit.

:data:`PAPER_CONFIG` is the paper's configuration; the class defaults are a CPU-sized version of
it (fewer slots, latents and channels).

Why MONet's slot latents collapse on Breakout, and the options measured against it (all off by
default, as in every checkpoint written before them). Setting: the default experiment's 20k
frames (encoders.yaml), AdamW, batch 32, 5 slots of 8; "active" is a posterior mean's variance
over frames above 0.01 in evaluation mode; R^2 is the linear probe (5,000 frames) of paddle_x /
ball_x / ball_y; ARI / foreground ARI on 256 segmented frames; wall times on 2 busy cores.
Before (plain, 1,000 steps, lr 5e-4, about 15 min): 0 of 40 active, KL 157 nats in tight
posteriors around per-slot constant means (the codes carry *which slot*, not the frame; largest
variance 5e-4), masks near their initial halving (areas 0.56/0.14/0.11/0.09/0.10), none on ball
or paddle, reconstruction worse than the mean frame's (about -16,950 nats); R^2 0.932 / 0.445 /
0.513, ARI 0.93 / 0.02. At initialisation the means vary over frames by about 1e-7 (2% of the
pixels differ from the mean frame; the first convolution responds 6x more to the log mask).

- ``hidden_norm`` (batch norm pooled over the ``B * K`` slot rows): 0 active after 600 steps.
- ``slot_hidden_norm`` (per-slot batch norm over the frames): stale running statistics blew
  the evaluation codes up (600 steps: KL 74,558 nats against 55 in training mode).
  ``recalibrate_norm`` (:meth:`MONet.after_training`, 1,024 frames) fixes that: on the 600-step
  checkpoint 40 active, KL 55 (6.7/18.6/8.8/16.1/5.1 per slot), recon -10,586, R^2 0.962 /
  0.224 / 0.332, ARI 0.72 / 0.27; on the 300-step one 40 active, R^2 0.928 / 0.301 / 0.383.
- ``encoder_mean_frame`` + ``encoder_mask_input="mask"``, lr 1e-3 (call it MF), 300 steps
  (404 s): 0 active (largest variance 5e-3), recon -13,839, R^2 0.925 / 0.400 / 0.649, ARI
  0.93 / 0.19. 600 steps (598 s): 0 active, R^2 0.846 / 0.289 / 0.629, ARI 0.82 / 0.00.
- MF + ``sigma_fg=0.05`` (shipped in encoders.yaml), 300 steps (366 s): 0 active (largest
  variance 1.4e-3; KL 17/4.7/12/20/7.8, logvar about -1.3), R^2 0.963 / 0.672 / 0.791, ARI
  0.74 / 0.00. MF + sigmas 0.2 / 0.25: 0 active, R^2 0.960 / 0.499 / 0.689. MF + 3 slots
  (178 s): every slot at the prior (KL 0.7), R^2 0.857 / 0.466 / 0.333.
- Per-slot batch norm with recalibration on top of MF (lr 1e-3, 300 steps, about 310 s): 39
  active (KL about 3.8 per slot), R^2 0.986 / 0.059 / 0.058; with ``sigma_fg=0.05`` too, 32
  active (slot 0 at the prior, about 20 nats in the others), R^2 0.992 / 0.036 / 0.061.

So at a CPU budget the batch norms buy variance that carries the paddle and not the ball, and
without them the ball is linearly readable (best with MF and ``sigma_fg=0.05``) only from
means that vary far less than their posterior noise: no setting here gives 8 or more
genuinely active latents with a better ball probe, and no mask forms on the ball. The paper
trains for about 1M steps (RMSProp 1e-4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.beta_vae import bound_logvar, gaussian_kl
from representations.probing import Decomposer
from representations.registry import register

#: The paper's configuration (Burgess et al. 2019, appendix B) for 64x64 RGB scenes with K=7
#: slots (its Objects Room setting; set ``num_slots`` for scenes with more objects), as
#: constructor keyword arguments: ``MONet(**PAPER_CONFIG)``. The paper trained with RMSProp,
#: learning rate 1e-4, batch 64. Its U-Net channel widths are not given there; 32 doubling
#: once to 64 follows common reimplementations.
PAPER_CONFIG: dict[str, Any] = {
    "input_shape": [3, 64, 64],
    "num_slots": 7,
    "slot_dim": 16,
    "beta": 0.5,
    "gamma": 0.5,
    "sigma_bg": 0.09,
    "sigma_fg": 0.11,
    "unet_blocks": 5,
    "unet_channels": 32,
    "unet_mlp_dim": 128,
    "encoder_channels": [32, 32, 64, 64],
    "encoder_hidden_dim": 256,
    "decoder_channels": [32, 32, 32, 32],
    "hidden_norm": False,
    "slot_hidden_norm": False,
    "encoder_mask_input": "log",
    "encoder_mean_frame": False,
    "recalibrate_norm": False,
}

_LOG_2PI = math.log(2.0 * math.pi)

#: What the component encoder sees besides the image (``encoder_mask_input``).
MASK_INPUTS = ("log", "mask")

#: Frames on which ``recalibrate_norm`` re-estimates the batch norms' statistics.
RECALIBRATION_FRAMES = 1024


def _positive_int(value: Any, what: str, minimum: int = 1) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and int(value) >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ReprlError(f"{what}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _finite_float(value: Any, what: str, *, positive: bool) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not math.isfinite(v) or (v <= 0.0 if positive else v < 0.0):
        bound = "> 0" if positive else ">= 0"
        raise ReprlError(f"{what}: expected a finite number {bound}, got {value!r}")
    return v


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ReprlError(f"{what}: expected true or false, got {value!r}")
    return value


def _choice(value: Any, what: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ReprlError(f"{what}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _channel_list(value: Sequence[int], what: str) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ReprlError(f"{what}: expected a non-empty list of positive ints, got {value!r}")
    return [_positive_int(c, what) for c in value]


def _unet_widths(blocks: int, channels: int) -> list[int]:
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
        channels: Width of the first down blocks (see :func:`_unet_widths`).
        mlp_dim: Hidden units of the bottleneck MLP (two hidden layers).

    Raises:
        ReprlError: If the images are too small for ``blocks`` blocks.
    """

    def __init__(
        self, input_shape: Sequence[int], blocks: int, channels: int, mlp_dim: int
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        widths = _unet_widths(blocks, channels)
        self.down = nn.ModuleList(
            _INConv(cin, cout) for cin, cout in zip([c + 1, *widths[:-1]], widths)
        )
        # Sizes along the down path, from a dummy pass of the resizing alone.
        sizes = [(h, w)]
        probe = torch.zeros(1, 1, h, w)
        for _ in range(blocks - 1):
            probe = self._downsample(probe)
            sizes.append(tuple(probe.shape[2:]))
        bottom = sizes[-1]
        if min(bottom) < 2:
            raise ReprlError(
                f"unet_blocks={blocks} halves {h} x {w} images {blocks - 1} times down to "
                f"{bottom[0]} x {bottom[1]}; expected at least 2 x 2 at the bottom: use fewer "
                f"blocks or larger images"
            )
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
        self.mask_input = _choice(mask_input, "encoder_mask_input", MASK_INPUTS)
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


@register
class MONet(Decomposer, Representation):
    """MONet (Burgess et al., 2019): attention masks and one VAE latent per slot.

    Slot order: :meth:`encode` returns the ``K`` slot posterior means concatenated in the
    attention order, ``[mu_0, mu_1, ..., mu_{K-1}]`` (each ``slot_dim`` long). Slot ``k`` is the
    ``k``-th attention step: slot 0 is the first carve of the full scope (usually the
    background, which its smaller ``sigma_bg`` favours), slots 1 .. K-2 the objects in the order
    the attention network picks them, slot ``K - 1`` whatever scope is left. The order is a
    deterministic function of the image, the same for every call, but which object lands in which
    object slot is the attention network's choice and may differ between similar frames.

    Codes are posterior means under a unit-Gaussian prior (``variational = True``), so the
    activity check (:mod:`representations.metrics.activity`) applies: a slot the model never
    uses collapses to the prior, which is expected for spare slots, not a failure.

    The defaults are CPU-sized: a training step at batch 32 on 64x64 RGB costs about 1 CPU
    second (about 0.6 s on 2 idle cores), split roughly evenly between the ``K - 1`` U-Net passes
    and the broadcast decoder over ``B * K`` slots; :data:`PAPER_CONFIG` costs about 3.5.

    Args:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``). Default 64x64 RGB.
        num_slots: ``K`` slots, at least 2 (one background, one object): ``K - 1`` attention
            steps and the scope they leave.
        slot_dim: ``D``, Gaussian latents per slot; ``latent_dim = K * D``.
        beta: Weight of the latent KL (paper: 0.5).
        gamma: Weight of the mask KL (paper: 0.5).
        sigma_bg: Pixel std of slot 0's Gaussian likelihood, ``[0, 1]`` pixel units (0.09).
        sigma_fg: Pixel std of the other slots (0.11).
        unet_blocks: Blocks on each U-Net path (``H`` is halved ``unet_blocks - 1`` times down
            to at least 2 pixels).
        unet_channels: Width of the first ``unet_blocks // 2`` U-Net blocks; the deeper ones
            have twice as many channels.
        unet_mlp_dim: Hidden units of the MLP at the bottom of the U-Net.
        encoder_channels: Channels of the component encoder's 3x3 stride-2 convolutions.
        encoder_hidden_dim: Hidden units of the component encoder's MLP.
        decoder_channels: Channels of the broadcast decoder's unpadded 3x3 convolutions.
        hidden_norm: Batch-normalise the component encoder's hidden units (as the beta-VAE's
            ``hidden_norm``). Default False (as every checkpoint written before it); not enough
            on Breakout (module docstring).
        slot_hidden_norm: Batch-normalise the component encoder's hidden units with statistics
            (and affine parameters) per slot index, each slot over the frames of the batch
            (module docstring: measured). Default False (as every checkpoint written before
            it); at most one of ``hidden_norm`` and
            ``slot_hidden_norm``. Training batches need at least 2 frames.
        encoder_mask_input: The component encoder's mask channel: ``"log"`` (the paper's
            ``log m_k``, default) or ``"mask"`` (``m_k``, on the image's scale).
        encoder_mean_frame: The component encoder (only) sees ``x - mean frame``: a buffer,
            the running average of the training batches' mean images. Default False.
        recalibrate_norm: With a batch norm: re-estimate its running statistics after the last
            step (:meth:`after_training`, :data:`RECALIBRATION_FRAMES` frames). Default False.

    Raises:
        ReprlError: For fewer than 2 slots, non-positive sizes, negative weights, non-positive
            sigmas, images too small for the U-Net, a ``slot_hidden_norm`` that is not a bool
            or both norms on.
    """

    name = "monet"
    variational = True

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 64, 64),
        num_slots: int = 5,
        slot_dim: int = 8,
        beta: float = 0.5,
        gamma: float = 0.5,
        sigma_bg: float = 0.09,
        sigma_fg: float = 0.11,
        unet_blocks: int = 4,
        unet_channels: int = 16,
        unet_mlp_dim: int = 64,
        encoder_channels: Sequence[int] = (16, 16, 32, 32),
        encoder_hidden_dim: int = 64,
        decoder_channels: Sequence[int] = (16, 16, 16, 16),
        hidden_norm: bool = False,
        slot_hidden_norm: bool = False,
        encoder_mask_input: str = "log",
        encoder_mean_frame: bool = False,
        recalibrate_norm: bool = False,
    ) -> None:
        try:
            num_slots = _positive_int(num_slots, "num_slots", minimum=2)
        except ReprlError:
            raise ReprlError(
                "num_slots: MONet needs at least 2 slots (one background, one object), "
                f"got {num_slots!r}"
            ) from None
        slot_dim = _positive_int(slot_dim, "slot_dim")
        unet_blocks = _positive_int(unet_blocks, "unet_blocks")
        unet_channels = _positive_int(unet_channels, "unet_channels")
        unet_mlp_dim = _positive_int(unet_mlp_dim, "unet_mlp_dim")
        encoder_hidden_dim = _positive_int(encoder_hidden_dim, "encoder_hidden_dim")
        enc_channels = _channel_list(encoder_channels, "encoder_channels")
        dec_channels = _channel_list(decoder_channels, "decoder_channels")
        beta = _finite_float(beta, "beta", positive=False)
        gamma = _finite_float(gamma, "gamma", positive=False)
        sigma_bg = _finite_float(sigma_bg, "sigma_bg (a pixel std)", positive=True)
        sigma_fg = _finite_float(sigma_fg, "sigma_fg (a pixel std)", positive=True)
        slot_hidden_norm = _flag(slot_hidden_norm, "slot_hidden_norm")
        encoder_mask_input = _choice(encoder_mask_input, "encoder_mask_input", MASK_INPUTS)
        encoder_mean_frame = _flag(encoder_mean_frame, "encoder_mean_frame")
        recalibrate_norm = _flag(recalibrate_norm, "recalibrate_norm")
        spec = InputSpec.for_shape(input_shape)
        super().__init__(
            input_spec=spec,
            latent_dim=num_slots * slot_dim,
            config={
                "input_shape": list(spec.shape),
                "num_slots": num_slots,
                "slot_dim": slot_dim,
                "beta": beta,
                "gamma": gamma,
                "sigma_bg": sigma_bg,
                "sigma_fg": sigma_fg,
                "unet_blocks": unet_blocks,
                "unet_channels": unet_channels,
                "unet_mlp_dim": unet_mlp_dim,
                "encoder_channels": enc_channels,
                "encoder_hidden_dim": encoder_hidden_dim,
                "decoder_channels": dec_channels,
                "hidden_norm": bool(hidden_norm),
                "slot_hidden_norm": bool(slot_hidden_norm),
                "encoder_mask_input": encoder_mask_input,
                "encoder_mean_frame": encoder_mean_frame,
                "recalibrate_norm": recalibrate_norm,
            },
        )
        self.num_slots = num_slots
        self.slot_dim = slot_dim
        self.beta = beta
        self.gamma = gamma
        self.sigma_bg = sigma_bg
        self.sigma_fg = sigma_fg
        self.slot_hidden_norm = slot_hidden_norm
        self.attention = AttentionUNet(spec.shape, unet_blocks, unet_channels, unet_mlp_dim)
        self.encoder = SlotEncoder(
            spec.shape,
            enc_channels,
            encoder_hidden_dim,
            slot_dim,
            hidden_norm=bool(hidden_norm),
            slots=num_slots,
            slot_hidden_norm=bool(slot_hidden_norm),
            mask_input=encoder_mask_input,
        )
        self.recalibrate_norm = recalibrate_norm
        self.encoder_mean_frame = encoder_mean_frame
        if encoder_mean_frame:  # buffers only then: earlier checkpoints load unchanged
            self.register_buffer("mean_frame", torch.zeros(spec.shape))
            self.register_buffer("mean_frame_batches", torch.zeros((), dtype=torch.long))
        self.decoder = BroadcastDecoder(spec.shape, slot_dim, dec_channels)
        # Channels-last convolution weights: the broadcast decoder's full-resolution convolutions
        # over B * K slots dominate a training step and ran about twice as fast so on 2 CPU
        # cores; the U-Net stays contiguous (its instance norms would convert back and forth).
        self.encoder.to(memory_format=torch.channels_last)
        self.decoder.to(memory_format=torch.channels_last)

    # -- the model's parts ------------------------------------------------------------------

    def log_masks(self, obs: Tensor) -> Tensor:
        """Log attention masks of the recurrent attention network.

        Args:
            obs: ``(B, C, H, W)`` float32 in ``[0, 1]``.

        Returns:
            ``(B, K, H, W)`` ``log m_k <= 0``; ``exp`` sums to 1 over ``K`` at every pixel.
        """
        b, _, h, w = obs.shape
        log_scope = obs.new_zeros(b, 1, h, w)
        logs = []
        for _ in range(self.num_slots - 1):
            a = self.attention(obs, log_scope)
            logs.append(log_scope + F.logsigmoid(a))
            log_scope = log_scope + F.logsigmoid(-a)
        logs.append(log_scope)
        return torch.cat(logs, dim=1)

    def slot_posteriors(
        self, obs: Tensor, log_masks: Tensor, *, batch_stats: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Component VAE posteriors of every slot.

        Args:
            obs: ``(B, C, H, W)`` float32 in ``[0, 1]``.
            log_masks: ``(B, K, H, W)`` from :meth:`log_masks`.
            batch_stats: With ``hidden_norm``: normalise with this batch's statistics, as
                :meth:`loss` does in training mode.

        Returns:
            ``(mu, logvar)``, each ``(B, K, D)``.
        """
        b, k = log_masks.shape[:2]
        if self.encoder_mean_frame:
            obs = obs - self.mean_frame
        x = obs.unsqueeze(1).expand(b, k, *obs.shape[1:]).flatten(0, 1)
        mu, logvar = self.encoder(x, log_masks.flatten(0, 1).unsqueeze(1), batch_stats=batch_stats)
        return mu.unflatten(0, (b, k)), logvar.unflatten(0, (b, k))

    def decode_slots(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Decode slot latents into per-slot images and mask logits.

        Args:
            z: ``(B, K, D)`` slot latents.

        Returns:
            ``(recons, mask_logits)``: ``(B, K, C, H, W)`` in ``[0, 1]`` and ``(B, K, H, W)``
            (a softmax over ``K`` gives the decoded masks).
        """
        b, k = z.shape[:2]
        out = self.decoder(z.flatten(0, 1))
        out = out.unflatten(0, (b, k))
        return torch.sigmoid(out[:, :, :-1]), out[:, :, -1]

    @torch.no_grad()
    def _update_mean_frame(self, x: Tensor) -> None:
        """Folds a training batch's mean image into the running average ``mean_frame``."""
        self.mean_frame_batches += 1
        step = 1.0 / float(self.mean_frame_batches)
        self.mean_frame.add_((x.mean(dim=0) - self.mean_frame) * step)

    def after_training(self, batches: Iterable[dict[str, Tensor]]) -> None:
        """With ``recalibrate_norm``: :meth:`recalibrate` on ``batches``; nothing otherwise."""
        if self.recalibrate_norm:
            self.recalibrate(batches)

    @torch.no_grad()
    def recalibrate(
        self, batches: Iterable[dict[str, Tensor]], frames: int = RECALIBRATION_FRAMES
    ) -> int:
        """Resets the encoder's batch-norm running statistics and re-estimates them under the
        current weights: equal-weight averages over ``{"obs": (B >= 2, C, H, W)}`` batches until
        ``frames`` (>= 2) frames are seen; weights, mean frame and mode are left as they were.
        Returns the frames used (0 without a batch norm). Raises ReprlError for ``frames`` < 2,
        a batch of 1 frame, or no batch at all."""
        frames = _positive_int(frames, "frames (to recalibrate on)", minimum=2)
        enc = self.encoder
        norms = [n for n in (enc.hidden_norm, enc.slot_hidden_norm) if n is not None]
        if not norms:
            return 0
        was_training, momenta = self.training, [n.momentum for n in norms]
        for n in norms:
            n.reset_running_stats()
            n.momentum = None  # a cumulative average over the batches
        self.train()
        seen = 0
        try:
            for batch in batches:
                x = batch["obs"]
                if x.shape[0] < 2:
                    msg = f"recalibrating batch norms needs at least 2 frames, got {x.shape[0]}"
                    raise ReprlError(f"batch: {msg}")
                self.slot_posteriors(x, self.log_masks(x), batch_stats=True)
                seen += x.shape[0]
                if seen >= frames:
                    break
        finally:
            for n, m in zip(norms, momenta, strict=True):
                n.momentum = m
            self.train(was_training)
        if seen == 0:
            raise ReprlError("batches: expected at least one batch to recalibrate on, got none")
        return seen

    def _sigmas(self, like: Tensor) -> Tensor:
        """``(K,)`` pixel stds: ``sigma_bg`` for slot 0, ``sigma_fg`` for the rest."""
        sigma = torch.full((self.num_slots,), self.sigma_fg, dtype=like.dtype, device=like.device)
        sigma[0] = self.sigma_bg
        return sigma

    # -- the Representation interface --------------------------------------------------------

    def _encode(self, obs: Tensor) -> Tensor:
        mu, _ = self.slot_posteriors(obs, self.log_masks(obs))
        return mu.flatten(1)

    def decode(self, z: Tensor) -> Tensor:
        """Images from slot latents, composed with the decoded masks (the generative model).

        Args:
            z: ``(B, K * D)`` float32, slots in :meth:`encode`'s order.

        Returns:
            ``(B, C, H, W)`` float32 in ``[0, 1]``: ``sum_k softmax_k(mask logits) * x_k``.
        """
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ReprlError(f"latent shape: expected (B, {self.latent_dim}), got {tuple(z.shape)}")
        recons, mask_logits = self.decode_slots(z.view(z.shape[0], self.num_slots, self.slot_dim))
        return (recons * mask_logits.softmax(dim=1).unsqueeze(2)).sum(dim=1).clamp(0.0, 1.0)

    def decompose(self, obs: Tensor) -> dict[str, Tensor]:
        """Scene decomposition of a batch, decoded from the slots' posterior means.

        Args:
            obs: ``(B, C, H, W)`` float32 in ``[0, 1]``.

        Returns:
            - ``"masks"``: ``(B, K, 1, H, W)`` attention masks in ``[0, 1]``, summing to 1 over
              ``K`` (use these for segmentation, e.g. with
              :func:`representations.metrics.segmentation.masks_to_ids`),
            - ``"recons"``: ``(B, K, C, H, W)`` each slot's decoded image in ``[0, 1]``,
            - ``"reconstruction"``: ``(B, C, H, W)`` in ``[0, 1]``, ``sum_k masks * recons``,
            - ``"decoded_masks"``: ``(B, K, 1, H, W)`` the decoder's masks (softmax over ``K``).

        Raises:
            ReprlError: If ``obs`` does not match :attr:`input_spec`.
        """
        self.input_spec.check(obs)
        log_m = self.log_masks(obs)
        mu, _ = self.slot_posteriors(obs, log_m)
        recons, mask_logits = self.decode_slots(mu)
        masks = log_m.exp().unsqueeze(2)
        return {
            "masks": masks,
            "recons": recons,
            "reconstruction": (masks * recons).sum(dim=1).clamp(0.0, 1.0),
            "decoded_masks": mask_logits.softmax(dim=1).unsqueeze(2),
        }

    def loss(
        self, batch: dict[str, Tensor], *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Negative MONet ELBO (with the mask KL), averaged over examples.

        Args:
            batch: ``"obs"``: ``(B, C, H, W)`` float32 in ``[0, 1]``.
            generator: Generator (on the model's device) for the reparameterisation noise;
                ``None`` uses the global RNG.

        Returns:
            ``(total, {"recon", "kl", "mask_kl", "loss"})`` with
            ``total = recon + beta * kl + gamma * mask_kl``, each a per-example mean in nats:
            ``recon`` the mixture NLL summed over pixels (negative on a good fit), ``kl`` summed
            over slots and latents, ``mask_kl`` summed over pixels.
        """
        x = batch["obs"]
        self.input_spec.check(x)
        n = x.shape[0]
        log_m = self.log_masks(x)  # (B, K, H, W)
        batch_stats = self.training and torch.is_grad_enabled()
        if batch_stats and self.encoder_mean_frame:
            self._update_mean_frame(x)
        if batch_stats and self.slot_hidden_norm and n < 2:
            raise ReprlError(
                "batch: slot_hidden_norm normalises each slot over the frames of a training "
                f"batch: expected at least 2 frames, got {n}"
            )
        mu, logvar = self.slot_posteriors(x, log_m, batch_stats=batch_stats)  # (B, K, D)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        recons, mask_logits = self.decode_slots(z)

        sigma = self._sigmas(x).view(1, -1, 1, 1, 1)
        log_px = -0.5 * ((x.unsqueeze(1) - recons) / sigma).pow(2) - sigma.log() - 0.5 * _LOG_2PI
        log_mix = torch.logsumexp(log_m + log_px.sum(dim=2), dim=1)  # (B, H, W)
        recon = -log_mix.sum() / n

        kl = gaussian_kl(mu.flatten(0, 1), logvar.flatten(0, 1)).sum() / n
        log_m_hat = mask_logits.log_softmax(dim=1)
        mask_kl = (log_m.exp() * (log_m - log_m_hat)).sum() / n

        total = recon + self.beta * kl + self.gamma * mask_kl
        return total, {
            "recon": float(recon.detach()),
            "kl": float(kl.detach()),
            "mask_kl": float(mask_kl.detach()),
            "loss": float(total.detach()),
        }
