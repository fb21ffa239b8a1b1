"""The environment demo: every Breakout variant played by a random policy, batched.

Writes a PNG strip of frames (one column per variant, rows over time) and prints a JSON
summary: env-steps/s and the random policy's mean episode return per variant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import envs
from envs.breakout import VARIANTS
from envs.storage.files import atomic_path, atomic_write_text


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    num_envs: int = 256,
    steps: int = 2000,
    seed: int = 0,
    device: str = "cpu",
    snapshots: int = 4,
) -> dict:
    """Plays every variant with uniform random actions on ``num_envs`` parallel games.

    Args:
        out_dir: where ``breakout_variants.png`` and ``demo.json`` go.
        num_envs: games per variant.
        steps: env steps per game.
        seed: seed of game 0 (game i uses seed + i).
        device: torch device of the batched envs.
        snapshots: frames per variant in the picture, evenly spaced in time.

    Returns:
        The JSON-plain summary (also written to ``demo.json``): per variant ``steps_per_s``,
        ``episodes`` finished and ``mean_return`` of the finished episodes (random policy);
        ``picture`` and ``json``, the paths written.
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    summary: dict = {"num_envs": num_envs, "steps": steps, "device": device, "variants": {}}
    columns = []
    for variant in VARIANTS:
        venv = envs.make_vec(
            "reprl/Breakout-v0",
            num_envs,
            seed=seed,
            device=device,
            variant=variant,
            info_factors=False,
        )
        venv.reset()
        for _ in range(5):  # warm-up: first calls allocate
            venv.step(rng.integers(0, 3, num_envs))
        venv.reset()
        returns, running = [], np.zeros(num_envs)
        frames = []
        keep = set(np.linspace(0, steps - 1, snapshots).astype(int).tolist())
        t0 = time.perf_counter()
        for t in range(steps):
            obs, rew, done, _ = venv.step(rng.integers(0, 3, num_envs))
            running += rew
            returns.extend(running[done].tolist())
            running[done] = 0.0
            if t in keep:
                frames.append(obs[0].copy())
        dt = time.perf_counter() - t0
        summary["variants"][variant] = {
            "steps_per_s": round(steps * num_envs / dt),
            "episodes": len(returns),
            "mean_return": round(float(np.mean(returns)), 3) if returns else None,
        }
        columns.append(np.concatenate(frames, axis=0))
        venv.close()
    strip = np.concatenate([np.pad(c, ((0, 0), (1, 1), (0, 0))) for c in columns], axis=1)
    image = Image.fromarray(strip).resize((strip.shape[1] * 3, strip.shape[0] * 3), Image.NEAREST)
    with atomic_path(out / "breakout_variants.png") as tmp:
        image.save(tmp, format="PNG")
    atomic_write_text(out / "demo.json", json.dumps(summary, indent=2))
    summary["picture"] = str(out / "breakout_variants.png")
    summary["json"] = str(out / "demo.json")
    return summary


def lab_pictures(
    out_dir: str | Path = "runs/demo", *, seed: int = 0, scenes: int = 3, views: int = 6
) -> dict[str, str]:
    """Pictures of the Lab rooms: the domain grid and a multi-view scene sample (GQN's data).

    ``lab_domains.png``: one view of a room per (object set, room look) pair, rows the 4 object
    sets (their good and bad looks), columns the 8 room looks, the 8 held-out test pairs framed
    in red (:data:`envs.lab.domains.LAB_DOMAINS`). ``lab_scenes.png``: ``scenes`` scenes of
    :func:`envs.scenes.collect_scenes`, one row each: a top-down map (walls grey, good objects
    green, bad ones red, each camera a white dot with a line along its yaw) and the scene's
    first ``views`` views.

    Args:
        out_dir: where the two PNGs go (written atomically).
        seed: seed of the worlds and cameras.
        scenes: scene rows, >= 1.
        views: views per scene, >= 2.

    Returns:
        ``{"domains": path, "scenes": path}``.
    """
    import tempfile

    import torch
    from PIL import Image, ImageDraw

    from envs.lab.domains import LAB_DOMAINS
    from envs.lab.lab import UNITS_PER_CELL, LabBatch
    from envs.scenes import collect_scenes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = LAB_DOMAINS
    rooms, sets = len(d.room_looks), len(d.object_sets)
    lab = LabBatch(rooms * sets, "collect", split="all", seed=seed)
    lab.reset()
    pairs = torch.tensor([(r, s) for s in range(sets) for r in range(rooms)])
    lab.room_look[:], lab.object_set[:] = pairs[:, 0], pairs[:, 1]
    looks = torch.tensor(d.object_sets)[pairs[:, 1]]  # (N, 2) good, bad
    lab.obj_look[:] = looks.gather(1, lab.obj_kind)
    cam = torch.tensor([[130.0, 130.0, 45.0, 0.0]]).expand(rooms * sets, 4)  # a corner, diagonal
    frames = lab.render(poses=cam).numpy()
    h, w = frames.shape[1:3]
    pad = 3
    grid = np.full((sets * (h + 2 * pad), rooms * (w + 2 * pad), 3), 255, np.uint8)
    test = set(d.combos("test"))
    for i, (r, s) in enumerate(pairs.tolist()):
        y, x = s * (h + 2 * pad), r * (w + 2 * pad)
        if (r, s) in test:
            grid[y : y + h + 2 * pad, x : x + w + 2 * pad] = (220, 30, 30)
        grid[y + pad : y + pad + h, x + pad : x + pad + w] = frames[i]
    image = Image.fromarray(grid)
    image = image.resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)
    written = {"domains": str(out / "lab_domains.png"), "scenes": str(out / "lab_scenes.png")}
    with atomic_path(out / "lab_domains.png") as tmp:
        image.save(tmp, format="PNG")

    with tempfile.TemporaryDirectory() as tmpdir:
        ds = collect_scenes(
            "reprl/LabCollectTrain-v0",
            scenes,
            Path(tmpdir) / "scenes.h5",
            views_per_scene=views,
            num_envs=scenes,
            seed=seed,
            progress=False,
        )
        cell = h // 8  # the 7 x 7 room and its walls: 9 cells across a frame's height
        rows = []
        for s in range(scenes):
            index = slice(s * views, (s + 1) * views)
            f = ds.factors(["obj_x", "obj_y", "obj_kind"], index)
            vp = ds.viewpoints(index)
            top = Image.new("RGB", (9 * cell, 9 * cell), (40, 40, 40))
            draw = ImageDraw.Draw(top)
            draw.rectangle([cell, cell, 8 * cell - 1, 8 * cell - 1], fill=(200, 200, 200))
            scale = cell / UNITS_PER_CELL
            for ox, oy, kind in zip(f["obj_x"][0], f["obj_y"][0], f["obj_kind"][0]):
                c = (0, 160, 0) if kind == 0 else (200, 0, 0)
                draw.ellipse(
                    [ox * scale - 2, oy * scale - 2, ox * scale + 2, oy * scale + 2], fill=c
                )
            for x, y, _, cy, sy, _, _ in vp:
                px, py = x * cell, y * cell
                draw.line([px, py, px + 5 * cy, py + 5 * sy], fill=(255, 255, 255))
                draw.ellipse([px - 1, py - 1, px + 1, py + 1], fill=(255, 255, 255))
            top = top.resize((h, h), Image.NEAREST)
            row = [np.asarray(top)] + [v for v in ds.frames(index)]
            rows.append(
                np.concatenate([np.pad(v, ((pad, pad), (pad, pad), (0, 0))) for v in row], 1)
            )
        ds.close()
    strip = np.concatenate(rows, 0)
    image = Image.fromarray(strip).resize((strip.shape[1] * 2, strip.shape[0] * 2), Image.NEAREST)
    with atomic_path(out / "lab_scenes.png") as tmp:
        image.save(tmp, format="PNG")
    return written
