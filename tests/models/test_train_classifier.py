import jax
import numpy as np
import pytest

from models.config import MLPConfig
from models.export import predict_proba
from models.train import init_params, train_classifier
from tasks.canary.stats import roc_auc


def test_training_learns_a_separable_problem(small_config, trained_params, make_data):
    x, y = make_data(2000, seed=1)  # held out: the fixture trained on seed 0
    before = np.asarray(predict_proba(small_config, init_params(small_config, 0), x))
    after = np.asarray(predict_proba(small_config, trained_params, x))
    assert roc_auc(y, after) > 0.97
    assert ((after > 0.5) == y).mean() > 0.9
    assert ((after > 0.5) == y).mean() > ((before > 0.5) == y).mean() + 0.1


def test_deterministic_given_seed(small_config, make_data):
    x, y = make_data(300)
    kw = dict(epochs=2, batch_size=64)
    a = train_classifier(x, y, small_config, seed=3, **kw)
    b = train_classifier(x, y, small_config, seed=3, **kw)
    c = train_classifier(x, y, small_config, seed=4, **kw)
    assert all(np.array_equal(p, q) for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not all(np.array_equal(p, q) for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(c)))


def test_init_params_shapes_and_batch_larger_than_data(make_data):
    cfg = MLPConfig(num_features=6, hidden_sizes=(5,))
    shapes = jax.tree.map(np.shape, init_params(cfg, 0))
    assert shapes == {"params": {"dense_0": {"kernel": (6, 5), "bias": (5,)}, "head": {"kernel": (5, 1), "bias": (1,)}}}
    x, y = make_data(10, d=6)
    params = train_classifier(x, y.astype(bool), cfg, epochs=1, batch_size=4096)
    assert jax.tree.map(np.shape, params) == shapes


@pytest.mark.parametrize(
    "x_shape, y_fn, message",
    [
        ((10, 7), lambda y: y, r"x must be \[n, 6\]"),
        ((10, 6), lambda y: y[:5], r"y must be \[10\]"),
        ((10, 6), lambda y: y + 2, "only 0 and 1"),
        ((0, 6), lambda y: y, "0 rows"),
    ],
)
def test_bad_inputs(small_config, x_shape, y_fn, message):
    assert small_config.num_features == 6
    x = np.zeros(x_shape, np.float32)
    y = np.zeros(x_shape[0], np.int32)
    with pytest.raises(ValueError, match=message):
        train_classifier(x, y_fn(y), small_config, epochs=1)


def test_non_finite_features_rejected(small_config, make_data):
    x, y = make_data(10)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        train_classifier(x, y, small_config, epochs=1)
