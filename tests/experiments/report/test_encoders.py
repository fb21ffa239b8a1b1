"""The Encoders section and ``encoders.csv`` from hand-written probe files (the file contract's
``ROOT/probe/<encoder>.json``): factor order, the column cap, agents linked by checkpoint
sha256, outdated and merged files."""

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from experiments.report import ENCODER_COLUMNS, ReportError, build_report, order_factors
from tests.experiments.report.fakes import SOURCE, table_row

FROZEN_SHA = "ab" * 32  # the checkpoint the fakes' beta_vae_dae/frozen agent trained on


def factor(score: float | None, metric: str = "r2") -> dict[str, Any]:
    kind = "continuous" if metric == "r2" else "discrete"
    entry = {"kind": kind, "metric": metric, "score": score, "baseline": 0.0}
    return entry if score is not None else {**entry, "skipped": "constant over the dataset"}


PER_FACTOR = {  # in the dataset's order, as the probe gives them
    "paddle_x": factor(0.5),
    "paddle_y": factor(None),
    "ball_x[0]": factor(0.125),
    "ball_y[0]": factor(0.25),
    "ball_vx[0]": factor(0.625, "macro_f1"),
    "ball_vy[0]": factor(0.75, "macro_f1"),
    "ball_x[1]": factor(-0.5),
    "bricks_left": factor(0.375, "macro_f1"),
    "lives": factor(0.875, "macro_f1"),
    "variant": factor(None, "macro_f1"),
    "wall_x": factor(0.9),
    "target_x": factor(0.8),
    "target_y": factor(0.85),
}


def write_probe(root: Path, name: str, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "encoder": name,
        "method": "beta_vae_dae",
        "latent_dim": 8,
        "active_latents": {"active": 5, "latent_dim": 8, "variational": True},
        "checkpoint": {"path": f"pretrain/{name}/encoder.safetensors", "sha256": FROZEN_SHA},
        "n_samples": 5000,
        "n_episodes": 40,
        "probe": {"per_factor": PER_FACTOR, "mean_r2": 0.3125, "mean_f1": 0.65625},
        "mig": 0.0625,
        "dci": {"disentanglement": 0.1875, "completeness": 0.25, "informativeness": 0.5},
        **extra,
    }
    path = root / "probe" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_lab_pose_then_domain_before_objects() -> None:
    names = ["obj_x[0]", "obj_visible[0]", "room_look", "agent_yaw", "object_set", "agent_x"]
    assert order_factors(names) == [
        "agent_x",
        "agent_yaw",
        "room_look",
        "object_set",
        "obj_x[0]",
        "obj_visible[0]",
    ]


def test_ball_first_then_paddle_then_the_rest() -> None:
    assert order_factors(PER_FACTOR) == [
        "ball_x[0]",
        "ball_x[1]",
        "ball_y[0]",
        "paddle_x",
        "paddle_y",
        "ball_vx[0]",
        "ball_vy[0]",
        "bricks_left",
        "lives",
        "variant",
        "wall_x",
        "target_x",
        "target_y",
    ]


def test_encoders_table_and_csv(root: Path, tmp_path: Path) -> None:
    write_probe(root, "bvd")
    seg = {"ari": 0.5, "fg_ari": 0.25, "frames": 256, "env_id": SOURCE}
    other = {"path": "pretrain/monet/encoder.safetensors", "sha256": "cd" * 32}
    write_probe(root, "monet", method="monet", segmentation=seg, checkpoint=other, mig=None)
    (root / "probe" / "bvd.stage.json").write_text(json.dumps({"finished": True, "key": {}}))
    out = tmp_path / "out"
    summary = build_report([root], out, source_env=SOURCE, reps=100)
    md = (out / "report.md").read_text()
    assert md.index("## Agents") < md.index("## Encoders") < md.index("## Deterministic")
    head = next(ln for ln in md[md.index("## Encoders") :].splitlines() if ln.startswith("| enc"))
    assert [c.strip() for c in head.strip("|").split("|")] == [
        "encoder",
        "method",
        "active latents",
        "`ball_x[0]`",
        "`ball_x[1]`",
        "`ball_y[0]`",
        "`paddle_x`",
        "`ball_vx[0]` F1",
        "`ball_vy[0]` F1",
        "`bricks_left` F1",
        "`lives` F1",  # 8 factors: unscored ones (paddle_y, variant) are not columns
        "mean R^2",
        "MIG",
        "DCI disentanglement",
        "ARI",
        "FG-ARI",
        "agents (normalised zero-shot score, deterministic)",
    ]
    factors = ["0.125", "-0.500", "0.250", "0.500", "0.625", "0.750", "0.375", "0.875"]
    # OFFSET 0.8, 0.9, 1.0 and WALL 0.1, 0.2, 0.3 over seeds: (0.9 + 0.2) / 2
    assert table_row(md, "## Encoders", "bvd") == [
        "beta_vae_dae",
        "5 / 8",
        *factors,
        "0.312",
        "0.062",
        "0.188",
        "—",
        "—",
        "`beta_vae_dae/frozen` 0.550",
    ]
    assert table_row(md, "## Encoders", "monet")[-6:] == [
        "0.312",
        "—",
        "0.188",
        "0.500",
        "0.250",
        "none",
    ]
    assert "3 more factor(s) in `encoders.csv`: `wall_x`, `target_x`, `target_y`." in md
    rows = read_csv(out / "encoders.csv")
    assert list(rows[0]) == [
        *ENCODER_COLUMNS,
        "r2:ball_x[0]",
        "r2:ball_x[1]",
        "r2:ball_y[0]",
        "r2:paddle_x",
        "r2:paddle_y",
        "macro_f1:ball_vx[0]",
        "macro_f1:ball_vy[0]",
        "macro_f1:bricks_left",
        "macro_f1:lives",
        "macro_f1:variant",
        "r2:wall_x",
        "r2:target_x",
        "r2:target_y",
    ]
    bvd, monet = rows
    assert bvd["encoder"] == "bvd" and bvd["frames"] == "5000" and bvd["latent_dim"] == "8"
    assert float(bvd["r2:target_y"]) == 0.85 and bvd["r2:paddle_y"] == ""
    assert float(bvd["mean_f1"]) == 0.65625 and float(bvd["dci_completeness"]) == 0.25
    assert bvd["agents"] == "beta_vae_dae/frozen" and bvd["ari"] == ""
    assert bvd["zero_shot_normalised"] == "beta_vae_dae/frozen=0.55"
    assert float(monet["fg_ari"]) == 0.25 and monet["segmentation_frames"] == "256"
    assert monet["mig"] == "" and monet["agents"] == ""
    assert summary["encoders_csv"] == str(out / "encoders.csv") and len(summary["encoders"]) == 2
    assert "probe/bvd.json" in md  # an input file with its sha256
    assert "bvd.stage.json" not in md


def test_no_probe_files_no_section(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "encoders.csv").write_text("stale\n")
    summary = build_report([root], out, source_env=SOURCE, reps=100)
    assert "## Encoders" not in (out / "report.md").read_text()
    assert not (out / "encoders.csv").exists() and summary["encoders_csv"] is None


def test_a_probe_of_an_encoder_rewritten_since_is_left_out(root: Path, tmp_path: Path) -> None:
    ckpt = root / "pretrain" / "old" / "encoder.safetensors"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"retrained")
    write_probe(root, "old", checkpoint={"path": "pretrain/old/encoder.safetensors", "sha256": "0"})
    good = {
        "path": "pretrain/old/encoder.safetensors",
        "sha256": hashlib.sha256(b"retrained").hexdigest(),
    }
    write_probe(root, "new", checkpoint=good)
    out = tmp_path / "out"
    summary = build_report([root], out, source_env=SOURCE, reps=100)
    md = (out / "report.md").read_text()
    assert "- Left out `../root/probe/old.json`: its checkpoint " in md
    assert [r["encoder"] for r in summary["encoders"]] == ["new"]


def test_same_encoder_name_in_two_roots(root: Path, tmp_path: Path) -> None:
    from tests.experiments.report.fakes import write_experiment

    other = write_experiment(tmp_path / "other", seeds=(5,))
    write_probe(root, "bvd")
    write_probe(other, "bvd", mig=0.5)
    summary = build_report([root, other], tmp_path / "out", source_env=SOURCE, reps=100)
    assert [r["encoder"] for r in summary["encoders"]] == ["other/bvd", "root/bvd"]
    write_probe(other, "bvd")  # byte-identical: read once
    summary = build_report([root, other], tmp_path / "out", source_env=SOURCE, reps=100)
    assert [r["encoder"] for r in summary["encoders"]] == ["bvd"]


def test_a_malformed_probe_file_is_named(root: Path, tmp_path: Path) -> None:
    path = write_probe(root, "bvd")
    path.write_text(json.dumps({"method": "beta_vae"}))
    with pytest.raises(ReportError, match=r"bvd.json: expected a non-empty string 'encoder'"):
        build_report([root], tmp_path / "out", source_env=SOURCE, reps=100)
