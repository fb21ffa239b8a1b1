"""The pretraining loop: artefacts, content-keyed reuse, resume after a kill with one history,
the NaN guard, bad input that leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import representations as R
from envs.errors import ReprlError
from envs.exploration import collect
from envs.storage.files import file_sha256
from representations.beta_vae import BetaVAE
from representations.pretrain import PretrainConfig, pretrain


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pre") / "d.h5"
    collect("reprl/BreakoutStandard-v0", 600, out, num_envs=4, progress=False)
    return out


@pytest.fixture(scope="module")
def other_data(tmp_path_factory) -> Path:
    """Same env and size as ``data``, other seed: same settings, other content."""
    out = tmp_path_factory.mktemp("pre") / "d.h5"
    collect("reprl/BreakoutStandard-v0", 600, out, num_envs=4, seed=1, progress=False)
    return out


def cfg(data: Path, out: Path, **kw) -> PretrainConfig:
    base = dict(
        method="beta_vae",
        model={"latent_dim": 8},
        dataset=str(data),
        out=str(out),
        steps=6,
        batch_size=8,
        log_every=2,
        checkpoint_every=2,
    )
    return PretrainConfig(**{**base, **kw})


def logged_steps(run: Path) -> list[int]:
    return [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def tensorboard_steps(run: Path, tag: str = "loss/loss") -> list[int]:
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def dies_at(monkeypatch, call: int, exc: type[BaseException] = RuntimeError) -> dict[str, int]:
    """Makes ``BetaVAE.loss`` raise ``exc`` on its ``call``-th call; returns the call counter."""
    calls = {"n": 0}
    original = BetaVAE.loss

    def loss(self, batch):
        calls["n"] += 1
        if calls["n"] == call:
            raise exc("killed")
        return original(self, batch)

    monkeypatch.setattr(BetaVAE, "loss", loss)
    return calls


def test_pretrain_writes_a_loadable_encoder_with_provenance(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = pretrain(cfg(data, run), progress=False)
    assert path == run / "encoder.safetensors"
    model = R.load(path, expected_method="beta_vae")
    assert model.latent_dim == 8
    assert model.provenance["dataset"] == R.file_provenance(data)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4, 6]
    assert all(x["perf/images_per_s"] > 0 and "loss/kl" in x for x in lines)
    assert tensorboard_steps(run) == [2, 4, 6]
    assert not (run / "state.safetensors").exists()
    assert json.loads((run / "stage.json").read_text())["finished"] is True
    # same config again: reused, not retrained
    mtime = path.stat().st_mtime_ns
    assert pretrain(cfg(data, run), progress=False) == path
    assert path.stat().st_mtime_ns == mtime


def test_killed_run_resumes_from_its_last_state(data: Path, tmp_path: Path, monkeypatch) -> None:
    calls = dies_at(monkeypatch, 5, KeyboardInterrupt)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg(data, run), progress=False)
    assert (run / "state.safetensors").exists() and not (run / "encoder.safetensors").exists()
    calls["n"] = -100  # no more deaths; count the steps the resumed run takes
    pretrain(cfg(data, run), progress=False)
    assert calls["n"] == -100 + 2  # resumed at step 4 of 6
    assert (run / "encoder.safetensors").exists()


def test_kill_and_resume_keep_one_monotonic_history(
    data: Path, tmp_path: Path, monkeypatch
) -> None:
    """Rows logged after the last state (steps 4) are dropped, not kept beside the new ones."""
    run = tmp_path / "run"
    c = cfg(data, run, log_every=1, checkpoint_every=3)
    calls = dies_at(monkeypatch, 5)  # steps 1-4 logged, state at step 3
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(c, progress=False)
    assert logged_steps(run) == [1, 2, 3, 4]
    calls["n"] = -100
    pretrain(c, progress=False)
    assert calls["n"] == -100 + 3  # resumed at step 3 of 6
    assert logged_steps(run) == [1, 2, 3, 4, 5, 6]
    assert tensorboard_steps(run) == [1, 2, 3, 4, 5, 6]


def test_a_new_config_starts_a_fresh_history(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    pretrain(cfg(data, run), progress=False)
    pretrain(cfg(data, run, steps=4, seed=1), progress=False)
    assert logged_steps(run) == [2, 4]
    assert tensorboard_steps(run) == [2, 4]
    assert R.load(run / "encoder.safetensors").provenance["pretrain"]["seed"] == 1


def test_steps_below_checkpoint_every_still_leave_a_resumable_state(
    data: Path, tmp_path: Path, monkeypatch
) -> None:
    run = tmp_path / "run"
    c = cfg(data, run, checkpoint_every=500)
    calls = dies_at(monkeypatch, 5)
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(c, progress=False)
    assert (run / "state.safetensors").exists()
    calls["n"] = -100
    pretrain(c, progress=False)
    assert calls["n"] == -100 + 3  # the state of step 3 (= steps // 2) was used


def test_a_dataset_rewritten_at_the_same_path_retrains(
    data: Path, other_data: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "d.h5"
    shutil.copyfile(data, dataset)
    path = pretrain(cfg(dataset, tmp_path / "run"), progress=False)
    assert R.load(path).provenance["dataset"]["sha256"] == file_sha256(data)
    shutil.copyfile(other_data, dataset)  # same path, same settings, other frames
    pretrain(cfg(dataset, tmp_path / "run"), progress=False)
    assert R.load(path).provenance["dataset"]["sha256"] == file_sha256(other_data)


def test_a_dae_retrained_at_the_same_path_retrains_the_beta_vae_dae(
    data: Path, tmp_path: Path
) -> None:
    def dae(seed: int) -> Path:
        c = cfg(data, tmp_path / "dae", method="dae", model={"latent_dim": 8}, seed=seed, steps=2)
        return pretrain(c, progress=False)

    dae_path = dae(seed=0)
    bvd = cfg(data, tmp_path / "bvd", method="beta_vae_dae", model={"dae": str(dae_path)}, steps=2)
    first = R.load(pretrain(bvd, progress=False))
    new_dae = R.load(dae(seed=1))  # same path, new weights
    assert dae_path == tmp_path / "dae" / "encoder.safetensors"
    second = R.load(pretrain(bvd, progress=False))
    for k, v in new_dae.state_dict().items():
        torch.testing.assert_close(second.dae.state_dict()[k], v)
    assert not torch.equal(first.dae.encoder.fc.weight, second.dae.encoder.fc.weight)
    assert second.provenance["inputs"]["model.dae"] == file_sha256(dae_path)


def test_nan_loss_stops_with_a_clear_error(data: Path, tmp_path: Path, monkeypatch) -> None:
    def nan_loss(self, batch):
        return torch.tensor(float("nan"), requires_grad=True), {"recon": float("nan")}

    monkeypatch.setattr(BetaVAE, "loss", nan_loss)
    with pytest.raises(FloatingPointError, match="non-finite loss nan at step 0"):
        pretrain(cfg(data, tmp_path / "run"), progress=False)
    assert not (tmp_path / "run" / "encoder.safetensors").exists()


def test_frames_that_do_not_fit_the_model_are_refused(data: Path, tmp_path: Path) -> None:
    bad = cfg(data, tmp_path / "out" / "run", model={"input_shape": [3, 32, 32]})
    with pytest.raises(
        ReprlError,
        match=r"has frames \(H, W, C\) = \(64, 64, 3\).*expects \(C, H, W\) = \(3, 32, 32\)",
    ):
        pretrain(bad, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"method": "pca"}, "method: expected one of .*got 'pca'"),
        ({"steps": -1}, "steps: expected an integer >= 0, got -1"),
        ({"lr": 0.0}, "lr: expected > 0"),
        ({"dataset": ""}, "dataset: expected the path"),
        ({"model": {"betta": 4}}, r"model: beta_vae: unknown config keys \['betta'\]"),
        ({"batch_size": 10_000}, "batch_size: expected at most the 600 frames"),
        ({"method": "beta_vae_dae", "model": {"dae": "nope.st"}}, "dae: expected a DAE check"),
        ({"device": "gpu"}, "device: expected a torch device"),
    ],
)
def test_invalid_config_leaves_nothing_behind(
    data: Path, tmp_path: Path, kw: dict, match: str
) -> None:
    with pytest.raises(ReprlError, match=match):
        pretrain(cfg(data, tmp_path / "out" / "run", **kw), progress=False)
    assert not (tmp_path / "out").exists()


def test_a_missing_or_unreadable_dataset_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(ReprlError, match="no dataset at"):
        pretrain(cfg(tmp_path / "none.h5", tmp_path / "out" / "run"), progress=False)
    (tmp_path / "text.h5").write_text("not a dataset")
    with pytest.raises(ReprlError, match="not a readable HDF5 dataset"):
        pretrain(cfg(tmp_path / "text.h5", tmp_path / "out" / "run"), progress=False)
    assert not (tmp_path / "out").exists()


def test_an_out_holding_other_files_is_not_emptied(data: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ReprlError, match=r"out: expected a new or pretraining run .*notes\.txt"):
        pretrain(cfg(data, tmp_path), progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_encoder_records_its_latent_activity(data: Path, tmp_path: Path) -> None:
    """The header's activity is that of the saved encoder's codes on 2,000 dataset frames."""
    import numpy as np

    from envs.storage.dataset import FrameDataset
    from representations.analysis import encode_dataset
    from representations.metrics import latent_activity

    path = pretrain(cfg(data, tmp_path / "run"), progress=False)
    recorded = R.load(path).provenance["latent_activity"]
    ds = FrameDataset(data)
    try:
        z = encode_dataset(R.load(path), ds, np.arange(len(ds)))  # 600 frames < 2,000: all
    finally:
        ds.close()
    assert recorded == latent_activity(z)
    assert recorded["frames"] == 600 and recorded["variational"] is True


def test_a_collapsed_encoder_is_warned_about(data: Path, tmp_path: Path, monkeypatch) -> None:
    from representations.pretrain import CollapseWarning

    monkeypatch.setattr(BetaVAE, "_encode", lambda self, obs: torch.zeros(len(obs), 8))
    with pytest.warns(CollapseWarning, match="beta_vae at .*encoder.safetensors collapsed"):
        path = pretrain(cfg(data, tmp_path / "run"), progress=False)
    assert R.load(path).provenance["latent_activity"]["active"] == 0


# --- methods that train on sequences (CPC) -----------------------------------------------------
CPC_MODEL = {
    "latent_dim": 8,
    "context_dim": 8,
    "prediction_steps": 2,
    "sequence_length": 6,
    "channels": [8, 8, 16, 16],
    "hidden_dim": 32,
}


def cpc_cfg(data: Path, out: Path, **kw) -> PretrainConfig:
    return cfg(data, out, **{"method": "cpc", "model": CPC_MODEL, "batch_size": 4, **kw})


def test_cpc_pretrains_on_sequences(data: Path, tmp_path: Path, monkeypatch) -> None:
    from representations.cpc import CPC

    seen = []
    original = CPC.loss

    def loss(self, batch):
        seq = batch["seq"]
        seen.append(
            (
                sorted(batch),
                tuple(seq.shape),
                seq.flatten(0, 1).is_contiguous(memory_format=torch.channels_last),
                float(seq.min()),
                float(seq.max()),
            )
        )
        return original(self, batch)

    monkeypatch.setattr(CPC, "loss", loss)
    run = tmp_path / "run"
    path = pretrain(cpc_cfg(data, run), progress=False)
    model = R.load(path, expected_method="cpc")
    assert model.sequence_length == 6 and model.latent_dim == 8
    assert len(seen) == 6
    for keys, shape, channels_last, lo, hi in seen:
        assert keys == ["seq"] and shape == (4, 6, 3, 64, 64)  # batch_size counts sequences
        assert channels_last and 0.0 <= lo <= hi <= 1.0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows] == [2, 4, 6]
    for row in rows:
        assert row["loss/chance"] == 1 / 24 and 0 <= row["loss/acc_k2"] <= 1
        assert row["perf/images_per_s"] > 0
    assert R.load(path).provenance["latent_activity"]["variational"] is False


def test_cpc_pretraining_is_seeded_and_resumes(data: Path, tmp_path: Path, monkeypatch) -> None:
    from representations.cpc import CPC

    first = R.load(pretrain(cpc_cfg(data, tmp_path / "a"), progress=False))
    calls = {"n": 0}
    original = CPC.loss

    def loss(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("killed")
        return original(self, batch)

    monkeypatch.setattr(CPC, "loss", loss)
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(cpc_cfg(data, tmp_path / "b"), progress=False)
    calls["n"] = -100
    resumed = R.load(pretrain(cpc_cfg(data, tmp_path / "b"), progress=False))
    assert calls["n"] == -100 + 2  # resumed at step 4 of 6
    again = R.load(pretrain(cpc_cfg(data, tmp_path / "c"), progress=False))
    for k, v in first.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k  # same seed, same weights
    assert first.state_dict().keys() == resumed.state_dict().keys()


def test_a_dataset_without_long_enough_episodes_is_refused(data: Path, tmp_path: Path) -> None:
    # the collector writes each env's frames in blocks of 64 consecutive steps
    bad = cpc_cfg(data, tmp_path / "out" / "run", model={**CPC_MODEL, "sequence_length": 65})
    with pytest.raises(
        ReprlError,
        match=r"has no episode segment of 65 consecutive frames .*longest segment has 64 frames",
    ):
        pretrain(bad, progress=False)
    assert not (tmp_path / "out").exists()


def test_cpc_batch_size_is_bounded_by_the_sequence_starts(data: Path, tmp_path: Path) -> None:
    from envs.storage.dataset import FrameDataset

    ds = FrameDataset(data)
    starts = len(ds.sequence_starts(60))
    bad = cpc_cfg(
        data,
        tmp_path / "out" / "run",
        model={**CPC_MODEL, "sequence_length": 60},
        batch_size=starts + 1,
    )
    with pytest.raises(
        ReprlError, match=rf"batch_size: expected at most the {starts} sequence starts of 60"
    ):
        pretrain(bad, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_dataset_of_short_episodes_is_refused_for_cpc(tmp_path: Path) -> None:
    """Episodes of 4 frames (plenty of frames in all) cannot give sequences of 6."""
    import numpy as np

    from envs.storage.dataset import DatasetWriter

    path = tmp_path / "short.h5"
    n = 40
    with DatasetWriter(path, (64, 64, 3), {}, {"env_ids": ["x"]}) as w:
        w.append(
            {
                "frames": np.zeros((n, 64, 64, 3), np.uint8),
                "actions": np.zeros(n, np.int64),
                "rewards": np.zeros(n, np.float32),
                "dones": np.arange(n) % 4 == 3,
                "episode": np.arange(n) // 4,
                "step": np.arange(n) % 4,
                "domain": np.zeros(n, np.int64),
                "factors": {},
            }
        )
    with pytest.raises(ReprlError, match=r"no episode segment of 6 .*longest segment has 4 frames"):
        pretrain(cpc_cfg(path, tmp_path / "out" / "run"), progress=False)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from envs.scenes import collect_scenes

    path = tmp_path_factory.mktemp("scenes") / "scenes.h5"
    collect_scenes(
        "reprl/LabCollectTrain-v0", 12, path, views_per_scene=5, num_envs=6, progress=False
    )
    return path


def test_gqn_pretrains_on_scenes(scenes: Path, tmp_path: Path, monkeypatch) -> None:
    """Each step gets whole scenes: all K views of a scene (one world) with their viewpoints."""
    from envs.storage.dataset import FrameDataset
    from representations.gqn import GQN

    ds = FrameDataset(scenes)
    by_view = {ds.frames(slice(i, i + 1)).tobytes(): i for i in range(len(ds))}
    vps = ds.viewpoints()
    ds.close()
    seen = []
    original = GQN.loss

    def loss(self, batch):
        views, cams = batch["views"], batch["viewpoints"]
        frames = (views * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
        rows = [[by_view[f[None].tobytes()] for f in scene] for scene in frames]
        seen.append((sorted(batch), tuple(views.shape), rows, cams.numpy()))
        return original(self, batch)

    monkeypatch.setattr(GQN, "loss", loss)
    cfg = PretrainConfig(
        method="gqn",
        dataset=str(scenes),
        out=str(tmp_path / "run"),
        steps=3,
        batch_size=4,
        log_every=1,
    )
    path = pretrain(cfg, progress=False)
    assert R.load(path, expected_method="gqn").step.item() == 3
    for keys, shape, rows, cams in seen:
        assert keys == ["viewpoints", "views"] and shape == (4, 5, 3, 64, 64)
        for row, cam in zip(rows, cams):
            s = row[0] // 5
            assert row == list(range(5 * s, 5 * s + 5))  # one scene, its views in order
            assert (cam == vps[5 * s : 5 * s + 5]).all()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["perf/images_per_s"] > 0 for r in rows)  # views of the scenes read


def test_a_scene_method_refuses_other_data(data: Path, scenes: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = PretrainConfig(method="gqn", dataset=str(data), out=str(out), steps=2, batch_size=2)
    with pytest.raises(ReprlError, match=r"holds trajectories; gqn trains on scenes of at least 2"):
        pretrain(cfg, progress=False)
    cfg.dataset, cfg.batch_size = str(scenes), 13
    with pytest.raises(ReprlError, match=r"batch_size: expected at most the 12 scenes"):
        pretrain(cfg, progress=False)
    assert not out.exists()
