"""Shared fixtures of the agent tests: a tiny beta-VAE checkpoint."""

from pathlib import Path

import pytest
import torch

import representations as R

TINY = {"latent_dim": 8, "channels": (4, 4, 8, 8), "hidden_dim": 16}
"""A beta-VAE small enough for fast tests (same architecture family as the default)."""


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "vae.safetensors"
    R.make_representation("beta_vae", **TINY).save(path)
    return path
