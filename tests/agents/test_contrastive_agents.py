"""ST-DIM and ATC encoders in agents: the VecEnv wrapper path, its exported pixel-space zip
(``PPO.load`` acts as the live agent), fine-tuning through the extractor, and A3C workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import envs
import representations as R
from agents import A3CHyperparams, EncodeObservations, WorkerEnvs, make_agent, save_agent
from tests.agents.conftest import TINY, random_stacks, stacked_env

METHODS = ["st_dim", "atc"]
PPO_TINY = {"n_steps": 16, "batch_size": 16, "n_epochs": 2}


@pytest.fixture(params=METHODS)
def contrastive_ckpt(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / f"{request.param}.safetensors"
    R.make_representation(request.param, **TINY).save(path)
    return path


def test_frozen_wrapper_agent_exports_an_equivalent_pixel_agent(
    contrastive_ckpt: Path, tmp_path: Path
) -> None:
    k = 2
    model = make_agent("ppo", stacked_env(2, k), encoder=contrastive_ckpt, seed=0, **PPO_TINY)
    wrapper = model.get_env()
    assert isinstance(wrapper, EncodeObservations)
    assert model.observation_space.shape == (k * TINY["latent_dim"],)
    model.learn(32)
    stacks = random_stacks(6, k)
    encoder = R.load(contrastive_ckpt).eval()
    with torch.no_grad():  # the wrapper's latents are the encoder's, frame by frame
        frames = stacks.reshape(6, 64, 64, k, 3).transpose(3, 0, 1, 2, 4).reshape(-1, 64, 64, 3)
        z = encoder.encode(encoder.to_model_input(frames)).reshape(k, 6, -1)
    np.testing.assert_allclose(
        wrapper.encode(stacks), torch.cat(list(z), dim=1).numpy(), atol=1e-5, rtol=0
    )
    actions = model.predict(wrapper.encode(stacks), deterministic=True)[0]
    path = save_agent(model, tmp_path / "fast.zip")
    contrastive_ckpt.unlink()  # the zip carries the encoder
    loaded = PPO.load(path)
    np.testing.assert_array_equal(loaded.predict(stacks, deterministic=True)[0], actions)


def test_finetuning_moves_the_online_encoder_only(contrastive_ckpt: Path) -> None:
    model = make_agent(
        "ppo", stacked_env(2, 1), encoder=contrastive_ckpt, mode="finetune", seed=0, **PPO_TINY
    )
    encoder = model.policy.features_extractor.encoder
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    model.learn(32)
    after = encoder.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(not k.startswith("target.") for k in moved)


@pytest.mark.parametrize("method", METHODS)
def test_a3c_workers_train_on_the_frozen_encoder(method: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    ckpt = tmp_path / f"{method}.safetensors"
    R.make_representation(method, **TINY).save(ckpt)
    kw = {"frame_stack": 2, "info_factors": False}
    env = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0, **kw)
    hp = A3CHyperparams(n_workers=1, n_steps=5)
    recipe = WorkerEnvs("reprl/BreakoutStandard-v0", 2, kw)
    model = make_agent("a3c", env, encoder=ckpt, mode="frozen", env_fn=recipe, hyperparams=hp)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(100)
    assert model.num_timesteps >= 100
    after = model.policy.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
