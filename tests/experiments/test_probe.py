"""The pipeline's probe stage: one JSON per encoder, content-keyed reuse, the Encoders table of
the report, configs refused before anything is written, and segmentation scores (ARI)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.config import ConfigError
from experiments.pipeline import (
    AgentStage,
    EncoderStage,
    ExperimentConfig,
    load_experiment,
    run,
    segmentation_scores,
)
from representations.base import InputSpec
from tests.experiments.report.fakes import table_row
from tests.experiments.test_pipeline import mtimes, tiny


def small(root: Path, name: str = "tiny") -> ExperimentConfig:
    """The tiny pipeline config, without videos, probed on 300 of its 512 frames."""
    cfg = tiny(root, name)
    cfg.evaluate.video = False
    cfg.probe.frames = 300
    return cfg


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[ExperimentConfig, dict]:
    cfg = small(tmp_path_factory.mktemp("probe"))
    return cfg, run(cfg)


def test_one_probe_file_per_encoder(finished) -> None:
    cfg, summary = finished
    base = Path(cfg.root) / cfg.name
    assert list(summary["stages"]) == [
        "collect",
        "pretrain",
        "probe",
        "train",
        "evaluate",
        "report",
    ]
    assert summary["stages"]["probe"]["status"] == "ran"
    for name, method in (("dae", "dae"), ("bvd", "beta_vae_dae")):
        data = json.loads((base / "probe" / f"{name}.json").read_text())
        assert data["encoder"] == name and data["method"] == method
        assert data["n_samples"] == 300 and data["config"]["frames"] == 300
        assert set(data["probe"]["per_factor"]) >= {"ball_x[0]", "ball_y[0]", "paddle_x"}
        assert isinstance(data["mig"], float) and "disentanglement" in data["dci"]
        assert data["checkpoint"]["path"] == f"pretrain/{name}/encoder.safetensors"
        assert data["dataset"]["path"] == "collect/explore.h5"
        assert "segmentation" not in data  # neither method decomposes frames
    bvd = json.loads((base / "probe" / "bvd.json").read_text())
    assert bvd["active_latents"]["latent_dim"] == 4


def test_the_encoders_table_shows_the_probe_numbers(finished) -> None:
    cfg, summary = finished
    base = Path(cfg.root) / cfg.name
    md = Path(summary["report"]).read_text()
    head = next(ln for ln in md[md.index("## Encoders") :].splitlines() if ln.startswith("| enc"))
    header = [c.strip() for c in head.strip("|").split("|")][1:]
    assert header[2:5] == ["`ball_x[0]`", "`ball_y[0]`", "`paddle_x`"]  # the ball first
    csv_rows = {r["encoder"]: r for r in csv.DictReader((base / "report" / "encoders.csv").open())}
    for name in ("dae", "bvd"):
        data = json.loads((base / "probe" / f"{name}.json").read_text())
        row = dict(zip(header, table_row(md, "## Encoders", name)))
        per = data["probe"]["per_factor"]
        for f in ("ball_x[0]", "ball_y[0]", "paddle_x"):
            assert row[f"`{f}`"] == f"{per[f]['score']:.3f}"
            assert float(csv_rows[name][f"r2:{f}"]) == per[f]["score"]
        assert row["mean R^2"] == f"{data['probe']['mean_r2']:.3f}"
        assert row["MIG"] == f"{data['mig']:.3f}"
        assert row["DCI disentanglement"] == f"{data['dci']['disentanglement']:.3f}"
        assert float(csv_rows[name]["mig"]) == data["mig"]
    bvd = dict(zip(header, table_row(md, "## Encoders", "bvd")))
    assert bvd["agents (normalised zero-shot score, deterministic)"].startswith("`frozen`")


def test_probe_is_reused_and_redone_when_its_config_changes(tmp_path: Path) -> None:
    cfg = small(tmp_path)
    cfg.agents = [AgentStage(name="frozen", encoder="bvd", mode="frozen")]
    run(cfg, until="probe")
    files = [tmp_path / "tiny" / "probe" / f"{n}.json" for n in ("dae", "bvd")]
    before = mtimes(*files)
    summary = run(cfg, until="probe")
    assert summary["stages"]["probe"]["status"] == "reused" and mtimes(*files) == before
    assert "train" not in summary["stages"]  # until="probe" stops there
    cfg.probe.frames = 200
    summary = run(cfg, until="probe")
    assert summary["stages"]["probe"]["status"] == "ran"
    assert summary["stages"]["pretrain"]["status"] == "reused"
    assert json.loads(files[1].read_text())["n_samples"] == 200


def test_disabled_probe_no_files_no_section(tmp_path: Path) -> None:
    cfg = small(tmp_path)
    cfg.probe.enabled = False
    cfg.agents = [AgentStage(name="frozen", encoder="bvd", mode="frozen")]
    summary = run(cfg)
    assert "probe" not in summary["stages"] and not (tmp_path / "tiny" / "probe").exists()
    assert "## Encoders" not in Path(summary["report"]).read_text()
    assert not (tmp_path / "tiny" / "report" / "encoders.csv").exists()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["probe.frames=0"], r"probe.frames: expected an integer >= 100, got 0"),
        (["probe.frames=99"], r"probe.frames: expected an integer >= 100, got 99"),
        (["probe.metrics=[probe,nope]"], r"probe.metrics: expected distinct names among \["),
        (["probe.metrics=[]"], r"probe.metrics: expected a non-empty list"),
        (["probe.segmentation_frames=-1"], r"probe.segmentation_frames: expected an integer >= 0"),
        (["probe.enabled=maybe"], r"probe.enabled"),
        (["probe.rendering_scenes=-2"], r"probe.rendering_scenes: expected an integer >= 0"),
    ],
)
def test_bad_probe_configs_are_refused_before_anything_is_written(
    tmp_path: Path, overrides, match
) -> None:
    with pytest.raises(ConfigError, match=match):
        run(load_experiment(None, [f"root={tmp_path}", *overrides]))
    assert not list(tmp_path.iterdir())


class FakeDecomposer(torch.nn.Module):
    """Splits a frame into masks by brightness: slot 0 the dark pixels (or every pixel, with
    ``one_slot``), slot 1 the rest."""

    def __init__(self, one_slot: bool = False) -> None:
        super().__init__()
        self.input_spec = InputSpec(shape=(3, 64, 64))
        self.one_slot = one_slot

    def to_model_input(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.permute(0, 3, 1, 2).float() / 255.0

    def decompose(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        bright = (obs.amax(dim=1, keepdim=True) > 0.1).float()
        if self.one_slot:
            bright = torch.zeros_like(bright)
        return {"masks": torch.stack([1 - bright, bright], dim=1)}  # (B, 2, 1, H, W)


def test_segmentation_scores_of_a_fake_decomposer() -> None:
    env = "reprl/BreakoutStandard-v0"
    s = segmentation_scores(FakeDecomposer(), env, 24, seed=3, env_kwargs={"min_object_size": 2})
    assert s["frames"] == 24 and s["env_id"] == env
    assert -1.0 <= s["ari"] <= 1.0 and -1.0 <= s["fg_ari"] <= 1.0
    assert s["ari"] > 0.5  # the background is told apart from the objects
    flat = segmentation_scores(FakeDecomposer(one_slot=True), env, 8, seed=3)
    assert flat["ari"] == pytest.approx(0.0) and flat["fg_ari"] == pytest.approx(0.0)
    again = segmentation_scores(
        FakeDecomposer(), env, 24, seed=3, env_kwargs={"min_object_size": 2}
    )
    assert again == s


def test_a_decomposing_encoder_is_scored_with_ari(tmp_path: Path, monkeypatch) -> None:
    import envs.segmentation

    cfg = small(tmp_path)
    cfg.probe.frames = 100
    cfg.probe.segmentation_frames = 16
    monet = {
        "num_slots": 3,
        "slot_dim": 4,
        "unet_blocks": 3,
        "unet_channels": 4,
        "unet_mlp_dim": 16,
        "encoder_channels": [4, 4, 8, 8],
        "encoder_hidden_dim": 16,
        "decoder_channels": [4, 4],
    }
    cfg.encoders = [EncoderStage(name="monet", method="monet", steps=2, batch_size=4, model=monet)]
    cfg.agents = [AgentStage(name="frozen", encoder="monet", mode="frozen")]
    run(cfg, until="probe")
    path = tmp_path / "tiny" / "probe" / "monet.json"
    seg = json.loads(path.read_text())["segmentation"]
    assert seg["frames"] == 16 and seg["env_id"] == cfg.collect.env_ids[0]
    assert -1.0 <= seg["ari"] <= 1.0 and -1.0 <= seg["fg_ari"] <= 1.0
    # a collect env without a ground-truth segmentation: skipped, with the reason
    monkeypatch.setattr(envs.segmentation, "has_segmentation", lambda env_id: False)
    cfg.probe.seed = 1
    run(cfg, until="probe")
    seg = json.loads(path.read_text())["segmentation"]
    assert "ari" not in seg and "no ground-truth segmentation" in seg["skipped"]
    assert np.isfinite(json.loads(path.read_text())["mig"])


def test_a_dataset_without_factors_is_not_an_error(tmp_path: Path) -> None:
    """ALE records no ground-truth factors: the probe file says so, the experiment goes on."""
    from experiments.report import encoder_rows, read_probe

    cfg = small(tmp_path)
    cfg.probe.frames = 100
    cfg.collect.env_ids, cfg.collect.env_kwargs = ["ALE/Breakout-v5"], {}
    cfg.collect.frames = 200
    cfg.encoders = [EncoderStage(name="vae", method="beta_vae", steps=2, batch_size=8)]
    cfg.agents = [AgentStage(name="frozen", encoder="vae", mode="frozen")]
    summary = run(cfg, until="probe")
    assert summary["stages"]["probe"]["status"] == "ran"
    path = tmp_path / "tiny" / "probe" / "vae.json"
    data = json.loads(path.read_text())
    assert "no factors" in data["skipped"] and "probe" not in data
    assert data["method"] == "beta_vae" and data["latent_dim"] == 32
    (row,) = encoder_rows([read_probe(path, tmp_path / "tiny")])
    assert "no factors" in row["note"] and row["mean_r2"] == "" and row["mig"] == ""


def test_a_sequence_encoder_is_scored_on_fresh_episodes(tmp_path: Path) -> None:
    """CPC's own objective on episodes it never trained on: accuracy per k beside chance, in the
    JSON, encoders.csv and the Encoders table; the temporary dataset is gone afterwards."""
    from experiments.report import encoder_rows, read_probe

    cfg = small(tmp_path)
    cfg.probe.frames = 100
    cfg.probe.sequence_frames = 512
    cfg.encoders = [EncoderStage(name="cpc", method="cpc", steps=2, batch_size=4)]
    cfg.agents = [AgentStage(name="frozen", encoder="cpc", mode="frozen")]
    run(cfg, until="probe")
    d = tmp_path / "tiny" / "probe"
    path = d / "cpc.json"
    pred = json.loads(path.read_text())["prediction"]
    assert pred["frames"] == 512 and pred["chance"] == pytest.approx(1 / (16 * 12))
    assert {f"acc_k{k}" for k in range(1, 5)} <= set(pred)
    assert all(0 <= pred[f"acc_k{k}"] <= 1 for k in range(1, 5))
    assert sorted(p.name for p in d.iterdir() if p.is_dir()) == []  # no temporary left
    (row,) = encoder_rows([read_probe(path, tmp_path / "tiny")])
    assert row["pred_acc_k1"] == pytest.approx(pred["acc_k1"])
    cfg.probe.sequence_frames = 0  # other settings: a non-sequence key, so the stage is redone
    cfg.probe.seed = 1
    run(cfg, until="probe")
    assert "prediction" not in json.loads(path.read_text())


def test_foreground_ari_on_lab_frames_leaves_floor_and_walls_out(monkeypatch) -> None:
    """A decomposer whose masks are the true objects, with floor, walls and ceiling merged into
    one slot: FG-ARI 1 on the Lab (those ids are no object), ARI below 1 (they were merged)."""
    import envs.segmentation as seg

    frames, ids = seg.segmented_frames("reprl/LabCollect-v0", 8, num_envs=4, seed=2)
    monkeypatch.setattr(seg, "segmented_frames", lambda *a, **k: (frames, ids))

    class Oracle:
        input_spec = InputSpec(shape=(3, 64, 64))

        def eval(self) -> "Oracle":
            return self

        def to_model_input(self, x: torch.Tensor) -> torch.Tensor:
            return x.permute(0, 3, 1, 2).float() / 255

        def decompose(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            slot = torch.from_numpy(np.maximum(ids[: len(x)] - 2, 0))  # 0, 1, 2 -> slot 0
            masks = torch.nn.functional.one_hot(slot, int(ids.max()) - 1)
            return {"masks": masks.permute(0, 3, 1, 2)[:, :, None].float()}

    s = segmentation_scores(Oracle(), "reprl/LabCollect-v0", 8, seed=2)
    assert s["fg_ari"] == pytest.approx(1.0)
    assert s["ari"] < 1.0


def test_a_scene_encoder_is_scored_by_rendering_fresh_scenes(tmp_path: Path) -> None:
    """GQN pretrains on a scene dataset of the Lab rooms; the probe renders the last view of
    fresh scenes from their other views, beside the mean-of-context baseline, into the JSON and
    encoders.csv; the temporary scenes are gone afterwards."""
    from experiments.report import encoder_rows, read_probe

    cfg = small(tmp_path)
    cfg.collect.env_ids = ["reprl/LabCollectTrain-v0"]
    cfg.collect.views_per_scene = 4
    cfg.collect.frames = 400
    cfg.probe.frames = 100
    cfg.probe.rendering_scenes = 6
    cfg.encoders = [EncoderStage(name="gqn", method="gqn", steps=2, batch_size=4)]
    cfg.agents = [AgentStage(name="frozen", encoder="gqn", mode="frozen")]
    run(cfg, until="probe")
    d = tmp_path / "tiny" / "probe"
    record = json.loads((d / "gqn.json").read_text())
    rend = record["rendering"]
    assert rend["scenes"] == 6 and rend["context_views"] == 3
    assert 0 < rend["mse"] < 1 and 0 < rend["baseline_mse"] < 1
    assert rend["ratio"] == pytest.approx(rend["mse"] / rend["baseline_mse"])
    assert "agent_x" in record["probe"]["per_factor"]  # the views are frames with factors too
    assert sorted(p.name for p in d.iterdir() if p.is_dir()) == []  # no temporary left
    (row,) = encoder_rows([read_probe(d / "gqn.json", tmp_path / "tiny")])
    assert row["render_mse"] == pytest.approx(rend["mse"])
    assert row["render_baseline_mse"] == pytest.approx(rend["baseline_mse"])


def test_a_scene_encoder_needs_a_scene_dataset(tmp_path: Path) -> None:
    cfg = small(tmp_path)
    cfg.encoders = [EncoderStage(name="gqn", method="gqn", steps=2, batch_size=4)]
    cfg.agents = [AgentStage(name="frozen", encoder="gqn", mode="frozen")]
    with pytest.raises(
        ConfigError,
        match=r"encoders.gqn: gqn trains on scenes .*collect.views_per_scene >= 2, got 0",
    ):
        run(cfg)
    assert not list(tmp_path.iterdir())
