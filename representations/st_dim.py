"""ST-DIM, Spatiotemporal Deep InfoMax (Anand et al., NeurIPS 2019, the AtariARI paper).

An encoder of single frames is trained so that frame ``t``'s features predict frame
``t + 1``'s (``offset`` k, default 1) of the same episode, with two InfoNCE terms whose
negatives are the other pairs of the batch (:func:`representations.contrastive.info_nce`):

- **global-local**: a linear map ``W_g`` of the global code ``z_t`` (what :meth:`encode`
  returns) scored against the local feature ``l_{t+k}(h, w)`` at every cell of an intermediate
  convolution of frame ``t + k``: ``logits_hw = (W_g z_t) l_{t+k}(h, w)^T``, a ``(B, B)`` matrix
  per cell, cross-entropy against the diagonal, averaged over the cells;
- **local-local**: a linear map ``W_l`` of the local feature at a cell of frame ``t`` against
  the same cell of frame ``t + k``, averaged over the cells.

Loss = global-local + local-local, as in ``atariari/methods/stdim.py``. Each cell sees only a
patch of the frame, so the code must carry what every patch's future depends on, small
objects included: the reason the AtariARI probes find Breakout's ball in ST-DIM codes and not
in a VAE's.

Architecture: a conv stack of reprl's family (:class:`~representations.blocks.ConvEncoder`;
``architecture`` ``"darla"``: 4x4 stride-2 convolutions and an FC layer; ``"atariari"``: the
paper's own Nature-CNN variant on 210 x 160 frames, :data:`ATARIARI_CONFIG`) and a linear map
to the ``latent_dim`` code, initialised as AtariARI's (orthogonal, ReLU gain:
:func:`~representations.blocks.relu_init_`); "local" is the output of convolution
``local_layer`` (default 3: 64 x 8 x 8 at 64 x 64; 128 x 11 x 8 with ``"atariari"``, the
paper's "third conv layer", their ``f5``).
"""

from __future__ import annotations

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
    info_nce,
    relu_init_,
)
from representations.registry import register

#: The sizes of the AtariARI encoder in reprl's conv family: single grayscale frames at the
#: Atari screen's 210 x 160 (their README: downsampled frames make the small-object probes
#: meaningless), convolutions of 32, 64, 128, 64 channels (theirs: 8x8/4, 4x4/2, 4x4/2, 3x3/1;
#: here every convolution is 4x4 stride 2), local features from the third, a 256-d code,
#: consecutive frames. Their budget: 100k random-agent frames, batch 64, Adam 3e-4, up to 100
#: epochs with early stopping.
PAPER_CONFIG: dict[str, Any] = {
    "input_shape": [1, 210, 160],
    "latent_dim": 256,
    "channels": [32, 64, 128, 64],
    "hidden_dim": 256,
    "local_layer": 3,
    "offset": 1,
}

#: The paper's encoder itself (``atariari/methods/encoders.py`` ``NatureCNN``, no downsampling):
#: convolutions 32@8x8/4, 64@4x4/2, 128@4x4/2, 64@3x3/1 on 210 x 160 grayscale frames, the
#: flattened 64 x 9 x 6 features linearly to the 256-d code, local features from the third
#: convolution (128 x 11 x 8).
ATARIARI_CONFIG: dict[str, Any] = {
    "input_shape": [1, 210, 160],
    "latent_dim": 256,
    "architecture": "atariari",
    "local_layer": 3,
    "offset": 1,
}


@dataclass(frozen=True)
class STDIMConfig(MethodConfig):
    """The configuration of an :class:`STDIM` (its constructor's arguments).

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``). Default 64x64 RGB.
        latent_dim: Size of the global code :meth:`STDIM.encode` returns (default 32, the
            beta-VAE's; :data:`PAPER_CONFIG`: 256).
        channels: Convolution channels of the encoder (``None``: the architecture's).
        hidden_dim: Units of the encoder's FC layer, 0 for none (``None``: the
            architecture's: 256 for ``"darla"``, 0 for ``"atariari"``).
        local_layer: Which convolution (1-based) gives the local features, 1 .. len(channels)
            (default 3).
        offset: ``k``, how many steps after frame t its positive is, >= 1 (default 1:
            consecutive frames, as the paper).
        architecture: The conv stack (:data:`representations.blocks.ARCHITECTURES`):
            ``"darla"`` (default) or ``"atariari"`` (the paper's encoder on 210 x 160 frames).
        mean_frame: Centre the encoder's input on the pretraining frames' mean frame
            (:class:`representations.blocks.MeanFrame`; for Atari's constant backgrounds);
            default ``False``.
    """

    input_shape: Sequence[int] = (3, 64, 64)
    latent_dim: int = 32
    channels: Sequence[int] | None = None
    hidden_dim: int | None = None
    local_layer: int = 3
    offset: int = 1
    architecture: str = architecture_field()
    mean_frame: bool = mean_frame_field()

    def __post_init__(self) -> None:
        spec = InputSpec.for_shape(self.input_shape)
        offset = check_offset(self.offset)
        channels, hidden_dim = resolve_architecture(
            self.architecture, self.channels, self.hidden_dim, spec.shape
        )
        n, local_layer = len(channels), self.local_layer
        if isinstance(local_layer, bool) or not isinstance(local_layer, int):
            raise ReprlError(f"local_layer: expected an integer in 1..{n}, got {local_layer!r}")
        if not 1 <= local_layer <= n:
            raise ReprlError(
                f"local_layer: expected a convolution of the encoder, 1..{n}, got {local_layer}"
            )
        self._set("input_shape", spec.shape)
        self._set("latent_dim", int(self.latent_dim))
        self._set("channels", channels)
        self._set("hidden_dim", hidden_dim)
        self._set("mean_frame", check_mean_frame(self.mean_frame))
        self._set("local_layer", int(local_layer))
        self._set("offset", offset)


@register
class STDIM(PairMethod):
    """Spatiotemporal Deep InfoMax over pairs of frames (see the module docstring).

    Trains on ``batch["obs"]`` (frame t) and ``batch["next_obs"]`` (frame t + ``offset`` of the
    same episode), :attr:`batch_kind` ``"pairs"``.

    Args:
        The fields of :class:`STDIMConfig` (positional in its order, or by keyword), kept
        checked in :attr:`cfg` and written to checkpoints as :attr:`config`.

    Attributes:
        pair_offset: ``offset``, read by the pretraining loop.
        local_shape: ``(C_l, H_l, W_l)`` of the local features.
    """

    name = "st_dim"

    @configured(STDIMConfig)
    def __init__(self, cfg: STDIMConfig) -> None:
        spec = InputSpec.for_shape(cfg.input_shape)
        super().__init__(input_spec=spec, latent_dim=cfg.latent_dim, config=cfg.to_dict())
        self.cfg = cfg
        self.encoder = relu_init_(
            ConvEncoder(spec.shape, cfg.channels, cfg.hidden_dim, cfg.architecture, cfg.mean_frame),
            "orthogonal",
        )
        self.to_latent = relu_init_(nn.Linear(self.encoder.out_dim, self.latent_dim), "orthogonal")
        self.local_shape = self.encoder.feature_shapes[self.local_layer - 1]
        local_channels = self.local_shape[0]
        self.global_local = nn.Linear(self.latent_dim, local_channels)
        self.local_local = nn.Linear(local_channels, local_channels)

    @property
    def pair_offset(self) -> int:
        """``k`` (:attr:`STDIMConfig.offset`), read by the pretraining loop."""
        return self.cfg.offset

    @property
    def local_layer(self) -> int:
        """The convolution (1-based) whose output is the local features."""
        return self.cfg.local_layer

    def _features(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(code (B, latent_dim), local features (B, C_l, H_l, W_l))`` in one pass."""
        cut = 2 * self.local_layer  # each convolution is followed by its ReLU
        local = self.encoder.conv_features(obs, self.local_layer)
        rest = self.encoder.convs[cut:](local)
        return self.to_latent(self.encoder.hidden(rest)), local

    def _encode(self, obs: Tensor) -> Tensor:
        return self._features(obs)[0]

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Global-local plus local-local InfoNCE between frame t and frame t + k.

        Args:
            batch: ``"obs"`` and ``"next_obs"``, each ``(B, C, H, W)`` float32 in ``[0, 1]``,
                frame t and frame t + :attr:`pair_offset` of one episode per row, ``B >= 2``.

        Returns:
            ``(total, logs)``: ``total`` = global-local + local-local (nats, each ``log B`` at
            chance); ``logs``: ``"loss"``, ``"global_local"``, ``"local_local"``, their top-1
            accuracies ``"acc_global_local"``, ``"acc_local_local"`` and ``"chance"`` (1 / B).

        Raises:
            ReprlError: A batch that is not pairs of frames matching :attr:`input_spec`.
        """
        obs, nxt = self.pairs(batch)
        b = obs.shape[0]
        both_z, both_local = self._features(torch.cat([obs, nxt]))
        z_t = both_z[:b]
        local_t, local_next = both_local[:b], both_local[b:]
        # global-local: (W_g z_t) . l_{t+k}(h, w), a (B, B) matrix per cell
        pred = self.global_local(z_t)  # (B, C_l)
        gl_logits = torch.einsum("bc,nchw->hwbn", pred, local_next)
        gl, gl_acc = info_nce(gl_logits)
        # local-local: (W_l l_t(h, w)) . l_{t+k}(h, w)
        pred_local = self.local_local(local_t.permute(0, 2, 3, 1))  # (B, H_l, W_l, C_l)
        ll_logits = torch.einsum("bhwc,nchw->hwbn", pred_local, local_next)
        ll, ll_acc = info_nce(ll_logits)
        total = gl + ll
        return total, {
            "loss": float(total.detach()),
            "global_local": float(gl.detach()),
            "local_local": float(ll.detach()),
            "acc_global_local": float(gl_acc),
            "acc_local_local": float(ll_acc),
            "chance": 1.0 / b,
        }
