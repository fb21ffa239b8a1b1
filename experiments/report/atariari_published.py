"""The AtariARI paper's published probe F1 scores, for the README table beside reprl's runs.

Anand et al. 2019, "Unsupervised State Representation Learning in Atari" (NeurIPS 2019;
code ``mila-iqia/atari-representation-learning``). Rows: majority classifier, random CNN, VAE,
pixel prediction, CPC, ST-DIM, supervised; each a weighted F1 in ``[0, 1]``, the mean over a
game's state-variable categories of the mean within each (what their ``ProbeTrainer.test``
calls ``across_categories_avg_f1`` and says the paper reports per game).

What is here and where it is from:

- :data:`MEAN_F1_22_GAMES`: the mean over the paper's 22 games, as ``/work/shared/REFERENCES.md``
  quotes the repo's ``notebooks/summarize_results.ipynb`` at commit ``9a31785``. The version of
  that notebook this session could read (commit ``0765ca5``) prints no such table, so these
  numbers are as REFERENCES.md gives them, not re-read from the source.
- :data:`PER_GAME_F1`: the paper's per-game rows for Breakout, Pong and Boxing were **not
  found**: the repo's README holds no table, the notebook versions readable here print none,
  and the paper's text (arXiv 1906.08226, Table 2) was not readable in this session's sources.
  Every entry is ``None`` until someone copies them from the paper, naming page and table;
  nothing here is a guess.
"""

from __future__ import annotations

SOURCE = (
    "Anand et al. 2019, Unsupervised State Representation Learning in Atari (NeurIPS 2019, "
    "arXiv 1906.08226); mila-iqia/atari-representation-learning"
)
"""The paper and its code."""

METHODS: tuple[str, ...] = (
    "majority",
    "random_cnn",
    "vae",
    "pixel_prediction",
    "cpc",
    "st_dim",
    "supervised",
)
"""The paper's rows, in its order (reprl's encoder names: ``random_init`` for the random CNN;
reprl has no pixel-prediction method)."""

MEAN_F1_22_GAMES: dict[str, float] = {
    "majority": 0.14,
    "random_cnn": 0.44,
    "vae": 0.40,
    "pixel_prediction": 0.58,
    "cpc": 0.61,
    "st_dim": 0.68,
    "supervised": 0.82,
}
"""Mean F1 over the paper's 22 games, per method (source: the module doc)."""

MEAN_F1_SOURCE = (
    "REFERENCES.md, quoting notebooks/summarize_results.ipynb of "
    "mila-iqia/atari-representation-learning at commit 9a31785 (not re-read here)"
)

PER_GAME_F1: dict[str, dict[str, float | None]] = {
    game: dict.fromkeys(METHODS) for game in ("Breakout", "Pong", "Boxing")
}
"""Game -> method -> the paper's F1: not found (``None``; see the module doc)."""
