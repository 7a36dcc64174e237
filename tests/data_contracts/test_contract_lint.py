"""lint_contract: load errors become one error finding; warnings for a missing owner or description."""

from __future__ import annotations

import copy

import pytest
import yaml

from data_contracts.lint import LintFinding, lint_contract


@pytest.fixture
def write(contract_raw, tmp_path):
    def _write(edit=None, text=None):
        path = tmp_path / "c.yaml"
        if text is None:
            raw = copy.deepcopy(contract_raw)
            if edit is not None:
                edit(raw)
            text = yaml.safe_dump(raw, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def _props(raw):
    return raw["schema"][0]["properties"]


def test_shipped_contract_is_clean(ge_runtime):
    assert lint_contract("credit_default") == []


def test_warnings(write):
    def edit(raw):
        del raw["team"]
        del _props(raw)[2]["description"]
        raw["version"] = "1"

    findings = lint_contract(write(edit), build_suites=False)
    assert all(f.level == "warning" for f in findings)
    assert {(f.path, f.message.split(":")[0]) for f in findings} == {
        ("team", "no owner"),
        ("version", "version '1' is not semver X.Y.Z; contract diff cannot tell the bump"),
        ("schema[0](applications).properties[2](age)", "no description"),
    }


def _set_opt(key, value, column=2):
    def edit(raw):
        _props(raw)[column].setdefault("logicalTypeOptions", {})[key] = value
    return edit


@pytest.mark.parametrize("edit,text,path,fragment", [
    (_set_opt("pattern", "^APP-[0-9"), None,
     "schema[0](applications).properties[2](age).logicalTypeOptions.pattern", "unknown key (not valid ODCS)"),
    (_set_opt("pattern", "^APP-[0-9", column=0), None,
     "schema[0](applications).properties[0](application_id).logicalTypeOptions.pattern", "invalid regex"),
    (_set_opt("minimum", 95), None, "schema[0](applications).properties[2](age).logicalTypeOptions",
     "minimum 95 > maximum 90"),
    (lambda raw: raw.update(owner="me"), None, "owner", "unknown key"),
    (lambda raw: _props(raw)[2].update(logicalType="int"), None,
     "schema[0](applications).properties[2](age).logicalType", "'int' is not one of"),
    (None, "apiVersion: [unclosed\n", "<file>", "invalid YAML"),
    (None, "", "<file>", "expected a mapping"),
])
def test_load_errors_are_one_finding(write, edit, text, path, fragment):
    findings = lint_contract(write(edit, text), build_suites=False)
    assert len(findings) == 1, findings
    (f,) = findings
    assert f.level == "error" and f.path == path and fragment in f.message, f
    assert "\n" not in f.message


def test_missing_file(tmp_path):
    (f,) = lint_contract(tmp_path / "nope.yaml")
    assert f == LintFinding(level="error", path="<file>", message=f.message) and "no such contract file" in f.message


def test_suite_refusal_is_an_error(write, ge_runtime):
    """Loads fine, but the GE suite builder refuses it (multipleOf is not checked by lockgate)."""
    (f,) = lint_contract(write(_set_opt("multipleOf", 2)))
    assert f.level == "error" and f.path.endswith("logicalTypeOptions.multipleOf"), f
