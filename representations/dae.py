"""Denoising autoencoder with occlusion noise: DARLA's perceptual space for beta-VAE_DAE.

DARLA (Higgins et al., 2017) first trains a denoising autoencoder to reconstruct clean frames
from frames with occluding masks; the beta-VAE_DAE then measures its reconstruction error in the
DAE's feature space instead of in pixels, which keeps small but important objects in the
latents. The same network is also a baseline representation in its own right ("DARLA with a DAE
encoder").

The mean-image plateau, and ``bottleneck_norm``: on Breakout frames (a static wall of bricks,
a black background, a paddle and a 2x2 ball that move; under 1% of the pixels differ from the
median frame) an encoder's output barely depends on its input: at initialisation the code's
variance over frames is about 2e-5 of its squared mean, and after 1,000 steps (BCE, lr 5e-4,
as the default experiment trains it) still 1e-5 (variance 0.10 summed over 100 dims, mean
|code| 9.8). The decoder sees a near-constant input and fits the mean frame: measured on the
default's 20k frames, the reconstructions vary over frames by a total variance of 0.0007 (the
frames: 22.0) and their squared error (22.1 per frame) is the mean frame's (22.0). The codes do
hold the ball (a linear probe: R^2 0.72 / 0.82 for x / y), only at a scale the decoder cannot
use; neither a 4x learning rate, an MSE loss nor turning the occlusions off moved it in 1,000
steps. ``bottleneck_norm=True`` standardises each code unit over the batch before the
decoder, so the frame-dependent part arrives at unit scale: the same run leaves the plateau
within 400 steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.blocks import (
    ConvDecoder,
    ConvEncoder,
    architecture_field,
    check_mean_frame,
    init_for_architecture_,
    mean_frame_field,
    resolve_architecture,
)
from representations.config import MethodConfig, configured
from representations.registry import register

ReconLoss = Literal["bce", "mse"]
_RECON_LOSSES: tuple[str, ...] = get_args(ReconLoss)


def _check_noise(num_masks: int, mask_size: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in mask_size)
    if not 0.0 < lo <= hi <= 1.0:
        raise ReprlError(f"mask_size: expected 0 < min <= max <= 1, got {tuple(mask_size)}")
    if int(num_masks) < 0:
        raise ReprlError(f"num_masks: expected >= 0, got {num_masks}")
    return lo, hi


def occlusion_masks(
    batch_size: int,
    height: int,
    width: int,
    *,
    num_masks: int = 3,
    mask_size: tuple[float, float] = (0.1, 0.3),
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Random rectangular occluders, ``num_masks`` per image.

    Each rectangle's height and width are drawn independently and uniformly from
    ``[mask_size[0], mask_size[1]]`` times the image side (at least one pixel), its position
    uniformly so that it lies inside the image. Rectangles may overlap.

    Args:
        batch_size: Number of images ``B``.
        height: Image height ``H``.
        width: Image width ``W``.
        num_masks: Rectangles per image (0 gives an all-False mask).
        mask_size: ``(min, max)`` side lengths as fractions of the image side, in ``(0, 1]``.
        generator: CPU generator to draw from; ``None`` uses the global RNG.
        device: Device of the returned mask.

    Returns:
        ``(B, H, W)`` bool, True where a pixel is occluded.
    """
    lo, hi = _check_noise(num_masks, mask_size)
    shape = (batch_size, num_masks, 1)
    u = torch.rand((4, *shape), generator=generator)
    sides = torch.tensor([height, width], dtype=torch.float32).view(2, 1, 1, 1)
    hw = (lo + (hi - lo) * u[:2]) * sides
    hw = hw.round().clamp_(min=1).minimum(sides)
    top_left = (u[2:] * (sides - hw + 1)).floor().clamp_(max=sides - hw)
    top, left = top_left.long().to(device)
    h, w = hw.long().to(device)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    in_rows = (rows >= top) & (rows < top + h)  # (B, K, H)
    in_cols = (cols >= left) & (cols < left + w)  # (B, K, W)
    return (in_rows.unsqueeze(-1) & in_cols.unsqueeze(-2)).any(dim=1)


def occlude(
    x: Tensor,
    *,
    num_masks: int = 3,
    mask_size: tuple[float, float] = (0.1, 0.3),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Zero random rectangles of a batch of images (all channels).

    Args:
        x: ``(B, C, H, W)`` float images.
        num_masks: Rectangles per image.
        mask_size: ``(min, max)`` side lengths as fractions of the image side.
        generator: CPU generator for reproducible masks; ``None`` uses the global RNG.

    Returns:
        ``(occluded, mask)``: ``(B, C, H, W)`` images with occluded pixels set to 0, and the
        ``(B, H, W)`` bool mask (True = occluded).
    """
    b, _, h, w = x.shape
    mask = occlusion_masks(
        b, h, w, num_masks=num_masks, mask_size=mask_size, generator=generator, device=x.device
    )
    return x.masked_fill(mask.unsqueeze(1), 0.0), mask


@dataclass(frozen=True)
class DAEConfig(MethodConfig):
    """The configuration of a :class:`DenoisingAutoencoder` (its constructor's arguments).

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``). Default 64x64 RGB.
        latent_dim: Bottleneck size (default 100).
        channels: Encoder convolution channels (``None``: the architecture's).
        hidden_dim: Units of the FC layers, 0 for none (``None``: the architecture's).
        num_masks: Occluding rectangles per training image.
        mask_size: ``(min, max)`` occluder side lengths as fractions of the image side.
        recon_loss: ``"bce"`` (binary cross-entropy with logits, summed over pixels) or
            ``"mse"`` (squared error of the sigmoid output, summed over pixels).
        bottleneck_norm: Standardise the code over the batch (a non-affine
            ``BatchNorm1d``, ``code_norm``) before the decoder: in training, the occluded
            batch with its own statistics; in :meth:`DenoisingAutoencoder.encode`, with running
            statistics of the clean training frames' codes. Default False (as every checkpoint
            written before it). See the module doc: without it the DAE sits at the mean-image
            plateau on Breakout.
        architecture: The conv stack (:data:`representations.blocks.ARCHITECTURES`):
            ``"darla"`` (default) or ``"atariari"`` (AtariARI's Nature-CNN variant on full
            210 x 160 frames, with its initialisation, the code layer's included), the
            decoder its transpose.
        mean_frame: The encoder centres its input on the training frames' mean image
            (:class:`representations.blocks.MeanFrame`; for Atari's constant backgrounds);
            the decoder still reconstructs the frame itself.
    """

    input_shape: Sequence[int] = (3, 64, 64)
    latent_dim: int = 100
    channels: Sequence[int] | None = None
    hidden_dim: int | None = None
    num_masks: int = 3
    mask_size: Sequence[float] = (0.1, 0.3)
    recon_loss: ReconLoss = "bce"
    bottleneck_norm: bool = False
    architecture: str = architecture_field()
    mean_frame: bool = mean_frame_field()

    def __post_init__(self) -> None:
        if self.recon_loss not in _RECON_LOSSES:
            raise ReprlError(
                f"recon_loss: expected one of {_RECON_LOSSES}, got {self.recon_loss!r}"
            )
        self._set("input_shape", InputSpec.for_shape(self.input_shape).shape)
        self._set("mask_size", _check_noise(self.num_masks, self.mask_size))
        self._set("latent_dim", int(self.latent_dim))
        channels, hidden_dim = resolve_architecture(
            self.architecture, self.channels, self.hidden_dim, self.input_shape
        )
        self._set("channels", channels)
        self._set("hidden_dim", hidden_dim)
        self._set("mean_frame", check_mean_frame(self.mean_frame))
        self._set("num_masks", int(self.num_masks))
        self._set("bottleneck_norm", bool(self.bottleneck_norm))


@register
class DenoisingAutoencoder(Representation):
    """Convolutional denoising autoencoder trained to remove occlusions.

    Architecture: :class:`~representations.blocks.ConvEncoder` (by default DARLA's: 4 convs 4x4
    stride 2, 32-32-64-64 channels, FC 256; ``architecture`` picks another), a linear bottleneck
    of ``latent_dim`` units, and the transposed decoder.

    Args:
        The fields of :class:`DAEConfig` (positional in its order, or by keyword); they are
        kept, checked and normalised, in :attr:`cfg`, and written to checkpoints as
        :attr:`config`.

    :meth:`encode` returns the bottleneck of the clean input (with ``bottleneck_norm``:
    standardised with ``code_norm``'s running statistics of the clean training frames' codes,
    in any mode: unit scale, like the occluded codes the decoder trains on); :meth:`features`
    returns the DARLA perceptual features (the last convolution's output, see there);
    :meth:`decode` takes :meth:`encode`'s codes.
    """

    name = "dae"

    @configured(DAEConfig)
    def __init__(self, cfg: DAEConfig) -> None:
        super().__init__(
            input_spec=InputSpec.for_shape(cfg.input_shape),
            latent_dim=cfg.latent_dim,
            config=cfg.to_dict(),
        )
        self.cfg = cfg
        spec = self.input_spec
        self.encoder = ConvEncoder(
            spec.shape, cfg.channels, cfg.hidden_dim, cfg.architecture, cfg.mean_frame
        )
        self.bottleneck = init_for_architecture_(
            nn.Linear(self.encoder.out_dim, self.latent_dim), cfg.architecture
        )
        self.decoder = ConvDecoder(
            spec.shape, self.latent_dim, cfg.channels, cfg.hidden_dim, cfg.architecture
        )
        if cfg.bottleneck_norm:
            self.code_norm = nn.BatchNorm1d(self.latent_dim, affine=False)

    @property
    def bottleneck_norm(self) -> bool:
        """Whether the code is standardised over the batch (:attr:`DAEConfig.bottleneck_norm`)."""
        return self.cfg.bottleneck_norm

    @property
    def num_masks(self) -> int:
        """Occluders per training image."""
        return self.cfg.num_masks

    @property
    def mask_size(self) -> tuple[float, float]:
        """``(min, max)`` occluder sides as fractions of the image side."""
        return self.cfg.mask_size

    @property
    def recon_loss(self) -> str:
        """``"bce"`` or ``"mse"``."""
        return self.cfg.recon_loss

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """Shape of one example of :meth:`features`: ``(64, H/16, W/16)`` by default."""
        return self.encoder.feature_shape

    def _encode(self, obs: Tensor) -> Tensor:
        code = self.bottleneck(self.encoder(obs))
        if self.bottleneck_norm:  # the running statistics, in either mode: deterministic
            norm = self.code_norm
            code = F.batch_norm(code, norm.running_mean, norm.running_var, eps=norm.eps)
        return code

    def _standardise_occluded(self, code: Tensor, clean: Tensor) -> Tensor:
        """The occluded batch's codes standardised with their own batch statistics (what the
        decoder trains on); in training mode ``code_norm``'s running statistics are updated
        from the *clean* frames' codes (one extra forward pass, no gradient), since those are
        what :meth:`encode` standardises. The occluders dominate the code's variance: on Pong
        (AtariARI's config, 2,000 steps) the occluded codes' per-unit std is about 15 times
        the clean frames' (7.5 against 0.49), so running statistics taken from them left
        :meth:`encode`'s codes nearly constant (std 0.08 around a mean of 0.7 per unit), and
        AtariARI's linear probe read them at the majority classifier's F1 (0.05 across
        categories on the collect frames; 0.54 once standardised on clean frames).

        Args:
            code: ``(B, latent_dim)`` bottleneck of the occluded frames.
            clean: ``(B, C, H, W)`` the same frames without occluders.

        Returns:
            ``(B, latent_dim)``; a single frame (no batch statistics) is standardised with the
            running statistics.
        """
        norm = self.code_norm
        if self.training:
            with torch.no_grad():
                norm(self.bottleneck(self.encoder(clean)))  # updates the running statistics
        if code.shape[0] < 2:
            return F.batch_norm(code, norm.running_mean, norm.running_var, eps=norm.eps)
        return F.batch_norm(code, None, None, training=True, eps=norm.eps)

    def features(self, x: Tensor, layer: int | None = None) -> Tensor:
        """DARLA's perceptual features: the output of an encoder convolution (+ ReLU).

        By default the last convolutional layer (``64 x H/16 x W/16`` = 64x4x4 at 64x64): the
        deepest layer that still keeps a spatial map. ``layer`` picks an earlier, finer one
        (``layer=2``: 32x16x16), where a one-pixel object weighs more. No input validation is
        done here, so it can run on the beta-VAE's reconstructions inside a loss.

        Args:
            x: ``(B, C, H, W)`` float32 in ``[0, 1]``.
            layer: 1-based convolution whose output is returned; ``None``: the last.

        Returns:
            ``(B, C_l, H_l, W_l)`` float32, non-negative.
        """
        return self.encoder.conv_features(x, layer)

    def decode(self, z: Tensor) -> Tensor:
        """Images from bottleneck codes.

        Args:
            z: ``(B, latent_dim)`` float32.

        Returns:
            ``(B, C, H, W)`` float32 in ``[0, 1]``.
        """
        return torch.sigmoid(self.decoder(z))

    def loss(
        self, batch: dict[str, Tensor], *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Reconstruct the clean images from occluded copies.

        Args:
            batch: ``"obs"``: ``(B, C, H, W)`` float32 in ``[0, 1]``.
            generator: CPU generator for the occlusion masks; ``None`` uses the global RNG.

        Returns:
            ``(total, {"recon", "occluded_frac", "loss"})``: the reconstruction loss summed over
            pixels and averaged over examples; ``occluded_frac`` is the fraction of masked
            pixels.
        """
        x = batch["obs"]
        self.input_spec.check(x)
        noisy, mask = occlude(
            x, num_masks=self.num_masks, mask_size=self.mask_size, generator=generator
        )
        code = self.bottleneck(self.encoder(noisy))
        if self.bottleneck_norm:
            code = self._standardise_occluded(code, x)
        logits = self.decoder(code)
        if self.recon_loss == "bce":
            per_px = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            per_px = F.mse_loss(torch.sigmoid(logits), x, reduction="none")
        recon = per_px.sum() / x.shape[0]
        return recon, {
            "recon": float(recon.detach()),
            "occluded_frac": float(mask.float().mean()),
            "loss": float(recon.detach()),
        }
