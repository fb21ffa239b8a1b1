"""The ``reprl`` command line, end to end on tiny sizes."""

import json
from pathlib import Path

from experiments.cli import main


def test_demo_writes_picture_and_summary(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path), "--num-envs", "4", "--steps", "30"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["variants"]) >= {"standard", "juggling"}
    assert all(v["steps_per_s"] > 0 for v in summary["variants"].values())
    assert (tmp_path / "breakout_variants.png").stat().st_size > 0
    assert json.loads((tmp_path / "demo.json").read_text())["num_envs"] == 4


def test_collect_pretrain_probe_pictures(tmp_path: Path, capsys) -> None:
    data = tmp_path / "d.h5"
    assert main(["collect", "--env", "reprl/BreakoutStandard-v0", "reprl/BreakoutOffsetPaddle-v0",
                 "--frames", "1200", "--out", str(data), "--num-envs", "8"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 1200 and len(out["domains"]) == 2
    run = tmp_path / "vae"
    assert main(["pretrain", f"dataset={data}", f"out={run}", "steps=4", "batch_size=8",
                 "model.latent_dim=6", "log_every=2"]) == 0  # fmt: skip
    enc = run / "encoder.safetensors"
    assert enc.exists()
    capsys.readouterr()
    assert main(["probe", str(enc), str(data), "--metrics", "probe", "mig",
                 "--out", str(tmp_path / "p.json")]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "paddle_x" in table and "MIG" in table
    res = json.loads((tmp_path / "p.json").read_text())
    assert 0.0 <= res["mig"] <= 1.0 and res["encoder"]["latent_dim"] == 6
    assert main(["pictures", str(enc), str(data), "--out", str(tmp_path / "pics")]) == 0
    assert (tmp_path / "pics" / "traversals.png").exists()


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["pretrain", "stepz=3"]) == 2
    assert "unknown keys ['stepz']" in capsys.readouterr().err
