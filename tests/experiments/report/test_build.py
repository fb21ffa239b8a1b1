"""build_report end to end on runs with hand-computed numbers: tables, CSVs, plots, main."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from PIL import Image

import envs
from experiments.cli import main as cli_main
from experiments.report import RESULT_COLUMNS, RUN_COLUMNS, ReportError, build_report
from tests.experiments.report.fakes import (
    AGENTS,
    OFFSET,
    SEEDS,
    SOURCE,
    WALL,
    read_results,
    table_row,
    write_run,
)

BETA = "beta_vae_dae/frozen"


def test_files_and_return_tables(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = build_report([root], out, source_env=SOURCE, reps=300)
    assert summary["envs"] == [SOURCE, WALL, OFFSET]  # source first, targets sorted
    assert summary["baseline"] == "pixels" and summary["reference"] == "random"
    assert sorted(p.name for p in out.iterdir()) == [
        "learning_curves.png",
        "report.md",
        "results.csv",
        "runs.csv",
        "zero_shot.png",
    ]  # no temporary files left behind
    md = (out / "report.md").read_text()
    assert "## Deterministic evaluation" in md and "## Stochastic evaluation" in md
    row = table_row(md, "### Mean return", "pixels")  # seed means BASE + 0, 1, 2
    assert [c.split(" [")[0] for c in row] == ["11.00", "3.00", "6.00"]
    row = table_row(md, "### Mean return", BETA)
    assert [c.split(" [")[0] for c in row] == ["9.00", "4.00", "9.00"]
    assert table_row(md, "### Mean return", "random") == [
        "0.00 (1 seed: no CI)",
        "2.00 (1 seed: no CI)",
        "0.00 (1 seed: no CI)",
    ]
    row = table_row(md, "### Mean return", "pixels", after="## Stochastic")
    assert [c.split(" [")[0] for c in row] == ["10.00", "2.00", "5.00"]
    # 3 seeds: the IQM equals the mean, so no IQM table, and the report says why
    assert "### IQM return" not in md and "IQM omitted: no cell has 4 or more seeds" in md
    assert "% of source" not in md and "pct_of_source" not in (out / "results.csv").read_text()
    for name in ("learning_curves.png", "zero_shot.png"):
        with Image.open(out / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
        assert (out / name).stat().st_size < 200_000


def test_normalised_scores_and_comparisons_hand_computed(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = build_report([root], out, source_env=SOURCE, reps=500)
    md = (out / "report.md").read_text()
    # constants: R_min = random's mean, R_max = best_return(env, max_episode_steps=1000)
    assert table_row(md, "### Normalised score", f"`{SOURCE}` (source)") == [
        "0.00",
        "4",
        "20.00",
        "defined",
    ]
    assert table_row(md, "### Normalised score", f"`{WALL}`")[:3] == ["2.00", "4", "12.00"]
    det = summary["modes"]["deterministic"]
    assert det["normalisers"][WALL]["r_min"] == 2.0 and det["normalisers"][WALL]["r_max"] == 12.0
    assert det["targets"] == [WALL, OFFSET] and det["left_out"] == {}
    norm = det["normalised"]
    # pixels: OFFSET 0.5, 0.6, 0.7; WALL 0, 0.1, 0.2; SOURCE 0.5, 0.55, 0.6 (see fakes)
    assert norm["pixels"][OFFSET]["mean"][0] == pytest.approx(0.6)
    assert norm["pixels"][WALL]["mean"][0] == pytest.approx(0.1)
    assert norm["pixels"][SOURCE]["mean"][0] == pytest.approx(0.55)
    assert norm[BETA][OFFSET]["mean"][0] == pytest.approx(0.9)
    assert norm[BETA][WALL]["mean"][0] == pytest.approx(0.2)
    assert "random" not in norm  # 0 by construction
    # the normalised interval is the return interval mapped by (R - R_min) / (R_max - R_min)
    ret = det["cells"]["pixels"][OFFSET]["mean"]
    np.testing.assert_allclose(norm["pixels"][OFFSET]["mean"], np.array(ret) / 10.0)
    row = table_row(md, "### Normalised score", "pixels")
    assert [c.split(" [")[0] for c in row] == ["0.55", "0.10", "0.60"]
    # aggregate over the targets: (0.6 + 0.1) / 2 and (0.9 + 0.2) / 2
    assert det["aggregate"]["pixels"]["mean"][0] == pytest.approx(0.35)
    assert det["aggregate"][BETA]["mean"][0] == pytest.approx(0.55)
    assert table_row(md, "### Aggregate normalised", BETA)[0].startswith("0.55 [")
    # IQM over 3 seeds x 2 targets = 6 scores trims one from each end: shown
    flat = [0.8, 0.9, 1.0, 0.1, 0.2, 0.3]
    iqm = scipy.stats.trim_mean(flat, 0.25)
    assert det["aggregate"][BETA]["iqm"][0] == pytest.approx(iqm)
    # paired differences (same seeds): OFFSET 0.3 and WALL 0.1 on every seed, so the bootstrap
    # of per-seed differences cannot move: the interval is the point
    cmp = det["comparisons"][BETA]
    assert cmp[OFFSET]["paired"] and cmp["aggregate"]["paired"]
    np.testing.assert_allclose(cmp[OFFSET]["diff"], [0.3] * 3)
    np.testing.assert_allclose(cmp[WALL]["diff"], [0.1] * 3)
    np.testing.assert_allclose(cmp["aggregate"]["diff"], [0.2] * 3)
    # P(beta > pixels): OFFSET all 9 pairs greater -> 1; WALL {.1,.2,.3} vs {0,.1,.2}:
    # 1.5 + 2.5 + 3 = 7 of 9; over targets (1 + 7/9) / 2 = 8/9
    assert cmp[OFFSET]["prob_improvement"][0] == 1.0
    assert cmp[WALL]["prob_improvement"][0] == pytest.approx(7 / 9)
    assert cmp["aggregate"]["prob_improvement"][0] == pytest.approx(8 / 9)
    lo, hi = cmp["aggregate"]["prob_improvement"][1:]
    assert 0.0 <= lo <= 8 / 9 <= hi <= 1.0
    assert "pixels" not in det["comparisons"]  # the baseline is not compared with itself
    row = table_row(md, "#### P(agent > `pixels`)", BETA)
    assert (
        row[0].startswith("0.78 [") and row[1].startswith("1.00 [") and row[2].startswith("0.89 [")
    )
    assert row[3] == "3 vs 3"
    row = table_row(md, "#### Normalised score, agent - `pixels`", BETA)
    assert row[:3] == ["0.10 [0.10, 0.10]", "0.30 [0.30, 0.30]", "0.20 [0.20, 0.20]"]

    rows = read_results(out / "results.csv")
    assert list(rows[0]) == list(RESULT_COLUMNS)
    by_key = {(r["agent"], r["env_id"], r["deterministic"], r["statistic"]): r for r in rows}
    assert {r["statistic"] for r in rows} == {
        "mean",
        "normalised_mean",
        "normalised_iqm",
        "normalised_mean_diff",
        "prob_improvement",
    }  # no per-cell iqm with 3 seeds
    r = by_key[(BETA, "aggregate", "true", "prob_improvement")]
    assert float(r["point"]) == pytest.approx(8 / 9)
    assert (r["baseline"], r["baseline_num_seeds"], r["pairing"], r["num_seeds"]) == (
        "pixels",
        "3",
        "unpaired",  # P(X > Y) is over all pairs of seeds
        "3",
    )
    r = by_key[(BETA, "aggregate", "true", "normalised_mean_diff")]
    assert (float(r["point"]), r["pairing"]) == (pytest.approx(0.2), "paired")
    r = by_key[("pixels", OFFSET, "false", "normalised_mean")]  # stochastic: 1 lower
    assert float(r["point"]) == pytest.approx(0.5) and r["baseline"] == ""
    r = by_key[("pixels", "aggregate", "true", "normalised_iqm")]
    assert r["note"] == f"over {WALL}, {OFFSET}" and r["num_episodes"] == "24"
    # 2 modes x (3 returns x 3 agents + 2 agents x (3 envs + agg mean + agg iqm) + 4 comparisons)
    assert len(rows) == 2 * (9 + 2 * 5 + 3 * 2)


def test_degenerate_normalisation_is_na_with_the_reason(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WALL's best equals the random reference (2): no range to normalise by
    best = {SOURCE: 20.0, OFFSET: 10.0, WALL: 2.0}
    monkeypatch.setattr(envs, "best_return", lambda e, **kw: best[e], raising=False)
    out = tmp_path / "out"
    summary = build_report([root], out, source_env=SOURCE, reps=100)
    det = summary["modes"]["deterministic"]
    assert det["targets"] == [OFFSET] and "no range to normalise by" in det["left_out"][WALL]
    md = (out / "report.md").read_text()
    assert table_row(md, "### Normalised score", "pixels")[1] == "n/a"
    assert "Left out (no normalised score): `reprl/BreakoutMiddleWall-v0`: R_max 2 equals" in md
    rows = read_results(out / "results.csv")
    r = next(r for r in rows if r["env_id"] == WALL and r["statistic"] == "normalised_mean")
    assert math.isnan(float(r["point"])) and "R_max 2 equals R_min 2" in r["note"]
    # 1 seed x 1 target: the aggregate IQM trims nothing and is omitted
    assert not any(r["statistic"] == "normalised_iqm" and r["env_id"] == "aggregate" for r in rows)


def test_unpaired_when_seeds_differ_and_no_reference(best_return, tmp_path: Path) -> None:
    r = tmp_path / "r"
    for s in (0, 1, 2):
        write_run(r, "pixels", s)
    for s in (1, 2, 3):
        write_run(r, BETA, s)
    write_run(r, "random", 0)
    summary = build_report([r], tmp_path / "out", source_env=SOURCE, reps=200)
    cmp = summary["modes"]["deterministic"]["comparisons"][BETA]
    assert not cmp[OFFSET]["paired"] and not cmp["aggregate"]["paired"]
    # unpaired: mean of beta (0.9, 1.0, 1.1) minus mean of pixels (0.5, 0.6, 0.7)
    assert cmp[OFFSET]["diff"][0] == pytest.approx(1.0 - 0.6)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "(unpaired: 3 vs 3 seeds)" in md and "unpaired (3 vs 3 seeds)" in md
    (r / "eval" / "random__0.csv").unlink()
    (r / "eval" / "random__0.json").unlink()
    summary = build_report([r], tmp_path / "out2", source_env=SOURCE, reps=50)
    md = (tmp_path / "out2" / "report.md").read_text()
    assert "no 'random' reference run evaluated on this env" in md
    assert "No aggregate" in md and "No comparison: no target has a normalised score." in md


def test_pretraining_data_and_budget_per_agent(best_return, tmp_path: Path) -> None:
    r = tmp_path / "r"
    for s in SEEDS:
        write_run(r, "pixels", s)
        write_run(r, BETA, s)
    write_run(r, "old", 0, domains="missing", budget="missing", active="missing")
    seconds = {"kind": "seconds", "value": 60, "env_steps": 2100, "seconds": 60.2}
    collapsed = {"active": 0, "latent_dim": 32, "variational": True}
    write_run(r, "peek", 0, domains=[SOURCE, WALL], budget=seconds, active=collapsed)
    write_run(r, "dae", 0, active={"active": 0, "latent_dim": 100, "variational": False})
    write_run(r, "random", 0)
    build_report([r], tmp_path / "out", source_env=SOURCE, reps=50)
    md = (tmp_path / "out" / "report.md").read_text()
    names = ("pixels", BETA, "old", "peek", "dae", "random")
    rows = {a: table_row(md, "## Agents", a) for a in names}
    assert rows["pixels"][:5] == [
        "0, 1, 2",
        "none (pixels)",
        "none",
        "equal env steps: 3,000",
        "3,072",
    ]
    assert rows[BETA][1:3] == [f"source only: {SOURCE}", "5 / 8"]
    assert rows["old"][1:] == ["unknown"] * 5
    assert rows["peek"][1:5] == [
        f"{SOURCE}, {WALL} (target seen: {WALL})",
        "0 / 32 (collapsed)",
        "equal wall-clock: 60 s",
        "2,100",
    ]
    assert rows["dae"][2] == "n/a (not variational)"
    assert rows["random"][1:4] == ["none (uniform-random policy)", "none", "not trained"]
    runs = read_results(tmp_path / "out" / "runs.csv")
    assert list(runs[0]) == list(RUN_COLUMNS)
    peek = next(x for x in runs if x["agent"] == "peek")
    assert (peek["target_seen"], peek["budget_kind"], peek["env_steps"]) == (
        "true",
        "seconds",
        "2100",
    )
    assert peek["encoder_active_latents"] == "0 / 32 (collapsed)"
    old = next(x for x in runs if x["agent"] == "old")
    assert (old["encoder_pretraining"], old["budget_kind"], old["env_steps"]) == (
        "unknown",
        "unknown",
        "",
    )


def test_no_absolute_path_in_the_report(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = build_report([root], out, source_env=SOURCE, reps=50)
    md = (out / "report.md").read_text()
    assert str(tmp_path) not in md and "`/enc.safetensors`" not in md
    assert "`../root/eval/pixels__0.csv`" in md  # relative to the report's directory
    assert "`../root/collect/data.h5`" in md and "`…/enc.safetensors`" in md
    assert md.count("metrics.jsonl") == 6 and md.count("provenance.json") == 6
    assert all(not os.path.isabs(f["path"]) for f in summary["inputs"])
    assert "*" not in md.split("## Provenance")[1].replace("**", "")
    # a report outside the roots' parent: root-relative paths
    elsewhere = build_report([root], tmp_path / "a" / "b" / "out", source_env=SOURCE, reps=50)
    text = Path(elsewhere["report"]).read_text()
    assert "`root/eval/pixels__0.csv`" in text and str(tmp_path) not in text


def test_computed_config_hash_is_explained(best_return, tmp_path: Path) -> None:
    r = tmp_path / "r"
    write_run(r, "pixels", 0, config=None)  # type: ignore[arg-type]
    build_report([r], tmp_path / "out", reps=50)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "(computed)" in md.split("### Runs")[1] and "`(computed)`: the run records none" in md


def test_report_is_reproducible_and_merges_roots(root: Path, tmp_path: Path) -> None:
    one = build_report([root], tmp_path / "one", source_env=SOURCE, reps=200, seed=7)
    again = build_report([root], tmp_path / "again", source_env=SOURCE, reps=200, seed=7)
    assert one["modes"] == again["modes"]
    a, b = tmp_path / "a", tmp_path / "b"
    for agent in AGENTS:
        for seed in SEEDS:
            write_run(a if (agent == "pixels" or seed == 0) else b, agent, seed)
    write_run(b, "random", 0)
    write_run(b, "pixels", 1)  # byte-identical to a's copy: read once
    merged = build_report([a, b], tmp_path / "merged", source_env=SOURCE, reps=200, seed=7)
    assert merged["modes"] == one["modes"] and merged["markdown"] == one["markdown"]
    assert (tmp_path / "merged" / "results.csv").read_text() == (
        (tmp_path / "one" / "results.csv").read_text()
    )


def test_bad_options_and_missing_best_return(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ReportError, match="reprl/Nope-v0"):
        build_report([root], tmp_path / "out", source_env="reprl/Nope-v0", reps=50)
    with pytest.raises(ReportError, match=r"baseline: expected one of the agents .* got .nope."):
        build_report([root], tmp_path / "out", baseline="nope", reps=50)
    summary = build_report([root], tmp_path / "out", source_env=SOURCE, baseline=BETA, reps=50)
    assert set(summary["modes"]["deterministic"]["comparisons"]) == {"pixels"}
    import envs.registry

    monkeypatch.delattr(envs, "best_return", raising=False)
    monkeypatch.delattr(envs.registry, "best_return", raising=False)
    with pytest.raises(ReportError, match=r"envs\.best_return: expected a function"):
        build_report([root], tmp_path / "out", reps=50)


def test_env_kwargs_disagreeing_between_runs(root: Path, tmp_path: Path) -> None:
    path = root / "eval" / "random__0.json"
    path.write_text(path.read_text().replace("1000", "2000"))
    summary = build_report([root], tmp_path / "out", source_env=SOURCE, reps=50)
    left = summary["modes"]["deterministic"]["left_out"]
    assert set(left) == {WALL, OFFSET} and "different env_kwargs" in left[WALL]


def test_without_source_env_and_with_one_seed(best_return, tmp_path: Path) -> None:
    r = tmp_path / "r"
    write_run(r, "pixels", 4)
    write_run(r, "random", 0)
    summary = build_report([r], tmp_path / "out", reps=50)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "14.00 (1 seed: no CI)" in md and "No agent named" not in md
    cell = summary["modes"]["deterministic"]["cells"]["pixels"][SOURCE]
    assert cell["mean"] == [14.0, 14.0, 14.0] and cell["num_seeds"] == 1
    assert summary["modes"]["deterministic"]["targets"] == [WALL, OFFSET, SOURCE]  # sorted


def test_main_prints_tables_and_help_works(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def main(argv: list[str]) -> int:
        return cli_main(["report", *argv])

    args = [str(root), "--out", str(tmp_path / "out"), "--source-env", SOURCE, "--reps", "50"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "### Mean return" in printed and "| pixels | 11.00 [" in printed
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    with pytest.raises(SystemExit) as e:
        main([str(root), "--out", str(tmp_path / "x"), "--reps", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "confidence intervals" in capsys.readouterr().out
