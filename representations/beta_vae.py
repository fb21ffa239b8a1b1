"""beta-VAE (Higgins et al., ICLR 2017) and DARLA's beta-VAE_DAE (Higgins et al., ICML 2017).

Loss per example, averaged over the batch::

    recon(x, x_hat) + beta * KL(q(z | x) || N(0, I))

- ``reconstruction="pixel"``: ``recon`` is the negative log-likelihood of the pixels,
  ``likelihood="bernoulli"`` (binary cross-entropy with logits, summed over pixels) or
  ``"gaussian"`` (fixed ``gaussian_sigma``: ``0.5 * sum((x - x_hat) ** 2) / sigma ** 2``, the
  NLL up to its additive constant).
- ``reconstruction="dae"`` (beta-VAE_DAE): ``recon = sum((J(x) - J(x_hat)) ** 2)`` where ``J`` is
  :meth:`DenoisingAutoencoder.features` of a frozen, pretrained denoising autoencoder. The DAE is a
  sub-module (``self.dae``): its weights live in the same checkpoint under the ``dae.`` prefix
  and its config in ``config["dae"]``, so the checkpoint stays one file. With
  ``normalize_features=True`` the sum is divided by ``v``, the features' variance over frames
  (mean over feature elements, a running average over the training batches): the
  reconstruction then counts in units of the DAE's own variation, whatever the scale of its
  ReLU features, and ``beta`` weighs the KL against that.

Anti-collapse remedies (all off by default, as in every checkpoint written before them):

- ``kl_warmup_steps`` (Bowman et al. 2016): the KL weight rises linearly from 0 to ``beta`` over
  the first ``kl_warmup_steps`` training steps (``beta * min(1, t / kl_warmup_steps)`` at step
  ``t``, counted from 0 by the model itself, in the ``kl_step`` buffer).
- ``free_bits`` (Kingma et al. 2016): each latent's KL, averaged over the batch, enters the
  objective as ``max(KL_j, free_bits)``: below the floor a latent pays nothing, so the KL
  gradient cannot push it all the way back to the prior. The logged ``kl`` stays the true KL.
- ``hidden_norm``: the encoder's hidden layer is batch-normalised before the ``(mu, logvar)``
  head. Breakout frames differ from the mean frame in under 1% of their pixels, so a plain
  encoder's ``mu`` barely depends on the frame; its decoder draws the mean frame, and the KL
  takes ``mu`` to the prior. Measured on the default data (beta 1, 1,500 steps, Bernoulli):
  0 of 32 latents active and BCE 2,297 (the mean frame's: 2,294) without it; 24 of 32, BCE
  2,240, probe R^2 paddle 0.995 and ball 0.51 / 0.64 (x / y) with it. A KL warm-up over 1,000
  steps, or a Gaussian likelihood with sigma 0.1 or 0.03, left the loss at the mean frame's.

Why the DARLA beta-VAE_DAE collapsed on Breakout (the default experiment's 20k frames, 1,500
steps): its DAE sat at the mean frame (:mod:`representations.dae`), and the raw squared error of
that DAE's last-conv features (64x4x4, ReLU) varies over frames by a total variance of 1.6 (per
element 0.0016; with the DAE fixed by ``bottleneck_norm`` even 0.42): a perfect reconstruction
gains under 2 units of squared error per frame, less than the KL of encoding anything, so the
optimum is the prior (0 of 32 latents active, KL 5e-5 nats). ``normalize_features=True`` on the
fixed DAE's second convolution (``dae_layer=2``, 32x16x16) keeps 32 of 32 latents (KL 61
nats), on its last convolution 10 of 32 (KL 15 nats).

A real beta-VAE_DAE run pretrains the DAE first (``make_representation("dae")`` trained on the
same frames), then passes it in: ``BetaVAE(reconstruction="dae", dae=trained_dae)`` or
``make_representation("beta_vae_dae", dae="path/to/dae.safetensors")``. Without ``dae`` a fresh,
untrained DAE is built, which only makes sense for tests and smoke runs (its features are random
projections).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

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
    mean_frame_field,
    resolve_architecture,
)
from representations.config import MethodConfig, configured
from representations.dae import DenoisingAutoencoder
from representations.registry import register

#: The encoder's raw log-variance is squashed to ``(-LOGVAR_BOUND, LOGVAR_BOUND)`` by a scaled
#: tanh, so ``exp(logvar)`` stays below ~3.3e6 (no overflow, no NaN) while gradients never vanish
#: abruptly as they would at a hard clamp. The smallest posterior std is ``exp(-7.5)`` ~ 5.5e-4.
LOGVAR_BOUND = 15.0

Likelihood = Literal["bernoulli", "gaussian"]
Reconstruction = Literal["pixel", "dae"]
_LIKELIHOODS: tuple[str, ...] = get_args(Likelihood)
_RECONSTRUCTIONS: tuple[str, ...] = get_args(Reconstruction)

DAESource = DenoisingAutoencoder | Mapping[str, Any] | str | os.PathLike[str] | None


def bound_logvar(raw: Tensor) -> Tensor:
    """Squash a raw log-variance into ``(-LOGVAR_BOUND, LOGVAR_BOUND)`` (smooth, monotone)."""
    return LOGVAR_BOUND * torch.tanh(raw / LOGVAR_BOUND)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per example, closed form.

    ``0.5 * sum_j (mu_j ** 2 + exp(logvar_j) - 1 - logvar_j)``.

    Args:
        mu: ``(B, D)`` posterior means.
        logvar: ``(B, D)`` posterior log-variances.

    Returns:
        ``(B,)`` non-negative KL in nats.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def free_bits_kl(mu: Tensor, logvar: Tensor, free_bits: float) -> Tensor:
    """The KL term a loss minimises with free bits (Kingma et al. 2016): each latent's KL,
    averaged over the batch, floored at ``free_bits``, summed: ``sum_j max(mean_b KL_bj,
    free_bits)``; with ``free_bits`` 0 the plain ``mean_b sum_j KL_bj``.

    Args:
        mu: ``(B, ...)`` posterior means (``(B, D)``; MONet's ``(B, K, D)`` slots).
        logvar: log-variances, shaped as ``mu``.
        free_bits: nats per latent, >= 0.

    Returns:
        Scalar, nats, ``>= (numel / B) * free_bits``.
    """
    per_latent = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0)
    if free_bits > 0.0:
        per_latent = per_latent.clamp(min=free_bits)
    return per_latent.sum()


def warmup_kl_weight(beta: float, step: int, warmup_steps: int) -> float:
    """The KL's weight after ``step`` training steps with a linear warm-up (Bowman et al. 2016):
    ``beta * min(1, step / warmup_steps)``; ``beta`` when ``warmup_steps`` <= 0."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def _resolve_dae(dae: DAESource, input_shape: tuple[int, int, int]) -> DenoisingAutoencoder:
    if dae is None:
        return DenoisingAutoencoder(input_shape=input_shape)
    if isinstance(dae, DenoisingAutoencoder):
        return copy.deepcopy(dae).cpu()
    if isinstance(dae, Mapping):
        return DenoisingAutoencoder(**dae)
    if isinstance(dae, (str, os.PathLike)):
        from representations.checkpoint import load

        if not Path(dae).is_file():
            raise ReprlError(f"dae: expected a DAE checkpoint file, got {str(dae)!r} (none there)")
        loaded = load(dae, expected_method=DenoisingAutoencoder.name)
        assert isinstance(loaded, DenoisingAutoencoder)
        return loaded
    raise TypeError(
        "dae: expected a DenoisingAutoencoder, its config dict, a checkpoint path or None, "
        f"got {type(dae).__name__}"
    )


def _check_loss_args(
    name: str,
    fixed: str | None,
    reconstruction: str | None,
    *,
    likelihood: str,
    gaussian_sigma: float,
    beta: float,
) -> str:
    """Checks the loss's arguments of a beta-VAE; returns the reconstruction it uses.

    Args:
        name: The method's registry name (for messages).
        fixed: The reconstruction the registered variant fixes, or None.
        reconstruction: The one asked for, or None (the variant's own, else ``"pixel"``).

    Raises:
        ReprlError: Naming the argument, what it expects and what came.
    """
    if reconstruction is None:
        reconstruction = fixed or "pixel"
    elif fixed is not None and reconstruction != fixed:
        raise ReprlError(
            f"{name}: expected reconstruction={fixed!r}, got {reconstruction!r} "
            "(use 'beta_vae' for pixel reconstruction)"
        )
    if likelihood not in _LIKELIHOODS:
        raise ReprlError(f"likelihood: expected one of {_LIKELIHOODS}, got {likelihood!r}")
    if reconstruction not in _RECONSTRUCTIONS:
        raise ReprlError(
            f"reconstruction: expected one of {_RECONSTRUCTIONS}, got {reconstruction!r}"
        )
    if not float(gaussian_sigma) > 0.0:
        raise ReprlError(f"gaussian_sigma: expected > 0, got {gaussian_sigma}")
    if not float(beta) >= 0.0:
        raise ReprlError(f"beta: expected >= 0, got {beta}")
    return reconstruction


def _check_remedy_args(feature_var_momentum: float, kl_warmup_steps: int, free_bits: float) -> None:
    """Checks the anti-collapse remedies' arguments (module doc)."""
    if not 0.0 <= float(feature_var_momentum) < 1.0:
        raise ReprlError(f"feature_var_momentum: expected in [0, 1), got {feature_var_momentum}")
    if (
        isinstance(kl_warmup_steps, bool)
        or int(kl_warmup_steps) != kl_warmup_steps
        or (kl_warmup_steps < 0)
    ):
        raise ReprlError(f"kl_warmup_steps: expected an integer >= 0, got {kl_warmup_steps!r}")
    if not float(free_bits) >= 0.0:
        raise ReprlError(f"free_bits: expected >= 0 nats per latent, got {free_bits}")


def _perceptual_dae(dae: DAESource, spec: InputSpec, dae_layer: int | None) -> DenoisingAutoencoder:
    """The frozen DAE of ``reconstruction="dae"``, checked against the beta-VAE's input and the
    chosen ``dae_layer``."""
    dae_module = _resolve_dae(dae, spec.shape)
    if dae_layer is not None:
        n_convs = len(dae_module.encoder.feature_shapes)
        if not 1 <= int(dae_layer) <= n_convs:
            raise ReprlError(f"dae_layer: expected 1..{n_convs} (a DAE conv), got {dae_layer}")
    if dae_module.input_spec != spec:
        raise ReprlError(
            f"dae input_spec: expected {spec} (the beta-VAE's), got {dae_module.input_spec}"
        )
    return dae_module


@dataclasses.dataclass(frozen=True)
class BetaVAEConfig(MethodConfig):
    """The configuration of a :class:`BetaVAE` (its constructor's arguments).

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``). Default 64x64 RGB.
        latent_dim: Number of Gaussian latents (default 32).
        beta: Weight of the KL term. Default 4.0, the beta-VAE paper's setting for 2D shapes;
            beta > 1 pushes towards disentangled latents, and DARLA tuned it per domain (sweep
            it). 1.0 is the plain VAE. With ``reconstruction="dae"`` the reconstruction term is
            in DAE-feature units, not pixel nats, so beta has to be tuned anew.
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (pixel reconstruction only).
        gaussian_sigma: Fixed pixel std of the Gaussian likelihood, in ``[0, 1]`` pixel units
            (default 0.1, close to MONet's 0.09-0.11).
        reconstruction: ``"pixel"`` or ``"dae"`` (loss in the frozen DAE's feature space);
            ``None``: the method's own (``"pixel"`` for ``beta_vae``, ``"dae"`` for
            ``beta_vae_dae``, which refuses any other).
        dae: Only with ``reconstruction="dae"``: a trained :class:`DenoisingAutoencoder` (copied,
            then frozen), a DAE config dict (fresh weights, used when loading a checkpoint), a
            DAE checkpoint path, or ``None`` for a fresh untrained DAE of the same input shape.
        channels: Encoder convolution channels (``None``: the architecture's).
        hidden_dim: Units of the FC layers, 0 for none (``None``: the architecture's; with 0
            the ``(mu, logvar)`` head reads the flattened conv features and the decoder
            starts with one FC layer to the last feature map, as AtariARI's VAE).
        dae_layer: Only with ``reconstruction="dae"``: which DAE convolution (1-based) spans
            the perceptual space; ``None`` = the last (64x4x4 at 64x64). Earlier layers keep
            finer spatial detail (``2``: 32x16x16), so small objects weigh more in the loss.
        normalize_features: Only with ``reconstruction="dae"``: divide the feature-space
            squared error by the features' variance over frames (module doc), kept in the
            ``feature_var`` buffer. Default False (the raw sum, as before).
        feature_var_momentum: Weight of the running variance's old value at each training
            step (the first step sets it), in ``[0, 1)``.
        kl_warmup_steps: Training steps over which the KL weight rises linearly from 0 to
            ``beta``; 0 (default): ``beta`` from the first step.
        free_bits: Nats per latent below which its batch-mean KL costs nothing (the objective
            uses ``max(KL_j, free_bits)``); 0 (default): the plain KL.
        hidden_norm: Batch-normalise the encoder's hidden layer before the ``(mu, logvar)``
            head (``BatchNorm1d``, affine; batch statistics in training steps, the running
            ones in :meth:`encode`). Default False. The prior and the KL are untouched: the
            head still decides how much of the frame reaches ``mu``.
        architecture: The conv stack (:data:`representations.blocks.ARCHITECTURES`):
            ``"darla"`` (default) or ``"atariari"`` (AtariARI's encoder on 210 x 160 frames,
            with the mirrored decoder of their ``atariari/methods/vae.py``).
        mean_frame: Centre the encoder's input on the pretraining frames' mean frame
            (:class:`representations.blocks.MeanFrame`; for Atari's constant backgrounds);
            default ``False``.

    After the model is built, ``dae`` is the DAE's config dict (what the checkpoint stores;
    its weights are the ``dae.`` tensors), whatever form was passed in.
    """

    #: The registry name in messages, and the reconstruction the variant fixes (``None``:
    #: chosen by ``reconstruction``).
    method: ClassVar[str] = "beta_vae"
    fixed_reconstruction: ClassVar[str | None] = None

    input_shape: Sequence[int] = (3, 64, 64)
    latent_dim: int = 32
    beta: float = 4.0
    likelihood: Likelihood = "bernoulli"
    gaussian_sigma: float = 0.1
    reconstruction: Reconstruction | None = None
    dae: DAESource = None
    channels: Sequence[int] | None = None
    hidden_dim: int | None = None
    dae_layer: int | None = None
    normalize_features: bool = False
    feature_var_momentum: float = 0.99
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    hidden_norm: bool = False
    architecture: str = architecture_field()
    mean_frame: bool = mean_frame_field()

    def __post_init__(self) -> None:
        reconstruction = _check_loss_args(
            self.method,
            self.fixed_reconstruction,
            self.reconstruction,
            likelihood=self.likelihood,
            gaussian_sigma=self.gaussian_sigma,
            beta=self.beta,
        )
        if reconstruction == "pixel" and self.dae is not None:
            raise ReprlError("dae: only used with reconstruction='dae', got reconstruction='pixel'")
        if self.normalize_features and reconstruction != "dae":
            raise ReprlError("normalize_features: only used with reconstruction='dae'")
        _check_remedy_args(self.feature_var_momentum, self.kl_warmup_steps, self.free_bits)
        self._set("input_shape", InputSpec.for_shape(self.input_shape).shape)
        if self.dae_layer is not None and reconstruction != "dae":
            raise ReprlError("dae_layer: only used with reconstruction='dae'")
        self._set("reconstruction", reconstruction)
        self._set("latent_dim", int(self.latent_dim))
        for arg in ("beta", "gaussian_sigma", "feature_var_momentum", "free_bits"):
            self._set(arg, float(getattr(self, arg)))
        channels, hidden_dim = resolve_architecture(
            self.architecture, self.channels, self.hidden_dim, self.input_shape
        )
        self._set("channels", channels)
        self._set("hidden_dim", hidden_dim)
        self._set("dae_layer", None if self.dae_layer is None else int(self.dae_layer))
        self._set("kl_warmup_steps", int(self.kl_warmup_steps))
        for arg in ("normalize_features", "hidden_norm"):
            self._set(arg, bool(getattr(self, arg)))
        self._set("mean_frame", check_mean_frame(self.mean_frame))


@dataclasses.dataclass(frozen=True)
class BetaVAEDAEConfig(BetaVAEConfig):
    """The configuration of a :class:`BetaVAEDAE`: :class:`BetaVAEConfig` with
    ``reconstruction="dae"`` fixed (left out or ``"dae"``)."""

    method: ClassVar[str] = "beta_vae_dae"
    fixed_reconstruction: ClassVar[str | None] = "dae"


@register
class BetaVAE(Representation):
    """Convolutional beta-VAE with Gaussian latents; optionally DARLA's beta-VAE_DAE.

    Encoder/decoder: :class:`~representations.blocks.ConvEncoder` (4 convs 4x4 stride 2,
    32-32-64-64 channels, FC 256) with a linear head to ``(mu, logvar)``, and the transposed
    :class:`~representations.blocks.ConvDecoder`.

    Args:
        The fields of :class:`BetaVAEConfig` (positional in its order, or by keyword), kept
        checked in :attr:`cfg` and written to checkpoints as :attr:`config`.
    """

    name = "beta_vae"
    variational = True
    #: The reconstruction a registered variant fixes (``None``: chosen by ``reconstruction``).
    fixed_reconstruction: ClassVar[str | None] = BetaVAEConfig.fixed_reconstruction
    checkpoint_args = ("dae",)

    @configured(BetaVAEConfig)
    def __init__(self, cfg: BetaVAEConfig) -> None:
        self._build(cfg)

    def _build(self, cfg: BetaVAEConfig) -> None:
        """The constructor's body, shared with :class:`BetaVAEDAE` (whose config differs)."""
        spec = InputSpec.for_shape(cfg.input_shape)
        dae_module = None
        if cfg.reconstruction == "dae":
            dae_module = _perceptual_dae(cfg.dae, spec, cfg.dae_layer)
            cfg = dataclasses.replace(cfg, dae=copy.deepcopy(dae_module.config))
        super().__init__(input_spec=spec, latent_dim=cfg.latent_dim, config=cfg.to_dict())
        self.cfg = cfg
        # Buffers only where a remedy needs them: checkpoints without it keep their tensors.
        if self.kl_warmup_steps > 0:
            self.register_buffer("kl_step", torch.zeros((), dtype=torch.int64))
        if self.normalize_features:
            # 0 = not measured yet: the first training batch sets it.
            self.register_buffer("feature_var", torch.zeros(()))
        self.encoder = ConvEncoder(
            spec.shape, cfg.channels, cfg.hidden_dim, cfg.architecture, cfg.mean_frame
        )
        self.head = nn.Linear(self.encoder.out_dim, 2 * self.latent_dim)
        if self.use_hidden_norm:
            self.hidden_norm = nn.BatchNorm1d(self.encoder.out_dim)
        self.decoder = ConvDecoder(
            spec.shape, self.latent_dim, cfg.channels, cfg.hidden_dim, cfg.architecture
        )
        self.dae: DenoisingAutoencoder | None = dae_module
        if self.dae is not None:
            self.dae.requires_grad_(False).eval()

    @property
    def beta(self) -> float:
        """Weight of the KL term."""
        return self.cfg.beta

    @property
    def likelihood(self) -> str:
        """``"bernoulli"`` or ``"gaussian"``."""
        return self.cfg.likelihood

    @property
    def gaussian_sigma(self) -> float:
        """Fixed pixel std of the Gaussian likelihood."""
        return self.cfg.gaussian_sigma

    @property
    def reconstruction(self) -> str:
        """``"pixel"`` or ``"dae"``, resolved."""
        return self.cfg.reconstruction

    @property
    def dae_layer(self) -> int | None:
        """The DAE convolution of the perceptual space (``None``: the last)."""
        return self.cfg.dae_layer

    @property
    def normalize_features(self) -> bool:
        """Whether feature errors count in units of their variance."""
        return self.cfg.normalize_features

    @property
    def feature_var_momentum(self) -> float:
        """Weight of the running feature variance's old value."""
        return self.cfg.feature_var_momentum

    @property
    def kl_warmup_steps(self) -> int:
        """Steps of the KL weight's linear warm-up (0: none)."""
        return self.cfg.kl_warmup_steps

    @property
    def free_bits(self) -> float:
        """Nats per latent below which its KL costs nothing."""
        return self.cfg.free_bits

    @property
    def use_hidden_norm(self) -> bool:
        """Whether the encoder's hidden layer is batch-normalised."""
        return self.cfg.hidden_norm

    def train(self, mode: bool = True) -> BetaVAE:
        """Set training mode; the frozen DAE always stays in eval mode."""
        super().train(mode)
        if self.dae is not None:
            self.dae.eval()
        return self

    def requires_grad_(self, requires_grad: bool = True) -> BetaVAE:
        """Toggle gradients of the beta-VAE's own weights; the DAE stays frozen."""
        super().requires_grad_(requires_grad)
        if self.dae is not None:
            self.dae.requires_grad_(False)
        return self

    def posterior(self, obs: Tensor, *, batch_stats: bool = False) -> tuple[Tensor, Tensor]:
        """Parameters of ``q(z | obs)``.

        Args:
            obs: ``(B, C, H, W)`` float32 in ``[0, 1]``.
            batch_stats: With ``hidden_norm``: normalise with this batch's statistics (and
                update the running ones), as :meth:`loss` does in training mode; otherwise
                the running statistics, so a code never depends on the rest of its batch.

        Returns:
            ``(mu, logvar)``, each ``(B, latent_dim)``; ``logvar`` in
            ``(-LOGVAR_BOUND, LOGVAR_BOUND)``.
        """
        h = self.encoder(obs)
        if self.use_hidden_norm:
            norm = self.hidden_norm
            if batch_stats:
                h = norm(h)
            else:
                h = F.batch_norm(
                    h, norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=norm.eps
                )
        mu, raw = self.head(h).chunk(2, dim=1)
        return mu, bound_logvar(raw)

    def _encode(self, obs: Tensor) -> Tensor:
        return self.posterior(obs)[0]

    def decode_logits(self, z: Tensor) -> Tensor:
        """Decoder output before the sigmoid.

        Args:
            z: ``(B, latent_dim)`` float32.

        Returns:
            ``(B, C, H, W)`` float32 logits.
        """
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ReprlError(f"latent shape: expected (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """Images from latents (the likelihood's mean).

        Args:
            z: ``(B, latent_dim)`` float32.

        Returns:
            ``(B, C, H, W)`` float32 in ``[0, 1]``.
        """
        return torch.sigmoid(self.decode_logits(z))

    def reconstruct(self, obs: Tensor) -> Tensor:
        """Deterministic reconstruction ``decode(encode(obs))``, ``(B, C, H, W)`` in ``[0, 1]``."""
        return self.decode(self.encode(obs))

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
        """The KL term the loss minimises: per-latent batch means floored at ``free_bits``.

        ``sum_j max(mean_b KL_bj, free_bits)`` (Kingma et al. 2016); the plain
        ``mean_b sum_j KL_bj`` when ``free_bits`` is 0.

        Args:
            mu: ``(B, D)`` posterior means.
            logvar: ``(B, D)`` posterior log-variances.

        Returns:
            Scalar, nats.
        """
        return free_bits_kl(mu, logvar, self.free_bits)

    def _feature_recon(self, x: Tensor, logits: Tensor) -> Tensor:
        """Squared error in the frozen DAE's feature space, per example (module doc)."""
        assert self.dae is not None
        with torch.no_grad():
            target = self.dae.features(x, self.dae_layer)
        sq = (self.dae.features(torch.sigmoid(logits), self.dae_layer) - target).pow(2)
        recon = sq.sum() / x.shape[0]
        if not self.normalize_features:
            return recon
        if self.training and torch.is_grad_enabled() and x.shape[0] > 1:
            with torch.no_grad():
                v = target.var(dim=0).mean().clamp(min=1e-12)
                m = self.feature_var_momentum if float(self.feature_var) > 0 else 0.0
                self.feature_var.copy_(m * self.feature_var + (1.0 - m) * v)
        var = self.feature_var
        if float(var) <= 0:  # never trained: measure on this batch, keep nothing
            var = target.var(dim=0).mean().clamp(min=1e-12) if x.shape[0] > 1 else var + 1.0
        return recon / var

    def loss(
        self, batch: dict[str, Tensor], *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Negative beta-ELBO, averaged over examples.

        In training mode with gradients on, a call is one training step: it advances the KL
        warm-up counter and the running feature variance (when those are on).

        Args:
            batch: ``"obs"``: ``(B, C, H, W)`` float32 in ``[0, 1]``.
            generator: Generator (on the model's device) for the reparameterisation noise;
                ``None`` uses the global RNG.

        Returns:
            ``(total, {"recon", "kl", "loss", ...})`` with
            ``total = recon + kl_weight * kl_objective``; ``recon`` and ``kl`` (the true KL,
            nats, summed over latents) are per-example means. With a warm-up ``kl_weight`` is
            logged, with free bits ``kl_objective``, with normalised features ``feature_var``.
        """
        x = batch["obs"]
        self.input_spec.check(x)
        batch_stats = self.training and torch.is_grad_enabled() and x.shape[0] > 1
        mu, logvar = self.posterior(x, batch_stats=batch_stats)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decoder(z)
        n = x.shape[0]
        if self.dae is not None:
            recon = self._feature_recon(x, logits)
        elif self.likelihood == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        else:
            sq = (torch.sigmoid(logits) - x).pow(2).sum() / n
            recon = 0.5 * sq / self.gaussian_sigma**2
        kl = gaussian_kl(mu, logvar).mean()
        weight = self.kl_weight()
        objective = self.kl_objective(mu, logvar) if self.free_bits > 0.0 else kl
        total = recon + weight * objective
        if self.kl_warmup_steps > 0 and self.training and torch.is_grad_enabled():
            self.kl_step.add_(1)
        logs = {
            "recon": float(recon.detach()),
            "kl": float(kl.detach()),
            "loss": float(total.detach()),
        }
        if self.kl_warmup_steps > 0:
            logs["kl_weight"] = weight
        if self.free_bits > 0.0:
            logs["kl_objective"] = float(objective.detach())
        if self.normalize_features:
            logs["feature_var"] = float(self.feature_var)
        return total, logs


@register
class BetaVAEDAE(BetaVAE):
    """DARLA's beta-VAE_DAE: :class:`BetaVAE` with ``reconstruction="dae"`` fixed.

    Same arguments as :class:`BetaVAE` (``reconstruction`` may be left out or be ``"dae"``);
    ``dae`` should be a pretrained :class:`DenoisingAutoencoder` or its checkpoint path (``None``
    builds an untrained one, for tests and smoke runs only).
    """

    name = "beta_vae_dae"
    fixed_reconstruction = BetaVAEDAEConfig.fixed_reconstruction

    @configured(BetaVAEDAEConfig)
    def __init__(self, cfg: BetaVAEDAEConfig) -> None:
        self._build(cfg)
