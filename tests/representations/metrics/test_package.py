"""The package's import surface: every name once in ``representations/metrics.py`` still
imports from ``representations.metrics``, and each module stays small."""

from __future__ import annotations

import inspect
from pathlib import Path

import representations.metrics as M

PUBLIC = {
    "ACTIVE_THRESHOLD",
    "METRICS",
    "atariari_probe",
    "label_entropy",
    "weighted_f1",
    "EncodeFn",
    "FactorData",
    "collapse_warning",
    "dci",
    "dci_from_importance",
    "discrete_entropy",
    "discrete_mutual_info",
    "encode_all",
    "episode_split",
    "evaluate",
    "factor_vae_score",
    "format_table",
    "histogram_discretise",
    "latent_activity",
    "linear_probe",
    "mig",
}


def test_public_names_import_from_the_package() -> None:
    assert set(M.__all__) == PUBLIC
    for name in PUBLIC - {"METRICS", "EncodeFn", "ACTIVE_THRESHOLD"}:
        obj = getattr(M, name)
        assert inspect.isfunction(obj) or inspect.isclass(obj), name  # not a shadowing module
    assert M.METRICS == ("probe", "mig", "dci", "factor_vae")


def test_no_module_over_500_lines() -> None:
    for path in Path(M.__file__).parent.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name
