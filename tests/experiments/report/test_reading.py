"""Readers of the file contract, learning curves and provenance summaries."""

from pathlib import Path

import numpy as np
import pytest

from envs.errors import ReprlError
from experiments.report import (
    EVAL_COLUMNS,
    PathDisplay,
    ReportError,
    agent_slug,
    build_report,
    learning_curves,
    read_eval_run,
    read_train_run,
    run_stem,
    summarise_provenance,
)
from tests.experiments.report.fakes import SEEDS, write_run


def test_slug_and_stem() -> None:
    assert agent_slug("beta_vae_dae/frozen") == "beta_vae_dae-frozen"
    assert agent_slug("pixels") == "pixels"
    assert run_stem("beta_vae/finetune", 3) == "beta_vae-finetune__3"
    assert issubclass(ReportError, ReprlError)


def test_conflicting_duplicate_run_is_an_error(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_run(other, "pixels", 0)
    path = other / "eval" / "pixels__0.csv"
    path.write_text(path.read_text().replace(",10.0,", ",10.5,", 1))
    with pytest.raises(ReportError, match="same run with different results"):
        build_report([root, other], tmp_path / "out", reps=50)


def test_malformed_inputs_give_clear_errors(root: Path, tmp_path: Path) -> None:
    path = root / "eval" / "pixels__0.csv"
    good = path.read_text()
    path.write_text(good.replace("return,", "ret,", 1))
    with pytest.raises(ReportError, match=r"pixels__0\.csv: missing columns \['return'\]") as e:
        build_report([root], tmp_path / "out", reps=50)
    assert ",".join(EVAL_COLUMNS) in str(e.value)
    lines = good.splitlines()
    lines[3] = lines[3].replace(",true", ",maybe")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError, match=r"pixels__0\.csv:4: column 'deterministic'"):
        read_eval_run(path)
    path.write_text(good.replace("pixels,0,", "pixels,5,"))
    with pytest.raises(ReportError, match="seed column"):
        read_eval_run(path)
    path.write_text(good.replace("pixels,", "darla,"))
    with pytest.raises(ReportError, match=r"expected the file darla__0\.csv"):
        read_eval_run(path)
    path.write_text(good.splitlines()[0] + "\n")
    with pytest.raises(ReportError, match="no episodes"):
        read_eval_run(path)
    path.write_text(good)
    (root / "eval" / "pixels__0.json").unlink()
    with pytest.raises(ReportError, match=r"pixels__0\.json: missing"):
        read_eval_run(path)
    metrics = root / "train" / "pixels__1" / "metrics.jsonl"
    metrics.write_text('{"global_step": 1}\n{"global_step": 2, "charts/episodic_return": "x"}\n')
    with pytest.raises(ReportError, match=r"metrics\.jsonl:2"):
        read_train_run(metrics.parent)
    with pytest.raises(ReportError, match="not a directory"):
        build_report([tmp_path / "nowhere"], tmp_path / "out")
    with pytest.raises(ReportError, match="no evaluation files"):
        build_report([tmp_path], tmp_path / "out")


def test_learning_curves_on_common_grid(root: Path) -> None:
    runs = [read_train_run(root / "train" / f"pixels__{s}") for s in SEEDS]
    for r in runs:
        r.agent = "pixels"
    curves = learning_curves(runs, points=20, smooth=1)
    c = curves["pixels"]
    assert c["num_seeds"] == 3
    np.testing.assert_allclose(c["steps"], np.linspace(100, 2000, 20))
    # seed s returns step / 100 + s: the mean over seeds is step / 100 + 1, band is +-1
    np.testing.assert_allclose(c["mean"], c["steps"] / 100 + 1)
    np.testing.assert_allclose(c["max"] - c["min"], 2.0)
    # a trailing mean over 3 episodes of 1, 2, 3, ... lags by 1 once the window is full
    smoothed = learning_curves(runs[:1], points=20, smooth=3)["pixels"]
    np.testing.assert_allclose(smoothed["mean"][-1], (18 + 19 + 20) / 3)


def test_provenance_summary() -> None:
    s = summarise_provenance(
        {"train": {"agent": {"encoder": "name"}, "encoder": {"path": "/e", "sha256": "ff"}}}
    )
    assert (s["encoder"], s["encoder_sha256"]) == ("/e", "ff")
    assert s["dataset"] == "?" and s["config_hash_source"] == "computed"
    assert len(s["config_hash"]) == 16 and "*" not in s["config_hash"]
    assert summarise_provenance({"encoder": None})["encoder"] == "none"
    recorded = summarise_provenance({"config_hash": "abc", "version": "1"})
    assert (recorded["config_hash"], recorded["config_hash_source"]) == ("abc", "recorded")


def test_path_display_never_absolute(tmp_path: Path) -> None:
    root = tmp_path / "exp"
    show = PathDisplay(root / "report", [root])
    assert show(root / "eval" / "a.csv") == "../eval/a.csv"
    assert show("/somewhere/else/enc.safetensors", recorded=True) == "…/enc.safetensors"
    assert show("runs/x/enc.safetensors", recorded=True) == "runs/x/enc.safetensors"
    far = PathDisplay(tmp_path / "a" / "b" / "out", [root])
    assert far(root / "eval" / "a.csv") == "exp/eval/a.csv"
