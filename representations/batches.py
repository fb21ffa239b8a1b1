"""What a method trains on: one :class:`BatchKind` object per kind of batch.

A method declares its kind as the class attribute ``batch_kind`` (:class:`Representation`); the
kind knows what its batches need of the data and how to draw them, so the pretraining loop and
the experiment's validation ask it instead of comparing names:

- :data:`FRAMES` (the default): ``{"obs": (B, C, H, W)}`` shuffled single frames;
- :data:`FACTORS` (the supervised baseline): frames with their factor columns standardised and
  a mask of where each is defined, ``{"obs", "targets": (B, T), "mask": (B, T)}``
  (:func:`representations.factors.factor_targets`);
- :data:`SEQUENCES` (CPC): ``{"seq": (B, L, C, H, W)}`` random windows of ``L`` consecutive
  frames of one episode, ``L`` the model's int attribute ``sequence_length``;
- :data:`PAIRS` (ST-DIM, ATC): ``{"obs", "next_obs": (B, C, H, W)}`` frame t and frame t + k
  of one episode, k the model's int attribute ``pair_offset``, every pair start once an epoch;
- :data:`SCENES` (GQN): ``{"views": (B, K, C, H, W), "viewpoints": (B, K, 7)}`` all K views of
  a scene with their cameras; the class may set an int ``views_per_scene_min`` (default 2).

Images are float32 in ``[0, 1]``. A kind compares equal to its old name (``SEQUENCES ==
"sequences"``) and ``str(kind)`` is that name, so code that read the string keeps working.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch

from envs.errors import ReprlError
from envs.storage.dataset import FrameDataset
from representations.factors import factor_targets

if TYPE_CHECKING:
    from representations.base import Representation

Batch = dict[str, torch.Tensor]
"""One batch for ``model.loss``."""

Batches = Iterator[tuple[int, Batch, int]]
"""``(epoch, batch, frames in the batch)``, epoch after epoch, without end."""

Draw = Callable[[int], Iterator[tuple[Batch, int]]]
"""One epoch of a kind's batches, as a function of the epoch's seed: ``(batch, frames)``."""

_EPOCH_SEED = 100_003
"""The data order of epoch ``e`` of a run of seed ``s`` is seeded with ``s * 100_003 + e``."""


class DrawConfig(Protocol):
    """What drawing batches reads of a pretraining config (:class:`PretrainConfig` has it)."""

    method: str
    model: dict[str, Any]
    dataset: str
    batch_size: int
    seed: int
    channels_last: bool


def frames_to_input(frames: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    """(B, H, W, C) uint8 -> (B, C, H, W) float32 in [0, 1] on ``device``.

    The permuted view of channels-last frames already has channels-last strides, so no copy is
    made before the float conversion.
    """
    x = torch.from_numpy(frames).to(device, non_blocking=True).permute(0, 3, 1, 2)
    x = x.float().div_(255.0)
    return x.contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


def sequences_to_input(
    frames: np.ndarray, device: torch.device, channels_last: bool
) -> torch.Tensor:
    """(B, L, H, W, C) uint8 -> (B, L, C, H, W) float32 in [0, 1] on ``device``.

    With ``channels_last`` the result keeps the frames' channels-last strides (the permuted
    view, converted without a layout copy), so the ``(B * L, C, H, W)`` view a model takes of it
    with ``flatten(0, 1)`` is a channels-last tensor; otherwise it is contiguous.
    """
    x = torch.from_numpy(frames).to(device, non_blocking=True).permute(0, 1, 4, 2, 3)
    x = x.float().div_(255.0)
    return x if channels_last else x.contiguous()


def longest_segment(ds: FrameDataset) -> int:
    """Length of the longest run of consecutive steps of one episode in the file."""
    if len(ds) == 0:
        return 0
    e, s = ds.episode, ds.step
    breaks = np.flatnonzero((e[1:] != e[:-1]) | (s[1:] - s[:-1] != 1)) + 1
    bounds = np.concatenate([[0], breaks, [len(ds)]])
    return int(np.diff(bounds).max())


class BatchKind(ABC):
    """What a method's ``loss`` trains on, and how the data for it is checked and drawn.

    Attributes:
        name: The kind's name (``"frames"``, ...), what ``batch_kind`` was as a string.
        int_attribute: The int attribute a model of this kind must have (``sequence_length``,
            ``pair_offset``), or None.
    """

    name: ClassVar[str] = "frames"
    int_attribute: ClassVar[str | None] = None

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<batch kind {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BatchKind):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def model_int(self, model: Representation) -> int:
        """The model's :attr:`int_attribute` (the ``L`` or ``k`` its batches are drawn with).

        Raises:
            TypeError: The model has no such int attribute.
        """
        assert self.int_attribute is not None, f"batch kind {self.name!r} needs no attribute"
        value = getattr(model, self.int_attribute, None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"{type(model).__name__} has batch_kind {self.name!r} but no int attribute "
                f"{self.int_attribute} (got {value!r})"
            )
        return value

    def collect_problem(self, cls: type[Representation], views_per_scene: int) -> str | None:
        """Why a collect stage cannot give data ``cls`` learns from, or None if it can.

        Args:
            cls: The method's class (its ``name`` starts the message).
            views_per_scene: The collect's ``views_per_scene``: 0 (trajectories of episodes)
                or K >= 2 (scenes of K views from random cameras).

        Returns:
            A sentence naming what the method needs and what the collect gives, or None.
        """
        return None

    def model_config(
        self, ds: FrameDataset, cfg: DrawConfig, cls: type[Representation]
    ) -> dict[str, Any]:
        """Checks what the dataset must hold before the model is built; the config to build.

        Args:
            ds: The open pretraining dataset.
            cfg: The run's config: ``model`` (the constructor kwargs as configured),
                ``batch_size`` and names for messages.
            cls: The method's class.

        Returns:
            The kwargs to build the model with (the factors kind fills in its ``targets``).

        Raises:
            ReprlError: Naming what the method needs and what the dataset has.
        """
        return dict(cfg.model)

    def check_data(self, ds: FrameDataset, cfg: DrawConfig, model: Representation) -> None:
        """Checks, once the model is built, that the dataset holds a batch of its kind (the
        frame kinds need nothing beyond :meth:`model_config`'s check).

        Raises:
            ReprlError: Naming what the model needs and what the dataset has.
        """
        return None

    def batches(
        self,
        model: Representation,
        ds: FrameDataset,
        cfg: DrawConfig,
        epoch: int,
        device: torch.device,
    ) -> Batches:
        """Batches for ``model.loss`` from epoch ``epoch`` on, on ``device`` (module doc):
        epoch after epoch of :meth:`drawer`'s batches, each epoch's order seeded by
        ``cfg.seed`` and the epoch.

        Args:
            model: The model being trained (its int attribute, its targets).
            ds: The open dataset, checked by :meth:`model_config` and :meth:`check_data`.
            cfg: ``batch_size``, ``seed`` (with the epoch, the data order) and
                ``channels_last``.
            epoch: The first epoch.
            device: Where the tensors go.

        Yields:
            ``(epoch, batch, frames)``: ``frames`` counts the images in ``batch``.
        """
        draw = self.drawer(model, ds, cfg, device)
        while True:
            for batch, frames in draw(cfg.seed * _EPOCH_SEED + epoch):
                yield epoch, batch, frames
            epoch += 1

    @abstractmethod
    def drawer(
        self, model: Representation, ds: FrameDataset, cfg: DrawConfig, device: torch.device
    ) -> Draw:
        """What the kind draws in one epoch: a function of the epoch's seed giving
        ``(batch, frames in it)`` pairs; what is worked out once per run (the model's int
        attribute, the factor columns) is worked out here, before it."""


class FrameBatches(BatchKind):
    """Shuffled single frames, ``{"obs": (B, C, H, W)}``."""

    name = "frames"

    def model_config(
        self, ds: FrameDataset, cfg: DrawConfig, cls: type[Representation]
    ) -> dict[str, Any]:
        """Refuses a dataset with fewer frames than a batch."""
        if len(ds) < cfg.batch_size:
            raise ReprlError(
                f"batch_size: expected at most the {len(ds)} frames of dataset {cfg.dataset}, "
                f"got {cfg.batch_size}"
            )
        return dict(cfg.model)

    def drawer(
        self, model: Representation, ds: FrameDataset, cfg: DrawConfig, device: torch.device
    ) -> Draw:
        def draw(seed: int) -> Iterator[tuple[Batch, int]]:
            for b in ds.iter_batches(cfg.batch_size, seed=seed):
                yield {"obs": frames_to_input(b, device, cfg.channels_last)}, len(b)

        return draw


class FactorBatches(FrameBatches):
    """Frames with their standardised factor columns, ``{"obs", "targets", "mask"}``, and the
    columns as recorded, ``"labels"`` (int64 class ids), for a model whose ``objective`` is
    ``"classification"``; the model has a list attribute ``targets`` (its columns)."""

    name = "factors"

    def model_config(
        self, ds: FrameDataset, cfg: DrawConfig, cls: type[Representation]
    ) -> dict[str, Any]:
        """The frames' check, then ``targets``: the usable columns chosen.

        Raises:
            ReprlError: Too few frames, no factors, or a requested column that is not usable.
        """
        out = super().model_config(ds, cfg, cls)
        out["targets"] = factor_targets(ds, out.get("targets")).columns
        return out

    def drawer(
        self, model: Representation, ds: FrameDataset, cfg: DrawConfig, device: torch.device
    ) -> Draw:
        targets = factor_targets(ds, model.targets)  # type: ignore[attr-defined]
        labels = None
        if getattr(model, "objective", "regression") == "classification":
            labels = np.rint(targets.raw).astype(np.int64)

        def draw(seed: int) -> Iterator[tuple[Batch, int]]:
            for frames, index in ds.iter_batches(cfg.batch_size, seed=seed, return_index=True):
                batch = {
                    "obs": frames_to_input(frames, device, cfg.channels_last),
                    "targets": torch.from_numpy(targets.values[index]).to(device),
                    "mask": torch.from_numpy(targets.mask[index]).to(device),
                }
                if labels is not None:
                    batch["labels"] = torch.from_numpy(labels[index]).to(device)
                yield batch, len(frames)

        return draw


def _episodes_problem(cls: type[Representation], views_per_scene: int) -> str | None:
    """The collect check of the kinds that train on consecutive frames of episodes."""
    if not views_per_scene:
        return None
    return (
        f"{cls.name} trains on consecutive frames of episodes; expected "
        f"collect.views_per_scene 0 (trajectories), got {views_per_scene} (scenes of views from "
        "random cameras have no episodes)"
    )


class SequenceBatches(BatchKind):
    """Windows of ``model.sequence_length`` consecutive frames of one episode, ``{"seq"}``."""

    name = "sequences"
    int_attribute = "sequence_length"

    def collect_problem(self, cls: type[Representation], views_per_scene: int) -> str | None:
        return _episodes_problem(cls, views_per_scene)

    def check_data(self, ds: FrameDataset, cfg: DrawConfig, model: Representation) -> None:
        """Refuses a dataset without ``batch_size`` windows of ``L`` frames of one episode."""
        length = self.model_int(model)
        starts = len(ds.sequence_starts(length)) if 1 <= length <= len(ds) else 0
        if starts == 0:
            raise ReprlError(
                f"dataset {cfg.dataset} has no episode segment of {length} consecutive frames "
                f"(the sequence_length of {cfg.method}; its longest segment has "
                f"{longest_segment(ds)} frames): lower model.sequence_length or collect longer "
                "episodes"
            )
        if cfg.batch_size > starts:
            raise ReprlError(
                f"batch_size: expected at most the {starts} sequence starts of {length} frames "
                f"in dataset {cfg.dataset} ({cfg.method} trains on sequences), got "
                f"{cfg.batch_size}"
            )

    def drawer(
        self, model: Representation, ds: FrameDataset, cfg: DrawConfig, device: torch.device
    ) -> Draw:
        """An epoch draws about as many sequences as the dataset has sequence starts (random
        windows, with replacement across batches)."""
        length = self.model_int(model)
        per_epoch = max(1, len(ds.sequence_starts(length)) // cfg.batch_size)

        def draw(seed: int) -> Iterator[tuple[Batch, int]]:
            for b in ds.iter_sequences(cfg.batch_size, length, num_batches=per_epoch, seed=seed):
                frames = b["frames"]
                seq = sequences_to_input(frames, device, cfg.channels_last)
                yield {"seq": seq}, frames.shape[0] * frames.shape[1]

        return draw


class PairBatches(BatchKind):
    """Frame t and frame t + ``model.pair_offset`` of one episode, ``{"obs", "next_obs"}``."""

    name = "pairs"
    int_attribute = "pair_offset"

    def collect_problem(self, cls: type[Representation], views_per_scene: int) -> str | None:
        return _episodes_problem(cls, views_per_scene)

    def check_data(self, ds: FrameDataset, cfg: DrawConfig, model: Representation) -> None:
        """Refuses a dataset without ``batch_size`` pairs of frames ``k`` steps apart in one
        episode (a scene dataset has no episodes: its views are of random cameras)."""
        offset = self.model_int(model)
        need = (
            f"{cfg.method} trains on pairs of frames {offset} step(s) apart in one episode "
            f"(model.offset {offset})"
        )
        if ds.views_per_scene is not None:
            raise ReprlError(
                f"dataset {cfg.dataset} holds scenes of {ds.views_per_scene} views from random "
                f"cameras, not episodes; {need}: collect trajectories (views_per_scene 0)"
            )
        pairs = len(ds.sequence_starts(offset + 1)) if offset < len(ds) else 0
        if pairs == 0:
            raise ReprlError(
                f"dataset {cfg.dataset} has no episode segment of {offset + 1} consecutive "
                f"frames (its longest has {longest_segment(ds)}); {need}: lower model.offset or "
                "collect longer episodes"
            )
        if cfg.batch_size > pairs:
            raise ReprlError(
                f"batch_size: expected at most the {pairs} pairs of dataset {cfg.dataset} "
                f"({need}), got {cfg.batch_size}"
            )

    def drawer(
        self, model: Representation, ds: FrameDataset, cfg: DrawConfig, device: torch.device
    ) -> Draw:
        offset = self.model_int(model)

        def draw(seed: int) -> Iterator[tuple[Batch, int]]:
            for b in ds.iter_pairs(cfg.batch_size, offset, seed=seed):
                obs = frames_to_input(b["obs"], device, cfg.channels_last)
                nxt = frames_to_input(b["next_obs"], device, cfg.channels_last)
                yield {"obs": obs, "next_obs": nxt}, 2 * len(obs)

        return draw


def views_needed(cls: type[Representation]) -> int:
    """The fewest views per scene a scenes method trains on (``views_per_scene_min``, 2)."""
    return int(getattr(cls, "views_per_scene_min", 2))


class SceneBatches(BatchKind):
    """All K views of a scene with their viewpoints, ``{"views", "viewpoints"}``."""

    name = "scenes"

    def collect_problem(self, cls: type[Representation], views_per_scene: int) -> str | None:
        need = views_needed(cls)
        if views_per_scene >= need:
            return None
        return (
            f"{cls.name} trains on scenes of at least {need} views; expected "
            f"collect.views_per_scene >= {need}, got {views_per_scene}"
        )

    def model_config(
        self, ds: FrameDataset, cfg: DrawConfig, cls: type[Representation]
    ) -> dict[str, Any]:
        """Refuses a dataset without ``batch_size`` scenes of enough views.

        Raises:
            ReprlError: Trajectories, too few views per scene, or fewer scenes than a batch.
        """
        k = ds.views_per_scene
        need = views_needed(cls)
        if k is None:
            raise ReprlError(
                f"dataset {cfg.dataset} holds trajectories; {cfg.method} trains on scenes of at "
                f"least {need} views with their viewpoints: collect a scene dataset (`reprl "
                f"collect` with views_per_scene >= {need}, envs.scenes.collect_scenes)"
            )
        if k < need:
            raise ReprlError(
                f"dataset {cfg.dataset} has {k} views per scene; {cfg.method} needs at least {need}"
            )
        if not 1 <= cfg.batch_size <= ds.num_scenes:
            raise ReprlError(
                f"batch_size: expected at most the {ds.num_scenes} scenes of dataset "
                f"{cfg.dataset} ({cfg.method} trains on scenes), got {cfg.batch_size}"
            )
        return dict(cfg.model)

    def drawer(
        self, model: Representation, ds: FrameDataset, cfg: DrawConfig, device: torch.device
    ) -> Draw:
        def draw(seed: int) -> Iterator[tuple[Batch, int]]:
            for b in ds.iter_scenes(cfg.batch_size, seed=seed):
                views = sequences_to_input(b["views"], device, cfg.channels_last)
                cams = torch.from_numpy(b["viewpoints"]).to(device)
                yield {"views": views, "viewpoints": cams}, views.shape[0] * views.shape[1]

        return draw


FRAMES = FrameBatches()
FACTORS = FactorBatches()
SEQUENCES = SequenceBatches()
PAIRS = PairBatches()
SCENES = SceneBatches()
KINDS: dict[str, BatchKind] = {k.name: k for k in (FRAMES, FACTORS, SEQUENCES, PAIRS, SCENES)}
"""Every batch kind by name."""
