"""Shared synthetic data of the metric tests (see :mod:`.synthetic`)."""

from __future__ import annotations

import numpy as np
import pytest

from representations.metrics import FactorData, evaluate
from tests.representations.metrics.synthetic import make_data


@pytest.fixture(scope="session")
def data() -> FactorData:
    return make_data()


@pytest.fixture(scope="session")
def factors(data: FactorData) -> np.ndarray:
    return data.factor_matrix()[1]


@pytest.fixture(scope="session")
def identity(factors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    return factors + 1e-3 * rng.standard_normal(factors.shape)


@pytest.fixture(scope="session")
def results_identity(identity: np.ndarray, data: FactorData) -> dict:
    return evaluate(identity, data)
