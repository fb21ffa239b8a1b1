"""Pretraining throughput (images/s) and dataset read throughput, side by side, as JSON.

Pretraining: one optimiser step of a representation at batch 64, 64 x 64 RGB, on the CPU:

- ``plain_memory``: the loop one writes first, on frames held in RAM: contiguous (NCHW)
  weights, random-index batches, converted in the training thread;
- ``plain_disk``: the same loop reading each batch from the HDF5 file by random indices;
- ``reprl``: what :func:`representations.pretrain.pretrain` does: channels-last weights,
  chunk-shuffled batches read ahead in a background thread.

Pair methods (ST-DIM, ATC) train on frame t and frame t + k of one episode: ``reprl`` reads
them with :meth:`FrameDataset.iter_pairs`, the plain loops by random pair starts; their
images/s count both frames of a pair.

Data: frames/s of :meth:`FrameDataset.iter_batches` (shuffled, prefetching), of random-index
reads, of CPC-style sequence batches and of pair batches (k = 3).

Usage: ``python -m experiments.bench.bench_pretrain --dataset D.h5 [--steps 40]``
(without ``--dataset`` a 20k-frame Breakout dataset is collected to a temporary file first).

``--models-only``: the optimiser step of every registered method with its default config, on
``--devices`` (default cpu), fed its own :meth:`Representation.example_batch` of ``--batch``
examples (frames, CPC's sequences of ``sequence_length`` frames, the supervised baseline's
frames with targets): images/s of the model alone, without data loading.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.storage.dataset import FrameDataset
from representations.pretrain import frames_to_input
from representations.registry import available, make_representation


def _random_batches(ds: FrameDataset, batch: int, seed: int = 0) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    while True:
        yield ds.frames(np.sort(rng.choice(len(ds), batch, replace=False)))


def _chunked_batches(ds: FrameDataset, batch: int) -> Iterator[np.ndarray]:
    epoch = 0
    while True:
        yield from ds.iter_batches(batch, seed=epoch)
        epoch += 1


def _memory_batches(frames: np.ndarray, batch: int, seed: int = 0) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    while True:
        yield frames[rng.choice(len(frames), batch, replace=False)]


def _pair_batches(
    ds: FrameDataset, batch: int, offset: int, mode: str, in_memory: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (frame t, frame t + offset) of one episode: reprl's :meth:`FrameDataset.iter_pairs`,
    or random pair starts read by index from RAM (``plain_memory``) or the file."""
    if mode == "reprl":
        epoch = 0
        while True:
            for b in ds.iter_pairs(batch, offset, seed=epoch):
                yield b["obs"], b["next_obs"]
            epoch += 1
    starts = ds.sequence_starts(offset + 1)
    if in_memory is not None:
        starts = starts[starts + offset < len(in_memory)]
    rng = np.random.default_rng(0)
    while True:
        i = np.sort(rng.choice(starts, batch, replace=False))
        if in_memory is not None:
            yield in_memory[i], in_memory[i + offset]
        else:
            yield ds.frames(i), ds.frames(i + offset)


def train_rate(
    method: str,
    ds: FrameDataset,
    mode: str,
    steps: int,
    batch: int = 64,
    in_memory: np.ndarray | None = None,
) -> float:
    """Images/s of ``steps`` optimiser steps (after 3 warm-up steps); a pair method's step
    counts both frames of each pair."""
    torch.manual_seed(0)
    model = make_representation(method)
    fmt = torch.channels_last if mode == "reprl" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    for p in model.parameters():  # the blocks build channels-last: undo it for "plain"
        if p.ndim == 4:
            p.data = p.data.contiguous(memory_format=fmt)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    pairs = model.batch_kind == "pairs"
    if pairs:
        memory = in_memory if mode == "plain_memory" else None
        batches = _pair_batches(ds, batch, model.pair_offset, mode, memory)
    elif mode == "reprl":
        batches = _chunked_batches(ds, batch)
    elif mode == "plain_memory":
        batches = _memory_batches(in_memory, batch)
    else:
        batches = _random_batches(ds, batch)
    model.train()

    def tensor(frames: np.ndarray) -> torch.Tensor:
        if mode == "reprl":
            return frames_to_input(frames, torch.device("cpu"), channels_last=True)
        return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous().float() / 255.0

    def one() -> None:
        b = next(batches)
        data = {"obs": tensor(b[0]), "next_obs": tensor(b[1])} if pairs else {"obs": tensor(b)}
        loss, _ = model.loss(data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.after_step()

    for _ in range(3):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return steps * batch * (2 if pairs else 1) / (time.perf_counter() - t0)


def model_rate(method: str, device: str, batch: int, seconds: float) -> dict[str, Any]:
    """Images/s of ``method``'s optimiser step on its own example batch (no data loading)."""
    torch.manual_seed(0)
    model = make_representation(method).to(device).train()
    if device == "cpu":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    data = {k: v.to(device) for k, v in model.example_batch(batch).items()}
    per_example = {"sequences": getattr(model, "sequence_length", 1), "pairs": 2}
    if model.batch_kind == "scenes":  # images = the views of the scenes, as pretrain counts
        per_example["scenes"] = int(data["views"].shape[1])
    frames = batch * per_example.get(model.batch_kind, 1)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def one() -> None:
        loss, _ = model.loss(data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.after_step()

    for _ in range(3):
        one()
    sync()
    n, t0 = 0, time.perf_counter()
    while (dt := time.perf_counter() - t0) < seconds or n < 3:
        one()
        n += 1
        sync()
    return {
        "method": method,
        "device": device,
        "batch": batch,
        "frames_per_step": frames,
        "ms_per_step": round(1e3 * dt / n, 2),
        "images_per_s": round(frames * n / dt),
    }


def read_rates(ds: FrameDataset, seconds: float = 2.0) -> dict[str, float]:
    """Frames/s of the three read paths."""
    out = {}
    for name, it, per in (
        ("iter_batches_shuffled_prefetch", _chunked_batches(ds, 256), 256),
        ("random_index_batches", _random_batches(ds, 256), 256),
        ("sequences_8x16", (b["frames"] for b in ds.iter_sequences(8, 16, num_batches=10**9)), 128),
        ("pairs_k3_64", _pair_batches(ds, 64, 3, "reprl", None), 128),
    ):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            next(it)
            n += per
        out[name] = round(n / (time.perf_counter() - t0))
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", help="an exploration dataset (.h5); default: collect 20k frames")
    p.add_argument("--steps", type=int, default=40, help="timed optimiser steps per measurement")
    p.add_argument("--methods", nargs="+", default=None, help="default: all (--models-only)")
    p.add_argument("--models-only", action="store_true", help="model step rates only (no data)")
    p.add_argument("--devices", nargs="+", default=["cpu"])
    p.add_argument("--batch", type=int, default=32, help="--models-only: examples per step")
    p.add_argument("--seconds", type=float, default=5.0, help="--models-only: timed seconds")
    args = p.parse_args(argv)
    if args.models_only:
        methods = args.methods or available()
        rows = [model_rate(m, d, args.batch, args.seconds) for d in args.devices for m in methods]
        print(
            json.dumps(
                {
                    "benchmark": "pretraining step of each method (default config), its own "
                    "example batch, no data loading; images/s counts frames",
                    "threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                    "rows": rows,
                },
                indent=2,
            )
        )
        return 0
    args.methods = args.methods or ["beta_vae", "beta_vae_dae", "dae", "st_dim", "atc"]
    tmp = None
    path = args.dataset
    if path is None:
        from envs.exploration import collect

        tmp = tempfile.TemporaryDirectory()
        path = str(Path(tmp.name) / "bench.h5")
        collect(
            ["reprl/BreakoutStandard-v0", "reprl/BreakoutMiddleWall-v0"],
            20000,
            path,
            num_envs=64,
            progress=False,
        )
    ds = FrameDataset(path)
    rows = []
    in_memory = ds.frames(slice(0, min(len(ds), 20000)))
    for method in args.methods:
        mem = train_rate(method, ds, "plain_memory", args.steps, in_memory=in_memory)
        disk = train_rate(method, ds, "plain_disk", args.steps)
        ours = train_rate(method, ds, "reprl", args.steps)
        rows.append(
            {
                "method": method,
                "plain_memory_images_per_s": round(mem),
                "plain_disk_images_per_s": round(disk),
                "reprl_images_per_s": round(ours),
                "speedup_vs_plain_memory": round(ours / mem, 2),
            }
        )
    result = {
        "benchmark": "pretraining images/s, batch 64, 64x64 RGB, CPU; dataset frames/s",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dataset": {"path": path, "frames": len(ds)},
        "pretrain": rows,
        "read_frames_per_s": read_rates(ds),
    }
    ds.close()
    print(json.dumps(result, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
