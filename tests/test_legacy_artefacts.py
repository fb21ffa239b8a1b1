"""Artefacts written by reprl 0.1.0 (before the restructuring) still load and predict the same.

The fixtures in ``tests/fixtures/legacy/`` were made on main at 0.1.0: a tiny beta-VAE
checkpoint, a frozen-encoder PPO agent zip saved with ``save_agent``, and the latents, actions
and values they gave on four frames.

A 0.1.0 agent zip stores its spaces, policy class and schedules only as pickles (it predates
reprl's safe form), so reprl opens it only with the opt-in (``trust_pickle=True``), or after
``convert_agent`` has rewritten it once in the safe form, which then opens with no pickle.
"""

from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import agents
import representations as R
from agents.safe_zip import PickleRefused, is_safe

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


def _predicts_as_expected(model, exp: dict[str, np.ndarray]) -> None:
    actions, _ = model.predict(exp["frames"], deterministic=True)
    np.testing.assert_array_equal(actions, exp["actions"])
    with torch.no_grad():
        values = model.policy.predict_values(model.policy.obs_to_tensor(exp["frames"])[0])
    np.testing.assert_allclose(values.numpy(), exp["values"], rtol=1e-5, atol=1e-6)


def _legacy_zips() -> list[Path]:
    return sorted(LEGACY.glob("*.zip"))


def test_every_legacy_agent_zip_is_refused_without_the_opt_in() -> None:
    assert _legacy_zips()
    for zip_path in _legacy_zips():
        with pytest.raises(PickleRefused, match="trust_pickle=True"):
            agents.load_agent(zip_path)


def test_a_0_1_0_agent_zip_loads_and_predicts_the_same() -> None:
    exp = _expected()
    zip_path = LEGACY / "ppo_frozen_beta_vae_v0.1.0.zip"
    for model in (
        agents.load_agent(zip_path, trust_pickle=True),
        PPO.load(zip_path, device="cpu"),
    ):
        _predicts_as_expected(model, exp)


def test_every_legacy_agent_zip_converts_to_the_safe_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Converted once (with the opt-in), a 0.1.0 zip opens with no pickle and predicts as
    0.1.0 did; SB3's own load still opens the converted zip."""
    exp = _expected()
    for zip_path in _legacy_zips():
        out = agents.convert_agent(zip_path, tmp_path / zip_path.name, trust_pickle=True)
        assert is_safe(out)
        assert agents.agent_algo(out) == agents.agent_algo(zip_path)
        _predicts_as_expected(PPO.load(out, device="cpu"), exp)
        with monkeypatch.context() as m:
            m.setattr(cloudpickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
            _predicts_as_expected(agents.load_agent(out), exp)
