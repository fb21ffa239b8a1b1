"""The SB3 internals reprl's export relies on exist on the installed SB3, or fail loudly."""

from __future__ import annotations

import re

import numpy as np
import pytest
import stable_baselines3
import torch

from agents import sb3_compat


def test_installed_sb3_has_every_internal_the_export_uses() -> None:
    sb3_compat.check_internals()


def test_a_renamed_internal_fails_with_its_name_and_the_sb3_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sb3_compat, "_REQUIRED_ATTRS", (*sb3_compat._REQUIRED_ATTRS, "_gone"))
    expected = (
        rf"stable-baselines3 {re.escape(stable_baselines3.__version__)}: expected PPO instances "
        r"to have the attribute '_gone' \(reprl's agent export relies on it, see "
        r"agents/sb3_compat\.py; tested with 2\.9\.2\)"
    )
    with pytest.raises(sb3_compat.SB3InternalsChanged, match=expected):
        sb3_compat.check_internals()


def test_actions_from_features_are_the_policys_own() -> None:
    """The helper the latent view uses gives what SB3's predict gives, greedy and sampled."""
    from stable_baselines3 import PPO

    from agents.sb3_compat import actions_from_features

    model = PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu")
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    for det in (True, False):
        torch.manual_seed(1)
        expected, _ = model.predict(obs, deterministic=det)
        torch.manual_seed(1)
        with torch.no_grad():
            feats = model.policy.extract_features(torch.as_tensor(obs))
            got = actions_from_features(model.policy, feats, det).numpy()
        np.testing.assert_array_equal(got, expected)
