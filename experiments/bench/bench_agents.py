"""PPO env-steps/s: pixels vs frozen encoder (extractor, wrapper), against the encoder's own rate.

Agents train PPO on ``reprl/BreakoutStandard-v0`` with the same envs and hyperparameters
(default 16 envs, ``n_steps`` 128, minibatch 256, 4 epochs):

- ``pixels``: SB3's ``CnnPolicy`` (NatureCNN) on single RGB frames, the pixel baseline;
- ``pixels_gray4``: NatureCNN on 4 stacked grayscale frames (the Atari convention);
- ``extractor``: a frozen beta-VAE inside the policy (``make_agent(..., fast=False)``): it runs
  on every rollout step and again on every minibatch of every epoch;
- ``wrapper``: the same frozen encoder in ``EncodeObservations`` (``fast=True``): it runs once
  per env step and the policy is an MLP on latents;
- ``wrapper_k4``: the wrapper on 4 stacked RGB frames (``envs.make_vec(..., frame_stack=4)``):
  it still encodes one frame per env step and keeps the 4 latents in a ring;
- ``extractor_k4`` (only on request): the extractor on the same stack, 4 frames per sample.

The goal (issue 8, item 9) compares the wrapper loop with the encoder's own batched inference
rate at batch = ``--envs`` (``encode`` under ``inference_mode`` on real frames), measured in the
same run, 0.5 s after every timed wrapper rollout (the mean of those): ``ratio = wrapper
env-steps/s / encoder frames/s`` should be >= 0.75. On a shared machine the ratio is more robust
than either number. Envs run with ``info_factors=False`` (training needs no factors).

The encoder is a freshly built default ``beta_vae`` (speed does not depend on its weights).
Each agent learns one untimed rollout, then whole rollouts until ``--seconds`` have passed
(at least one); the rate counts env-steps actually taken, collection and updates together.

``--device cuda`` puts the envs' state, the encoder and the policy on the GPU (observations still
reach SB3 as numpy, as SB3's rollout buffer wants).

Usage: ``python -m experiments.bench.bench_agents [--seconds 10] [--envs 16] [--threads N]
[--device cuda]``
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import stable_baselines3
import torch

import envs
import representations
from agents import make_agent
from experiments.bench import timed

ENV_ID = "reprl/BreakoutStandard-v0"
#: kind -> (mode, fast, frame_stack, grayscale)
KINDS: dict[str, tuple[str, bool, int, bool]] = {
    "pixels": ("pixels", False, 1, False),
    "pixels_gray4": ("pixels", False, 4, True),
    "extractor": ("frozen", False, 1, False),
    "wrapper": ("frozen", True, 1, False),
    "wrapper_k4": ("frozen", True, 4, False),
    "extractor_k4": ("frozen", False, 4, False),
}
DEFAULT_KINDS = ("pixels", "pixels_gray4", "extractor", "wrapper", "wrapper_k4")


def bench_kind(
    kind: str, encoder: Path, args: argparse.Namespace, between: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Time one agent's ``learn`` in whole rollouts; env-steps/s and seconds.

    ``between`` runs (untimed) after every timed rollout: the encoder's own rate is measured
    there, interleaved, so both numbers see the same load of a shared machine.
    """
    mode, fast, k, gray = KINDS[kind]
    env = envs.make_vec(
        ENV_ID,
        args.envs,
        seed=0,
        frame_stack=k,
        grayscale=gray,
        info_factors=False,
        device=args.device,
    )
    ppo = {"n_steps": args.n_steps, "batch_size": args.batch_size, "n_epochs": args.epochs}
    enc = None if mode == "pixels" else encoder
    model = make_agent(
        "ppo",
        env,
        encoder=enc,
        mode=mode,
        fast=fast,
        frame_stack=k,
        seed=0,
        device=args.device,
        **ppo,
    )
    rollout = args.n_steps * args.envs
    model.learn(rollout)  # warm-up: allocations, first reset, lazy inits
    phases = _time_phases(model) if fast else None
    start, dt = model.num_timesteps, 0.0
    while dt < args.seconds:
        t0 = time.perf_counter()
        model.learn(rollout, reset_num_timesteps=False)
        dt += time.perf_counter() - t0
        if between is not None:
            between()
    steps = model.num_timesteps - start
    model.get_env().close()
    out: dict[str, Any] = {
        "env_steps_per_s": round(steps / dt, 1),
        "env_steps": steps,
        "seconds": round(dt, 2),
    }
    if phases is not None:  # ms per vectorised step (num_envs env-steps), all rollouts
        vec_steps = steps / args.envs
        ms = {k: 1e3 * v / vec_steps for k, v in phases.items()}
        ms["sb3_rest"] = 1e3 * dt / vec_steps - sum(ms.values())
        out["ms_per_vec_step"] = {k: round(v, 3) for k, v in ms.items()}
    return out


def _time_phases(model: Any) -> dict[str, float]:
    """Accumulate the seconds spent in the env, the encoder, the policy's forward and the update.

    Wraps the instance methods of one fast-path agent (bench only): ``env`` is the wrapped
    VecEnv's ``step_wait`` (the simulator, stacking, VecMonitor), ``encoder`` the wrapper's
    ``encode_frames``, ``policy_forward`` the rollout's action sampling, ``update`` PPO's
    ``train``; what remains of the loop is SB3's per-step bookkeeping.
    """
    phases = {"env": 0.0, "encoder": 0.0, "policy_forward": 0.0, "update": 0.0}
    wrapper = model.get_env()

    for obj, name, key in (
        (wrapper.venv, "step_wait", "env"),
        (wrapper, "encode_frames", "encoder"),
        (model.policy, "forward", "policy_forward"),
        (model, "train", "update"),
    ):
        setattr(obj, name, timed(getattr(obj, name), key, phases))
    return phases


class EncoderRate:
    """The frozen encoder's ``encode`` on ``(batch, 3, 64, 64)`` Breakout frames, in frames/s.

    Each call measures for ``seconds`` (at least 10 batches) and keeps the rate. ``check``:
    ``encode`` validates each batch first, as the public call does; False times the network
    alone (what the device loop's latent ring calls).
    """

    def __init__(
        self, encoder: Path, batch: int, seconds: float, device: str = "cpu", check: bool = True
    ) -> None:
        self.model = representations.load(encoder, device=device)
        self.sync = torch.device(device).type == "cuda"
        self.batch, self.seconds, self.check = batch, seconds, check
        env = envs.make_vec(ENV_ID, batch, seed=0)
        frames = env.reset()
        for _ in range(20):
            frames, *_ = env.step(np.random.default_rng(0).integers(0, 3, batch))
        self.x = self.model.to_model_input(frames).to(device)
        self.rates: list[float] = []
        with torch.inference_mode():
            for _ in range(10):
                self.model.encode(self.x, check=check)

    def __call__(self) -> None:
        with torch.inference_mode():
            n, t0 = 0, time.perf_counter()
            while (dt := time.perf_counter() - t0) < self.seconds or n < 10:
                self.model.encode(self.x, check=self.check)
                n += 1
                if self.sync:
                    torch.cuda.synchronize()
        self.rates.append(self.batch * n / dt)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per agent")
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--n-steps", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="torch device of the envs and the agents")
    p.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(DEFAULT_KINDS))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Path(tmp) / "beta_vae.safetensors"
        torch.manual_seed(0)
        representations.make_representation("beta_vae").save(encoder)
        rate = EncoderRate(encoder, args.envs, seconds=0.5, device=args.device)
        for kind in args.kinds:
            between = rate if kind.startswith("wrapper") else None
            results[kind] = bench_kind(kind, encoder, args, between)
        if not rate.rates:
            rate()
    encoder_rates = rate.rates
    enc_fps = float(np.mean(encoder_rates))
    ratios = {
        f"{k}_vs_encoder": round(v["env_steps_per_s"] / enc_fps, 3)
        for k, v in results.items()
        if k.startswith("wrapper")
    }
    speedups = {}
    if "pixels" in results:
        base = results["pixels"]["env_steps_per_s"]
        speedups = {
            f"{k}_vs_pixels": round(v["env_steps_per_s"] / base, 2)
            for k, v in results.items()
            if k != "pixels"
        }
    out = {
        "benchmark": "PPO env-steps/s (collect + update), reprl/BreakoutStandard-v0 64x64",
        "config": {
            "num_envs": args.envs,
            "n_steps": args.n_steps,
            "batch_size": args.batch_size,
            "n_epochs": args.epochs,
            "timed_seconds_per_agent": args.seconds,
            "device": args.device,
            "encoder": "beta_vae default (convs 32-32-64-64, fc 256, latent 32), frozen",
        },
        "machine": {
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "cpus": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
        },
        "results": results,
        "encoder_frames_per_s_at_batch": {
            "batch": args.envs,
            "frames_per_s": round(enc_fps, 1),
            "measurements": len(encoder_rates),
            "min_max": [round(min(encoder_rates), 1), round(max(encoder_rates), 1)],
        },
        "ratios": ratios,
        "goal_wrapper_ratio_0_75": ratios.get("wrapper_vs_encoder", 0.0) >= 0.75,
        "speedups": speedups,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
