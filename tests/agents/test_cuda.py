"""Agents on a CUDA device give the CPU's numbers: frozen encoders (wrapper and extractor), saved
and loaded across devices. Skipped without CUDA (CI has none); run with ``pytest -m cuda``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from agents import load_agent, make_agent, save_agent
from tests.agents.conftest import ENV_ID

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

PPO_TINY = {"n_steps": 16, "batch_size": 32, "n_epochs": 1}


def _frames(n: int = 32) -> np.ndarray:
    venv = envs.make_vec(ENV_ID, 4, seed=3)
    obs = [venv.reset()]
    rng = np.random.default_rng(0)
    while sum(len(o) for o in obs) < n:
        obs.append(venv.step(rng.integers(0, 3, 4))[0])
    return np.concatenate(obs)[:n]


@pytest.mark.parametrize("fast", [True, False])
def test_frozen_agent_on_cuda_trains_and_matches_cpu_after_loading(
    ckpt: Path, tmp_path: Path, fast: bool
) -> None:
    env = envs.make_vec(ENV_ID, 2, seed=0, device="cuda")
    model = make_agent("ppo", env, encoder=ckpt, fast=fast, seed=0, device="cuda", **PPO_TINY)
    assert model.policy.device.type == "cuda"
    model.learn(64)
    frames = _frames()
    path = save_agent(model, tmp_path / "a.zip")
    on_cuda = load_agent(path, device="cuda")
    on_cpu = load_agent(path, device="cpu")
    obs = {}
    for name, m in (("cuda", on_cuda), ("cpu", on_cpu)):
        x, _ = m.policy.obs_to_tensor(frames)
        with torch.no_grad():
            obs[name] = m.policy.get_distribution(x).distribution.logits.cpu()
    torch.testing.assert_close(obs["cuda"], obs["cpu"], atol=1e-4, rtol=1e-4)


def test_stacked_gray_env_on_cuda_equals_cpu() -> None:
    acts = np.random.default_rng(0).integers(0, 3, (100, 8))
    traces = []
    for device in ("cpu", "cuda"):
        venv = envs.make_vec(ENV_ID, 8, seed=5, device=device, frame_stack=4, grayscale=True)
        obs = [venv.reset()]
        obs += [venv.step(a)[0] for a in acts]
        traces.append(np.stack(obs))
    np.testing.assert_array_equal(*traces)
