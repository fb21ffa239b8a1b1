"""The pretraining loop, generic over :meth:`Representation.loss`.

``pretrain(cfg)`` trains the registered method ``cfg.method`` on frames of an exploration
dataset and writes a run directory::

    <out>/config.yaml          the resolved config
    <out>/metrics.jsonl        one JSON line per logged step (loss terms, images/s)
    <out>/tb/                  TensorBoard events (same keys)
    <out>/state.safetensors    model + AdamW state + step, for resuming (no pickle)
    <out>/encoder.safetensors  the artefact: the trained encoder's checkpoint

A finished run (``encoder.safetensors`` present, same config) is reused, a killed one resumes
from its last ``state.safetensors``; every file is written under a temporary name and renamed.
A non-finite loss stops the run with an error naming the step and the loss terms.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from tqdm.auto import tqdm

from envs.storage.dataset import FrameDataset
from envs.storage.files import atomic_write_bytes
from representations.base import Representation
from representations.checkpoint import file_provenance
from representations.registry import available, make_representation

STATE_FORMAT = 1


@dataclass
class PretrainConfig:
    """How to pretrain one representation.

    Attributes:
        method: registry name (``beta_vae``, ``beta_vae_dae``, ``dae``, ...).
        model: kwargs of the method's constructor (e.g. ``{"beta": 4, "latent_dim": 32}``;
            ``beta_vae_dae`` takes ``dae: PATH`` of a pretrained DAE checkpoint).
        dataset: path of the exploration dataset (``.h5``) to train on.
        out: run directory.
        seed: seed of the weights' initialisation and the data order.
        steps: optimiser steps.
        batch_size: frames per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        grad_clip: max gradient norm, 0 to disable.
        log_every: steps between metric lines (metrics.jsonl, TensorBoard, progress bar).
        checkpoint_every: steps between resumable state files.
        device: torch device.
        channels_last: run convolutions in channels-last memory format (faster on CPU).
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
        """Raises ValueError naming the field for an invalid value."""
        if self.method not in available():
            raise ValueError(f"method: unknown {self.method!r}; expected one of {available()}")
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if not self.dataset:
            raise ValueError("dataset: expected the path of an exploration dataset (.h5)")


def _plain(cfg: PretrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


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


def _save_state(path: Path, model: Representation, opt: torch.optim.Optimizer, step: int,
                epoch: int, cfg: dict) -> None:  # fmt: skip
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    osd = opt.state_dict()
    for pid, st in osd["state"].items():
        for k, v in st.items():
            t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"opt.{pid}.{k}"] = t.detach().cpu().contiguous()
    meta = {"format": STATE_FORMAT, "step": step, "epoch": epoch, "config": cfg,
            "param_groups": osd["param_groups"]}  # fmt: skip
    atomic_write_bytes(path, st_save(tensors, metadata={"reprl_pretrain_state": json.dumps(meta)}))


def _load_state(path: Path, model: Representation, opt: torch.optim.Optimizer) -> tuple[int, int]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["reprl_pretrain_state"])
    tensors = st_load(path.read_bytes())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["step"]), int(meta["epoch"])


def _state_config(path: Path) -> dict | None:
    """The config stored in a state file, or None when unreadable (then it is restarted)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return json.loads(f.metadata()["reprl_pretrain_state"])["config"]
    except Exception:
        return None


def _batches(ds: FrameDataset, cfg: PretrainConfig, epoch: int) -> Iterator[tuple[int, np.ndarray]]:
    while True:
        for b in ds.iter_batches(cfg.batch_size, seed=cfg.seed * 100_003 + epoch):
            yield epoch, b
        epoch += 1


def pretrain(cfg: PretrainConfig, *, progress: bool = True) -> Path:
    """Trains ``cfg.method`` on ``cfg.dataset``; returns the encoder checkpoint's path.

    Raises:
        ValueError: an invalid config, or dataset frames that do not match the model's input.
        FloatingPointError: the loss became NaN or infinite.
    """
    cfg.validate()
    out = Path(cfg.out)
    final = out / "encoder.safetensors"
    plain = _plain(cfg)
    cfg_file = out / "config.yaml"
    if final.exists() and cfg_file.exists() and yaml.safe_load(cfg_file.read_text()) == plain:
        return final
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(cfg_file, yaml.safe_dump(plain, sort_keys=False).encode())
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = torch.device(cfg.device)

    ds = FrameDataset(cfg.dataset)
    torch.manual_seed(cfg.seed)
    model = make_representation(cfg.method, **cfg.model)
    h, w, c = ds.info.frame_shape
    if model.input_spec.shape != (c, h, w):
        raise ValueError(
            f"dataset {cfg.dataset} has frames (H, W, C) = {(h, w, c)}; {cfg.method} expects "
            f"(C, H, W) = {model.input_spec.shape}: set model.input_shape=[{c}, {h}, {w}]"
        )
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    state_file = out / "state.safetensors"
    step, epoch = 0, 0
    if state_file.exists() and _state_config(state_file) == plain:
        step, epoch = _load_state(state_file, model, opt)
        epoch += 1  # a fresh data order after a resume
    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(str(out / "tb"), purge_step=step if step else None)
    log = (out / "metrics.jsonl").open("a")
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"pretrain {cfg.method}", disable=not progress)
    batches = _batches(ds, cfg, epoch)
    t_last, n_last = time.perf_counter(), 0
    try:
        while step < cfg.steps:
            epoch, frames = next(batches)
            x = frames_to_input(frames, device, cfg.channels_last)
            loss, terms = model.loss({"obs": x})
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
            step += 1
            n_last += len(frames)
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
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                _save_state(state_file, model, opt, step, epoch, plain)
    finally:
        bar.close()
        tb.close()
        log.close()
        ds.close()
    model.eval()
    model.save(final, provenance={"dataset": file_provenance(cfg.dataset), "pretrain": plain})
    state_file.unlink(missing_ok=True)
    return final
