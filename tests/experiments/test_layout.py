"""The run directory's one spelling (experiments.layout) against the report's file contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.layout import RunLayout, agent_slug, parse_stem, run_stem
from experiments.stages import PIPELINE, STAGES
from experiments.stages.base import StageResult


@pytest.mark.parametrize(
    ("agent", "seed", "stem"),
    [
        ("pixels", 0, "pixels__0"),
        ("beta_vae_dae/frozen", 3, "beta_vae_dae-frozen__3"),
        ("a__b", -2, "a__b__-2"),
    ],
)
def test_a_stem_names_agent_and_seed_and_splits_at_its_last_separator(
    agent: str, seed: int, stem: str
) -> None:
    assert run_stem(agent, seed) == stem
    assert parse_stem(stem) == (agent_slug(agent), seed)


def test_a_name_without_a_seed_is_not_a_stem() -> None:
    assert parse_stem("pixels") is None
    assert parse_stem("pixels__x") is None


def test_the_layout_is_the_documented_tree(tmp_path: Path) -> None:
    lay = RunLayout.at(tmp_path, "exp")
    base = tmp_path / "exp"
    assert lay.base == base
    assert lay.config == base / "config.yaml" and lay.summary == base / "summary.json"
    assert lay.dataset == base / "collect" / "explore.h5"
    assert lay.checkpoint("dae") == base / "pretrain" / "dae" / "encoder.safetensors"
    assert lay.probe_file("dae") == base / "probe" / "dae.json"
    assert lay.agent_zip("pixels__0") == base / "train" / "pixels__0" / "agent.zip"
    assert lay.metrics("pixels__0") == base / "train" / "pixels__0" / "metrics.jsonl"
    assert lay.provenance("pixels__0") == base / "train" / "pixels__0" / "provenance.json"
    assert lay.eval_csv("pixels__0") == base / "eval" / "pixels__0.csv"
    assert lay.eval_json("pixels__0") == base / "eval" / "pixels__0.json"
    assert lay.report == base / "report" / "report.md"


def test_the_report_reads_where_the_layout_writes(tmp_path: Path) -> None:
    from experiments.report.reading import discover

    lay = RunLayout(tmp_path)
    lay.eval_dir.mkdir()
    stem = run_stem("pixels", 0)
    lay.eval_csv(stem).write_text(
        "agent,seed,env_id,episode,return,length,deterministic\n"
        "pixels,0,reprl/BreakoutStandard-v0,0,1.5,10,true\n"
    )
    lay.eval_json(stem).write_text("{}")
    evals, trains = discover([tmp_path])
    assert [(e.agent, e.seed) for e in evals] == [("pixels", 0)] and trains == []


def test_stages_run_in_order_and_say_what_they_reused() -> None:
    assert STAGES == ("collect", "pretrain", "probe", "train", "evaluate", "report")
    assert [s.name for s in PIPELINE] == list(STAGES)
    assert StageResult(2, 2).status == "reused"
    assert StageResult(1, 2).status == "partly reused"
    assert StageResult(0, 2).status == "ran"
