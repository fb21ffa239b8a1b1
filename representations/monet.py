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

Anti-collapse options (all off by default, as in every checkpoint written before them):
``hidden_norm`` / ``slot_hidden_norm`` (+ ``recalibrate_norm``), batch norms of the component
encoder's hidden units; ``encoder_mean_frame`` (the encoder sees ``x - mean frame``),
``encoder_std_frame`` (divided by the per-pixel std too), ``encoder_mask_input="mask"``;
``free_bits`` (Kingma et al. 2016: each slot latent's batch-mean KL enters the objective as
``max(KL_kd, free_bits)``) and ``kl_warmup_steps`` (Bowman et al. 2016: the KL weight rises
linearly from 0 to ``beta``). On Breakout (the default experiment's 20k frames) MONet's slot
latents collapse at a CPU budget: the posterior means carry *which slot*, not the frame. What
each option measured there, with the commands: ``docs/monet_collapse.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.beta_vae import free_bits_kl, gaussian_kl, warmup_kl_weight
from representations.config import MethodConfig, configured
from representations.monet_networks import (
    MASK_INPUTS,
    AttentionUNet,
    BroadcastDecoder,
    SlotEncoder,
    unet_sizes,
    unet_widths,
)
from representations.probing import Decomposer
from representations.registry import register

__all__ = [
    "MASK_INPUTS",
    "PAPER_CONFIG",
    "RECALIBRATION_FRAMES",
    "STD_FLOOR",
    "AttentionUNet",
    "BroadcastDecoder",
    "MONet",
    "MONetConfig",
    "SlotEncoder",
    "unet_widths",
]

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
    "encoder_std_frame": False,
    "free_bits": 0.0,
    "kl_warmup_steps": 0,
}

_LOG_2PI = math.log(2.0 * math.pi)

#: Frames on which ``recalibrate_norm`` re-estimates the batch norms' statistics.
RECALIBRATION_FRAMES = 1024

#: With ``encoder_std_frame``: added to the per-pixel std before dividing by it, in ``[0, 1]``
#: pixel units, so pixels that hardly ever change (std near 0) are not blown up without bound.
STD_FLOOR = 0.05


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


@dataclass(frozen=True)
class MONetConfig(MethodConfig):
    """The configuration of a :class:`MONet` (its constructor's arguments).

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``). Default 64x64 RGB.
        num_slots: ``K`` slots, at least 2 (one background, one object): ``K - 1`` attention
            steps and the scope they leave.
        slot_dim: ``D``, Gaussian latents per slot; ``latent_dim = K * D``.
        beta: Weight of the latent KL, >= 0 (paper: 0.5).
        gamma: Weight of the mask KL, >= 0 (paper: 0.5).
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
            ``hidden_norm``). Default False; not enough on Breakout (docs/monet_collapse.md).
        slot_hidden_norm: Batch-normalise the component encoder's hidden units with statistics
            (and affine parameters) per slot index, each slot over the frames of the batch.
            Default False; at most one of ``hidden_norm`` and ``slot_hidden_norm``. Training
            batches need at least 2 frames.
        encoder_mask_input: The component encoder's mask channel: ``"log"`` (the paper's
            ``log m_k``, default) or ``"mask"`` (``m_k``, on the image's scale).
        encoder_mean_frame: The component encoder (only) sees ``x - mean frame``: a buffer,
            the running average of the training batches' mean images. Default False.
        recalibrate_norm: With a batch norm: re-estimate its running statistics after the last
            step (:meth:`MONet.after_training`, :data:`RECALIBRATION_FRAMES` frames). Default
            False.
        encoder_std_frame: With ``encoder_mean_frame``: the encoder sees
            ``(x - mean frame) / (std frame + STD_FLOOR)``, the per-pixel std estimated like the
            mean frame (running averages of the batches' mean images and mean squared images),
            so that rarely changing pixels (the ball's) weigh as much as the paddle's. Default
            False.
        free_bits: ``lambda`` >= 0, nats per slot latent: each of the ``K * D`` latents' KL,
            averaged over the batch, enters the objective as ``max(KL_kd, lambda)`` (Kingma et
            al. 2016; 0.25 there). Default 0: the plain KL.
        kl_warmup_steps: Training steps over which the KL weight rises linearly from 0 to
            ``beta`` (``beta * min(1, t / kl_warmup_steps)`` at step ``t``; Bowman et al.
            2016), >= 0. Default 0: ``beta`` from the start.
    """

    input_shape: Sequence[int] = (3, 64, 64)
    num_slots: int = 5
    slot_dim: int = 8
    beta: float = 0.5
    gamma: float = 0.5
    sigma_bg: float = 0.09
    sigma_fg: float = 0.11
    unet_blocks: int = 4
    unet_channels: int = 16
    unet_mlp_dim: int = 64
    encoder_channels: Sequence[int] = (16, 16, 32, 32)
    encoder_hidden_dim: int = 64
    decoder_channels: Sequence[int] = (16, 16, 16, 16)
    hidden_norm: bool = False
    slot_hidden_norm: bool = False
    encoder_mask_input: str = "log"
    encoder_mean_frame: bool = False
    recalibrate_norm: bool = False
    encoder_std_frame: bool = False
    free_bits: float = 0.0
    kl_warmup_steps: int = 0

    def __post_init__(self) -> None:
        try:
            num_slots = _positive_int(self.num_slots, "num_slots", minimum=2)
        except ReprlError:
            raise ReprlError(
                "num_slots: MONet needs at least 2 slots (one background, one object), "
                f"got {self.num_slots!r}"
            ) from None
        self._set("num_slots", num_slots)
        for name in ("slot_dim", "unet_blocks", "unet_channels", "unet_mlp_dim"):
            self._set(name, _positive_int(getattr(self, name), name))
        self._set(
            "encoder_hidden_dim", _positive_int(self.encoder_hidden_dim, "encoder_hidden_dim")
        )
        for name in ("encoder_channels", "decoder_channels"):
            self._set(name, tuple(_channel_list(getattr(self, name), name)))
        self._set("beta", _finite_float(self.beta, "beta", positive=False))
        self._set("gamma", _finite_float(self.gamma, "gamma", positive=False))
        for name in ("sigma_bg", "sigma_fg"):
            self._set(
                name, _finite_float(getattr(self, name), f"{name} (a pixel std)", positive=True)
            )
        self._set("hidden_norm", bool(self.hidden_norm))
        for name in ("slot_hidden_norm", "encoder_mean_frame", "recalibrate_norm"):
            self._set(name, _flag(getattr(self, name), name))
        self._set(
            "encoder_mask_input",
            _choice(self.encoder_mask_input, "encoder_mask_input", MASK_INPUTS),
        )
        if self.hidden_norm and self.slot_hidden_norm:
            raise ReprlError(
                "hidden_norm and slot_hidden_norm: expected at most one of them true, got both"
            )
        self._set("encoder_std_frame", _flag(self.encoder_std_frame, "encoder_std_frame"))
        if self.encoder_std_frame and not self.encoder_mean_frame:
            raise ReprlError(
                "encoder_std_frame: scales the difference from the mean frame: expected "
                "encoder_mean_frame true with it, got false"
            )
        self._set(
            "free_bits",
            _finite_float(self.free_bits, "free_bits (nats per slot latent)", positive=False),
        )
        self._set(
            "kl_warmup_steps", _positive_int(self.kl_warmup_steps, "kl_warmup_steps", minimum=0)
        )
        spec = InputSpec.for_shape(self.input_shape)
        self._set("input_shape", spec.shape)
        unet_sizes(spec.shape[1], spec.shape[2], self.unet_blocks)


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
        The fields of :class:`MONetConfig` (positional in its order, or by keyword), kept
        checked in :attr:`cfg` and written to checkpoints as :attr:`config`.

    Raises:
        ReprlError: For fewer than 2 slots, non-positive sizes, negative weights, non-positive
            sigmas, images too small for the U-Net, a flag that is not a bool, both norms on,
            ``encoder_std_frame`` without ``encoder_mean_frame``, negative ``free_bits`` or
            ``kl_warmup_steps``.
    """

    name = "monet"
    variational = True

    @configured(MONetConfig)
    def __init__(self, cfg: MONetConfig) -> None:
        spec = InputSpec.for_shape(cfg.input_shape)
        super().__init__(
            input_spec=spec, latent_dim=cfg.num_slots * cfg.slot_dim, config=cfg.to_dict()
        )
        self.cfg = cfg
        self.num_slots = cfg.num_slots
        self.slot_dim = cfg.slot_dim
        self.beta = cfg.beta
        self.gamma = cfg.gamma
        self.sigma_bg = cfg.sigma_bg
        self.sigma_fg = cfg.sigma_fg
        self.slot_hidden_norm = cfg.slot_hidden_norm
        self.recalibrate_norm = cfg.recalibrate_norm
        self.encoder_mean_frame = cfg.encoder_mean_frame
        self.encoder_std_frame = cfg.encoder_std_frame
        self.free_bits = cfg.free_bits
        self.kl_warmup_steps = cfg.kl_warmup_steps
        self.attention = AttentionUNet(
            spec.shape, cfg.unet_blocks, cfg.unet_channels, cfg.unet_mlp_dim
        )
        self.encoder = SlotEncoder(
            spec.shape,
            cfg.encoder_channels,
            cfg.encoder_hidden_dim,
            cfg.slot_dim,
            hidden_norm=cfg.hidden_norm,
            slots=cfg.num_slots,
            slot_hidden_norm=cfg.slot_hidden_norm,
            mask_input=cfg.encoder_mask_input,
        )
        # Buffers only with the options that need them: earlier checkpoints load unchanged.
        if cfg.encoder_mean_frame:
            self.register_buffer("mean_frame", torch.zeros(spec.shape))
            self.register_buffer("mean_frame_batches", torch.zeros((), dtype=torch.long))
        if cfg.encoder_std_frame:  # running average of the batches' mean squared images
            self.register_buffer("square_frame", torch.zeros(spec.shape))
        if cfg.kl_warmup_steps > 0:
            self.register_buffer("kl_step", torch.zeros((), dtype=torch.int64))
        self.decoder = BroadcastDecoder(spec.shape, cfg.slot_dim, cfg.decoder_channels)
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
        obs = self.encoder_input(obs)
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

    def encoder_input(self, obs: Tensor) -> Tensor:
        """What the component encoder sees of the image (the attention always sees ``obs``).

        Args:
            obs: ``(B, C, H, W)`` float32 in ``[0, 1]``.

        Returns:
            ``(B, C, H, W)``: ``obs``; with ``encoder_mean_frame`` ``obs - mean_frame`` (in
            ``[-1, 1]``); with ``encoder_std_frame`` too, that divided by
            :meth:`std_frame` ``+`` :data:`STD_FLOOR` (at most ``1 / STD_FLOOR`` in size).
        """
        if not self.encoder_mean_frame:
            return obs
        diff = obs - self.mean_frame
        if self.encoder_std_frame:
            diff = diff / (self.std_frame() + STD_FLOOR)
        return diff

    def std_frame(self) -> Tensor:
        """``(C, H, W)`` per-pixel std of the training frames, ``>= 0``, from the running
        averages: ``sqrt(max(0, square_frame - mean_frame ** 2))`` (``encoder_std_frame``)."""
        return (self.square_frame - self.mean_frame.pow(2)).clamp(min=0.0).sqrt()

    @torch.no_grad()
    def _update_mean_frame(self, x: Tensor) -> None:
        """Folds a training batch's mean image (and with ``encoder_std_frame`` its mean squared
        image) into the running averages ``mean_frame`` (``square_frame``)."""
        self.mean_frame_batches += 1
        step = 1.0 / float(self.mean_frame_batches)
        self.mean_frame.add_((x.mean(dim=0) - self.mean_frame) * step)
        if self.encoder_std_frame:
            self.square_frame.add_((x.pow(2).mean(dim=0) - self.square_frame) * step)

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

    def kl_weight(self, step: int | None = None) -> float:
        """The KL's weight at training step ``step`` (0-based): ``beta * min(1, step / W)``.

        Args:
            step: Steps already taken; ``None``: the model's own counter (``kl_step``).

        Returns:
            ``beta`` without warm-up (``kl_warmup_steps=0``).
        """
        if step is None:  # the counter exists only with a warm-up
            step = int(self.kl_step) if self.kl_warmup_steps > 0 else 0
        return warmup_kl_weight(self.beta, step, self.kl_warmup_steps)

    def kl_objective(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """The KL term the loss minimises: ``sum_{k,d} max(mean_b KL_bkd, free_bits)`` (Kingma
        et al. 2016), the plain per-example mean ``mean_b sum_{k,d} KL_bkd`` when
        ``free_bits`` is 0.

        Args:
            mu: ``(B, K, D)`` slot posterior means.
            logvar: ``(B, K, D)`` slot posterior log-variances.

        Returns:
            Scalar, nats, ``>= K * D * free_bits``.
        """
        return free_bits_kl(mu, logvar, self.free_bits)

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
            ``(total, {"recon", "kl", "mask_kl", "loss", ...})`` with
            ``total = recon + kl_weight * kl_objective + gamma * mask_kl``, each a per-example
            mean in nats: ``recon`` the mixture NLL summed over pixels (negative on a good fit),
            ``kl`` the true KL summed over slots and latents (:meth:`kl_objective` with free
            bits, :meth:`kl_weight` ``beta`` after the warm-up), ``mask_kl`` summed over pixels.
            With a warm-up ``kl_weight`` is logged, with free bits ``kl_objective``.
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

        weight = self.kl_weight()
        objective = self.kl_objective(mu, logvar) if self.free_bits > 0.0 else kl
        total = recon + weight * objective + self.gamma * mask_kl
        if batch_stats and self.kl_warmup_steps > 0:
            self.kl_step.add_(1)
        logs = {
            "recon": float(recon.detach()),
            "kl": float(kl.detach()),
            "mask_kl": float(mask_kl.detach()),
            "loss": float(total.detach()),
        }
        if self.kl_warmup_steps > 0:
            logs["kl_weight"] = weight
        if self.free_bits > 0.0:
            logs["kl_objective"] = float(objective.detach())
        return total, logs
