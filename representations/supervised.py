"""The supervised upper bound: the beta-VAE's encoder trained end to end to predict the factors.

Every comparison of unsupervised encoders needs two references: a randomly initialised encoder
of the same shape (any method pretrained for ``steps: 0``) and this one, which sees the ground
truth (AtariARI's "supervised" row, Anand et al. 2019). Its code is what a linear probe can
read at best from this architecture on this data.

The pretraining loop feeds it ``batch_kind = "factors"`` batches: frames with the dataset's
factor columns, standardised over the dataset, and a mask of where each is defined (a second
ball exists only in juggling, say). With ``objective: regression`` (the default) the loss is the
masked mean squared error of a linear read-out of the code, so the code is trained to carry
every factor linearly. With ``objective: classification`` every column is a class id (a RAM
byte's value, ``num_classes`` = 256) and the loss is the masked mean cross-entropy of one
linear ``num_classes``-way head per column: AtariARI's supervised encoder, trained end to end
with the probe's own kind of classifier on its labels (there on the probe's training
episodes, here on the collect data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.batches import FACTORS
from representations.blocks import (
    ConvEncoder,
    architecture_field,
    check_mean_frame,
    init_for_architecture_,
    mean_frame_field,
    resolve_architecture,
)
from representations.config import OMIT_DEFAULT, MethodConfig, configured
from representations.registry import register

OBJECTIVES = ("regression", "classification")
"""What the read-out learns: every column by regression, or every column as classes."""

DEFAULT_TARGETS = ("paddle_x", "ball_x[0]", "ball_y[0]", "ball_vx[0]", "ball_vy[0]", "bricks_left")
"""Breakout's factor columns, the targets of a model built without a dataset (the pretraining
loop replaces them by the dataset's own columns when the config names none)."""


@dataclass(frozen=True)
class SupervisedConfig(MethodConfig):
    """The configuration of a :class:`SupervisedEncoder` (its constructor's arguments).

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 or 3. Default 64x64 RGB.
        latent_dim: Size of the code (default 32, the beta-VAE's).
        targets: Names of the factor columns it predicts (``"ball_x[0]"`` for a per-ball
            column), at least one; default :data:`DEFAULT_TARGETS`.
        channels: Encoder convolution channels (``None``: the architecture's).
        hidden_dim: Units of the FC layer, 0 for none (``None``: the architecture's).
        architecture: The conv stack (:data:`representations.blocks.ARCHITECTURES`):
            ``"darla"`` (default) or ``"atariari"`` (AtariARI's encoder on 210 x 160 frames).
        mean_frame: Centre the encoder's input on the pretraining frames' mean frame
            (:class:`representations.blocks.MeanFrame`; for Atari's constant backgrounds);
            default ``False``.
        objective: ``"regression"`` (default: MSE on standardised columns) or
            ``"classification"`` (cross-entropy of a ``num_classes``-way head per column).
        num_classes: Classes of each column with ``classification`` (>= 2; default 256, a
            byte); its labels must be integers in ``[0, num_classes)``.
    """

    input_shape: Sequence[int] = (3, 64, 64)
    latent_dim: int = 32
    targets: Sequence[str] | None = None
    channels: Sequence[int] | None = None
    hidden_dim: int | None = None
    architecture: str = architecture_field()
    mean_frame: bool = mean_frame_field()
    objective: str = field(default="regression", metadata={OMIT_DEFAULT: True})
    num_classes: int = field(default=256, metadata={OMIT_DEFAULT: True})

    def __post_init__(self) -> None:
        targets = list(DEFAULT_TARGETS if self.targets is None else self.targets)
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ReprlError(f"targets: expected a non-empty list of factor names, got {targets!r}")
        self._set("targets", tuple(targets))
        shape = InputSpec.for_shape(self.input_shape).shape
        channels, hidden_dim = resolve_architecture(
            self.architecture, self.channels, self.hidden_dim, shape
        )
        self._set("input_shape", shape)
        self._set("latent_dim", int(self.latent_dim))
        self._set("channels", channels)
        self._set("hidden_dim", hidden_dim)
        self._set("mean_frame", check_mean_frame(self.mean_frame))
        if self.objective not in OBJECTIVES:
            raise ReprlError(
                f"objective: expected one of {list(OBJECTIVES)}, got {self.objective!r}"
            )
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ReprlError(f"num_classes: expected an integer >= 2, got {self.num_classes!r}")
        if self.num_classes < 2:
            raise ReprlError(f"num_classes: expected an integer >= 2, got {self.num_classes}")


@register
class SupervisedEncoder(Representation):
    """The beta-VAE's convolutional encoder with a linear read-out, trained on the factors.

    Encoder: :class:`~representations.blocks.ConvEncoder` (4 convs 4x4 stride 2, FC
    ``hidden_dim``) and a linear layer to the ``latent_dim`` code, as the beta-VAE's mean head;
    the read-out is one linear layer from the code to the targets.

    Args:
        The fields of :class:`SupervisedConfig` (positional in its order, or by keyword),
        kept checked in :attr:`cfg` and written to checkpoints as :attr:`config`.
    """

    name = "supervised"
    batch_kind = FACTORS

    @configured(SupervisedConfig)
    def __init__(self, cfg: SupervisedConfig) -> None:
        spec = InputSpec.for_shape(cfg.input_shape)
        super().__init__(input_spec=spec, latent_dim=cfg.latent_dim, config=cfg.to_dict())
        self.cfg = cfg
        self.encoder = ConvEncoder(
            spec.shape, cfg.channels, cfg.hidden_dim, cfg.architecture, cfg.mean_frame
        )
        # the code layer is the last of AtariARI's encoder: initialised with it
        self.code = init_for_architecture_(
            nn.Linear(self.encoder.out_dim, self.latent_dim), cfg.architecture
        )
        width = len(cfg.targets) * (cfg.num_classes if self.objective == "classification" else 1)
        self.readout = nn.Linear(self.latent_dim, width)

    @property
    def objective(self) -> str:
        """``"regression"`` or ``"classification"`` (:class:`SupervisedConfig`)."""
        return self.cfg.objective

    @property
    def targets(self) -> list[str]:
        """The factor columns it predicts, in the read-out's order."""
        return list(self.cfg.targets)

    def _encode(self, obs: Tensor) -> Tensor:
        return self.code(self.encoder(obs))

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Masked mean squared error of the read-out.

        Args:
            batch: ``"obs"`` ``(B, C, H, W)`` float32 in [0, 1]; ``"targets"`` ``(B, T)`` float32,
                the :attr:`targets` columns standardised; ``"mask"`` ``(B, T)`` bool, where each
                is defined.

        Returns:
            ``(loss, {"loss", "mse"})``; the loss averages over defined entries only.

        Raises:
            ReprlError: A batch without ``targets``/``mask`` or with the wrong width.
        """
        missing = [k for k in ("obs", "targets", "mask") if k not in batch]
        if missing:
            raise ReprlError(
                f"supervised trains on frames with their factors: expected batch keys 'obs', "
                f"'targets' (B, {len(self.targets)}) and 'mask', missing {missing}"
            )
        y, mask = batch["targets"], batch["mask"]
        if y.shape[-1] != len(self.targets) or mask.shape != y.shape:
            raise ReprlError(
                f"targets: expected (B, {len(self.targets)}) values and mask for "
                f"{self.targets}, got {tuple(y.shape)} and {tuple(mask.shape)}"
            )
        pred = self.readout(self.encode(batch["obs"]))
        if self.objective == "classification":
            return self._classification_loss(pred, batch, mask)
        m = mask.to(pred.dtype)
        mse = ((pred - y) ** 2 * m).sum() / m.sum().clamp(min=1.0)
        value = float(mse.detach())
        return mse, {"loss": value, "mse": value}

    def _classification_loss(
        self, pred: Tensor, batch: dict[str, Tensor], mask: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Masked mean cross-entropy of the per-column heads, and their accuracy."""
        k = self.cfg.num_classes
        if "labels" not in batch:
            raise ReprlError(
                "supervised with objective classification: expected batch key 'labels' (B, "
                f"{len(self.targets)}) int64 class ids, got keys {sorted(batch)}"
            )
        labels = batch["labels"]
        bad = mask & ((labels < 0) | (labels >= k))
        if bool(bad.any()):
            col = self.targets[int(bad.any(0).nonzero()[0])]
            raise ReprlError(
                f"labels of {col!r}: expected class ids in [0, {k}) (num_classes), got "
                f"{sorted(set(labels[bad].tolist()))[:5]}"
            )
        logits = pred.view(len(pred), len(self.targets), k)
        ce = nn.functional.cross_entropy(
            logits.flatten(0, 1), labels.clamp(0, k - 1).flatten(), reduction="none"
        ).view_as(labels)
        m = mask.to(ce.dtype)
        loss = (ce * m).sum() / m.sum().clamp(min=1.0)
        hit = (logits.argmax(-1) == labels).to(ce.dtype)
        acc = float(((hit * m).sum() / m.sum().clamp(min=1.0)).detach())
        value = float(loss.detach())
        return loss, {"loss": value, "ce": value, "accuracy": acc}

    def example_batch(
        self, batch_size: int = 4, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Random frames, standard-normal targets and a full mask."""
        batch = super().example_batch(batch_size, generator)
        batch["targets"] = torch.randn((batch_size, len(self.targets)), generator=generator)
        batch["mask"] = torch.ones(batch_size, len(self.targets), dtype=torch.bool)
        if self.objective == "classification":
            shape = (batch_size, len(self.targets))
            batch["labels"] = torch.randint(0, self.cfg.num_classes, shape, generator=generator)
        return batch
