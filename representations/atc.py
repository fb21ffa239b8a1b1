"""ATC, Augmented Temporal Contrast (Stooke, Lee, Abbeel and Laskin, ICML 2021).

"Decoupling Representation Learning from Reinforcement Learning": an encoder trained with
this loss alone, then frozen, matches or beats end-to-end RL in most of their environments.
For a pair of frames ``o_t`` and ``o_{t+k}`` of one episode (``offset`` k, default 3):

- both are augmented by a random shift (``shift_pad`` pixels, default 4;
  :func:`representations.contrastive.random_shift`);
- anchor: the online encoder's code of ``o_t``, through a residual MLP predictor
  ``p(z) = z + MLP(z)`` (``projector_hidden`` units);
- positive: the code of ``o_{t+k}`` under a *momentum* (EMA) copy of the encoder, which gets no
  gradient and follows the online weights, ``target <- (1 - tau) target + tau online`` after
  every optimiser step (``momentum_tau`` 0.01, :meth:`ATC.after_step`);
- a bilinear head scores every anchor against every positive, ``logits = p(z_t) W z_{t+k}^T``,
  ``(B, B)``, and a cross-entropy picks the diagonal (InfoNCE, the other pairs of the batch as
  negatives; :func:`representations.contrastive.info_nce`).

As in rlpyt's ``rlpyt/ul/algos/ul_for_rl/augmented_temporal_contrast.py``. The pretraining loop
never draws a pair across an episode end (their code masks such samples instead).

Architecture: the DARLA / beta-VAE conv stack (:class:`~representations.blocks.ConvEncoder`)
and a linear map to the ``latent_dim`` code, as every encoder of reprl's family, initialised
as rlpyt's (Kaiming normal: :func:`~representations.blocks.relu_init_`); :meth:`encode`
is the online encoder, without augmentation.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.base import InputSpec
from representations.blocks import (
    ConvEncoder,
    architecture_field,
    check_mean_frame,
    mean_frame_field,
    resolve_architecture,
)
from representations.config import MethodConfig, configured
from representations.contrastive import (
    PairMethod,
    check_offset,
    check_shift_pad,
    info_nce,
    random_shift,
    relu_init_,
)
from representations.registry import register

#: The paper's Atari settings (Stooke et al. 2021, appendix; rlpyt ``configs/atari``): k = 3,
#: random shift of 4 pixels, momentum 0.01, a 256-d code, a residual predictor of 512 units.
#: Their Atari encoder sees 84 x 84 frames and trains 20k updates of batch 32 x 16 with Adam
#: 1e-3 (cosine decay, 1k warm-up steps; reprl's loop keeps a constant learning rate).
PAPER_CONFIG: dict[str, Any] = {
    "input_shape": [3, 84, 84],
    "latent_dim": 256,
    "channels": [32, 32, 64, 64],
    "hidden_dim": 256,
    "offset": 3,
    "shift_pad": 4,
    "momentum_tau": 0.01,
    "projector_hidden": 512,
}


class _ResidualPredictor(nn.Module):
    """``z + MLP(z)``: a one-hidden-layer MLP added to its input (ATC's anchor predictor)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, z: Tensor) -> Tensor:
        return z + self.mlp(z)


@dataclass(frozen=True)
class ATCConfig(MethodConfig):
    """The configuration of an :class:`ATC` (its constructor's arguments).

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``). Default 64x64 RGB.
        latent_dim: Size of the code :meth:`ATC.encode` returns (default 32, the beta-VAE's;
            :data:`PAPER_CONFIG`: 256).
        channels: Convolution channels of the encoder (``None``: the architecture's).
        hidden_dim: Units of the encoder's FC layer, 0 for none (``None``: the
            architecture's).
        offset: ``k``, how many steps after the anchor its positive is, >= 1 (default 3).
        shift_pad: Largest random shift in pixels, in ``[0, min(H, W))`` (default 4; 0: no
            augmentation).
        momentum_tau: EMA rate of the target encoder per optimiser step, in ``(0, 1]``
            (default 0.01; 1 copies the online weights every step).
        projector_hidden: Units of the residual predictor's hidden layer, >= 1 (default 512).
        architecture: The conv stack (:data:`representations.blocks.ARCHITECTURES`):
            ``"darla"`` (default) or ``"atariari"`` (AtariARI's encoder on 210 x 160 frames).
        mean_frame: Centre the encoder's input on the pretraining frames' mean frame
            (:class:`representations.blocks.MeanFrame`; for Atari's constant backgrounds);
            default ``False``.
    """

    input_shape: Sequence[int] = (3, 64, 64)
    latent_dim: int = 32
    channels: Sequence[int] | None = None
    hidden_dim: int | None = None
    offset: int = 3
    shift_pad: int = 4
    momentum_tau: float = 0.01
    projector_hidden: int = 512
    architecture: str = architecture_field()
    mean_frame: bool = mean_frame_field()

    def __post_init__(self) -> None:
        spec = InputSpec.for_shape(self.input_shape)
        channels, hidden_dim = resolve_architecture(
            self.architecture, self.channels, self.hidden_dim, spec.shape
        )
        offset = check_offset(self.offset)
        shift_pad = check_shift_pad(self.shift_pad, spec)
        tau = self.momentum_tau
        if isinstance(tau, bool) or not 0.0 < float(tau) <= 1.0:
            raise ReprlError(f"momentum_tau: expected an EMA rate in (0, 1] per step, got {tau!r}")
        hidden = self.projector_hidden
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ReprlError(f"projector_hidden: expected an integer >= 1, got {hidden!r}")
        self._set("input_shape", spec.shape)
        self._set("latent_dim", int(self.latent_dim))
        self._set("channels", channels)
        self._set("hidden_dim", hidden_dim)
        self._set("mean_frame", check_mean_frame(self.mean_frame))
        self._set("offset", offset)
        self._set("shift_pad", shift_pad)
        self._set("momentum_tau", float(tau))
        self._set("projector_hidden", int(hidden))


@register
class ATC(PairMethod):
    """Augmented Temporal Contrast over pairs of frames (see the module docstring).

    Trains on ``batch["obs"]`` (frame t) and ``batch["next_obs"]`` (frame t + ``offset`` of the
    same episode), :attr:`batch_kind` ``"pairs"``.

    Args:
        The fields of :class:`ATCConfig` (positional in its order, or by keyword), kept
        checked in :attr:`cfg` and written to checkpoints as :attr:`config`.

    Attributes:
        pair_offset: ``offset``, read by the pretraining loop.
        online: The encoder trained by gradients (conv stack, FC, linear code).
        target: Its momentum copy (no gradients).
    """

    name = "atc"

    @configured(ATCConfig)
    def __init__(self, cfg: ATCConfig) -> None:
        spec = InputSpec.for_shape(cfg.input_shape)
        super().__init__(input_spec=spec, latent_dim=cfg.latent_dim, config=cfg.to_dict())
        self.cfg = cfg
        encoder = ConvEncoder(
            spec.shape, cfg.channels, cfg.hidden_dim, cfg.architecture, cfg.mean_frame
        )
        self.online = relu_init_(
            nn.Sequential(encoder, nn.Linear(encoder.out_dim, self.latent_dim)), "kaiming"
        )
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.predictor = _ResidualPredictor(self.latent_dim, cfg.projector_hidden)
        self.bilinear = nn.Linear(self.latent_dim, self.latent_dim, bias=False)

    @property
    def pair_offset(self) -> int:
        """``k`` (:attr:`ATCConfig.offset`), read by the pretraining loop."""
        return self.cfg.offset

    @property
    def shift_pad(self) -> int:
        """Largest random shift of the augmentation, in pixels."""
        return self.cfg.shift_pad

    @property
    def momentum_tau(self) -> float:
        """EMA rate of the target encoder per optimiser step."""
        return self.cfg.momentum_tau

    def requires_grad_(self, requires_grad: bool = True) -> ATC:
        """Toggle gradients of the online weights; the momentum target never has any."""
        super().requires_grad_(requires_grad)
        self.target.requires_grad_(False)
        return self

    def _encode(self, obs: Tensor) -> Tensor:
        return self.online(obs)

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Bilinear InfoNCE between the predicted code of frame t and the target code of t + k.

        Args:
            batch: ``"obs"`` and ``"next_obs"``, each ``(B, C, H, W)`` float32 in ``[0, 1]``,
                frame t and frame t + :attr:`pair_offset` of one episode per row, ``B >= 2``.

        Returns:
            ``(total, logs)``: the cross-entropy (nats, ``log B`` at chance); ``logs``:
            ``"loss"``, ``"acc"`` (top-1 accuracy of picking the positive) and ``"chance"``
            (1 / B).

        Raises:
            ReprlError: A batch that is not pairs of frames matching :attr:`input_spec`.
        """
        obs, nxt = self.pairs(batch)
        anchor = self.predictor(self.online(random_shift(obs, self.shift_pad)))
        with torch.no_grad():
            positive = self.target(random_shift(nxt, self.shift_pad))
        logits = self.bilinear(anchor) @ positive.T
        loss, acc = info_nce(logits)
        return loss, {"loss": float(loss.detach()), "acc": float(acc), "chance": 1.0 / len(obs)}

    @torch.no_grad()
    def after_step(self) -> None:
        """Moves the target towards the online weights: ``target += tau (online - target)``."""
        for t, o in zip(self.target.parameters(), self.online.parameters()):
            t.lerp_(o, self.momentum_tau)
