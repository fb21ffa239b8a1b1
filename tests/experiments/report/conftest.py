from pathlib import Path

import pytest

import envs
from tests.experiments.report.fakes import fake_best_return, write_experiment


@pytest.fixture
def best_return(monkeypatch: pytest.MonkeyPatch):
    """``envs.best_return`` replaced by the documented constants of the fakes."""
    monkeypatch.setattr(envs, "best_return", fake_best_return, raising=False)
    return fake_best_return


@pytest.fixture
def root(tmp_path: Path, best_return) -> Path:
    return write_experiment(tmp_path / "root")
