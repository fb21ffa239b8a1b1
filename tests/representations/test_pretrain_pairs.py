"""The pretraining loop on pair methods (ST-DIM, ATC): what each step gets, the momentum
target's update after every optimiser step, and datasets that cannot give pairs, refused
before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import representations as R
from envs.errors import ReprlError
from envs.exploration import collect
from envs.storage.dataset import DatasetWriter, FrameDataset
from representations.pretrain import PretrainConfig, pretrain

SMALL = {"latent_dim": 8, "channels": [8, 8, 16, 16], "hidden_dim": 32}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "d.h5"
    collect("reprl/BreakoutStandard-v0", 600, out, num_envs=4, progress=False)
    return out


def cfg(data: Path, out: Path, method: str, **kw) -> PretrainConfig:
    base = dict(
        method=method,
        model=dict(SMALL),
        dataset=str(data),
        out=str(out),
        steps=4,
        batch_size=8,
        log_every=2,
        checkpoint_every=2,
    )
    return PretrainConfig(**{**base, **kw})


@pytest.mark.parametrize(("method", "offset"), [("st_dim", 1), ("atc", 3), ("atc", 5)])
def test_each_step_gets_pairs_k_apart_in_one_episode(
    data: Path, tmp_path: Path, monkeypatch, method: str, offset: int
) -> None:
    cls = R.get_class(method)
    ds = FrameDataset(data)
    frames = ds.frames(slice(None))
    seen = []
    original = cls.loss

    def loss(self, batch):
        assert sorted(batch) == ["next_obs", "obs"]
        assert batch["obs"].shape == (8, 3, 64, 64)
        assert batch["obs"].is_contiguous(memory_format=torch.channels_last)
        seen.append((batch["obs"].clone(), batch["next_obs"].clone()))
        return original(self, batch)

    monkeypatch.setattr(cls, "loss", loss)
    model = {**SMALL, "offset": offset}
    path = pretrain(cfg(data, tmp_path / "run", method, model=model), progress=False)
    assert R.load(path, expected_method=method).config["offset"] == offset
    # each anchor is a frame of the file; its partner is the frame `offset` rows later, same
    # episode and `offset` steps on
    rows: dict[bytes, list[int]] = {}
    for i, f in enumerate(frames):
        rows.setdefault(f.tobytes(), []).append(i)  # a static screen repeats

    def as_frame(x: torch.Tensor) -> np.ndarray:
        return (x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()

    for obs, nxt in seen:
        for a, b in zip(obs, nxt):
            partner = as_frame(b)
            assert any(
                i + offset < len(ds)
                and ds.episode[i + offset] == ds.episode[i]
                and ds.step[i + offset] == ds.step[i] + offset
                and np.array_equal(frames[i + offset], partner)
                for i in rows[as_frame(a).tobytes()]
            )
    ds.close()


def test_atc_target_moves_once_per_optimiser_step(data: Path, tmp_path: Path, monkeypatch) -> None:
    from representations.atc import ATC

    calls = {"n": 0}
    original = ATC.after_step

    def after_step(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(ATC, "after_step", after_step)
    path = pretrain(cfg(data, tmp_path / "run", "atc", steps=5), progress=False)
    assert calls["n"] == 5
    model = R.load(path, expected_method="atc")
    online, target = model.online.state_dict(), model.target.state_dict()
    assert any(not torch.equal(online[k], target[k]) for k in online)  # an EMA, not a copy


def short_episodes(path: Path, n: int = 40, length: int = 4) -> Path:
    with DatasetWriter(path, (64, 64, 3), {}, {"env_ids": ["x"]}) as w:
        w.append(
            {
                "frames": np.zeros((n, 64, 64, 3), np.uint8),
                "actions": np.zeros(n, np.int64),
                "rewards": np.zeros(n, np.float32),
                "dones": np.arange(n) % length == length - 1,
                "episode": np.arange(n) // length,
                "step": np.arange(n) % length,
                "domain": np.zeros(n, np.int64),
                "factors": {},
            }
        )
    return path


def test_episodes_shorter_than_offset_plus_one_are_refused(tmp_path: Path) -> None:
    data = short_episodes(tmp_path / "short.h5")
    run = tmp_path / "out" / "run"
    bad = cfg(data, run, "atc", model={**SMALL, "offset": 4})
    with pytest.raises(ReprlError, match=r"no episode segment of 5 .*longest has 4.*offset 4"):
        pretrain(bad, progress=False)
    assert not (tmp_path / "out").exists()
    pretrain(cfg(data, run, "atc", model={**SMALL, "offset": 3}), progress=False)  # fits


def test_batch_size_is_bounded_by_the_pairs(tmp_path: Path) -> None:
    data = short_episodes(tmp_path / "short.h5")  # 10 episodes of 4: 20 pairs 2 apart
    with pytest.raises(ReprlError, match=r"batch_size: expected at most the 20 pairs"):
        pretrain(
            cfg(data, tmp_path / "out", "st_dim", model={**SMALL, "offset": 2}, batch_size=21),
            progress=False,
        )
    assert not (tmp_path / "out").exists()


def test_a_scene_dataset_has_no_episodes_for_pairs(tmp_path: Path) -> None:
    from envs.scenes import collect_scenes

    scenes = tmp_path / "scenes.h5"
    collect_scenes(
        "reprl/LabCollectTrain-v0", 8, scenes, views_per_scene=4, num_envs=4, progress=False
    )
    with pytest.raises(ReprlError, match=r"holds scenes of 4 views .*not episodes; st_dim trains"):
        pretrain(cfg(scenes, tmp_path / "out", "st_dim", batch_size=4), progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_refused_before_anything_is_written(
    data: Path, tmp_path: Path
) -> None:
    with pytest.raises(ReprlError, match=r"device: expected an available device, got 'cuda'"):
        pretrain(cfg(data, tmp_path / "out", "st_dim", device="cuda"), progress=False)
    assert not (tmp_path / "out").exists()
