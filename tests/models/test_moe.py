import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.architectures import ARCHITECTURES, build_model, module_for
from models.config import MoEConfig
from models.export import export_inference, load_exported, predict_proba, score_bucketed
from models.moe import top_k_gates
from models.train import init_params, train_classifier
from tasks.canary.stats import roc_auc

NUM_FEATURES = 6  # the shared make_data fixture's width
SMALL = MoEConfig(num_features=NUM_FEATURES, d_model=16, num_experts=4, top_k=2, expert_hidden=32, num_layers=2)


@pytest.fixture(scope="module")
def trained(make_data):
    x, y = make_data(1024)
    return train_classifier(x, y, SMALL, epochs=10, batch_size=32, seed=0)


_predict = jax.jit(predict_proba, static_argnums=0)


@pytest.fixture(scope="module")
def held_out(make_data):
    return make_data(512, seed=1)  # the trained fixture used seed 0


@pytest.fixture(scope="module")
def reference(trained, held_out):
    """Jitted predict_proba of the trained params on the held-out rows: what every
    other path must reproduce (one compiled shape for all the comparisons)."""
    return np.asarray(_predict(SMALL, trained, held_out[0]))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_features": 0}, "num_features"),
        ({"num_features": 4, "d_model": -2}, "d_model"),
        ({"num_features": 4, "num_experts": 0}, "num_experts"),
        ({"num_features": 4, "top_k": 0}, "top_k"),
        ({"num_features": 4, "num_experts": 2, "top_k": 3}, "top_k must be <= num_experts"),
        ({"num_features": 4, "expert_hidden": 8.0}, "expert_hidden"),
        ({"num_features": 4, "num_layers": False}, "num_layers"),
        ({"num_features": 4, "dtype": "float64"}, "dtype"),
    ],
)
def test_invalid_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MoEConfig(**kwargs)


@pytest.mark.parametrize(
    "d, message",
    [
        ({"num_features": 4, "experts": 8}, r"unknown MoEConfig keys: \['experts'\]"),
        ({"num_experts": 8}, "MoEConfig requires num_features"),
    ],
)
def test_from_dict_rejects_bad_keys(d, message):
    with pytest.raises(ValueError, match=message):
        MoEConfig.from_dict(d)


def test_dict_round_trip_replace_and_registry():
    cfg = MoEConfig(num_features=7, num_experts=8, top_k=1, dtype="bfloat16")
    back = MoEConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and hash(back) == hash(cfg)
    with pytest.raises(ValueError, match="top_k"):
        cfg.replace(num_experts=1, top_k=2)
    config, module = build_model("moe", {"num_features": 5, "num_experts": 2})
    assert config == MoEConfig(num_features=5, num_experts=2)
    assert type(module) is type(module_for(config)) and module.config == config
    assert ARCHITECTURES["moe"][0] is MoEConfig


@pytest.mark.parametrize("top_k", [1, 2, 3, 4])
def test_top_k_gates(top_k):
    logits = jax.random.normal(jax.random.PRNGKey(top_k), (50, 4))
    gates = np.asarray(top_k_gates(logits, top_k))
    probs = np.asarray(jax.nn.softmax(logits))
    assert ((gates > 0).sum(axis=1) == top_k).all()
    # The kept experts are the most probable ones.
    chosen_min = np.where(gates > 0, probs, np.inf).min(axis=1)
    dropped_max = np.where(gates > 0, -np.inf, probs).max(axis=1)
    assert (chosen_min >= dropped_max).all()
    if top_k == 1:
        np.testing.assert_allclose(gates.sum(axis=1), probs.max(axis=1), rtol=1e-6)
    else:
        np.testing.assert_allclose(gates.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("top_k", [1, 2])
def test_gates_pass_a_gradient_to_the_router(top_k):
    # Renormalising a single kept gate would make it exactly 1.0 (zero gradient);
    # top_k_gates keeps the raw probability for top_k == 1 for this reason.
    logits = jax.random.normal(jax.random.PRNGKey(0), (8, 4))
    expert_out = jax.random.normal(jax.random.PRNGKey(1), (8, 4))
    g = jax.grad(lambda lg: (top_k_gates(lg, top_k) * expert_out).sum())(logits)
    assert (np.abs(np.asarray(g)).max(axis=1) > 0).all()


def test_param_shapes_are_float32_batched_experts():
    params = jax.eval_shape(lambda: init_params(SMALL, 0))["params"]
    assert set(params) == {"embed", "moe_0", "moe_1", "head"}
    block = params["moe_0"]
    assert block["w_in"].shape == (4, 16, 32) and block["b_in"].shape == (4, 32)
    assert block["w_out"].shape == (4, 32, 16) and block["b_out"].shape == (4, 16)
    assert block["router"]["kernel"].shape == (16, 4)
    bf16_params = jax.eval_shape(lambda: init_params(SMALL.replace(dtype="bfloat16"), 0))
    assert {a.dtype for a in jax.tree.leaves(bf16_params)} == {np.dtype(np.float32)}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("n", [1, 5])
def test_logits_are_float32_per_row(dtype, n):
    # Shapes only (eval_shape compiles nothing); values are checked against float32 below.
    cfg = SMALL.replace(dtype=dtype)
    x = jax.ShapeDtypeStruct((n, NUM_FEATURES), jnp.float32)
    logits = jax.eval_shape(lambda x: module_for(cfg).apply(init_params(cfg, 0), x), x)
    assert logits.shape == (n,) and logits.dtype == jnp.float32


def test_training_learns_a_separable_problem(reference, held_out):
    y = held_out[1]
    assert roc_auc(y, reference) > 0.95
    assert ((reference > 0.5) == y).mean() > 0.85


def test_export_for_cpu_and_tpu_equals_predict_proba(trained, reference, held_out):
    exported = load_exported(export_inference(SMALL, trained, platforms=("cpu", "tpu")))
    assert tuple(exported.platforms) == ("cpu", "tpu")
    assert str(exported.in_avals[-1]) == f"float32[b,{NUM_FEATURES}]"
    assert [str(a) for a in exported.out_avals] == ["float32[b]"]
    # Small buckets: n=20 and n=64 are chunked, every n but 16 and 64 is padded.
    for n in [1, 3, 8, 16, 20, 64]:
        got = score_bucketed(exported, trained, held_out[0][:n], buckets=(4, 16))
        assert got.shape == (n,) and got.dtype == np.float32
        np.testing.assert_allclose(got, reference[:n], rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_stays_close_to_float32(trained, reference, held_out):
    bf16 = np.asarray(_predict(SMALL.replace(dtype="bfloat16"), trained, held_out[0]))
    assert bf16.dtype == np.float32
    # Loose: a near-tie between two experts can flip under bf16 and move one row more.
    assert np.median(np.abs(bf16 - reference)) < 0.01
    assert np.mean(np.abs(bf16 - reference) < 0.05) > 0.95
