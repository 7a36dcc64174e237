"""contract_diff: one variant of credit_default.yaml per rule of the table, breaking or not."""

from __future__ import annotations

import copy

import pytest
import yaml

from data_contracts.contract import load_contract
from data_contracts.diff import TYPE_CHANGE_BREAKING, contract_diff, version_bump


def _prop(raw: dict, name: str) -> dict:
    return next(p for p in raw["schema"][0]["properties"] if p["name"] == name)


def _custom(raw: dict, key: str) -> dict:
    return next(cp for cp in raw["customProperties"] if cp["property"] == key)


def _set(name, key, value):
    def edit(raw):
        _prop(raw, name)[key] = value
    return edit


def _opt(name, key, value):
    def edit(raw):
        opts = _prop(raw, name).setdefault("logicalTypeOptions", {})
        if value is None:
            opts.pop(key, None)
        else:
            opts[key] = value
    return edit


def _exclusive(name, key):
    """The same bound made strict, in ODCS v3.1's number form: minimum: 18 -> exclusiveMinimum: 18."""
    def edit(raw):
        opts = _prop(raw, name)["logicalTypeOptions"]
        opts["exclusive" + key.capitalize()] = opts.pop(key)
    return edit


def _valid(name, values):
    def edit(raw):
        rule = next(r for r in _prop(raw, name)["quality"] if r.get("metric") == "invalidValues")
        if values is None:
            _prop(raw, name)["quality"].remove(rule)
        else:
            rule["arguments"]["validValues"] = values
    return edit


def _remove_column(name):
    def edit(raw):
        raw["schema"][0]["properties"].remove(_prop(raw, name))
        for key in ("numericFeatures", "categoricalFeatures", "sliceColumns"):
            cp = _custom(raw, key)
            cp["value"] = [c for c in cp["value"] if c != name]
    return edit


def _add_column(required):
    def edit(raw):
        raw["schema"][0]["properties"].append(
            {"name": "branch_code", "logicalType": "string", "required": required, "description": "Branch."})
    return edit


def _row_count(bounds):
    def edit(raw):
        raw["schema"][0]["quality"][0]["mustBeBetween"] = bounds
    return edit


CASES = [
    # (id, edit, kind, column, breaking)
    ("column removed", _remove_column("channel"), "column_removed", "channel", True),
    ("required column added", _add_column(True), "column_added", "branch_code", True),
    ("optional column added", _add_column(False), "column_added", "branch_code", False),
    ("int widened to number", _set("age", "logicalType", "number"), "type_changed", "age", False),
    ("number narrowed to int", _set("annual_income", "logicalType", "integer"), "type_changed", "annual_income", True),
    ("timestamp gains a zone", _opt("applied_at", "timezone", True), "type_changed", "applied_at", True),
    ("min raised", _opt("age", "minimum", 21), "minimum", "age", True),
    ("min lowered", _opt("age", "minimum", 16), "minimum", "age", False),
    ("min removed", _opt("age", "minimum", None), "minimum", "age", False),
    ("min made exclusive", _exclusive("age", "minimum"), "minimum", "age", True),
    ("max lowered", _opt("age", "maximum", 80), "maximum", "age", True),
    ("max raised", _opt("age", "maximum", 100), "maximum", "age", False),
    ("max added", _opt("employment_years", "maximum", 50), "maximum", "employment_years", True),
    ("max length added", _opt("region", "maxLength", 5), "max_length", "region", True),
    ("allowed set shrunk", _valid("region", ["north", "south", "east", "west"]), "allowed_values", "region", True),
    ("allowed set grown", _valid("region", ["north", "south", "east", "west", "central", "island"]),
     "allowed_values", "region", False),
    ("allowed set swapped", _valid("channel", ["online", "branch", "phone"]), "allowed_values", "channel", True),
    ("allowed set removed", _valid("channel", None), "allowed_values", "channel", False),
    ("required turned off", _set("age", "required", False), "required", "age", False),
    ("unique turned on", _set("region", "unique", True), "unique", "region", True),
    ("pattern changed", _opt("application_id", "pattern", "^APP-[0-9]{12}$"), "pattern", "application_id", True),
    ("pattern removed", _opt("application_id", "pattern", None), "pattern", "application_id", False),
    ("pattern added", _opt("region", "pattern", "^[a-z]+$"), "pattern", "region", True),
    ("label dropped", lambda raw: raw["customProperties"].remove(_custom(raw, "labelColumn")),
     "label_column", None, True),
    ("timestamp column dropped", lambda raw: raw["customProperties"].remove(_custom(raw, "timestampColumn")),
     "timestamp_column", None, False),
    ("row count tightened", _row_count([100, 50000000]), "row_count", None, True),
    ("row count loosened", _row_count([1, 90000000]), "row_count", None, False),
]


@pytest.fixture
def variant(contract_raw, tmp_path):
    def _variant(edit, version="1.0.0"):
        raw = copy.deepcopy(contract_raw)
        raw["version"] = version
        if edit is not None:
            edit(raw)
        path = tmp_path / f"variant-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return load_contract(path)

    return _variant


@pytest.mark.parametrize("edit,kind,column,breaking", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(contract, variant, edit, kind, column, breaking):
    diff = contract_diff(contract, variant(edit))
    matching = [c for c in diff.changes if c.kind == kind and c.column == column]
    assert len(matching) == 1, diff.changes
    assert matching[0].breaking is breaking, matching[0]
    assert diff.is_breaking is any(c.breaking for c in diff.changes)


@pytest.mark.parametrize("key", ["required", "unique"])
def test_turned_on_and_off(variant, key):
    plain, on = variant(_set("age", key, False)), variant(_set("age", key, True))
    (change,) = contract_diff(plain, on).changes
    assert (change.kind, change.old, change.new, change.breaking) == (key, False, True, True)
    (change,) = contract_diff(on, plain).changes
    assert (change.kind, change.old, change.new, change.breaking) == (key, True, False, False)


def test_id_column_changed(contract_raw, variant):
    def edit(raw):
        raw["schema"][0]["properties"].append(
            {"name": "app_no", "logicalType": "integer", "required": True, "unique": True, "description": "No."})
        _custom(raw, "idColumn")["value"] = "app_no"

    diff = contract_diff(variant(None), variant(edit))
    assert [(c.kind, c.column, c.old, c.new, c.breaking) for c in diff.changes] == [
        ("column_added", "app_no", None, "integer", True),
        ("id_column", None, "application_id", "app_no", True),
    ]


def test_identical_contracts(contract, variant):
    diff = contract_diff(contract, variant(None))
    assert diff.changes == [] and not diff.is_breaking and diff.version_bump == "none" and diff.bump_sufficient


def test_reverse_direction_flips(contract, variant):
    """Tightening one way is loosening the other."""
    tighter = variant(_opt("age", "maximum", 80))
    assert contract_diff(contract, tighter).is_breaking
    assert not contract_diff(tighter, contract).is_breaking


@pytest.mark.parametrize("old,new,bump", [
    ("1.0.0", "2.0.0", "major"), ("1.0.0", "1.1.0", "minor"), ("1.0.0", "1.0.1", "patch"),
    ("1.0.0", "1.0.0", "none"), ("1.2.0", "1.1.9", "downgrade"), ("1.0", "1.1", "unknown"),
])
def test_version_bump(old, new, bump):
    assert version_bump(old, new) == bump


def test_breaking_change_needs_major_bump(contract, variant):
    minor = contract_diff(contract, variant(_opt("age", "maximum", 80), version="1.1.0"))
    major = contract_diff(contract, variant(_opt("age", "maximum", 80), version="2.0.0"))
    assert not minor.bump_sufficient and "too small" in minor.summary_line()
    assert major.bump_sufficient


def test_type_rule_table_is_explicit():
    assert TYPE_CHANGE_BREAKING == {("integer", "number"): False}
