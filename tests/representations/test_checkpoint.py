"""Checkpoint format: header checks, clear errors, atomic writes, no pickle."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from representations import (
    BetaVAE,
    CheckpointError,
    DenoisingAutoencoder,
    file_provenance,
    load,
    read_header,
    save,
)
from representations.checkpoint import FORMAT_VERSION, HEADER_KEY

SMALL = {"input_shape": (1, 16, 16), "channels": (4, 4, 8, 8), "hidden_dim": 16}


@pytest.fixture
def vae_path(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "vae.safetensors"
    save(BetaVAE(latent_dim=3, **SMALL), path)
    return path


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a checkpoint with its reprl header passed through ``edit(header) -> header``."""
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta[HEADER_KEY] = json.dumps(edit(json.loads(meta[HEADER_KEY])))
    save_file(tensors, str(dst), metadata=meta)
    return dst


def test_header_layout(vae_path: Path) -> None:
    header = read_header(vae_path)
    assert set(header) == {
        "format_version",
        "method",
        "config",
        "input_spec",
        "latent_dim",
        "library_version",
        "provenance",
    }
    assert header["format_version"] == FORMAT_VERSION == 1
    assert header["method"] == "beta_vae"
    assert header["latent_dim"] == 3
    assert header["input_spec"] == {
        "shape": [1, 16, 16],
        "dtype": "float32",
        "channel_order": "L",
        "value_range": [0.0, 1.0],
    }
    assert header["config"]["channels"] == [4, 4, 8, 8]
    assert isinstance(header["library_version"], str) and header["library_version"]
    assert header["provenance"] is None


def test_file_is_plain_safetensors_no_pickle(vae_path: Path, monkeypatch) -> None:
    raw = vae_path.read_bytes()
    assert not raw.startswith(b"PK") and not raw.startswith(b"\x80")  # not zip / pickle
    tensors = load_file(str(vae_path))
    with safe_open(str(vae_path), framework="pt") as f:
        assert json.loads(f.metadata()[HEADER_KEY])["method"] == "beta_vae"
    assert "encoder.fc.weight" in tensors

    def boom(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    monkeypatch.setattr(torch, "load", boom)
    model = load(vae_path)
    assert torch.equal(model.state_dict()["encoder.fc.weight"], tensors["encoder.fc.weight"])


def test_truncated_file(vae_path: Path, tmp_path: Path) -> None:
    raw = vae_path.read_bytes()
    for cut, fragment in [(len(raw) - 10, "truncated"), (40, "truncated"), (5, "8-byte")]:
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=fragment):
            load(bad)


def test_random_bytes_and_empty(tmp_path: Path) -> None:
    rnd = tmp_path / "random.safetensors"
    rnd.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    for path in (rnd, empty):
        with pytest.raises(CheckpointError, match="not a reprl checkpoint"):
            load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.safetensors")


def test_plain_safetensors_without_header(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match=f"expected a '{HEADER_KEY}' header"):
        load(path)


def test_other_method_refused(tmp_path: Path) -> None:
    path = tmp_path / "dae.safetensors"
    DenoisingAutoencoder(latent_dim=4, **SMALL).save(path)
    with pytest.raises(CheckpointError) as info:
        load(path, expected_method="beta_vae")
    assert "expected a checkpoint of method 'beta_vae', got 'dae'" in str(info.value)
    assert isinstance(load(path, expected_method="dae"), DenoisingAutoencoder)


def test_future_format_version(vae_path: Path, tmp_path: Path) -> None:
    future = _rewrite(
        vae_path, tmp_path / "future.safetensors", lambda h: {**h, "format_version": 2}
    )
    with pytest.raises(CheckpointError) as info:
        load(future)
    assert "format_version 2" in str(info.value)
    assert f"format_version <= {FORMAT_VERSION}" in str(info.value)


def test_unknown_method(vae_path: Path, tmp_path: Path) -> None:
    alien = _rewrite(vae_path, tmp_path / "alien.safetensors", lambda h: {**h, "method": "alien"})
    with pytest.raises(CheckpointError) as info:
        load(alien)
    assert "'alien' is not registered" in str(info.value)
    assert "beta_vae" in str(info.value)  # lists the known names


def test_header_inconsistent_with_weights(vae_path: Path, tmp_path: Path) -> None:
    def bigger(h):
        return {**h, "config": {**h["config"], "hidden_dim": 32}}

    with pytest.raises(CheckpointError, match="weights do not match"):
        load(_rewrite(vae_path, tmp_path / "arch.safetensors", bigger))
    with pytest.raises(CheckpointError, match="latent_dim 5"):
        load(_rewrite(vae_path, tmp_path / "dim.safetensors", lambda h: {**h, "latent_dim": 5}))


def test_atomic_save_leaves_no_temp_files(tmp_path: Path, monkeypatch) -> None:
    model = BetaVAE(latent_dim=3, **SMALL)
    path = tmp_path / "sub" / "model.safetensors"
    model.save(path)
    model.save(path)  # overwrite in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors"]
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors"]
    assert path.read_bytes() == before  # the old checkpoint is intact


def test_provenance_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "frames.h5"
    data.write_bytes(b"frames")
    prov = file_provenance(data)
    assert prov["path"] == str(data.resolve()) and len(prov["sha256"]) == 64
    first = tmp_path / "a.safetensors"
    BetaVAE(latent_dim=3, **SMALL).save(first, provenance=prov)
    loaded = load(first)
    assert read_header(first)["provenance"] == prov == loaded.provenance
    second = tmp_path / "b.safetensors"
    loaded.save(second)  # re-saving keeps the provenance of the weights
    assert read_header(second)["provenance"] == prov
    with pytest.raises(TypeError, match="not JSON-plain"):
        loaded.save(tmp_path / "c.safetensors", provenance={"when": object()})


def test_beta_vae_dae_single_file_keeps_frozen_dae(tmp_path: Path) -> None:
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(latent_dim=4, **SMALL)
    vae = BetaVAE(latent_dim=3, reconstruction="dae", dae=dae, **SMALL)
    path = tmp_path / "darla.safetensors"
    vae.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["darla.safetensors"]
    assert any(k.startswith("dae.") for k in load_file(str(path)))
    loaded = load(path, expected_method="beta_vae")
    assert loaded.config["dae"] == dae.config
    assert all(not p.requires_grad for p in loaded.dae.parameters())
    for k, v in dae.state_dict().items():
        assert torch.equal(loaded.dae.state_dict()[k], v)
    loaded.train()
    assert loaded.training and not loaded.dae.training
