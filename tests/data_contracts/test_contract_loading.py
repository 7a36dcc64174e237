"""Loading, checking and fingerprinting ODCS contracts (no Great Expectations needed)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from data_contracts.contract import CONTRACTS_DIR, ContractError, load_contract, parse_contract

WHERE = Path("variant.yaml")


def _variant(raw: dict, mutate) -> str:
    data = copy.deepcopy(raw)
    mutate(data)
    return yaml.safe_dump(data, sort_keys=False)


def _props(raw: dict) -> list[dict]:
    return raw["schema"][0]["properties"]


def _prop(raw: dict, name: str) -> dict:
    return next(p for p in _props(raw) if p["name"] == name)


def _custom(raw: dict, key: str) -> dict:
    return next(cp for cp in raw["customProperties"] if cp["property"] == key)


def test_bare_name_loads_the_packaged_contract(contract):
    assert contract.source == CONTRACTS_DIR / "credit_default.yaml"
    assert contract.apiVersion == "v3.1.0" and contract.kind == "DataContract"
    assert contract.name == "credit_default" and contract.version == "1.0.0"
    assert contract.owner == "credit-risk-ml@example.com"


def test_accessors(contract):
    assert contract.columns[:2] == ["application_id", "applied_at"] and contract.columns[-1] == "defaulted"
    assert len(contract.columns) == 14
    assert contract.required_columns == contract.columns
    assert contract.label_column == "defaulted"
    assert contract.id_column == "application_id"
    assert contract.timestamp_column == "applied_at"
    assert contract.slice_columns == ["region", "product"]
    assert contract.numeric_features == [
        "age", "annual_income", "loan_amount", "credit_score", "debt_to_income",
        "employment_years", "num_open_accounts", "late_payments_12m",
    ]  # fmt: skip
    assert contract.categorical_features == ["region", "product", "channel"]
    assert contract.feature_columns == contract.numeric_features + contract.categorical_features
    assert "defaulted" not in contract.scoring_columns()
    assert contract.allowed_values("region") == ["north", "south", "east", "west", "central"]
    assert contract.allowed_values("defaulted") == [0, 1]
    assert contract.allowed_values("age") is None
    assert contract.column_spec("application_id").classification == "identifier"
    assert not any((p.classification or "").lower() == "pii" for p in contract.table.properties)
    assert (contract.drift_setting("credit_score").method, contract.drift_setting("credit_score").threshold) == (
        "psi",
        0.2,
    )
    assert contract.drift_setting("age").method == "wasserstein"
    assert contract.drift_setting("channel").method == "jensenshannon"
    with pytest.raises(KeyError):
        contract.allowed_values("salary")


def test_the_contract_matches_the_generator(contract):
    from data_contracts.synthetic_credit import CHANNELS, COLUMNS, PRODUCTS, REGIONS

    assert contract.columns == list(COLUMNS)
    assert contract.allowed_values("region") == list(REGIONS)
    assert contract.allowed_values("product") == list(PRODUCTS)
    assert contract.allowed_values("channel") == list(CHANNELS)


def test_fingerprint_is_stable_and_ignores_formatting(contract, contract_raw):
    assert len(contract.fingerprint) == 64
    assert load_contract("credit_default").fingerprint == contract.fingerprint
    assert load_contract(contract.source).fingerprint == contract.fingerprint
    # Key order, comments and explicit defaults are not content.
    reordered = yaml.safe_dump(contract_raw, sort_keys=True)
    assert parse_contract(reordered).fingerprint == contract.fingerprint
    explicit_default = _variant(contract_raw, lambda r: _prop(r, "age").update(unique=False))
    assert parse_contract(explicit_default).fingerprint == contract.fingerprint


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: _prop(r, "age")["logicalTypeOptions"].update(maximum=95),
        lambda r: r.update(version="1.0.1"),
        lambda r: _custom(r, "sliceColumns").update(value=["region"]),
        lambda r: _prop(r, "region")["quality"][0]["arguments"]["validValues"].append("offshore"),
    ],
    ids=["range", "version", "slices", "allowed-values"],
)
def test_fingerprint_changes_with_content(contract, contract_raw, mutate):
    assert parse_contract(_variant(contract_raw, mutate)).fingerprint != contract.fingerprint


CASES = [
    (
        "property key typo",
        lambda r: _prop(r, "age").update(requried=True),
        "schema[0](applications).properties[2](age).requried: unknown key",
    ),
    ("top-level unknown key", lambda r: r.update(owner="me"), "variant.yaml: owner: unknown key"),
    ("missing version", lambda r: r.pop("version"), "version: required key missing"),
    ("unsupported apiVersion", lambda r: r.update(apiVersion="v2.2.2"), "apiVersion: Input should be"),
    (
        "unknown logicalType",
        lambda r: _prop(r, "age").update(logicalType="int"),
        "properties[2](age).logicalType: 'int' is not one of ['string', 'date',",
    ),
    (
        "min > max",
        lambda r: _prop(r, "age").update(logicalTypeOptions={"minimum": 90, "maximum": 18}),
        "properties[2](age).logicalTypeOptions: minimum 90 > maximum 18",
    ),
    (
        "bad regex",
        lambda r: _prop(r, "application_id")["logicalTypeOptions"].update(pattern="^APP-[0-9"),
        "properties[0](application_id).logicalTypeOptions.pattern: invalid regex",
    ),
    (
        "option of another type",
        lambda r: _prop(r, "age")["logicalTypeOptions"].update(pattern="x"),
        "properties[2](age).logicalTypeOptions.pattern: unknown key (not valid ODCS)",
    ),
    (
        "unknown metric",
        lambda r: _prop(r, "region")["quality"][0].update(metric="invalidValuez"),
        "properties[10](region).quality[0](region_in_set).metric: 'invalidValuez' is not one of ['nullValues',",
    ),
    (
        "unknown metric argument",
        lambda r: _prop(r, "region")["quality"][0]["arguments"].update(allowed=["x"]),
        "properties[10](region).quality[0].arguments.allowed: not an argument of invalidValues",
    ),
    (
        "allowed value of the wrong type",
        lambda r: _prop(r, "region")["quality"][0]["arguments"].update(validValues=[1, 2]),
        "properties[10](region).quality[0].arguments.validValues: 1 is not a string value",
    ),
    (
        "unknown lockgate property",
        lambda r: r["customProperties"].append({"property": "labelColum", "value": "x"}),
        "customProperties[10](labelColum).property: unknown lockgate property",
    ),
    (
        "feature that is not a column",
        lambda r: _custom(r, "numericFeatures")["value"].append("salary"),
        "customProperties[4](numericFeatures).value: unknown column 'salary'",
    ),
    (
        "label as a feature",
        lambda r: _custom(r, "numericFeatures")["value"].append("defaulted"),
        "'defaulted' is the labelColumn, not a feature",
    ),
    (
        "slice that is not categorical",
        lambda r: _custom(r, "sliceColumns")["value"].append("age"),
        "slice column 'age' is not a categorical feature",
    ),
    (
        "id column not unique",
        lambda r: _prop(r, "application_id").update(unique=False, primaryKey=False),
        "id column 'application_id' must be required and unique",
    ),
    (
        "bad drift method",
        lambda r: _prop(r, "annual_income")["customProperties"][0]["value"].update(method="magic"),
        "properties[3](annual_income).customProperties[0](drift).value.method",
    ),
    (
        "bad drift defaults",
        lambda r: _custom(r, "driftDefaults")["value"]["numeric"].update(threshold=-1),
        "customProperties[6](driftDefaults).value.numeric.threshold",
    ),
    (
        "missing id column setting",
        lambda r: r["customProperties"].remove(_custom(r, "idColumn")),
        "customProperties: idColumn: required property missing",
    ),
    ("two tables", lambda r: r["schema"].append(copy.deepcopy(r["schema"][0])), "schema: expected exactly one object"),
    (
        "duplicate column",
        lambda r: _props(r).append(copy.deepcopy(_prop(r, "age"))),
        "properties[14](age): duplicate column name (also properties[2])",
    ),
]


@pytest.mark.parametrize("mutate, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_contract_is_one_line_error_naming_file_and_path(contract_raw, mutate, expected):
    with pytest.raises(ContractError) as info:
        parse_contract(_variant(contract_raw, mutate), source=WHERE)
    message = str(info.value)
    assert expected in message
    assert message.startswith("variant.yaml: ")
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("apiVersion: v3.1.0\nkind: DataContract\nkind: DataContract\n", "duplicate key 'kind' (first at line 2)"),
        ("apiVersion: [v3.1.0\n", "invalid YAML"),
        ("- just\n- a list\n", "expected a mapping at the top level, got list"),
    ],
    ids=["duplicate-key", "syntax", "not-a-mapping"],
)
def test_bad_yaml(text, expected):
    with pytest.raises(ContractError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_contract(text, source=WHERE)


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(ContractError, match=r"contract 'no_such_contract': .*known: .*credit_default"):
        load_contract("no_such_contract")
    with pytest.raises(ContractError, match="no such contract file"):
        load_contract(tmp_path / "missing.yaml")


def test_v3_0_team_list_is_accepted(contract_raw):
    def to_v30(r):
        r["apiVersion"] = "v3.0.2"
        r["team"] = [{"username": "alice@example.com", "role": "owner"}]

    assert parse_contract(_variant(contract_raw, to_v30)).owner == "alice@example.com"


def test_a_text_parsed_again_is_an_equal_copy_of_its_own_and_a_bad_text_fails_every_time(contract_raw, monkeypatch,
                                                                                         tmp_path):
    from data_contracts import contract as module

    text = yaml.safe_dump({**contract_raw, "id": "parsed-once"}, sort_keys=False)  # a text no other test parsed
    parses = []
    real = module._parse_contract
    monkeypatch.setattr(module, "_parse_contract", lambda t, s: parses.append(s) or real(t, s))
    first, second = parse_contract(text, source=WHERE), parse_contract(text, source=WHERE)
    assert first == second and first is not second and first.source == second.source == WHERE
    assert module._PARSED.get(text) is not None and parses == [WHERE]  # the second not parsed
    assert first.settings == second.settings and first.odcs == second.odcs
    first.schema_[0].properties.pop()  # a caller changing its copy changes no later parse
    assert parse_contract(text, source=WHERE) == second
    other = tmp_path / "v2" / "contract.yaml"  # the same text kept elsewhere (each version's copy): not parsed again,
    elsewhere = parse_contract(text, source=other)  # and it names its own file
    assert elsewhere.source == other and elsewhere.model_dump() == second.model_dump()
    assert elsewhere.settings == second.settings
    assert parse_contract(text).source is None
    assert parses == [WHERE]
    bad = _variant(contract_raw, lambda r: r.pop("apiVersion"))
    for where in (WHERE, other):
        with pytest.raises(ContractError, match=f"^{re.escape(str(where))}: .*apiVersion"):
            parse_contract(bad, source=where)
    assert parses == [WHERE, WHERE, other]
