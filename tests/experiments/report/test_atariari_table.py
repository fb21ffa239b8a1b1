"""The report's AtariARI table: one row per encoder with an AtariARI probe and a majority row,
F1s copied from the probe files, the paper's 22-game means matched by name, other protocols and
outdated results left out."""

from pathlib import Path

from experiments.report import atariari_published as published
from experiments.report.atariari_table import (
    MAJORITY,
    atariari_columns,
    atariari_rows,
    atariari_section,
)
from experiments.report.reading import EncoderProbe, InputFile


def probe(name: str, f1: dict[str, float], *, outdated: str | None = None) -> EncoderProbe:
    """A probe file of the atariari protocol with the given per-variable F1s."""
    per = {v: {"f1": s, "majority_f1": 0.1, "categories": ["misc"]} for v, s in f1.items()}
    data = {
        "encoder": name,
        "method": "st_dim",
        "atariari": {
            "per_variable": per,
            "mean_f1": sum(f1.values()) / len(f1),
            "across_categories_f1": 0.5,
            "majority": {"mean_f1": 0.1, "across_categories_f1": 0.1},
        },
    }
    return EncoderProbe(name, Path("."), InputFile(Path(f"{name}.json"), "0"), data, outdated)


def test_rows_copy_the_probes_and_add_the_majority_row() -> None:
    probes = [
        probe("random_init", {"ball_x": 0.2, "score": 0.4}),
        probe("st_dim", {"ball_x": 0.6, "player_x": 0.8}),
        probe("old", {"ball_x": 0.9}, outdated="checkpoint rewritten"),
        EncoderProbe("r2_only", Path("."), InputFile(Path("r.json"), "1"), {"probe": {}}),
    ]
    rows, variables = atariari_rows(probes)
    assert variables == ["ball_x", "score", "player_x"]
    assert [r["encoder"] for r in rows] == ["random_init", "st_dim", MAJORITY]
    st = rows[1]
    assert st["f1:ball_x"] == 0.6 and st["f1:player_x"] == 0.8 and st["f1:score"] == ""
    assert st["mean_f1"] == 0.7
    # the paper's means by name: random_init is its random CNN
    assert rows[0]["paper_mean_f1_22_games"] == published.MEAN_F1_22_GAMES["random_cnn"]
    assert st["paper_mean_f1_22_games"] == published.MEAN_F1_22_GAMES["st_dim"]
    assert rows[2]["mean_f1"] == 0.1 and rows[2]["f1:ball_x"] == 0.1
    assert set(atariari_columns(variables)) >= set(rows[0])


def test_the_section_has_one_line_per_row_and_dashes_where_unscored() -> None:
    rows, variables = atariari_rows([probe("st_dim", {"ball_x": 0.6}), probe("x", {"y": 0.3})])
    lines = atariari_section(rows, variables)
    table = [ln for ln in lines if ln.startswith("| ")]
    assert len(table) == 1 + len(rows)  # header + rows
    assert "| st_dim | st_dim | 0.60 | — | 0.60 | 0.50 | 0.68 |" in lines
    assert "| x | st_dim | — | 0.30 | 0.30 | 0.50 | — |" in lines  # no paper row named x


def test_no_atariari_probe_no_section() -> None:
    assert atariari_rows([]) == ([], [])
    assert atariari_section([], []) == []
