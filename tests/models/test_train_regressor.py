"""The regression task: config field, MSE training in the one training loop, the exported artifact's values."""

import jax
import numpy as np
import pytest

from models.config import FTTransformerConfig, MLPConfig, MoEConfig
from models.export import export_inference, load_exported, predict, predict_proba, score_bucketed
from models.train import init_params, train_classifier, train_model, train_regressor


def linear_targets(n: int, d: int = 6, seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, true mean): y = x @ w + 0.5 + N(0, noise), so the best achievable RMSE is ``noise``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    mean = x @ np.linspace(-0.6, 0.9, d) + 0.5
    return x, mean + rng.normal(0, noise, n), mean


REGRESSOR = MLPConfig(num_features=6, hidden_sizes=(16,), task="regression")


@pytest.fixture(scope="module")
def regressor_params():
    x, y, _ = linear_targets(2000)
    return train_regressor(x, y, REGRESSOR, epochs=15, batch_size=32, seed=0)


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def test_regressor_learns_a_linear_target_with_mse(regressor_params):
    x, y, mean = linear_targets(1000, seed=1)  # held out
    before = np.asarray(predict(REGRESSOR, init_params(REGRESSOR, 0), x))
    after = np.asarray(predict(REGRESSOR, regressor_params, x))
    assert _rmse(after, y) < 0.2 < _rmse(before, y)  # noise floor 0.1; an untrained net is far off
    assert after.min() < 0 and after.max() > 1  # a linear head: values, not probabilities in [0, 1]


def test_one_loop_two_losses_and_the_named_wrappers_refuse_the_other_task(make_data):
    x, y = make_data(256)
    classifier = MLPConfig(num_features=6, hidden_sizes=(4,))
    same = train_model(x, y, classifier, epochs=2, batch_size=32, seed=1)
    named = train_classifier(x, y, classifier, epochs=2, batch_size=32, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(named)))
    as_regression = train_model(x, y, classifier.replace(task="regression"), epochs=2, batch_size=32, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(as_regression)))
    with pytest.raises(ValueError, match="task is 'regression'.*use train_regressor"):
        train_classifier(x, y, classifier.replace(task="regression"), epochs=1)
    with pytest.raises(ValueError, match="task is 'classification'.*use train_classifier"):
        train_regressor(x, y.astype(float), classifier, epochs=1)


@pytest.mark.parametrize("y_bad,message", [
    (np.array([0.5, np.nan, 1.0, 2.0]), "NaN or inf"),
    (np.array(["a", "b", "c", "d"]), "must be numeric"),
])
def test_bad_regression_targets(y_bad, message):
    with pytest.raises(ValueError, match=message):
        train_regressor(np.zeros((4, 6), np.float32), y_bad, REGRESSOR, epochs=1)


@pytest.mark.parametrize("cls", [MLPConfig, FTTransformerConfig, MoEConfig])
def test_task_field_defaults_to_classification_and_is_validated(cls):
    old = cls.from_dict({"num_features": 4})  # a config saved before the field existed
    assert old.task == "classification" and cls.from_dict(old.to_dict()) == old
    assert cls.from_dict({"num_features": 4, "task": "regression"}).task == "regression"
    with pytest.raises(ValueError, match="task must be one of"):
        cls(num_features=4, task="ranking")


def test_exported_regressor_returns_the_predicted_values(regressor_params):
    x, _, _ = linear_targets(300, seed=2)
    exported = load_exported(export_inference(REGRESSOR, regressor_params, platforms=("cpu",)))
    got = score_bucketed(exported, regressor_params, x, buckets=(64, 256))
    np.testing.assert_allclose(got, np.asarray(predict(REGRESSOR, regressor_params, x)), atol=1e-5)
    with pytest.raises(ValueError, match="predict_proba needs a classifier"):
        predict_proba(REGRESSOR, regressor_params, x)
