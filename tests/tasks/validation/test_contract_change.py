"""contract_compatibility: refuse a candidate whose contract breaks the champion's unless the policy allows it."""

from __future__ import annotations

import copy

import pytest
import yaml

from data_contracts.contract import load_contract, parse_contract
from tasks.validation.contract_change import contract_compatibility

CHAMPION = load_contract("credit_default")


def _variant(edit, version="1.0.0"):
    raw = yaml.safe_load(CHAMPION.source.read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["version"] = version
    edit(raw)
    return parse_contract(yaml.safe_dump(raw, sort_keys=False))


def _age(key, value):
    def edit(raw):
        next(p for p in raw["schema"][0]["properties"] if p["name"] == "age")["logicalTypeOptions"][key] = value
    return edit


def test_same_contract_is_compatible():
    r = contract_compatibility(CHAMPION, CHAMPION, allow_breaking=False)
    assert (r.gate, r.passed, r.decision, r.changes) == ("contract", True, "compatible", [])


def test_loosened_contract_is_compatible():
    r = contract_compatibility(CHAMPION, _variant(_age("maximum", 100), "1.1.0"), allow_breaking=False)
    assert r.passed and r.decision == "compatible" and len(r.changes) == 1


@pytest.mark.parametrize("allow,passed,decision", [(False, False, "breaking"), (True, True, "breaking-allowed")])
def test_breaking_change(allow, passed, decision):
    r = contract_compatibility(CHAMPION, _variant(_age("maximum", 80), "2.0.0"), allow_breaking=allow)
    assert (r.passed, r.decision) == (passed, decision)
    assert any("maximum age: 90 -> 80" in reason for reason in r.reasons), r.reasons
    check = next(c for c in r.checks if c.name == "maximum:age")
    assert check.passed is allow and (check.threshold, check.value) == ("90", "80")
    assert r.champion_contract_fingerprint == CHAMPION.fingerprint and r.version_bump == "major"
    assert r.model_validate_json(r.model_dump_json()) == r  # evidence round trip


def test_breaking_without_major_bump_is_noted():
    r = contract_compatibility(CHAMPION, _variant(_age("minimum", 21), "1.0.1"), allow_breaking=False)
    assert not r.passed and r.reasons[-1] == "note: breaking changes with a patch version bump"
