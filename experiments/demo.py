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
