"""Data Docs of a validation: built offline by a file-mode GE context, one self-contained page."""

from __future__ import annotations

import re

import pytest

from data_contracts.data_docs import DATA_DOCS_FILE, write_data_docs
from data_contracts.validate import validate_frame


@pytest.fixture(scope="module")
def failing_validation(contract, clean_frame, ge_runtime):
    frame = clean_frame.copy()
    frame.loc[:6, "age"] = 5  # 7 rows out of range
    frame.loc[:2, "region"] = "atlantis"  # 3 rows not in the set
    outcome = validate_frame(frame, contract, include_label=True)
    assert outcome.failure_counts() == {"age in range": 7, "region in set": 3}
    return outcome


@pytest.mark.parametrize("given", ["json dict", "ge object"])
def test_page_names_the_expectations_and_failing_counts(failing_validation, tmp_path, given):
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema

    ge_result = failing_validation.ge_result
    if given == "ge object":
        ge_result = expectationSuiteValidationResultSchema.load(ge_result)
    docs = write_data_docs(ge_result, tmp_path / "docs", run_name="golden")
    assert docs.html == tmp_path / "docs" / DATA_DOCS_FILE
    html = docs.html.read_text(encoding="utf-8")
    assert "7 unexpected values found" in html and "3 unexpected values found" in html
    assert "atlantis" not in html  # lockgate keeps failing values out of the evidence (rows are quarantined)
    # GE renders each expectation as prose on its column, with the bounds / the value set
    assert "greater than or equal to" in html and "north" in html
    assert re.search(r">\s*age\s*<", html) and re.search(r">\s*region\s*<", html)
    assert failing_validation.ge_result["suite_name"] in html
    # nothing needed to render it comes from the network
    assert not re.search(r"<(script|img)\b[^>]*\bsrc=[\"']https?://", html, re.I)
    assert not re.search(r"<link\b[^>]*\bhref=[\"']https?://", html, re.I)
    assert docs.external_tags_removed > 0 and "<style>" in html


def test_build_is_fast(failing_validation, tmp_path):
    write_data_docs(failing_validation.ge_result, tmp_path / "warm", run_name="warm")
    docs = write_data_docs(failing_validation.ge_result, tmp_path / "docs", run_name="golden")
    assert docs.seconds < 1.0, docs.seconds


def test_validation_still_works_after_docs(contract, clean_frame, failing_validation, tmp_path):
    """Building docs makes a file context GE's current project; the validation context is restored."""
    write_data_docs(failing_validation.ge_result, tmp_path, run_name="x")
    assert validate_frame(clean_frame, contract, include_label=True).passed


def test_not_a_validation_result_raises(tmp_path):
    with pytest.raises(Exception):
        write_data_docs({"results": "nope"}, tmp_path, run_name="x")


def test_run_named_after_a_path_builds(failing_validation, tmp_path):
    """`lockgate validate /abs/path/data` names the run after the path; GE's store refuses '/' in keys."""
    docs = write_data_docs(failing_validation.ge_result, tmp_path / "docs", run_name="/data/day=1 rows 0+")
    assert failing_validation.ge_result["suite_name"] in docs.html.read_text(encoding="utf-8")
