"""Contrastive Predictive Coding (van den Oord, Li and Vinyals, 2018) on frame sequences.

Model, for one sequence of frames ``x_1 .. x_L`` of one episode:

- ``z_t = g_enc(x_t)``: a convolutional encoder of single frames, ``(latent_dim,)``;
- ``c_t = g_ar(z_1 .. z_t)``: a GRU over the codes so far, ``(context_dim,)``;
- ``f_k(z, c_t) = exp(z^T W_k c_t)``: one bilinear score per prediction step ``k = 1 .. K``.

Loss (InfoNCE): for every sequence ``b`` of the batch, every context time ``t`` and every
``k`` with ``t + k`` inside the sequence, a cross-entropy picks the positive ``z_{b, t+k}`` out
of the candidate set, which is **every code of the batch**: all ``B * L`` of them, i.e. the
positive plus, as negatives, the codes of the other ``L - 1`` times of the same sequence (its
past, the context's own frame and the other future steps ``k' != k``) and all ``L`` codes of
each of the other ``B - 1`` sequences. The candidates are the same for every prediction, so
chance is ``1 / (B * L)``. The loss is the per-``k`` mean cross-entropy, averaged over ``k``
(each step weighs the same whatever its number of predictions).

Context times: a prediction is made from ``c_t`` once the GRU has seen ``min_context`` frames
(``t >= min_context``, 1-based), so a batch needs ``L >= min_context + K``. The default
``min_context = 1`` predicts from every context, as the paper does; a larger value skips
predictions from contexts too short to know, say, a velocity.

Notes:
    Negatives are not checked for being the same frame as the positive: frames that repeat
    in an episode (a static screen) or sequences of the batch that overlap (two windows of one
    episode) give false negatives, which lower the reachable accuracy; with many sequence
    starts per batch (the pretraining loop draws them at random) the effect is small.

:meth:`CPC.encode` gives ``z_t`` of single frames (what an agent's encoder sees, one frame at
a time); the context ``c_t`` needs the past and is offered separately by :meth:`CPC.context`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.batches import SEQUENCES
from representations.blocks import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_CHANNELS,
    ConvEncoder,
    architecture_field,
    check_mean_frame,
    init_for_architecture_,
    mean_frame_field,
    resolve_architecture,
)
from representations.config import MethodConfig, configured
from representations.probing import ScoreContext, fresh_prediction_scores
from representations.registry import register

EncoderKind = Literal["conv", "resnet"]
_ENCODERS: tuple[str, ...] = get_args(EncoderKind)

#: The paper's settings adapted to 64x64 frames (a GPU-sized run). The paper's vision
#: experiment encodes image patches with a ResNet-v2 (no batch norm), mean-pooled, and predicts
#: up to 5 rows of a 7x7 patch grid ahead; its audio experiment uses 512-d codes and a GRU of
#: 256 units. Here: a pre-activation ResNet of 4 stages x 2 blocks (64-512 channels, no
#: normalisation, spatial mean-pool), z 512-d, GRU 256, K = 5 steps ahead over sequences of 7
#: frames (the grid's 7 rows become 7 time steps).
PAPER_CONFIG: dict[str, Any] = {
    "input_shape": [3, 64, 64],
    "encoder": "resnet",
    "channels": [64, 128, 256, 512],
    "blocks_per_stage": 2,
    "hidden_dim": None,
    "latent_dim": 512,
    "context_dim": 256,
    "prediction_steps": 5,
    "sequence_length": 7,
    "min_context": 1,
}


def _min_side(n_stages: int) -> int:
    return 2**n_stages


class _PreActBlock(nn.Module):
    """Pre-activation residual block ``x + conv(relu(conv(relu(x))))``, 3x3 convolutions.

    The last convolution starts at zero, so every block starts as the identity (no
    normalisation layers are needed to train it stably; batch norm would let the contrastive
    loss compare examples through the batch statistics).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(torch.relu(self.conv1(torch.relu(x))))


class ResNetEncoder(nn.Module):
    """ResNet-v2-style frame encoder without normalisation, spatially mean-pooled.

    Each stage halves the resolution with a 4x4 stride-2 convolution, then runs
    ``blocks_per_stage`` pre-activation residual blocks; the last feature map is mean-pooled
    over space (as the paper pools its ResNet features per patch).

    Args:
        input_shape: ``(C, H, W)``; H and W at least ``2 ** len(channels)``.
        channels: Channels of each stage.
        blocks_per_stage: Residual blocks after each downsampling, >= 0.

    Attributes:
        out_dim: ``channels[-1]``.
    """

    def __init__(
        self, input_shape: Sequence[int], channels: Sequence[int], blocks_per_stage: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = int(input_shape[0])
        for c in channels:
            layers.append(nn.Conv2d(prev, int(c), 4, 2, 1))
            layers += [_PreActBlock(int(c)) for _ in range(int(blocks_per_stage))]
            prev = int(c)
        self.stages = nn.Sequential(*layers)
        self.out_dim = prev
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        """Encode images.

        Args:
            x: ``(B, C, H, W)`` float32 images.

        Returns:
            ``(B, channels[-1])`` float32, non-negative (ReLU, then mean over space).
        """
        return torch.relu(self.stages(x)).mean(dim=(2, 3))


@dataclass(frozen=True)
class CPCConfig(MethodConfig):
    """The configuration of a :class:`CPC` (its constructor's arguments).

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``). Default 64x64 RGB.
        latent_dim: Size of the frame code ``z_t`` that :meth:`CPC.encode` returns (default 32).
        context_dim: Units of the GRU whose state is the context ``c_t`` (default 64).
        prediction_steps: ``K``, how many steps ahead each context predicts (default 4).
        sequence_length: ``L``, frames per sequence that the pretraining loop draws (and
            :meth:`CPC.example_batch` makes), at least ``min_context + prediction_steps``
            (default 12). :meth:`CPC.loss` accepts any ``L`` from that minimum.
        min_context: Frames the GRU has seen before its context makes its first prediction
            (default 1: every context predicts).
        encoder: ``"conv"``: the DARLA / beta-VAE conv stack
            (:class:`~representations.blocks.ConvEncoder`, 4x4 stride-2 convolutions then an
            FC layer of ``hidden_dim`` units); ``"resnet"``: :class:`ResNetEncoder`
            (:data:`PAPER_CONFIG`). Either is followed by a linear map to ``latent_dim``.
        channels: Convolution channels (``"conv"``) or stage channels (``"resnet"``);
            ``None``: the architecture's (``"resnet"``: 32, 32, 64, 64).
        hidden_dim: FC units of the ``"conv"`` encoder, 0 for none (``None``: the
            architecture's, 256 for ``"darla"``, stored resolved); must be ``None`` for
            ``"resnet"``, which mean-pools instead.
        blocks_per_stage: Residual blocks per stage of the ``"resnet"`` encoder (ignored by
            ``"conv"``, which has none; default 1).
        architecture: The conv stack of the ``"conv"`` encoder
            (:data:`representations.blocks.ARCHITECTURES`): ``"darla"`` (default) or
            ``"atariari"`` (AtariARI's encoder on 210 x 160 frames); ``"resnet"`` takes the
            default only.
        mean_frame: Centre the ``"conv"`` encoder's input on the pretraining frames' mean frame
            (:class:`representations.blocks.MeanFrame`; for Atari's constant backgrounds);
            default ``False``.
    """

    input_shape: Sequence[int] = (3, 64, 64)
    latent_dim: int = 32
    context_dim: int = 64
    prediction_steps: int = 4
    sequence_length: int = 12
    min_context: int = 1
    encoder: EncoderKind = "conv"
    channels: Sequence[int] | None = None
    hidden_dim: int | None = None
    blocks_per_stage: int = 1
    architecture: str = architecture_field()
    mean_frame: bool = mean_frame_field()

    def __post_init__(self) -> None:
        spec = InputSpec.for_shape(self.input_shape)
        if self.encoder not in _ENCODERS:
            raise ReprlError(f"encoder: expected one of {_ENCODERS}, got {self.encoder!r}")
        for arg, low in (
            ("context_dim", 1),
            ("prediction_steps", 1),
            ("min_context", 1),
            ("blocks_per_stage", 0),
        ):
            value = getattr(self, arg)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ReprlError(f"{arg}: expected an integer >= {low}, got {value!r}")
        length, before, ahead = self.sequence_length, self.min_context, self.prediction_steps
        if isinstance(length, bool) or not isinstance(length, int):
            raise ReprlError(f"sequence_length: expected an integer, got {length!r}")
        if length < int(before) + int(ahead):
            raise ReprlError(
                f"sequence_length: expected at least min_context + prediction_steps = "
                f"{before} + {ahead} = {int(before) + int(ahead)}, got {length}"
            )
        channels, hidden_dim = self.channels, self.hidden_dim
        if self.encoder == "resnet":
            if self.architecture != DEFAULT_ARCHITECTURE:
                raise ReprlError(
                    f"architecture: only used by encoder='conv', got {self.architecture!r} with "
                    "encoder='resnet'"
                )
            channels = DEFAULT_CHANNELS if channels is None else channels
            if hidden_dim is not None:
                raise ReprlError(
                    f"hidden_dim: only used by encoder='conv' (the resnet mean-pools its last "
                    f"stage), got {hidden_dim} with encoder='resnet'"
                )
            side = _min_side(len(channels))
            if len(channels) == 0 or any(int(c) <= 0 for c in channels):
                raise ReprlError(f"channels: expected positive ints, got {list(channels)}")
            if spec.height < side or spec.width < side:
                raise ReprlError(
                    f"input H x W must be at least {side} x {side} for {len(channels)} stride-2 "
                    f"stages, got {spec.height} x {spec.width}"
                )
        if self.encoder == "conv":
            channels, hidden_dim = resolve_architecture(
                self.architecture, channels, hidden_dim, spec.shape
            )
        self._set("input_shape", spec.shape)
        for arg in ("latent_dim", "context_dim", "prediction_steps", "sequence_length"):
            self._set(arg, int(getattr(self, arg)))
        self._set("min_context", int(before))
        self._set("channels", tuple(int(c) for c in channels))
        self._set("hidden_dim", None if hidden_dim is None else int(hidden_dim))
        self._set("blocks_per_stage", int(self.blocks_per_stage))
        self._set("mean_frame", check_mean_frame(self.mean_frame))
        if self.mean_frame and self.encoder != "conv":
            raise ReprlError(f"mean_frame: only for encoder 'conv', got encoder {self.encoder!r}")


@register
class CPC(Representation):
    """Contrastive Predictive Coding over sequences of frames (see the module docstring).

    Trains on ``batch["seq"]`` (:attr:`batch_kind` ``"sequences"``); :meth:`encode` gives the
    frame code ``z_t``, :meth:`context` the GRU context ``c_t`` of a sequence.

    Args:
        The fields of :class:`CPCConfig` (positional in its order, or by keyword), kept
        checked in :attr:`cfg` and written to checkpoints as :attr:`config`.

    Attributes:
        sequence_length: ``L`` drawn by the pretraining loop.
        prediction_steps: ``K``.
        min_context: See :class:`CPCConfig`.
        min_sequence_length: ``min_context + prediction_steps``, the shortest ``L`` accepted.
    """

    name = "cpc"
    variational = False
    batch_kind = SEQUENCES

    @configured(CPCConfig)
    def __init__(self, cfg: CPCConfig) -> None:
        spec = InputSpec.for_shape(cfg.input_shape)
        super().__init__(input_spec=spec, latent_dim=cfg.latent_dim, config=cfg.to_dict())
        self.cfg = cfg
        if cfg.encoder == "conv":
            assert cfg.hidden_dim is not None  # resolved by the config
            self.encoder: nn.Module = ConvEncoder(
                spec.shape, cfg.channels, cfg.hidden_dim, cfg.architecture, cfg.mean_frame
            )
        else:
            self.encoder = ResNetEncoder(spec.shape, cfg.channels, cfg.blocks_per_stage)
        # the code layer is the last of AtariARI's encoder: initialised with it
        self.to_latent = init_for_architecture_(
            nn.Linear(self.encoder.out_dim, self.latent_dim), cfg.architecture
        )
        self.gru = nn.GRU(self.latent_dim, self.context_dim, batch_first=True)
        #: ``W_1 .. W_K`` stacked: rows ``(k - 1) * latent_dim .. k * latent_dim - 1`` are W_k.
        self.predictors = nn.Linear(
            self.context_dim, self.prediction_steps * self.latent_dim, bias=False
        )

    @property
    def context_dim(self) -> int:
        """Units of the GRU (the context ``c_t``)."""
        return self.cfg.context_dim

    @property
    def prediction_steps(self) -> int:
        """``K``, how many steps ahead each context predicts."""
        return self.cfg.prediction_steps

    @property
    def sequence_length(self) -> int:
        """``L``, frames per sequence that the pretraining loop draws."""
        return self.cfg.sequence_length

    @property
    def min_context(self) -> int:
        """Frames seen before the first context that predicts."""
        return self.cfg.min_context

    @property
    def min_sequence_length(self) -> int:
        """``min_context + prediction_steps``, the shortest ``L`` :meth:`loss` accepts."""
        return self.min_context + self.prediction_steps

    # --- codes ---------------------------------------------------------------------------------
    def _encode(self, obs: Tensor) -> Tensor:
        return self.to_latent(self.encoder(obs))

    def _check_seq(self, batch: Any) -> Tensor:
        """``batch["seq"]`` validated: ``(B, L, C, H, W)`` float32 in range, L long enough."""
        c, h, w = self.input_spec.shape
        need = (
            f"CPC trains on sequences: batch['seq'] of shape (B, L, C, H, W) = "
            f"(B, L, {c}, {h}, {w}) float32 in [0, 1], consecutive frames of one episode per "
            f"row, L >= min_context + prediction_steps = {self.min_sequence_length}"
        )
        if isinstance(batch, Tensor):
            raise ReprlError(f"{need}; got a bare tensor of shape {tuple(batch.shape)}")
        if not isinstance(batch, Mapping):
            raise ReprlError(f"{need}; got {type(batch).__name__}")
        if "seq" not in batch:
            obs = batch.get("obs")
            got = (
                f"single frames batch['obs'] of shape {tuple(obs.shape)}"
                if isinstance(obs, Tensor)
                else f"keys {sorted(batch)}"
            )
            raise ReprlError(
                f"{need}; got {got} (pretrain draws sequences for methods whose batch_kind "
                "is 'sequences')"
            )
        seq = batch["seq"]
        if not isinstance(seq, Tensor):
            raise ReprlError(f"{need}; got batch['seq'] of type {type(seq).__name__}")
        if seq.dim() != 5:
            raise ReprlError(f"{need}; got batch['seq'] of shape {tuple(seq.shape)}")
        if tuple(seq.shape[2:]) != (c, h, w):
            raise ReprlError(
                f"{need}; got frames (C, H, W) = {tuple(seq.shape[2:])} in batch['seq'] of shape "
                f"{tuple(seq.shape)}"
            )
        if seq.shape[1] < self.min_sequence_length:
            raise ReprlError(
                f"{need}; got L = {seq.shape[1]} in batch['seq'] of shape {tuple(seq.shape)}"
            )
        if seq.shape[0] < 1:
            raise ReprlError(f"{need}; got an empty batch of shape {tuple(seq.shape)}")
        try:
            self.input_spec.check(seq.flatten(0, 1))
        except ReprlError as e:
            raise ReprlError(f"batch['seq'] frames: {e}") from None
        return seq

    def _sequence_codes(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` ``(B, L, latent_dim)`` and ``c`` ``(B, L, context_dim)`` of validated input."""
        b, n = seq.shape[:2]
        z = self._encode(seq.flatten(0, 1)).view(b, n, self.latent_dim)
        c, _ = self.gru(z)
        return z, c

    def context(self, seq: Tensor) -> Tensor:
        """The GRU context ``c_t`` after each frame of sequences.

        Args:
            seq: ``(B, L, C, H, W)`` float32 in ``[0, 1]``, consecutive frames per row; any
                ``L >= 1``.

        Returns:
            ``(B, L, context_dim)`` float32: ``[:, t]`` has seen frames ``0 .. t``.

        Raises:
            ReprlError: If ``seq`` is not 5-D or its frames do not match :attr:`input_spec`.
        """
        if not isinstance(seq, Tensor) or seq.dim() != 5 or seq.shape[1] < 1:
            got = tuple(seq.shape) if isinstance(seq, Tensor) else type(seq).__name__
            raise ReprlError(
                f"context: expected sequences (B, L, {', '.join(map(str, self.input_spec.shape))})"
                f" float32 in [0, 1], got {got}"
            )
        try:
            self.input_spec.check(seq.flatten(0, 1))
        except ReprlError as e:
            raise ReprlError(f"context frames: {e}") from None
        return self._sequence_codes(seq)[1]

    # --- training ------------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """InfoNCE over all codes of the batch, averaged over prediction steps.

        Args:
            batch: ``"seq"``: ``(B, L, C, H, W)`` float32 in ``[0, 1]``, consecutive frames of
                one episode per row, ``L >= min_context + prediction_steps``.

        Returns:
            ``(total, logs)``: ``total`` is the mean over ``k = 1 .. K`` of the mean
            cross-entropy (nats) of picking ``z_{t+k}`` among all ``B * L`` codes; ``logs``
            holds ``"loss"``, ``"acc_k{k}"`` (top-1 accuracy of that pick, in ``[0, 1]``) for
            each ``k`` and ``"chance"`` (``1 / (B * L)``, the accuracy of a random pick).

        Raises:
            ReprlError: Single frames instead of sequences, sequences shorter than
                ``min_context + prediction_steps``, frames that do not match
                :attr:`input_spec`.
        """
        seq = self._check_seq(batch)
        z, c = self._sequence_codes(seq)
        b, n, d = z.shape
        preds = self.predictors(c).view(b, n, self.prediction_steps, d)
        candidates = z.reshape(b * n, d)
        first = self.min_context - 1  # 0-based time of the first context that predicts
        rows = torch.arange(b, device=z.device)[:, None] * n
        total = z.new_zeros(())
        accs: dict[str, float] = {}
        for k in range(1, self.prediction_steps + 1):
            p = preds[:, first : n - k, k - 1].reshape(-1, d)  # W_k c_t, (B * T_k, D)
            logits = p @ candidates.T  # (B * T_k, B * L)
            target = (rows + torch.arange(first + k, n, device=z.device)[None, :]).reshape(-1)
            total = total + F.cross_entropy(logits, target)
            accs[f"acc_k{k}"] = float((logits.detach().argmax(1) == target).float().mean())
        total = total / self.prediction_steps
        return total, {"loss": float(total.detach()), **accs, "chance": 1.0 / (b * n)}

    @classmethod
    def probe_settings(cls, ctx: ScoreContext) -> dict[str, Any]:
        """``{"prediction": {"frames", "collect"}}``: the fresh episodes' settings, or ``{}``
        when ``ctx.sequence_frames`` is 0."""
        if ctx.sequence_frames <= 0:
            return {}
        return {"prediction": {"frames": ctx.sequence_frames, "collect": ctx.collect_key}}

    def probe_scores(self, ctx: ScoreContext) -> dict[str, Any]:
        """``{"prediction": ...}``: :func:`representations.probing.fresh_prediction_scores`."""
        if ctx.sequence_frames <= 0:
            return {}
        return {"prediction": fresh_prediction_scores(self, ctx)}

    def example_batch(
        self, batch_size: int = 4, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Random sequences in the format :meth:`loss` expects.

        Args:
            batch_size: Number of sequences ``B``.
            generator: CPU generator; ``None`` uses the global RNG.

        Returns:
            ``{"seq": (B, sequence_length, C, H, W) float32 uniform in [0, 1]}``.
        """
        lo, hi = self.input_spec.value_range
        x = torch.rand(
            (batch_size, self.sequence_length, *self.input_spec.shape), generator=generator
        )
        return {"seq": (lo + (hi - lo) * x).to(self.input_spec.torch_dtype)}
