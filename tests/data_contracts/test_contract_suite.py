"""Compiling a contract into Great Expectations expectations."""

from __future__ import annotations

import copy

import pytest
import yaml

from data_contracts.contract import ContractError, parse_contract
from data_contracts.ge_suite import DTYPE_EXPECTATION, META_KEY, build_suite, expectation_specs


def _variant(raw: dict, mutate) -> str:
    data = copy.deepcopy(raw)
    mutate(data)
    return yaml.safe_dump(data, sort_keys=False)


def _prop(raw: dict, name: str) -> dict:
    return next(p for p in raw["schema"][0]["properties"] if p["name"] == name)


def _table_quality(raw: dict) -> list[dict]:
    return raw["schema"][0]["quality"]


def test_specs_cover_every_rule(contract):
    specs = expectation_specs(contract, include_label=True)
    by = {(s.ge_type, s.column) for s in specs}
    for column in contract.columns:
        assert ("ExpectColumnToExist", column) in by
        assert (DTYPE_EXPECTATION, column) in by
        assert ("ExpectColumnValuesToNotBeNull", column) in by  # every column is required
    for column in ("age", "annual_income", "loan_amount", "credit_score", "debt_to_income",
                   "employment_years", "num_open_accounts", "late_payments_12m"):  # fmt: skip
        assert ("ExpectColumnValuesToBeBetween", column) in by
    for column in ("region", "product", "channel", "defaulted"):
        assert ("ExpectColumnValuesToBeInSet", column) in by
    assert ("ExpectColumnValuesToMatchRegex", "application_id") in by
    assert ("ExpectColumnValuesToBeUnique", "application_id") in by
    assert ("ExpectTableRowCountToBeBetween", None) in by
    assert len(specs) == len({(s.ge_type, s.name) for s in specs})  # required + primaryKey compiled once

    age = next(s for s in specs if s.name == "age in range")
    assert age.kwargs == {
        "column": "age",
        "min_value": 18.0,
        "max_value": 90.0,
        "strict_min": False,
        "strict_max": False,
    }
    assert age.level == "row" and age.path == "schema[0](applications).properties[2](age).logicalTypeOptions"
    levels = {s.name: s.level for s in specs}
    assert levels["application_id unique"] == "dataset"
    assert levels["application_id dtype"] == levels["row count in range"] == levels["region exists"] == "dataset"
    assert (
        levels["region in set"] == levels["annual_income not null"] == levels["application_id matches pattern"] == "row"
    )


def test_label_only_when_asked(contract):
    assert {s.column for s in expectation_specs(contract, include_label=True)} >= {"defaulted"}
    assert "defaulted" not in {s.column for s in expectation_specs(contract, include_label=False)}


def test_suite_holds_every_expectation(contract, ge_runtime):
    for include_label in (True, False):
        specs = expectation_specs(contract, include_label=include_label)
        suite = build_suite(contract, include_label=include_label)
        assert len(suite.expectations) == len(specs)
        assert [e.expectation_type for e in suite.expectations] == [s.expectation_type for s in specs]
        assert [e.meta[META_KEY]["name"] for e in suite.expectations] == [s.name for s in specs]
        assert suite.name.startswith(f"credit_default@1.0.0#{contract.fingerprint[:12]}")
    # The custom dtype expectation survives a round trip through GE's serialisation.
    import great_expectations as gx

    rebuilt = gx.ExpectationSuite(**suite.to_json_dict())
    assert [e.expectation_type for e in rebuilt.expectations] == [e.expectation_type for e in suite.expectations]
    dtypes = {e.configuration.kwargs["column"]: e.configuration.kwargs["type_list"]
              for e in suite.expectations if e.expectation_type == "expect_column_dtype_to_be_in_list"}  # fmt: skip
    assert {"str", "string", "string[pyarrow]"} <= set(dtypes["region"])
    assert {"int64", "Int64", "int64[pyarrow]"} <= set(dtypes["age"]) and "float64" not in dtypes["age"]
    assert {"float64", "Float64", "double[pyarrow]", "int64"} <= set(dtypes["annual_income"])
    assert {"datetime64[ns]", "datetime64[us]", "timestamp[us][pyarrow]"} <= set(dtypes["applied_at"])


@pytest.mark.parametrize(
    "mutate, bounds",
    [
        (lambda q: q.update(mustBeBetween=[10, 20]), (10, 20)),
        (lambda q: (q.pop("mustBeBetween"), q.update(mustBeGreaterOrEqualTo=10)), (10, None)),
        (lambda q: (q.pop("mustBeBetween"), q.update(mustBeGreaterThan=10)), (11, None)),
        (lambda q: (q.pop("mustBeBetween"), q.update(mustBeLessThan=100)), (None, 99)),
        (lambda q: (q.pop("mustBeBetween"), q.update(mustBe=5)), (5, 5)),
        (lambda q: (q.pop("mustBeBetween"), q.update(mustBeLessOrEqualTo=7)), (None, 7)),
    ],  # two operators in one rule are not valid ODCS (test_contract_odcs)
    ids=["between", "ge", "gt", "lt", "eq", "le"],
)
def test_row_count_operators(contract_raw, mutate, bounds):
    contract = parse_contract(_variant(contract_raw, lambda r: mutate(_table_quality(r)[0])))
    spec = next(s for s in expectation_specs(contract, include_label=False) if s.name == "row count in range")
    assert (spec.kwargs["min_value"], spec.kwargs["max_value"]) == bounds


REFUSALS = [
    (
        "sql rule",
        lambda r: _prop(r, "age").setdefault("quality", []).append({"type": "sql", "query": "SELECT 1", "mustBe": 0}),
        "properties[2](age).quality[0]: cannot map to a Great Expectations expectation: quality type 'sql'",
    ),
    (
        "custom rule",
        lambda r: _table_quality(r).append({"type": "custom", "engine": "soda", "implementation": "x"}),
        "schema[0](applications).quality[1]: cannot map",
    ),
    (
        "integer format",
        lambda r: _prop(r, "age")["logicalTypeOptions"].update(format="i64"),
        "properties[2](age).logicalTypeOptions.format: cannot map",
    ),
    (
        "null share in percent",
        lambda r: _prop(r, "region")["quality"].append(
            {"metric": "nullValues", "mustBeLessThan": 5, "unit": "percent"}
        ),
        "properties[10](region).quality[1]: cannot map to a Great Expectations expectation: only 'mustBe: 0' rows",
    ),
    ("row count mustNotBe", lambda r: (_table_quality(r)[0].pop("mustBeBetween"), _table_quality(r)[0].update(mustNotBe=0)),
     "quality[0].mustNotBe: cannot map"),
    ("row count in percent", lambda r: _table_quality(r)[0].update(unit="percent"), "quality[0].unit: cannot map"),
    (
        "timezone without zone",
        lambda r: _prop(r, "applied_at").update(logicalTypeOptions={"timezone": True}),
        "properties[1](applied_at).logicalTypeOptions.defaultTimezone: cannot map",
    ),
    (
        "timestamp bounds",
        lambda r: _prop(r, "applied_at")["logicalTypeOptions"].update(minimum="2024-01-01"),
        "properties[1](applied_at).logicalTypeOptions.minimum: cannot map",
    ),
    ("array column", lambda r: _array_column(r, "channel"), "properties[12](channel).logicalType: cannot map"),
]


def _array_column(raw: dict, name: str) -> None:
    _prop(raw, name).update(logicalType="array", quality=[])
    features = next(cp for cp in raw["customProperties"] if cp["property"] == "categoricalFeatures")
    features["value"].remove(name)


@pytest.mark.parametrize("mutate, expected", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_unmappable_rules_are_refused_with_their_path(contract_raw, mutate, expected):
    contract = parse_contract(_variant(contract_raw, mutate))
    with pytest.raises(ContractError) as info:
        expectation_specs(contract, include_label=True)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_text_rules_are_documentation(contract_raw):
    text = _variant(
        contract_raw, lambda r: _table_quality(r).append({"type": "text", "description": "Reviewed weekly."})
    )
    assert len(expectation_specs(parse_contract(text), include_label=True)) == len(
        expectation_specs(parse_contract(_variant(contract_raw, lambda r: None)), include_label=True)
    )


def test_missing_values_and_compound_uniqueness(contract_raw):
    def mutate(r):
        _prop(r, "channel")["quality"].append(
            {"metric": "missingValues", "arguments": {"missingValues": [None, "", "n/a"]}, "mustBe": 0}
        )
        _table_quality(r).append(
            {"metric": "duplicateValues", "arguments": {"properties": ["region", "product"]}, "mustBe": 0}
        )

    specs = expectation_specs(parse_contract(_variant(contract_raw, mutate)), include_label=True)
    names = {s.name: s for s in specs}
    assert names["channel not a missing value"].kwargs["value_set"] == ["", "n/a"]
    assert names["(region, product) unique"].ge_type == "ExpectCompoundColumnsToBeUnique"
    assert names["(region, product) unique"].level == "dataset"
