import hashlib

import jax
import numpy as np
import pytest

from models.config import MLPConfig
from models.export import (
    _jitted_call,
    export_inference,
    export_info,
    load_exported,
    predict_proba,
    score_bucketed,
)
from models.params_io import params_from_bytes, params_to_bytes
from models.train import init_params


@pytest.fixture(scope="module")
def blob(small_config, trained_params) -> bytes:
    return export_inference(small_config, trained_params)


@pytest.fixture(scope="module")
def exported(blob):
    return load_exported(blob)


@pytest.fixture(scope="module")
def reference(small_config, trained_params):
    """Jitted predict_proba: what the artifact must reproduce."""
    fn = jax.jit(predict_proba, static_argnums=0)
    return lambda x: np.asarray(fn(small_config, trained_params, x))


def _x(n, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_round_trip_platforms_and_signature(exported, blob):
    assert tuple(exported.platforms) == ("cpu", "tpu")
    assert str(exported.in_avals[-1]) == "float32[b,6]"
    assert [str(a) for a in exported.out_avals] == ["float32[b]"]
    assert load_exported(bytes(exported.serialize())).platforms == exported.platforms
    info = export_info(blob)
    assert info.sha256 == hashlib.sha256(blob).hexdigest() and info.nr_bytes == len(blob)
    assert info.platforms == ["cpu", "tpu"]
    assert info.inputs["x"] == "float32[b,6]"
    assert info.inputs["params['params']['dense_0']['kernel']"] == "float32[6,8]"


@pytest.mark.parametrize("n", [1, 3, 64, 1000])
def test_symbolic_batch_equals_predict_proba_bitwise(exported, trained_params, reference, n):
    x = _x(n, seed=n)
    got = np.asarray(exported.call(trained_params, x))
    assert got.shape == (n,) and got.dtype == np.float32
    np.testing.assert_array_equal(got, reference(x))


@pytest.mark.parametrize("n", [0, 1, 2, 5, 16, 17, 50, 64])
def test_bucketed_equals_unbatched(exported, trained_params, reference, n):
    buckets = (1, 4, 16)  # small so chunking (n > 16) and padding are both exercised
    x = _x(n, seed=100 + n)
    got = score_bucketed(exported, trained_params, x, buckets=buckets)
    assert got.shape == (n,) and got.dtype == np.float32
    if n:
        np.testing.assert_allclose(got, reference(x), rtol=1e-6, atol=1e-7)


def test_bucketing_compiles_one_shape_per_bucket(trained_params, small_config):
    exported = load_exported(export_inference(small_config, trained_params))  # fresh cache entry
    buckets = (2, 8, 32)
    for n in [1, 2, 3, 7, 8, 9, 31, 33, 100]:
        score_bucketed(exported, trained_params, _x(n), buckets=buckets)
    # _cache_size is jax-private, but it is the direct measure of "no retracing".
    assert _jitted_call(exported)._cache_size() == len(buckets)


def test_default_buckets_and_params_loaded_from_msgpack(exported, trained_params, reference):
    x = _x(9000, seed=7)  # > 8192: one full chunk + one padded chunk
    plain = params_from_bytes(params_to_bytes(trained_params))  # numpy dicts, no template
    np.testing.assert_allclose(score_bucketed(exported, plain, x), reference(x), rtol=1e-6, atol=1e-7)


def _export_here(config, params):
    return export_inference(config, params)


def _export_elsewhere(config, params):
    # Different function and line: caller source locations must not leak into the blob.
    result = export_inference(config, params)
    return result


def test_sha256_stable_and_independent_of_param_values(small_config, trained_params, blob):
    fresh = init_params(small_config, seed=123)
    shas = {
        hashlib.sha256(b).hexdigest()
        for b in (blob, _export_here(small_config, trained_params), _export_elsewhere(small_config, fresh))
    }
    assert len(shas) == 1
    other = hashlib.sha256(export_inference(small_config.replace(activation="tanh"), fresh)).hexdigest()
    assert other not in shas


def test_params_are_arguments_not_constants():
    cfg = MLPConfig(num_features=64, hidden_sizes=(256, 256))
    params = init_params(cfg, 0)
    blob = export_inference(cfg, params)
    assert len(params_to_bytes(params)) > 300_000
    assert len(blob) < 20_000


def test_bfloat16_config_exports(trained_params, small_config):
    cfg = small_config.replace(dtype="bfloat16")
    exported = load_exported(export_inference(cfg, trained_params, platforms=("cpu",)))
    assert tuple(exported.platforms) == ("cpu",)
    x = _x(20)
    got = score_bucketed(exported, trained_params, x)
    same_program = jax.jit(predict_proba, static_argnums=0)(cfg, trained_params, x)
    np.testing.assert_array_equal(got, np.asarray(same_program))
    np.testing.assert_allclose(got, np.asarray(predict_proba(small_config, trained_params, x)), atol=0.02)


@pytest.mark.parametrize(
    "mangle", [lambda b: b[: len(b) // 2], lambda b: b"\x00" * 64, lambda b: b""], ids=["truncated", "zeros", "empty"]
)
def test_corrupt_blob_is_a_one_line_value_error(blob, mangle):
    with pytest.raises(ValueError, match="not a valid exported artifact") as err:
        load_exported(mangle(blob))
    assert "\n" not in str(err.value)


def test_expected_sha256_is_checked(blob):
    assert load_exported(blob, expected_sha256=hashlib.sha256(blob).hexdigest()) is not None
    with pytest.raises(ValueError, match="sha256"):
        load_exported(blob, expected_sha256="0" * 64)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"buckets": ()}, "positive"),
        ({"buckets": (4, 2)}, "increasing"),
        ({"buckets": (0, 2)}, "positive"),
        ({"x": np.zeros((3, 5), np.float32)}, r"x must be \[n, 6\]"),
    ],
)
def test_score_bucketed_rejects_bad_arguments(exported, trained_params, kwargs, message):
    kwargs = {"x": _x(3), **kwargs}
    with pytest.raises(ValueError, match=message):
        score_bucketed(exported, trained_params, **kwargs)


def test_unknown_platform_rejected(small_config, trained_params):
    with pytest.raises(ValueError, match="platforms"):
        export_inference(small_config, trained_params, platforms=("cpu", "gpu"))
