"""Artefacts written by reprl 0.1.0 (before the restructuring) still load and predict the same.

The fixtures in ``tests/fixtures/legacy/`` were made on main at 0.1.0: a tiny beta-VAE
checkpoint, a frozen-encoder PPO agent zip saved with ``save_agent``, and the latents, actions
and values they gave on four frames.
"""

from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO

import agents
import representations as R

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


def _expected() -> dict[str, np.ndarray]:
    return dict(np.load(LEGACY / "expected_v0.1.0.npz"))


def test_a_0_1_0_checkpoint_loads_and_encodes_the_same() -> None:
    exp = _expected()
    model = R.load(LEGACY / "beta_vae_v0.1.0.safetensors", expected_method="beta_vae")
    x = torch.as_tensor(exp["frames"]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        z = model.encode(x).numpy()
    np.testing.assert_allclose(z, exp["latents"], rtol=1e-5, atol=1e-6)


def test_a_0_1_0_agent_zip_loads_and_predicts_the_same() -> None:
    exp = _expected()
    zip_path = LEGACY / "ppo_frozen_beta_vae_v0.1.0.zip"
    for model in (agents.load_agent(zip_path), PPO.load(zip_path, device="cpu")):
        actions, _ = model.predict(exp["frames"], deterministic=True)
        np.testing.assert_array_equal(actions, exp["actions"])
        with torch.no_grad():
            values = model.policy.predict_values(model.policy.obs_to_tensor(exp["frames"])[0])
        np.testing.assert_allclose(values.numpy(), exp["values"], rtol=1e-5, atol=1e-6)
