"""The validation gate's decision (pure) and its quarantine output on real GE validation."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from data_contracts.contract import load_contract
from data_contracts.synthetic_credit import generate_frame
from data_contracts.validate import ContractValidation
from tasks.policy import ValidationPolicy
from tasks.validation.gate import FAILURES_COLUMN, validate_dataset, validate_location, validation_result

CONTRACT = load_contract("credit_default")


def _outcome(n_rows, bad_rows=0, dataset_failures=(), errors=()):
    return ContractValidation(
        contract_name=CONTRACT.name, contract_version=CONTRACT.version, contract_fingerprint=CONTRACT.fingerprint,
        include_label=False, n_rows=n_rows, row_failures={i: ["annual_income not null"] for i in range(bad_rows)},
        dataset_failures=list(dataset_failures), errors=list(errors))


@pytest.mark.parametrize(
    "outcome,decision",
    [
        (_outcome(100), "pass"),
        (_outcome(100, bad_rows=5), "quarantine"),
        (_outcome(100, bad_rows=6), "fail"),  # 6% > 5%
        (_outcome(100, dataset_failures=["applied_at exists: missing"]), "fail"),
        (_outcome(100, errors=["great_expectations raised KeyError"]), "fail"),
    ],
)
def test_decision(outcome, decision):
    result = validation_result(outcome, ValidationPolicy(max_quarantine_share=0.05), dataset="d", contract=CONTRACT)
    assert result.decision == decision and result.passed == (decision != "fail")
    if decision == "fail":
        assert result.failed_checks() and all(c.describe() for c in result.failed_checks())


def test_quarantine_written_and_input_untouched(tmp_path):
    df = generate_frame(200, seed=3, day=date(2026, 11, 1), null_spike=0.03, unseen_categories=0.01)
    df = df.drop(columns=[CONTRACT.label_column])
    before = df.copy(deep=True)
    result, valid = validate_dataset(df, CONTRACT, ValidationPolicy(max_quarantine_share=0.2), dataset="day",
                                     include_label=False, evidence_dir=tmp_path / "ev",
                                     quarantine_path=tmp_path / "q.parquet")
    pd.testing.assert_frame_equal(df, before)
    bad = df["annual_income"].isna() | ~df["region"].isin(["north", "south", "east", "west", "central"])
    assert result.decision == "quarantine" and result.n_quarantined == int(bad.sum()) > 0
    quarantined = pd.read_parquet(tmp_path / "q.parquet")
    assert len(quarantined) + len(valid) == len(df)
    assert set(quarantined[CONTRACT.id_column]) == set(df.loc[bad, CONTRACT.id_column])
    assert quarantined[FAILURES_COLUMN].str.len().gt(0).all()
    assert {"ge_result", "quarantine"} <= set(result.evidence)


def test_data_docs_page_is_evidence_with_its_sha256(tmp_path):
    from tasks.evidence import sha256_file

    df = generate_frame(120, seed=4, day=date(2026, 11, 1)).assign(age=lambda d: d["age"].where(d.index >= 4, 5))
    result, _ = validate_dataset(df, CONTRACT, ValidationPolicy(max_quarantine_share=0.2), dataset="golden",
                                 include_label=True, evidence_dir=tmp_path / "ev", quarantine_path=None)
    page = result.evidence["data_docs"]
    assert page.path == str(tmp_path / "ev" / "data_docs.html") and page.sha256 == sha256_file(page.path)
    assert "4 unexpected values found" in (tmp_path / "ev" / "data_docs.html").read_text(encoding="utf-8")
    assert result.data_docs_error is None and result.decision == "quarantine"


def test_data_docs_on_failures_only_where_rows_fail(tmp_path):
    """``data_docs: on_failures``: a clean validation keeps GE's result and no page (an earlier one is removed); one
    with failing rows gets its page."""
    policy = ValidationPolicy(max_quarantine_share=0.2, data_docs="on_failures")
    clean = generate_frame(120, seed=4, day=date(2026, 11, 1))
    dirty = clean.assign(age=lambda d: d["age"].where(d.index >= 4, 5))
    page = tmp_path / "ev" / "data_docs.html"
    validate_dataset(clean, CONTRACT, ValidationPolicy(), dataset="golden", include_label=True,
                     evidence_dir=tmp_path / "ev", quarantine_path=None)
    assert page.exists()  # "always", the default
    result, _ = validate_dataset(clean, CONTRACT, policy, dataset="golden", include_label=True,
                                 evidence_dir=tmp_path / "ev", quarantine_path=None)
    assert result.decision == "pass" and set(result.evidence) == {"ge_result"} and not page.exists()
    result, _ = validate_dataset(dirty, CONTRACT, policy, dataset="golden", include_label=True,
                                 evidence_dir=tmp_path / "ev", quarantine_path=None)
    assert result.decision == "quarantine" and result.evidence["data_docs"].path == str(page) and page.exists()


def test_data_docs_failure_is_recorded_not_raised(tmp_path):
    (tmp_path / "ev" / "data_docs.html").mkdir(parents=True)  # the page cannot be written
    df = generate_frame(50, seed=4, day=date(2026, 11, 1))
    result, _ = validate_dataset(df, CONTRACT, ValidationPolicy(), dataset="golden", include_label=True,
                                 evidence_dir=tmp_path / "ev", quarantine_path=None)
    assert result.decision == "pass" and "data_docs" not in result.evidence and "ge_result" in result.evidence
    assert result.data_docs_error.startswith("IsADirectoryError") and "Data Docs not built" in result.reasons[-1]


def test_chunked_validation_again_keeps_only_its_own_pages(tmp_path):
    """Failing rows in two chunks: a page per chunk. Validated again once fixed: only the first chunk's page, the
    earlier chunk pages are gone (they would not be this validation's)."""
    clean = generate_frame(200, seed=4, day=date(2026, 11, 1))
    data, ev = tmp_path / "batch.parquet", tmp_path / "ev"

    def validate(df):
        df.to_parquet(data, index=False)
        return validate_location(data, CONTRACT, ValidationPolicy(max_quarantine_share=0.2), dataset="batch",
                                 include_label=True, evidence_dir=ev, quarantine_path=tmp_path / "q.parquet",
                                 chunk_rows=100, workers=1)  # no fork: this process has JAX

    def pages():
        return sorted(p.relative_to(ev).as_posix() for p in ev.rglob("*.html"))

    result = validate(clean.assign(age=clean["age"].where(~clean.index.isin([3, 150]), 150)))
    assert result.decision == "quarantine" and result.n_quarantined == 2
    assert pages() == ["data_docs_rows_0/data_docs.html", "data_docs_rows_100/data_docs.html"]
    assert {"data_docs_rows_0", "data_docs_rows_100"} <= set(result.evidence)
    result = validate(clean)
    assert result.decision == "pass" and pages() == ["data_docs/data_docs.html"]
    assert sorted(p.name for p in ev.iterdir() if p.is_dir()) == ["data_docs"]
    result = validate_location(data, CONTRACT, ValidationPolicy(data_docs="on_failures"), dataset="batch",
                               include_label=True, evidence_dir=ev, quarantine_path=tmp_path / "q.parquet",
                               chunk_rows=100, workers=1)
    assert result.decision == "pass" and pages() == [] and "data_docs" not in result.evidence


def test_a_failed_data_docs_build_leaves_no_earlier_page(tmp_path):
    """An earlier validation's page must not stand in for one this validation could not build."""
    from tasks.validation.gate import _add_data_docs

    page = tmp_path / "ev" / "data_docs.html"
    page.parent.mkdir()
    page.write_text("an earlier validation's page")
    result, _ = validate_dataset(generate_frame(50, seed=4, day=date(2026, 11, 1)), CONTRACT, ValidationPolicy(),
                                 dataset="golden", include_label=True, evidence_dir=tmp_path / "ev",
                                 quarantine_path=None)
    update: dict = {"evidence": {}}
    _add_data_docs({"not": "a GE result"}, tmp_path / "ev", "golden", "data_docs", result, update)
    assert not page.exists() and update["evidence"] == {} and "Data Docs not built" in update["reasons"][-1]
