"""Where an encoder loses an AtariARI variable: the probe on its code and inside it.

The AtariARI probe (:func:`representations.metrics.atariari.atariari_probe`, the paper's
protocol: a linear 256-way classifier per RAM byte, weighted F1 on held-out episodes) run on
several features of the same frames of an experiment's collect data:

- ``code``: what the probe stage scores (``encode``);
- ``conv<k>``: the k-th convolution's whole feature map (skipped above ``--max-features``);
- ``conv<k>_band``: that map's cells over the frame box ``--rows`` x ``--cols`` (where, say,
  the paddle moves);
- ``pixels_band``: the pixels of that box minus their mean over the frames (is the variable in
  the picture there? Centred: on Pong's bright background raw pixels stall the probe's Adam,
  as they stalled the encoders before ``mean_frame``).

A variable the band's pixels read and the code does not is lost inside the encoder; the
layers say where. The frames are the encoder's own training frames (the probe stage scores
fresh episodes), split by episode as the probe does.

Usage: ``python -m experiments.bench.atariari_layers --run runs/atariari_breakout --encoder
st_dim --variables player_x ball_x --rows 189 193 [--cols 0 160] [--frames 10000]``; prints
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import representations
from envs.errors import ReprlError
from envs.storage.dataset import FrameDataset
from representations.analysis import frame_digests
from representations.factors import factor_data
from representations.metrics.atariari import atariari_probe


def features(
    model: Any,
    frames: np.ndarray,
    rows: tuple[int, int],
    cols: tuple[int, int],
    max_features: int,
    batch: int = 250,
) -> dict[str, np.ndarray]:
    """Name -> ``(T, F)`` float32 features of ``frames`` (``(T, H, W, C)`` uint8; module doc).

    Raises:
        ReprlError: a model without a convolutional encoder (``model.encoder.conv_features``).
    """
    conv = getattr(getattr(model, "encoder", None), "conv_features", None)
    if conv is None:
        raise ReprlError(
            f"expected an encoder with convolutions (model.encoder.conv_features), got "
            f"{type(model).__name__}"
        )
    h, w = frames.shape[1:3]
    (r0, r1), (c0, c1) = rows, cols
    shapes = model.encoder.feature_shapes
    parts: dict[str, list[np.ndarray]] = {"code": []}
    for k, (c, hk, wk) in enumerate(shapes, start=1):
        if c * hk * wk <= max_features:
            parts[f"conv{k}"] = []
        parts[f"conv{k}_band"] = []
    model.eval()
    with torch.inference_mode():
        for lo in range(0, len(frames), batch):
            x = model.to_model_input(torch.from_numpy(frames[lo : lo + batch]))
            parts["code"].append(model.encode(x).float().numpy())
            for k, (_, hk, wk) in enumerate(shapes, start=1):
                fmap = conv(x, k)
                if f"conv{k}" in parts:
                    parts[f"conv{k}"].append(fmap.flatten(1).numpy())
                top, bottom = math.floor(r0 * hk / h), min(hk, math.ceil(r1 * hk / h))
                left, right = math.floor(c0 * wk / w), min(wk, math.ceil(c1 * wk / w))
                band = fmap[:, :, top:bottom, left:right]
                parts[f"conv{k}_band"].append(band.flatten(1).numpy())
    out = {name: np.concatenate(v).astype(np.float32) for name, v in parts.items()}
    box = frames[:, r0:r1, c0:c1].reshape(len(frames), -1).astype(np.float32) / 255.0
    out["pixels_band"] = box - box.mean(0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the probes and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="an experiment directory")
    p.add_argument("--encoder", required=True, help="an encoder name under pretrain/")
    p.add_argument("--variables", nargs="+", required=True, help="RAM variables to probe")
    p.add_argument("--rows", type=int, nargs=2, required=True, help="frame rows [a, b)")
    p.add_argument("--cols", type=int, nargs=2, default=None, help="frame columns [a, b)")
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--max-features", type=int, default=20_000)
    p.add_argument("--only", nargs="+", default=None, help="probe only these features")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = representations.load(args.run / "pretrain" / args.encoder / "encoder.safetensors")
    ds = FrameDataset(args.run / "collect" / "explore.h5")
    try:
        n = min(args.frames, len(ds))
        frames = ds.frames(slice(0, n))
        data = factor_data(ds, np.arange(n), args.variables)
    finally:
        ds.close()
    keys = frame_digests(frames)
    results: dict[str, Any] = {}
    cols = tuple(args.cols) if args.cols else (0, frames.shape[2])
    for name, x in features(model, frames, tuple(args.rows), cols, args.max_features).items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        r = atariari_probe(x, data, frame_keys=keys, factor_names=args.variables)
        results[name] = {
            "features": int(x.shape[1]),
            "f1": {v: round(s["f1"], 3) for v, s in r["per_variable"].items()},
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(name, results[name], file=sys.stderr, flush=True)
    out = {
        "benchmark": "AtariARI probe F1 on an encoder's code, its feature maps and a band of rows",
        "run": str(args.run),
        "encoder": args.encoder,
        "frames": n,
        "rows": args.rows,
        "cols": list(cols),
        "feature_shapes": [list(s) for s in model.encoder.feature_shapes],
        "results": results,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
