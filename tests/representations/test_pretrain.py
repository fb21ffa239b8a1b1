"""The pretraining loop: artefacts, reuse, resume after a kill, the NaN guard, bad input."""

import json
from pathlib import Path

import pytest
import torch

import representations as R
from envs.exploration import collect
from representations.beta_vae import BetaVAE
from representations.pretrain import PretrainConfig, pretrain


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pre") / "d.h5"
    collect("reprl/BreakoutStandard-v0", 600, out, num_envs=4, progress=False)
    return out


def cfg(data: Path, out: Path, **kw) -> PretrainConfig:
    base = dict(method="beta_vae", model={"latent_dim": 8}, dataset=str(data), out=str(out),
                steps=6, batch_size=8, log_every=2, checkpoint_every=2)  # fmt: skip
    return PretrainConfig(**{**base, **kw})


def test_pretrain_writes_a_loadable_encoder_with_provenance(data: Path, tmp_path: Path) -> None:
    path = pretrain(cfg(data, tmp_path / "run"), progress=False)
    model = R.load(path, expected_method="beta_vae")
    assert model.latent_dim == 8
    assert model.provenance["dataset"]["sha256"] == R.file_provenance(data)["sha256"]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4, 6]
    assert all(x["perf/images_per_s"] > 0 and "loss/kl" in x for x in lines)
    assert list((tmp_path / "run" / "tb").iterdir())
    assert not (tmp_path / "run" / "state.safetensors").exists()
    # same config again: reused, not retrained
    mtime = path.stat().st_mtime_ns
    assert pretrain(cfg(data, tmp_path / "run"), progress=False) == path
    assert path.stat().st_mtime_ns == mtime


def test_killed_run_resumes_from_its_last_state(data: Path, tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    original = BetaVAE.loss

    def dies_at_5(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(BetaVAE, "loss", dies_at_5)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg(data, tmp_path / "run"), progress=False)
    run = tmp_path / "run"
    assert (run / "state.safetensors").exists() and not (run / "encoder.safetensors").exists()
    calls["n"] = -100  # no more deaths; count the steps the resumed run takes
    pretrain(cfg(data, tmp_path / "run"), progress=False)
    assert calls["n"] == -100 + 2  # resumed at step 4 of 6
    assert (run / "encoder.safetensors").exists()


def test_nan_loss_stops_with_a_clear_error(data: Path, tmp_path: Path, monkeypatch) -> None:
    def nan_loss(self, batch):
        return torch.tensor(float("nan"), requires_grad=True), {"recon": float("nan")}

    monkeypatch.setattr(BetaVAE, "loss", nan_loss)
    with pytest.raises(FloatingPointError, match="non-finite loss nan at step 0"):
        pretrain(cfg(data, tmp_path / "run"), progress=False)
    assert not (tmp_path / "run" / "encoder.safetensors").exists()


def test_frames_that_do_not_fit_the_model_are_refused(data: Path, tmp_path: Path) -> None:
    bad = cfg(data, tmp_path / "run", model={"input_shape": [3, 32, 32]})
    with pytest.raises(ValueError, match=r"has frames \(H, W, C\) = \(64, 64, 3\)"):
        pretrain(bad, progress=False)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"method": "pca"}, "method: unknown 'pca'"), ({"steps": 0}, "steps: expected >= 1"),
     ({"dataset": ""}, "dataset: expected the path")],
)  # fmt: skip
def test_invalid_config(data: Path, tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pretrain(cfg(data, tmp_path / "run", **kw), progress=False)
