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
  and its config in ``config["dae"]``, so the checkpoint stays one file.

A real beta-VAE_DAE run pretrains the DAE first (``make_representation("dae")`` trained on the
same frames), then passes it in: ``BetaVAE(reconstruction="dae", dae=trained_dae)`` or
``make_representation("beta_vae_dae", dae="path/to/dae.safetensors")``. Without ``dae`` a fresh,
untrained DAE is built, which only makes sense for tests and smoke runs (its features are random
projections).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.blocks import DEFAULT_CHANNELS, DEFAULT_HIDDEN_DIM, ConvDecoder, ConvEncoder
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


@register
class BetaVAE(Representation):
    """Convolutional beta-VAE with Gaussian latents; optionally DARLA's beta-VAE_DAE.

    Encoder/decoder: :class:`~representations.blocks.ConvEncoder` (4 convs 4x4 stride 2,
    32-32-64-64 channels, FC 256) with a linear head to ``(mu, logvar)``, and the transposed
    :class:`~representations.blocks.ConvDecoder`.

    Args:
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
        channels: Encoder convolution channels.
        hidden_dim: Units of the FC layers.
        dae_layer: Only with ``reconstruction="dae"``: which DAE convolution (1-based) spans
            the perceptual space; ``None`` = the last (64x4x4 at 64x64). Earlier layers keep
            finer spatial detail (``2``: 32x16x16), so small objects weigh more in the loss.
    """

    name = "beta_vae"
    variational = True
    #: The reconstruction a registered variant fixes (``None``: chosen by ``reconstruction``).
    fixed_reconstruction: ClassVar[str | None] = None
    checkpoint_args = ("dae",)

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 64, 64),
        latent_dim: int = 32,
        beta: float = 4.0,
        likelihood: Likelihood = "bernoulli",
        gaussian_sigma: float = 0.1,
        reconstruction: Reconstruction | None = None,
        dae: DAESource = None,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        hidden_dim: int = DEFAULT_HIDDEN_DIM,
        dae_layer: int | None = None,
    ) -> None:
        fixed = type(self).fixed_reconstruction
        if reconstruction is None:
            reconstruction = fixed or "pixel"
        elif fixed is not None and reconstruction != fixed:
            raise ReprlError(
                f"{self.name}: expected reconstruction={fixed!r}, got {reconstruction!r} "
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
        if reconstruction == "pixel" and dae is not None:
            raise ReprlError("dae: only used with reconstruction='dae', got reconstruction='pixel'")
        spec = InputSpec.for_shape(input_shape)
        dae_module = _resolve_dae(dae, spec.shape) if reconstruction == "dae" else None
        if dae_layer is not None:
            if dae_module is None:
                raise ReprlError("dae_layer: only used with reconstruction='dae'")
            n_convs = len(dae_module.encoder.feature_shapes)
            if not 1 <= int(dae_layer) <= n_convs:
                raise ReprlError(f"dae_layer: expected 1..{n_convs} (a DAE conv), got {dae_layer}")
        if dae_module is not None and dae_module.input_spec != spec:
            raise ReprlError(
                f"dae input_spec: expected {spec} (the beta-VAE's), got {dae_module.input_spec}"
            )
        super().__init__(
            input_spec=spec,
            latent_dim=latent_dim,
            config={
                "input_shape": list(spec.shape),
                "latent_dim": int(latent_dim),
                "beta": float(beta),
                "likelihood": likelihood,
                "gaussian_sigma": float(gaussian_sigma),
                "reconstruction": reconstruction,
                "dae": None if dae_module is None else dae_module.config,
                "channels": [int(c) for c in channels],
                "hidden_dim": int(hidden_dim),
                "dae_layer": None if dae_layer is None else int(dae_layer),
            },
        )
        self.dae_layer = None if dae_layer is None else int(dae_layer)
        self.beta = float(beta)
        self.likelihood = likelihood
        self.gaussian_sigma = float(gaussian_sigma)
        self.reconstruction = reconstruction
        self.encoder = ConvEncoder(spec.shape, channels, hidden_dim)
        self.head = nn.Linear(self.encoder.out_dim, 2 * self.latent_dim)
        self.decoder = ConvDecoder(spec.shape, self.latent_dim, channels, hidden_dim)
        self.dae: DenoisingAutoencoder | None = dae_module
        if self.dae is not None:
            self.dae.requires_grad_(False).eval()

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

    def posterior(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Parameters of ``q(z | obs)``.

        Args:
            obs: ``(B, C, H, W)`` float32 in ``[0, 1]``.

        Returns:
            ``(mu, logvar)``, each ``(B, latent_dim)``; ``logvar`` in
            ``(-LOGVAR_BOUND, LOGVAR_BOUND)``.
        """
        mu, raw = self.head(self.encoder(obs)).chunk(2, dim=1)
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

    def loss(
        self, batch: dict[str, Tensor], *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Negative beta-ELBO, averaged over examples.

        Args:
            batch: ``"obs"``: ``(B, C, H, W)`` float32 in ``[0, 1]``.
            generator: Generator (on the model's device) for the reparameterisation noise;
                ``None`` uses the global RNG.

        Returns:
            ``(total, {"recon", "kl", "loss"})`` with ``total = recon + beta * kl``; ``recon``
            and ``kl`` (nats, summed over latents) are per-example means.
        """
        x = batch["obs"]
        self.input_spec.check(x)
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decoder(z)
        n = x.shape[0]
        if self.dae is not None:
            with torch.no_grad():
                target = self.dae.features(x, self.dae_layer)
            recon = (self.dae.features(torch.sigmoid(logits), self.dae_layer) - target).pow(2)
            recon = recon.sum() / n
        elif self.likelihood == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        else:
            sq = (torch.sigmoid(logits) - x).pow(2).sum() / n
            recon = 0.5 * sq / self.gaussian_sigma**2
        kl = gaussian_kl(mu, logvar).mean()
        total = recon + self.beta * kl
        return total, {
            "recon": float(recon.detach()),
            "kl": float(kl.detach()),
            "loss": float(total.detach()),
        }


@register
class BetaVAEDAE(BetaVAE):
    """DARLA's beta-VAE_DAE: :class:`BetaVAE` with ``reconstruction="dae"`` fixed.

    Same arguments as :class:`BetaVAE` (``reconstruction`` may be left out or be ``"dae"``);
    ``dae`` should be a pretrained :class:`DenoisingAutoencoder` or its checkpoint path (``None``
    builds an untrained one, for tests and smoke runs only).
    """

    name = "beta_vae_dae"
    fixed_reconstruction = "dae"
