"""The draft contract `lockgate init` infers from a table (data_contracts/infer.py): valid ODCS that loads with
lockgate's checks, with the data's types, nullability, ranges (widened) and allowed sets, and its roles."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from data_contracts.contract import ContractError, parse_contract
from data_contracts.infer import infer_contract, widened


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["target"] = (frame["target"] == 0).astype(int)
    frame.insert(0, "id", range(len(frame)))
    return frame


def _mixed() -> pd.DataFrame:
    """Strings with nulls, a boolean, a timestamp, a string id, a float column with NaN, a high-cardinality string."""
    n = 120
    return pd.DataFrame({
        "order_id": [f"O-{i:05d}" for i in range(n)],
        "placed_at": pd.date_range("2026-01-01", periods=n, freq="h"),
        "amount": [float(i) * 1.5 for i in range(n)],
        "discount": [None if i % 10 == 0 else i / 100 for i in range(n)],
        "channel": [None if i % 7 == 0 else ["web", "shop", "phone"][i % 3] for i in range(n)],
        "member": [i % 2 == 0 for i in range(n)],
        "comment": [f"free text {i}" for i in range(n)],
        "returned": [i % 3 == 0 for i in range(n)],
    })


def _load(inferred):
    return parse_contract(yaml.safe_dump(inferred.document, sort_keys=False))


def test_wine_contract_is_valid_odcs_with_the_datas_ranges_and_roles():
    frame = _wine()
    inferred = infer_contract(pa.Table.from_pandas(frame, preserve_index=False), name="wine", label="target",
                              source="wine.parquet")
    contract = _load(inferred)  # the ODCS package's model and JSON schema, then lockgate's checks
    assert contract.odcs is not None and contract.label_column == "target" and contract.id_column == "id"
    assert inferred.task == "classification" and contract.allowed_values("target") == [0, 1]
    assert contract.numeric_features == [c for c in frame.columns if c not in ("id", "target")]
    for column in contract.numeric_features:
        opts = contract.column_spec(column).options()
        low, high = frame[column].min(), frame[column].max()
        pad = 0.1 * (high - low)
        assert opts.minimum <= low and opts.maximum >= high
        assert opts.minimum >= max(low - 1.1 * pad, 0) - 1e-9 and opts.maximum <= high + 1.1 * pad  # ~10% margin
        assert contract.column_spec(column).required and contract.drift_setting(column).method == "ks"  # 178 rows


def test_diabetes_label_is_a_regression_target_with_a_range():
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame.insert(0, "patient_id", range(len(frame)))
    inferred = infer_contract(pa.Table.from_pandas(frame, preserve_index=False), name="diabetes", label="target",
                              source="diabetes.parquet")
    contract = _load(inferred)
    assert inferred.task == "regression" and contract.allowed_values("target") is None
    assert inferred.label_std == pytest.approx(frame["target"].std(ddof=0), rel=1e-6)
    opts = contract.column_spec("target").options()
    assert opts.minimum == 0 and opts.maximum >= 346  # a non-negative label's bound stays >= 0
    assert contract.column_spec("age").options().minimum < frame["age"].min() < 0  # negative data: no clamp


def test_strings_nulls_booleans_and_timestamps():
    frame = _mixed()
    inferred = infer_contract(pa.Table.from_pandas(frame, preserve_index=False), name="orders", label="returned",
                              source="orders.parquet", max_slice_values=5)
    contract = _load(inferred)
    assert contract.id_column == "order_id" and contract.timestamp_column == "placed_at"
    assert not contract.column_spec("channel").required and contract.allowed_values("channel") == ["phone", "shop", "web"]
    assert not contract.column_spec("discount").required  # NaN counts as null, as for GE on pandas
    assert contract.allowed_values("member") == [False, True] and contract.allowed_values("returned") == [False, True]
    assert contract.categorical_features == ["channel", "member"] and contract.slice_columns == ["channel", "member"]
    assert "comment" not in contract.feature_columns and any("comment" in n for n in inferred.notes)
    assert contract.column_spec("placed_at").logicalType == "timestamp"
    assert contract.drift_setting("channel").method == "chisquare"


def test_drift_methods_follow_evidentlys_rule_for_the_size():
    """Up to 1,000 rows a test (its false alarms do not grow as data shrinks), above it a distance."""
    frame = pd.concat([_mixed()] * 9, ignore_index=True)
    frame["order_id"] = range(len(frame))
    contract = _load(infer_contract(pa.Table.from_pandas(frame, preserve_index=False), name="orders",
                                    label="returned", source="o"))
    assert len(frame) > 1000 and contract.drift_setting("amount").method == "wasserstein"
    assert contract.drift_setting("channel").method == "jensenshannon"


def test_no_id_column_is_refused_with_what_to_do():
    frame = _wine().drop(columns="id")
    with pytest.raises(ContractError, match=r"has no id column: .* add one, e\.g\. df\.insert\(0, 'id'") as e:
        infer_contract(pa.Table.from_pandas(frame, preserve_index=False), name="wine", label="target", source="w")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("id_column,fragment", [("magnesium", "must be a non-null, unique integer or string"),
                                                ("nope", "no id column 'nope'"), ("target", "other than the label")])
def test_a_named_id_column_must_exist_and_be_unique(id_column, fragment):
    table = pa.Table.from_pandas(_wine(), preserve_index=False)
    with pytest.raises(ContractError, match=fragment):
        infer_contract(table, name="wine", label="target", source="w", id_column=id_column)


def test_unsupported_column_type_and_missing_label_are_named():
    table = pa.table({"id": [1, 2], "y": [0, 1], "tags": [[1], [2]]})
    with pytest.raises(ContractError, match="column 'tags' has type list"):
        infer_contract(table, name="t", label="y", source="t")
    with pytest.raises(ContractError, match="no label column 'label'"):
        infer_contract(table.drop(["tags"]), name="t", label="label", source="t")


@pytest.mark.parametrize("low,high,integer,expected", [
    (11.03, 14.83, False, (10.65, 15.21)),
    (70, 162, True, (60, 172)),
    (25, 346, False, (0.0, 378.0)),            # non-negative data: the lower bound stops at 0
    (-0.107226, 0.110727, False, (-0.129, 0.133)),
    (5, 5, False, (4.5, 5.5)),                 # constant: 10% of the value
    (0, 0, True, (0, 1)),
])
def test_widened_bounds(low, high, integer, expected):
    lo, hi = widened(low, high, 0.1, integer=integer)
    assert (lo, hi) == pytest.approx(expected) and lo <= low and hi >= high
    assert not integer or (isinstance(lo, int) and isinstance(hi, int))
    assert math.isfinite(lo) and math.isfinite(hi)
