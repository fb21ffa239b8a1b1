"""The pretraining loop, generic over :meth:`Representation.loss`.

``pretrain(cfg)`` trains the registered method ``cfg.method`` on frames of an exploration
dataset and writes a run directory::

    <out>/stage.json           the stage's key (config + input hashes) and whether it finished
    <out>/config.yaml          the resolved config
    <out>/metrics.jsonl        one JSON line per logged step (loss terms, images/s)
    <out>/tb/                  TensorBoard events (same keys)
    <out>/state.safetensors    model + AdamW state + step, for resuming (no pickle)
    <out>/encoder.safetensors  the artefact: the trained encoder's checkpoint

Reuse is keyed on content (:mod:`envs.storage.artefacts`): the key is the config without its
paths, plus the sha256 of the dataset and of every checkpoint the model config names (the
``dae`` of a ``beta_vae_dae``, see :attr:`Representation.checkpoint_args`). A finished run with
the same key is reused; a dataset or DAE rewritten at the same path retrains. A killed run with
the same key resumes from its last ``state.safetensors`` and keeps one history: rows of
``metrics.jsonl`` and TensorBoard events logged after that state are dropped. Any other run in
``out`` is replaced. The config, the dataset (it opens, its frames fit the model) and the model
config are checked before anything is written, so a refused run leaves nothing behind. Every
file is written under a temporary name and renamed. A non-finite loss stops the run with an
error naming the step and the loss terms.

What a step feeds ``model.loss`` is drawn by the method's :attr:`Representation.batch_kind`, a
:class:`representations.batches.BatchKind`, which also checks the dataset before anything is
written: ``"frames"`` draws ``batch_size`` shuffled frames (``{"obs": (B, C, H, W)}``);
``"sequences"`` (CPC) random windows of ``model.sequence_length`` consecutive frames of one
episode (``{"seq": (B, L, C, H, W)}``); ``"factors"`` (the supervised baseline) frames with
their factor columns standardised and a mask of where each is defined (``{"obs", "targets":
(B, T), "mask": (B, T)}``, :func:`factor_targets`); ``"scenes"`` (GQN) scenes of a scene
dataset, all K views with their 7-d viewpoints (``{"views": (B, K, C, H, W), "viewpoints":
(B, K, 7)}``); ``"pairs"`` (ST-DIM, ATC) frame t and frame t + k of one episode, k the model's
``pair_offset`` (``{"obs", "next_obs": (B, C, H, W)}``). Images are float32 in ``[0, 1]`` on
``cfg.device``. After every optimiser step the loop calls :meth:`Representation.after_step`
(ATC's momentum target follows the online weights there).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from tqdm.auto import tqdm

from envs.devices import check_device
from envs.errors import ReprlError
from envs.storage.artefacts import STAGE_FILE, StageDir, stage_key
from envs.storage.dataset import FrameDataset
from envs.storage.files import atomic_write_bytes, atomic_write_text, json_plain
from representations.analysis import encode_dataset, subsample
from representations.base import Representation, check_frame_shape
from representations.batches import frames_to_input as frames_to_input
from representations.batches import sequences_to_input as sequences_to_input
from representations.blocks import MeanFrame
from representations.factors import FactorTargets as FactorTargets
from representations.factors import factor_targets as factor_targets
from representations.metrics.activity import collapse_warning, latent_activity
from representations.registry import available, check_config, make_representation

STATE_FORMAT = 2
"""Version of ``state.safetensors``'s metadata (2: keyed on the stage key)."""

ENCODER_FILE = "encoder.safetensors"
STATE_FILE = "state.safetensors"
METRICS_FILE = "metrics.jsonl"
TB_DIR = "tb"
CONFIG_FILE = "config.yaml"
_RUN_FILES = {ENCODER_FILE, STATE_FILE, METRICS_FILE, TB_DIR, CONFIG_FILE, STAGE_FILE}


@dataclass
class PretrainConfig:
    """How to pretrain one representation.

    Attributes:
        method: registry name (``beta_vae``, ``beta_vae_dae``, ``dae``, ...), checked against
            the registry.
        model: kwargs of the method's constructor (e.g. ``{"beta": 4, "latent_dim": 32}``;
            ``beta_vae_dae`` takes ``dae: PATH`` of a pretrained DAE checkpoint).
        dataset: path of the exploration dataset (``.h5``) to train on.
        out: run directory (created; a run of another config there is replaced).
        seed: seed of the weights' initialisation and the data order, >= 0.
        steps: optimiser steps, >= 0; 0 saves the freshly initialised model (seeded by
            ``seed``): the randomly initialised encoder every comparison needs as a baseline.
        batch_size: examples per step, >= 1: frames, at most the dataset's frames; for a
            method whose ``batch_kind`` is ``"sequences"`` (CPC), sequences of
            ``model.sequence_length`` frames (a step then sees ``batch_size * L`` frames), at
            most the dataset's sequence starts (windows of L consecutive frames of one episode);
            for a ``"scenes"`` method (GQN), scenes of K views, at most the dataset's scenes;
            for a ``"pairs"`` method (ST-DIM, ATC), pairs of frames ``model.offset`` steps
            apart, at most the dataset's pairs.
        lr: AdamW learning rate, > 0.
        weight_decay: AdamW weight decay, >= 0.
        grad_clip: max gradient norm, 0 to disable.
        log_every: steps between metric lines (metrics.jsonl, TensorBoard, progress bar), >= 1.
        checkpoint_every: steps between resumable state files, >= 1; at most ``steps // 2`` is
            used, so a short run killed half-way resumes too.
        device: torch device (``cpu``, ``cuda``, ``cuda:1``, ...).
        channels_last: run convolutions in channels-last memory format (faster on CPU);
            sequences ``(B, L, C, H, W)`` then have channels-last strides per frame, so their
            ``(B * L, C, H, W)`` view is channels-last.
        num_threads: torch intra-op threads, 0 for torch's default.
    """

    method: str = "beta_vae"
    model: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    out: str = "runs/pretrain/beta_vae__0"
    seed: int = 0
    steps: int = 3000
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    log_every: int = 50
    checkpoint_every: int = 500
    device: str = "cpu"
    channels_last: bool = True
    num_threads: int = 0

    def validate(self) -> None:
        """Checks every field, the device's name, and that the model builds.

        The model is built once, untrained on the CPU (milliseconds; a checkpoint named in
        ``model``, a beta-VAE_DAE's ``dae``, is read if it exists), so bad kwargs are refused
        before the dataset is opened or anything is written. Whether this machine has the
        device is checked by :func:`pretrain`, before it opens or writes anything (a shipped
        config may name ``cuda`` and still load on a CPU machine).

        Raises:
            ReprlError: naming the field, what it expects and what came.
        """
        if self.method not in available():
            raise ReprlError(f"method: expected one of {available()}, got {self.method!r}")
        self._check_numbers()
        if not isinstance(self.model, Mapping):
            raise ReprlError(f"model: expected a mapping of constructor kwargs, got {self.model!r}")
        try:
            check_config(self.method, self.model)
        except ReprlError as e:
            raise ReprlError(f"model: {e}") from None
        if not self.dataset:
            raise ReprlError("dataset: expected the path of an exploration dataset (.h5), got ''")
        if not self.out:
            raise ReprlError("out: expected the path of a run directory, got ''")
        for name in ("lr", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not np.isfinite(value):
                raise ReprlError(f"{name}: expected a finite number, got {value!r}")
        check_device(self.device, here=False)  # pretrain() checks this machine has it
        self._check_model_builds()

    def _check_numbers(self) -> None:
        """The integer fields' and the optimiser's bounds (the first checks of :meth:`validate`)."""
        for name in ("batch_size", "log_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ReprlError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("steps", "seed", "num_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ReprlError(f"{name}: expected an integer >= 0, got {value!r}")
        if not self.lr > 0:
            raise ReprlError(f"lr: expected > 0, got {self.lr}")
        for name in ("weight_decay", "grad_clip"):
            if not getattr(self, name) >= 0:
                raise ReprlError(f"{name}: expected >= 0, got {getattr(self, name)}")

    def _check_model_builds(self) -> None:
        """Builds the model once, untrained, on the CPU (the last check of :meth:`validate`).

        A checkpoint that does not exist yet (a DAE still to be trained) is refused where it is
        read; the model is built without it so that every other kwarg is checked now.
        """
        cls = check_config(self.method, self.model)
        model = {
            k: v
            for k, v in self.model.items()
            if not (
                k in cls.checkpoint_args
                and isinstance(v, (str, os.PathLike))
                and not Path(v).is_file()
            )
        }
        try:
            with torch.random.fork_rng(devices=[]):  # the caller's random state is kept
                make_representation(self.method, **model)
        except Exception as e:  # any failure here is a failure of this config
            why = " ".join(str(e).split()) or type(e).__name__
            raise ReprlError(
                f"model: {self.method} does not build with {dict(self.model)}: {why}"
            ) from None


def _resolved(cfg: PretrainConfig) -> dict[str, Any]:
    """The config, JSON-plain (as written to ``config.yaml`` and the encoder's provenance)."""
    return json_plain(dataclasses.asdict(cfg))


def _stage_key(cfg: PretrainConfig, cls: type[Representation]) -> dict[str, Any]:
    """The run's key: its config without paths, plus the content hashes of its input files.

    Checkpoint paths in ``cfg.model`` (``cls.checkpoint_args``) become inputs ``model.<arg>``.
    """
    plain = _resolved(cfg)
    inputs: dict[str, str] = {"dataset": cfg.dataset}
    for arg in cls.checkpoint_args:
        value = cfg.model.get(arg)
        if isinstance(value, (str, os.PathLike)):
            inputs[f"model.{arg}"] = os.fspath(value)
            plain["model"][arg] = "<input>"
    for path_field in ("dataset", "out"):
        del plain[path_field]
    return stage_key(plain, inputs)


def _save_state(
    path: Path,
    model: Representation,
    opt: torch.optim.Optimizer,
    step: int,
    epoch: int,
    key: dict[str, Any],
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    osd = opt.state_dict()
    for pid, st in osd["state"].items():
        for k, v in st.items():
            t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"opt.{pid}.{k}"] = t.detach().cpu().contiguous()
    meta = {
        "format": STATE_FORMAT,
        "step": step,
        "epoch": epoch,
        "key": key,
        "param_groups": osd["param_groups"],
    }
    atomic_write_bytes(path, st_save(tensors, metadata={"reprl_pretrain_state": json.dumps(meta)}))


def _state_meta(path: Path) -> dict[str, Any] | None:
    """The metadata of a state file, or None when absent or unreadable (then it restarts)."""
    try:
        with safe_open(str(path), "pt") as f:
            return json.loads(f.metadata()["reprl_pretrain_state"])
    except Exception:
        return None


def _load_state(
    path: Path, model: Representation, opt: torch.optim.Optimizer, key: dict[str, Any]
) -> tuple[int, int]:
    """Restores model and optimiser; returns ``(step, epoch)``, ``(0, 0)`` without a usable
    state of this key."""
    meta = _state_meta(path)
    if meta is None or meta.get("format") != STATE_FORMAT or meta.get("key") != key:
        return 0, 0
    tensors = st_load(path.read_bytes())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["step"]), int(meta["epoch"])


def _keep_history_until(out: Path, step: int) -> None:
    """One history after a resume at ``step``: drops later metric rows and TensorBoard events.

    Rows of ``metrics.jsonl`` with a larger step (and a half-written last line) are removed;
    TensorBoard events are purged by the writer (``purge_step``), or deleted at step 0.
    """
    log = out / METRICS_FILE
    if log.exists():
        rows = []
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
                rows.append(line + "\n")
        atomic_write_text(log, "".join(rows))
    if step == 0 and (out / TB_DIR).exists():
        shutil.rmtree(out / TB_DIR)
    elif (out / TB_DIR).exists():
        _wait_past_event_files(out / TB_DIR)


def _wait_past_event_files(tb_dir: Path) -> None:
    """Waits (under a second) until a new TensorBoard event file's name sorts after every file
    in ``tb_dir``.

    TensorBoard reads a run's files in name order, and a name starts with the writer's
    creation second (``events.out.tfevents.<second>.<host>.<pid>.<n>``): a writer opened in the
    same second as the killed attempt's may sort before it (``.10`` before ``.9``), and then its
    purge applies before the events it should drop, which reappear.
    """
    seconds = [
        int(part[3])
        for f in tb_dir.glob("events.out.tfevents.*")
        if len(part := f.name.split(".")) > 3 and part[3].isdigit()
    ]
    if seconds:
        wait = max(seconds) + 1 - time.time()
        if wait > 0:
            time.sleep(wait)


def _check_out(out: Path) -> None:
    """Refuses an ``out`` holding files that are not a pretraining run's (it would be emptied)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ReprlError(f"out: expected a run directory, got the file {out}")
    foreign = sorted(
        p.name for p in out.iterdir() if p.name not in _RUN_FILES and not p.name.endswith(".tmp")
    )
    if foreign:
        raise ReprlError(
            f"out: expected a new or pretraining run directory (it is replaced when the config "
            f"changes), got {out} holding {foreign[:5]}: choose another out"
        )


#: Frames (evenly spread over the dataset) whose mean image a ``mean_frame`` encoder subtracts.
MEAN_FRAME_FRAMES = 5000


def fit_mean_frames(
    model: Representation, ds: FrameDataset, max_frames: int = MEAN_FRAME_FRAMES
) -> int:
    """Sets every :class:`~representations.blocks.MeanFrame` of ``model`` (the ``mean_frame``
    option of its encoders, a momentum copy's included) to the mean image of the dataset.

    A representation held inside ``model`` (beta-VAE_DAE's frozen DAE) keeps its own mean
    frame: it was fitted to the data that model was trained on.

    Args:
        model: The representation, before its first optimiser step.
        ds: Its pretraining data.
        max_frames: At most this many frames, evenly spread (>= 1).

    Returns:
        The frames averaged; 0 (and nothing read) for a model without a mean frame.
    """
    nested = {
        id(m)
        for sub in model.modules()
        if isinstance(sub, Representation) and sub is not model
        for m in sub.modules()
    }
    centers = [m for m in model.modules() if isinstance(m, MeanFrame) and id(m) not in nested]
    if not centers:
        return 0
    index = subsample(ds, max_frames)
    total: torch.Tensor | None = None
    with torch.no_grad():
        for lo in range(0, len(index), 256):
            x = model.to_model_input(torch.from_numpy(ds.frames(index[lo : lo + 256])))
            part = x.sum(dim=0, dtype=torch.float64)
            total = part if total is None else total + part
    assert total is not None  # a dataset has at least one frame
    mean = (total / len(index)).to(torch.float32).cpu()
    for center in centers:
        center.fit(mean.to(center.mean.device))
    return len(index)


class CollapseWarning(UserWarning):
    """A pretrained encoder none of whose latents varies over its dataset (see
    :mod:`representations.metrics.activity`)."""


ACTIVITY_FRAMES = 2000
"""Frames (spread over the dataset) on which a finished encoder's latent activity is measured."""


def pretrain(cfg: PretrainConfig, *, progress: bool = True) -> Path:
    """Trains ``cfg.method`` on ``cfg.dataset``; returns the encoder checkpoint's path.

    The checkpoint's provenance records the dataset, the config and ``latent_activity``: how
    many latents vary over :data:`ACTIVITY_FRAMES` frames of the dataset (active units, Burda
    et al. 2016); a variational encoder with none issues a :class:`CollapseWarning`.

    Args:
        cfg: the run's config.
        progress: show a progress bar over the steps.

    Returns:
        ``<cfg.out>/encoder.safetensors``.

    Raises:
        ReprlError: an invalid config or model config, a dataset that is missing, unreadable,
            smaller than a batch (of frames, or of sequence starts for a sequence method), with
            no episode segment of ``model.sequence_length`` frames (sequence methods) or whose
            frames do not fit the model, a missing checkpoint named in the model config, an
            ``out`` holding other files. Nothing is written then.
        FloatingPointError: the loss became NaN or infinite.
    """
    cfg.validate()
    check_device(cfg.device)
    cls = check_config(cfg.method, cfg.model)
    out = Path(cfg.out)
    final = out / ENCODER_FILE
    ds = FrameDataset(cfg.dataset)
    try:
        kind = cls.batch_kind
        model_cfg = kind.model_config(ds, cfg, cls)
        torch.manual_seed(cfg.seed)
        model = make_representation(cfg.method, **model_cfg)
        check_frame_shape(model.input_spec, ds.info.frame_shape, f"dataset {cfg.dataset}")
        kind.check_data(ds, cfg, model)
        _check_out(out)
        key = _stage_key(cfg, cls)
        stage = StageDir(out, key, artefacts=[ENCODER_FILE])
        if stage.done():
            return final
        resuming = stage.begin()
        fit_mean_frames(model, ds)  # before step 0; a resumed state holds the same mean
        _train(cfg, model, ds, out, key, resuming, progress)
        with torch.no_grad():
            draws = model.batch_kind.batches(model, ds, cfg, 0, torch.device(cfg.device))
            model.after_training(batch for _, batch, _ in draws)
        latents = encode_dataset(model, ds, subsample(ds, ACTIVITY_FRAMES))
        activity = latent_activity(latents, variational=model.variational)
    finally:
        ds.close()
    dataset = {"path": str(Path(cfg.dataset).resolve()), "sha256": key["inputs"]["dataset"]}
    provenance = {
        "dataset": dataset,
        "inputs": key["inputs"],
        "pretrain": _resolved(cfg),
        "latent_activity": activity,
    }
    model.save(final, provenance=provenance)
    (out / STATE_FILE).unlink(missing_ok=True)
    stage.finish()
    message = collapse_warning(activity, f"{cfg.method} at {final}")
    if message is not None and cfg.steps > 0:  # an untrained baseline has not collapsed
        warnings.warn(message, CollapseWarning, stacklevel=2)
    return final


def _train(
    cfg: PretrainConfig,
    model: Representation,
    ds: FrameDataset,
    out: Path,
    key: dict[str, Any],
    resuming: bool,
    progress: bool,
) -> None:
    """The optimisation loop; leaves ``model`` trained, in eval mode."""
    atomic_write_text(out / CONFIG_FILE, yaml.safe_dump(_resolved(cfg), sort_keys=False))
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = torch.device(cfg.device)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    state_file = out / STATE_FILE
    step, epoch = _load_state(state_file, model, opt, key) if resuming else (0, 0)
    if step:
        epoch += 1  # a fresh data order after a resume
    _keep_history_until(out, step)
    checkpoint_every = min(cfg.checkpoint_every, max(1, cfg.steps // 2))
    from torch.utils.tensorboard import SummaryWriter

    # purge_step: TensorBoard drops events of an earlier attempt from this step on
    tb = SummaryWriter(str(out / TB_DIR), purge_step=step + 1 if step else None)
    log = (out / METRICS_FILE).open("a")
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"pretrain {cfg.method}", disable=not progress)
    batches = model.batch_kind.batches(model, ds, cfg, epoch, device)
    t_last, n_last = time.perf_counter(), 0
    try:
        while step < cfg.steps:
            epoch, batch, seen = next(batches)
            loss, terms = model.loss(batch)
            loss_value = loss.item()
            if not np.isfinite(loss_value):
                raise FloatingPointError(
                    f"non-finite loss {loss_value} at step {step} ({terms}); the last good "
                    f"state is {state_file if state_file.exists() else 'none'}: lower lr "
                    f"(now {cfg.lr}) or set grad_clip"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            model.after_step()
            step += 1
            n_last += seen
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                row = {"step": step, "epoch": epoch}
                row.update({f"loss/{k}": float(v) for k, v in terms.items()})
                row["perf/images_per_s"] = n_last / (now - t_last)
                t_last, n_last = now, 0
                for k, v in row.items():
                    if k not in ("step", "epoch"):
                        tb.add_scalar(k, v, step)
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{loss_value:.4g}", ips=f"{row['perf/images_per_s']:.0f}")
            if step % checkpoint_every == 0 and step < cfg.steps:
                _save_state(state_file, model, opt, step, epoch, key)
    finally:
        bar.close()
        tb.close()
        log.close()
    model.eval()
