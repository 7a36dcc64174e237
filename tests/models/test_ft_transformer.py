import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.architectures import ARCHITECTURES, build_model, module_for
from models.config import FTTransformerConfig
from models.export import export_inference, load_exported, predict_proba, score_bucketed
from models.train import init_params, train_classifier
from tasks.canary.stats import roc_auc

NUM_FEATURES = 6  # the shared make_data fixture's width
SMALL = FTTransformerConfig(num_features=NUM_FEATURES, d_model=16, num_layers=2, num_heads=2, mlp_ratio=2)


def _count(params) -> int:
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params))


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
        ({"num_features": 4, "d_model": 0}, "d_model"),
        ({"num_features": 4, "num_layers": -1}, "num_layers"),
        ({"num_features": 4, "num_heads": True}, "num_heads"),
        ({"num_features": 4, "d_model": 30, "num_heads": 4}, "num_heads must divide d_model"),
        ({"num_features": 4, "mlp_ratio": 1.5}, "mlp_ratio"),
        ({"num_features": 4, "dtype": "int8"}, "dtype"),
        ({"num_features": 4, "use_scan": 1}, "use_scan"),
    ],
)
def test_invalid_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        FTTransformerConfig(**kwargs)


@pytest.mark.parametrize(
    "d, message",
    [
        ({"num_features": 4, "d_modle": 8}, r"unknown FTTransformerConfig keys: \['d_modle'\]"),
        ({"d_model": 8}, "FTTransformerConfig requires num_features"),
    ],
)
def test_from_dict_rejects_bad_keys(d, message):
    with pytest.raises(ValueError, match=message):
        FTTransformerConfig.from_dict(d)


def test_dict_round_trip_replace_and_registry():
    cfg = FTTransformerConfig(num_features=7, d_model=24, num_heads=3, dtype="bfloat16", use_scan=True)
    back = FTTransformerConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and hash(back) == hash(cfg)
    with pytest.raises(ValueError, match="num_heads"):
        cfg.replace(num_heads=5)
    config, module = build_model("ft_transformer", {"num_features": 5, "num_layers": 1})
    assert config == FTTransformerConfig(num_features=5, num_layers=1)
    assert type(module) is type(module_for(config)) and module.config == config
    assert ARCHITECTURES["ft_transformer"][0] is FTTransformerConfig


def test_param_shapes_are_float32_per_feature_tokens():
    params = jax.eval_shape(lambda: init_params(SMALL, 0))["params"]
    assert params["tokenizer"]["weight"].shape == (NUM_FEATURES, 16)
    assert params["tokenizer"]["bias"].shape == (NUM_FEATURES, 16)
    assert params["cls"].shape == (16,)
    assert set(params) == {"tokenizer", "cls", "block_0", "block_1", "final_norm", "head"}
    assert params["block_0"]["mlp_in"]["kernel"].shape == (16, 32)
    assert params["head"]["kernel"].shape == (16, 1)
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


def test_rows_are_independent(trained, reference, held_out):
    # Attention mixes the tokens of one row, never rows of a batch: padding must not leak.
    one = np.asarray(_predict(SMALL, trained, held_out[0][4:5]))
    np.testing.assert_allclose(one, reference[4:5], rtol=1e-5, atol=1e-6)


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
    # Loose: bf16 keeps ~3 significant digits through every block (measured max ~0.035).
    assert np.abs(bf16 - reference).max() < 0.1
    assert np.median(np.abs(bf16 - reference)) < 0.01


def _stack_blocks(params, num_layers):
    p = dict(params["params"])
    blocks = [p.pop(f"block_{i}") for i in range(num_layers)]
    p["blocks"] = jax.tree.map(lambda *a: jnp.stack(a), *blocks)
    return {"params": p}


def test_scan_is_the_same_function_with_stacked_params(trained, reference, held_out):
    scan_cfg = SMALL.replace(use_scan=True)
    fresh = jax.eval_shape(lambda: init_params(scan_cfg, 0))
    assert set(fresh["params"]) == {"tokenizer", "cls", "blocks", "final_norm", "head"}
    assert fresh["params"]["blocks"]["mlp_in"]["kernel"].shape == (SMALL.num_layers, 16, 32)
    assert _count(fresh) == _count(trained)
    # Unrolled params stacked on a layer axis give the scanned model the same outputs.
    stacked = _stack_blocks(trained, SMALL.num_layers)
    assert jax.tree.map(np.shape, stacked) == jax.tree.map(np.shape, fresh)
    exported = load_exported(export_inference(scan_cfg, stacked, platforms=("cpu", "tpu")))
    got = score_bucketed(exported, stacked, held_out[0], buckets=(512,))
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)
