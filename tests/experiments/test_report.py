"""The report: readers of the file contract, tables, results.csv, plots, merging roots."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.report import (
    EVAL_COLUMNS,
    RESULT_COLUMNS,
    ReportError,
    agent_slug,
    build_report,
    learning_curves,
    main,
    read_eval_run,
    read_train_run,
    run_stem,
    summarise_provenance,
)

SOURCE = "reprl/BreakoutStandard-v0"
OFFSET = "reprl/BreakoutOffsetPaddle-v0"
WALL = "reprl/BreakoutMiddleWall-v0"
ENVS = (SOURCE, OFFSET, WALL)
AGENTS = ("pixels", "beta_vae_dae/frozen")
SEEDS = (0, 1, 2)
# Seed s's mean return on an env is BASE + s; stochastic evaluation is 1 lower. The episodes of a
# seed are its mean +-1 and +-2, so per-seed means and means over seeds are known exactly.
BASE = {
    "pixels": {SOURCE: 10.0, OFFSET: 5.0, WALL: 2.0},
    "beta_vae_dae/frozen": {SOURCE: 8.0, OFFSET: 8.0, WALL: 6.0},
}
SPREAD = (-1.0, 1.0, -2.0, 2.0)


def write_run(root: Path, agent: str, seed: int, *, config: str = "c1") -> None:
    stem = run_stem(agent, seed)
    prov = {
        "run": stem,
        "agent": {"name": agent},
        "seed": seed,
        "encoder": None if agent == "pixels" else {"path": "/enc.safetensors", "sha256": "ab" * 32},
        "dataset": {"path": "/data.h5", "sha256": "cd" * 32},
        "config_hash": config,
        "reprl_version": "0.1.0",
    }
    train = root / "train" / stem
    train.mkdir(parents=True)
    lines = [json.dumps({"global_step": 0, "losses/value_loss": 1.0})]
    lines += [
        json.dumps({"global_step": 100 * i, "charts/episodic_return": float(i + seed)})
        for i in range(1, 21)
    ]
    (train / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (train / "provenance.json").write_text(json.dumps(prov))
    ev = root / "eval"
    ev.mkdir(parents=True, exist_ok=True)
    with (ev / f"{stem}.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EVAL_COLUMNS)
        for det in (True, False):
            for env in ENVS:
                mean = BASE[agent][env] + seed - (0.0 if det else 1.0)
                for i, d in enumerate(SPREAD):
                    w.writerow([agent, seed, env, i, mean + d, 100 + i, str(det).lower()])
    (ev / f"{stem}.json").write_text(json.dumps({"config": {"episodes": 4}, "train": prov}))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    for agent in AGENTS:
        for seed in SEEDS:
            write_run(r, agent, seed)
    return r


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def table_row(markdown: str, section: str, agent: str, after: str = "") -> list[str]:
    """Cells of ``agent``'s row in the first table below ``section`` (itself after ``after``)."""
    text = markdown[markdown.index(after) :] if after else markdown
    text = text[text.index(section) :]
    for line in text.splitlines():
        if line.startswith(f"| {agent} |"):
            return [c.strip() for c in line.strip("|").split("|")][1:]
    raise AssertionError(f"no row for {agent} under {section}")


def test_slug_and_stem() -> None:
    assert agent_slug("beta_vae_dae/frozen") == "beta_vae_dae-frozen"
    assert agent_slug("pixels") == "pixels"
    assert run_stem("beta_vae/finetune", 3) == "beta_vae-finetune__3"


def test_build_report_files_and_numbers(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = build_report([root], out, source_env=SOURCE, reps=300)
    for key in ("report", "results_csv", "learning_curves", "zero_shot"):
        assert Path(summary[key]).is_file()
    assert summary["envs"] == [SOURCE, WALL, OFFSET]  # source first, targets sorted
    assert sorted(p.name for p in out.iterdir()) == [
        "learning_curves.png",
        "report.md",
        "results.csv",
        "zero_shot.png",
    ]  # no temporary files left behind

    md = (out / "report.md").read_text()
    assert "## Deterministic evaluation" in md and "## Stochastic evaluation" in md
    # deterministic: seeds' means BASE + 0, 1, 2 -> mean over seeds BASE + 1
    row = table_row(md, "### Mean return", "pixels")
    assert [c.split(" [")[0] for c in row] == ["11.00", "3.00", "6.00"]
    row = table_row(md, "### Mean return", "beta_vae_dae/frozen")
    assert [c.split(" [")[0] for c in row] == ["9.00", "7.00", "9.00"]
    # stochastic: one lower
    row = table_row(md, "### Mean return", "pixels", after="## Stochastic")
    assert [c.split(" [")[0] for c in row] == ["10.00", "2.00", "5.00"]
    # the IQM table carries seeds / episodes; 3 seeds -> IQM equals the mean
    row = table_row(md, "### IQM over seeds", "pixels")
    assert row[0].startswith("11.00 [") and row[0].endswith("· 3 / 12")
    # transfer: mean target over mean source of the same seeds: 6 / 11, 3 / 11
    row = table_row(md, "### Transfer", "pixels")
    assert [c.split(" [")[0] for c in row] == ["27.3%", "54.5%"]
    # aggregate over the two targets: seed means (2,5), (3,6), (4,7) -> mean 4.5
    row = table_row(md, "### Aggregate", "pixels")
    assert row[0].startswith("4.50 [") and row[1].startswith("4.50 [")
    assert row[2].startswith("40.9% [") and row[-3:] == ["2", "3", "24"]
    # provenance: every input file with its sha256, and the run summaries
    assert md.count("metrics.jsonl") == 6 and md.count("provenance.json") == 6
    assert "`/enc.safetensors`" in md and "`/data.h5`" in md and "| c1 |" in md

    rows = read_results(out / "results.csv")
    assert list(rows[0]) == list(RESULT_COLUMNS)
    # 2 modes x 2 agents x (3 envs x {mean, iqm} + 2 transfer + 4 aggregate)
    assert len(rows) == 2 * 2 * (3 * 2 + 2 + 4)
    by_key = {(r["agent"], r["env_id"], r["deterministic"], r["statistic"]): r for r in rows}
    r = by_key[("pixels", OFFSET, "true", "mean")]
    assert float(r["point"]) == pytest.approx(6.0)
    assert 5.0 <= float(r["ci_low"]) <= 6.0 <= float(r["ci_high"]) <= 7.0
    assert (r["num_seeds"], r["num_episodes"]) == ("3", "12")
    r = by_key[("beta_vae_dae/frozen", WALL, "false", "iqm")]
    assert float(r["point"]) == pytest.approx(6.0)
    r = by_key[("pixels", OFFSET, "true", "pct_of_source")]
    assert float(r["point"]) == pytest.approx(600 / 11)
    r = by_key[("beta_vae_dae/frozen", "aggregate", "true", "mean_pct_of_source")]
    assert float(r["point"]) == pytest.approx(100 * 8.0 / 9.0)

    for name in ("learning_curves.png", "zero_shot.png"):
        with Image.open(out / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_report_is_reproducible_and_merges_roots(root: Path, tmp_path: Path) -> None:
    one = build_report([root], tmp_path / "one", source_env=SOURCE, reps=200, seed=7)
    again = build_report([root], tmp_path / "again", source_env=SOURCE, reps=200, seed=7)
    assert one["modes"] == again["modes"]
    # the same runs split over two roots (by agent and by seed), plus a duplicate of one run
    a, b = tmp_path / "a", tmp_path / "b"
    for agent in AGENTS:
        for seed in SEEDS:
            write_run(a if (agent == "pixels" or seed == 0) else b, agent, seed)
    write_run(b, "pixels", 1)  # byte-identical to a's copy: read once
    merged = build_report([a, b], tmp_path / "merged", source_env=SOURCE, reps=200, seed=7)
    assert merged["modes"] == one["modes"]
    assert (tmp_path / "merged" / "results.csv").read_text() == (
        (tmp_path / "one" / "results.csv").read_text()
    )
    assert merged["markdown"] == one["markdown"]


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


def test_unknown_source_env_is_an_error(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="reprl/Nope-v0"):
        build_report([root], tmp_path / "out", source_env="reprl/Nope-v0", reps=50)


def test_without_source_env_and_with_one_seed(tmp_path: Path) -> None:
    r = tmp_path / "r"
    write_run(r, "pixels", 4)
    summary = build_report([r], tmp_path / "out", reps=50)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "### Transfer" not in md and "Aggregate over all envs" in md
    assert "14.00 (1 seed: no CI)" in md
    cell = summary["modes"]["deterministic"]["cells"]["pixels"][SOURCE]
    assert cell["mean"] == [14.0, 14.0, 14.0] and cell["num_seeds"] == 1


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


def test_provenance_summary() -> None:
    s = summarise_provenance(
        {"train": {"agent": {"encoder": "name"}, "encoder": {"path": "/e", "sha256": "ff"}}}
    )
    assert (s["encoder"], s["encoder_sha256"]) == ("/e", "ff")
    assert s["dataset"] == "?" and s["config_hash"].endswith("*")
    assert summarise_provenance({"encoder": None})["encoder"] == "none"


def test_main_prints_tables(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(root), "--out", str(tmp_path / "out"), "--source-env", SOURCE, "--reps", "50"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "### Mean return" in printed and "| pixels | 11.00 [" in printed
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
