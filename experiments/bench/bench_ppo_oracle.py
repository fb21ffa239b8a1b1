"""Can PPO learn Standard Breakout at all in the budget? PPO on the true state beside PPO on a
frozen encoder, per hyperparameter setting: the RL stage's ceiling.

A representation can only be blamed for an agent that does not learn if an agent given the
game's true state learns under the same PPO settings and budget. The *oracle* here sees the
three factors the report's Encoders table probes for (``paddle_x``, ``ball_x``, ``ball_y``,
read from the game and divided by the court's width or height: in [0, 1]), 4 stacked as every
agent's observation is, through an MLP policy (SB3's defaults: 64 x 64, tanh); the
frozen-encoder agent (with ``--encoder PATH``) sees 4 stacked latents of its encoder, trained
by the device loop. Both: 16 envs unless the setting says otherwise, episodes of at most 2000
steps, objects drawn 2 x 2 (the default experiment's Standard Breakout), entropy 0.01, the
other PPO settings per ``--settings`` entry:

- ``default``: the default experiment's until this benchmark (``n_steps`` 128, minibatch 256,
  4 epochs, lr 5e-4): 32 gradient steps per 2048-sample rollout;
- ``calibrated``: minibatch 128, 10 epochs, lr 1e-3: 160 gradient steps per rollout;
- ``full``: ``darla_breakout_full.yaml``'s until this calibration (64 envs, ``n_steps`` 256,
  minibatch 2048, 3 epochs, lr 5e-4): 24 gradient steps per 16,384-sample rollout;
- or ``KEY=VALUE,...`` of PPO keyword arguments (and ``num_envs``) on top of ``default``.

Prints, per setting, agent and seed, the mean training return of the episodes ending in each
quarter of the run, and the seconds; beside them a scripted reference on the same envs
(``tracker``: the paddle follows the ball), as one JSON object. Runs ``--jobs`` trainings at
once, each in its own process on one torch thread.

Usage: ``python -m experiments.bench.bench_ppo_oracle [--steps 300000] [--seeds 0 1 2]
[--settings default calibrated] [--encoder runs/darla_breakout/pretrain/st_dim/
encoder.safetensors] [--jobs 2]``
"""

from __future__ import annotations

# isort: off
import envs.oldgym  # first: quiets old gym's notice before SB3 imports it

# isort: on
import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack, VecMonitor

import envs
from agents import make_agent
from envs.breakout.geometry import HEIGHT, PADDLE_W, WIDTH
from envs.rng import spawn_seeds
from experiments.bench import learn_recording_episodes, with_passive_omp

ENV_ID = "reprl/BreakoutStandard-v0"
ENV_KWARGS: dict[str, Any] = {"max_episode_steps": 2000, "min_object_size": 2}
NUM_ENVS = 16
"""Envs per training unless the setting names ``num_envs``."""
STATE = ("paddle_x", "ball_x", "ball_y")
"""The oracle's factors: the report's Encoders table's (the first ball's, for ``ball_*``)."""

SETTINGS: dict[str, dict[str, Any]] = {
    "default": {
        "n_steps": 128,
        "batch_size": 256,
        "n_epochs": 4,
        "learning_rate": 5e-4,
        "ent_coef": 0.01,
    },
    "calibrated": {
        "n_steps": 128,
        "batch_size": 128,
        "n_epochs": 10,
        "learning_rate": 1e-3,
        "ent_coef": 0.01,
    },
    "full": {  # darla_breakout_full.yaml's, on its 64 envs
        "num_envs": 64,
        "n_steps": 256,
        "batch_size": 2048,
        "n_epochs": 3,
        "learning_rate": 5e-4,
        "ent_coef": 0.01,
    },
}


class TrueState(VecEnvWrapper):
    """Observations replaced by the game's true ``STATE`` factors over the court's size.

    Args:
        venv: a reprl Breakout ``VecEnv`` (its ``get_factors`` and ``terminal_factors``).
    """

    SCALE = np.array([WIDTH, WIDTH, HEIGHT], np.float32)
    """Court coordinates -> [0, 1], per ``STATE`` factor."""

    def __init__(self, venv: VecEnv) -> None:
        space = gym.spaces.Box(0.0, 1.0, (len(STATE),), np.float32)
        super().__init__(venv, observation_space=space)

    def _state(self, factors: dict[str, Any]) -> np.ndarray:
        """(N, 3) float32 from factors of N games (values (N,), or (N, balls) for balls)."""
        n = np.atleast_1d(factors["paddle_x"]).shape[0]
        cols = [np.asarray(factors[k]).reshape(n, -1)[:, 0] for k in STATE]
        return (np.stack(cols, -1) / self.SCALE).astype(np.float32)

    def reset(self) -> np.ndarray:
        self.venv.reset()
        return self._state(self.venv.get_factors())

    def step_wait(self) -> Any:
        _, reward, done, infos = self.venv.step_wait()
        for i in np.flatnonzero(done):
            final = {k: np.asarray(v)[None] for k, v in infos[i]["terminal_factors"].items()}
            infos[i]["terminal_observation"] = self._state(final)[0]
        return self._state(self.venv.get_factors()), reward, done, infos


def _settings(name: str) -> dict[str, Any]:
    if name in SETTINGS:
        return dict(SETTINGS[name])
    out = dict(SETTINGS["default"])
    for pair in name.split(","):
        key, _, value = pair.partition("=")
        if key not in out and key not in ("num_envs", "gamma", "gae_lambda", "clip_range"):
            raise SystemExit(f"--settings: unknown PPO key {key!r} in {name!r}")
        ints = ("num_envs", "n_steps", "batch_size", "n_epochs")
        out[key] = int(value) if key in ints else float(value)
    return out


def train(job: tuple[str, str, int, int, str | None]) -> dict[str, Any]:
    """One training: (setting, agent ``oracle`` | ``frozen``, seed, steps, encoder path)."""
    setting, agent, seed, steps, encoder = job
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    kwargs = _settings(setting)
    n = kwargs.pop("num_envs", NUM_ENVS)
    seeds = spawn_seeds(seed, n, purpose="train")
    if agent == "oracle":
        venv = envs.make_vec(ENV_ID, n, seed=seeds, info_factors=False, **ENV_KWARGS)
        venv = VecFrameStack(VecMonitor(TrueState(venv)), 4)
        model = PPO(
            "MlpPolicy", venv, seed=seed, device="cpu", stats_window_size=1_000_000, **kwargs
        )
    else:
        venv = envs.make_vec(ENV_ID, n, seed=seeds, frame_stack=4, info_factors=False, **ENV_KWARGS)
        model = make_agent(
            "ppo",
            venv,
            mode="frozen",
            encoder=encoder,
            frame_stack=4,
            seed=seed,
            device="cpu",
            stats_window_size=1_000_000,
            **kwargs,
        )
    t0 = time.perf_counter()
    ends = learn_recording_episodes(model, steps, "sb3" if agent == "oracle" else "device")
    seconds = time.perf_counter() - t0
    q = model.num_timesteps / 4
    quarters = []
    for k in range(4):
        r = [x for s, x in ends if k * q < s <= (k + 1) * q]
        quarters.append(round(float(np.mean(r)), 2) if r else None)
    return {
        "setting": setting,
        "agent": agent,
        "seed": seed,
        "num_envs": n,
        "steps": model.num_timesteps,
        "episodes": len(ends),
        "return_by_quarter": quarters,
        "seconds": round(seconds, 1),
    }


def tracker(steps: int, seed: int) -> dict[str, Any]:
    """A scripted reference: the paddle follows the first ball's x, a quarter of its width in
    from its left end (NOOP within a pixel; aimed at the centre the ball returns straight up
    and scores half as fast), on the same envs; the mean return of the episodes that ended in
    ``steps``."""
    venv = envs.make_vec(
        ENV_ID, NUM_ENVS, seed=spawn_seeds(seed, NUM_ENVS, purpose="train"), **ENV_KWARGS
    )
    venv.reset()
    f = venv.get_factors()
    ret, returns = np.zeros(NUM_ENVS), []
    for _ in range(steps // NUM_ENVS):
        gap = f["ball_x"].reshape(NUM_ENVS, -1)[:, 0] - (f["paddle_x"] + PADDLE_W / 4)
        action = np.where(gap > 1, 2, np.where(gap < -1, 1, 0))  # NOOP, LEFT, RIGHT
        _, reward, done, _ = venv.step(action)
        f = venv.get_factors()
        ret += reward
        returns += ret[done].tolist()
        ret[done] = 0
    return {
        "steps": steps,
        "episodes": len(returns),
        "mean_return": round(float(np.mean(returns)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Trains every (setting, agent, seed) and prints one JSON object."""
    with_passive_omp("experiments.bench.bench_ppo_oracle", argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--settings", nargs="+", default=["default", "calibrated"])
    p.add_argument("--encoder", default=None, help="a frozen encoder's checkpoint (adds its row)")
    p.add_argument("--jobs", type=int, default=2, help="trainings at once (one thread each)")
    args = p.parse_args(argv)
    for s in args.settings:
        _settings(s)  # bad input fails before anything trains
    if args.encoder is not None and not os.path.isfile(args.encoder):
        raise SystemExit(f"--encoder: no file {args.encoder!r}")
    agents = ["oracle"] + (["frozen"] if args.encoder else [])
    jobs = [
        (s, a, seed, args.steps, args.encoder)
        for s in args.settings
        for a in agents
        for seed in args.seeds
    ]
    t0 = time.perf_counter()
    reference = tracker(args.steps, args.seeds[0])
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        runs = pool.map(train, jobs, chunksize=1)
    summary: dict[str, dict[str, Any]] = {}
    for r in runs:
        late = summary.setdefault(f"{r['setting']}/{r['agent']}", {"last_quarter": []})
        late["last_quarter"].append(r["return_by_quarter"][-1])
    out = {
        "check": f"PPO on {ENV_ID}: the true state (oracle) beside a frozen encoder, "
        f"{args.steps} env steps",
        "settings": {s: _settings(s) for s in args.settings},
        "encoder": args.encoder,
        "jobs": args.jobs,
        "seconds": round(time.perf_counter() - t0, 1),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "tracker": reference,
        "runs": runs,
        "last_quarter_return": summary,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
