"""Shared fixtures for the models tests: one small trained model per session."""

import numpy as np
import pytest

from models.config import MLPConfig

NUM_FEATURES = 6


def separable_data(n: int, d: int = NUM_FEATURES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Linearly separable-ish binary problem with a little label noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = np.linspace(-1.0, 1.5, d)
    y = (x @ w + 0.2 * rng.normal(size=n) > 0).astype(np.int32)
    return x, y


@pytest.fixture(scope="session")
def make_data():
    """The data generator, as a fixture so tests needn't import conftest."""
    return separable_data


@pytest.fixture(scope="session")
def small_config() -> MLPConfig:
    return MLPConfig(num_features=NUM_FEATURES, hidden_sizes=(8, 4))


@pytest.fixture(scope="session")
def trained_params(small_config):
    from models.train import train_classifier

    x, y = separable_data(1024)
    return train_classifier(x, y, small_config, epochs=5, batch_size=32, seed=0)
