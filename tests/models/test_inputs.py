"""A model that declares its own inputs: raw columns as a dict of arrays, through encoding, export and scoring.

The model is a user's Flax module written into the test's tmp folder (not one of models/), taking
``{"amount": f32[b], "region": i32[b]}``; the table is hand-made, with a string categorical and nulls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

NET = '''
import flax.linen as nn
import jax.numpy as jnp


class RawNet(nn.Module):
    regions: int = 2

    @nn.compact
    def __call__(self, cols):
        amount = jnp.nan_to_num(cols["amount"].astype(jnp.float32))[:, None]
        region = nn.Embed(self.regions + 1, 3)(cols["region"])
        return nn.Dense(1)(nn.relu(nn.Dense(4)(jnp.concatenate([amount, region], axis=1))))
'''
CONFIG = {"inputs": {"amount": "float32", "region": "int32"}, "regions": 2}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.DataFrame({"amount": [1.0, None, 3.5, 2.0, 0.5], "region": ["north", None, "south", "mars", "south"]})


@pytest.fixture(scope="module")
def spec(frame):
    from models.features import FeatureSpec, raw_input_spec

    # the contract lists south before north: codes follow the contract's order, not the sorted one
    return FeatureSpec(inputs=raw_input_spec([("amount", "float32"), ("region", "int32")], ["amount"], ["region"],
                                             {"region": ["south", "north"]}, frame))


@pytest.fixture(scope="module")
def raw_model(tmp_path_factory):
    from models.code_model import load_model
    from models.train import init_params

    root = tmp_path_factory.mktemp("user_code")
    (root / "rawpkg").mkdir()
    (root / "rawpkg" / "__init__.py").write_text("")
    (root / "rawpkg" / "net.py").write_text(NET)
    model = load_model("rawpkg.net:RawNet", CONFIG, num_features=2, code_dir=root)
    return model, init_params(model, 0)


def test_raw_columns_are_the_declared_dtypes_with_documented_codes(frame, spec):
    from models.features import feature_matrix
    from models.inputs import UNSEEN_CODE

    x = feature_matrix(frame, spec)
    assert list(x) == ["amount", "region"] and x["amount"].dtype == np.float32 and x["region"].dtype == np.int32
    np.testing.assert_array_equal(x["amount"], np.array([1.0, np.nan, 3.5, 2.0, 0.5], np.float32))
    # south=1, north=2 (contract order), null and the unseen "mars" -> UNSEEN_CODE
    np.testing.assert_array_equal(x["region"], [2, UNSEEN_CODE, 1, UNSEEN_CODE, 1])
    arrow = feature_matrix(pa.Table.from_pandas(frame), spec)  # Arrow batches encode the same
    for k in x:
        np.testing.assert_array_equal(arrow[k], x[k])
    assert spec.columns == ["amount", "region"] and spec.num_features == 2


def test_a_matrix_spec_serializes_as_before_and_a_raw_one_round_trips(frame, spec):
    from models.features import FeatureSpec, fit_feature_spec

    matrix = fit_feature_spec(frame, ["amount"], ["region"])
    assert "inputs" not in matrix.model_dump_json()  # features.json bytes of matrix models are unchanged
    assert FeatureSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize("declared,fragment", [
    ([("amount", "int32"), ("region", "int32")], "input 'amount' is a numeric column: lockgate gives it as one of"),
    ([("amount", "float32"), ("region", "float32")], "input 'region' is a categorical column"),
    ([("amount", "float32"), ("label", "int32")], "input 'label' is not a feature column"),
])
def test_a_dtype_lockgate_cannot_give_is_one_line(frame, declared, fragment):
    from models.features import raw_input_spec

    with pytest.raises(ValueError) as e:
        raw_input_spec(declared, ["amount"], ["region"], {"region": None}, frame)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("raw,fragment", [
    ("amount", "inputs must be"),
    ({}, "declares no columns"),
    ([["a", "float32"], ["a", "int32"]], "declares ['a'] more than once"),
    ({"a": 3}, "must be non-empty strings"),
])
def test_a_malformed_signature_is_refused(raw, fragment):
    from models.code_model import ModelCodeError, load_model

    with pytest.raises(ModelCodeError) as e:
        load_model("rawpkg.net:RawNet", {"inputs": raw}, num_features=1, build_now=False)
    assert fragment in str(e.value) and e.value.kind == "config"


def test_the_list_form_is_the_same_signature():
    from models.inputs import parse_signature

    assert parse_signature([["amount", "float32"], ["region", "int32"]]) == parse_signature(CONFIG["inputs"])


def test_exported_with_a_dict_input_and_a_symbolic_batch_scores_like_the_model(frame, spec, raw_model):
    import jax

    from models.export import export_inference, export_info, load_exported, predict, score_bucketed
    from models.features import feature_matrix
    from models.sharded import score_sharded

    model, params = raw_model
    x = feature_matrix(pd.concat([frame] * 30, ignore_index=True), spec)  # 150 rows: chunks and padding
    blob = export_inference(model, params, platforms=("cpu",))
    info = export_info(blob)
    assert info.inputs["x['amount']"] == "float32[b]" and info.inputs["x['region']"] == "int32[b]"
    exported = load_exported(blob)
    want = np.asarray(predict(model, params, x))
    np.testing.assert_allclose(score_bucketed(exported, params, x, buckets=(1, 64)), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(score_sharded(exported, params, x, buckets=(1, 64), devices=jax.local_devices()),
                               want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"takes the columns \['amount', 'region'\]"):
        score_bucketed(exported, params, {"amount": x["amount"]})


def test_variants_and_the_aot_compile_take_the_dict_input(frame, spec, raw_model):
    from models.aot import compile_target, model_request
    from models.export import load_exported, score_bucketed
    from models.features import feature_matrix
    from models.variants import export_variant, relative_output_error

    model, params = raw_model
    x = feature_matrix(frame, spec)
    for variant in ("bf16", "int8"):
        blob, vparams = export_variant(variant, model, params, platforms=("cpu",))
        assert score_bucketed(load_exported(blob), vparams, x, buckets=(8,)).shape == (5,)
        assert relative_output_error(model, params, variant, x).max_abs_diff < 0.05
    rows = compile_target(model_request(model, params), "cpu", [1, 4], ["f32"])["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"], rows


def test_the_compile_gate_row_helpers_treat_both_inputs_alike():
    from models.inputs import describe, num_rows, pad_rows, resize_rows, take_rows

    cols = {"a": np.arange(3, dtype=np.float32), "b": np.arange(3, dtype=np.int32)}
    assert num_rows(cols) == 3 and num_rows(np.zeros((3, 2))) == 3
    assert num_rows(pad_rows(cols, 5)) == 5 and pad_rows(cols, 5)["b"].dtype == np.int32
    np.testing.assert_array_equal(resize_rows(cols, 5)["b"], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(take_rows(cols, np.array([2, 0]))["a"], [2.0, 0.0])
    assert describe(cols) == "{a: float32[3], b: int32[3]}"
