"""Validation gate: a dataset against its data contract (Great Expectations suite).

Outcome per batch: ``pass``; ``quarantine`` (row-level failures, within the policy's
share: invalid rows go to a quarantine parquet with their failed expectations, valid
rows go on); or ``fail`` (dataset-level failures, broken checks, or too many
quarantined rows). The input is never modified.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import Field

from data_contracts.validate import ExpectationOutcome
from tasks.datasets import write_table
from tasks.evidence import Check, GateResult, evidence_file, held_to, write_json
from tasks.policy import ValidationPolicy

FAILURES_COLUMN = "_lockgate_failed_expectations"


class ValidationResult(GateResult):
    dataset: str
    contract: str
    contract_version: str
    contract_fingerprint: str
    n_rows: int
    n_quarantined: int
    failed_expectations: dict[str, int | None] = Field(
        default_factory=dict,
        description="Failed expectation name -> failing rows (None for dataset-level checks without a row count).",
    )
    expectations: list[ExpectationOutcome] = Field(default_factory=list, description="Every expectation, suite order.")
    data_docs_error: str | None = Field(
        None, description="Why the Data Docs page could not be built (evidence missing, the decision stands)."
    )


def validation_result(outcome, policy: ValidationPolicy, *, dataset: str, contract) -> ValidationResult:
    """Decide pass / quarantine / fail from a ContractValidation (see data_contracts.validate)."""
    n_bad = len(outcome.row_failures)
    share = n_bad / outcome.n_rows if outcome.n_rows else 0.0
    checks = [
        held_to("dataset_failures", len(outcome.dataset_failures), "==", 0),
        held_to("broken_checks", len(outcome.errors), "==", 0),
        held_to("quarantine_share", share, "<=", policy.max_quarantine_share),
    ]
    reasons = [f"dataset-level: {f}" for f in outcome.dataset_failures]
    reasons += [f"check error: {e}" for e in outcome.errors]
    if not checks[2].passed:
        reasons.append(f"{n_bad} of {outcome.n_rows} rows failed row-level expectations: {checks[2].describe()}")
    passed = all(c.passed for c in checks)
    decision = "fail" if not passed else ("quarantine" if n_bad else "pass")
    if passed:
        reasons.append(f"{outcome.n_rows} rows checked against contract {contract.name} v{contract.version}; {n_bad} quarantined")
    checks.append(Check(name="rows", value=outcome.n_rows, passed=True))
    checks.append(Check(name="quarantined_rows", value=n_bad, passed=True))
    checks += [Check(name=f"failing_rows:{e.name}", value=e.unexpected_count, passed=True)
               for e in outcome.expectations if e.unexpected_count is not None]
    return ValidationResult(
        gate="validation",
        passed=passed,
        decision=decision,
        reasons=reasons,
        checks=checks,
        dataset=dataset,
        contract=contract.name,
        contract_version=str(contract.version),
        contract_fingerprint=contract.fingerprint,
        n_rows=outcome.n_rows,
        n_quarantined=n_bad,
        failed_expectations={
            e.name: e.unexpected_count for e in outcome.expectations if not e.success and not e.skipped
        },
        expectations=outcome.expectations,
    )


def expectation_table(result: ValidationResult) -> list[dict]:
    """One row per expectation (name, level, success, failing rows, observed value), for a Prefect table artifact."""
    return [
        {"expectation": e.name, "level": e.level, "success": e.success,
         "failing_rows": e.unexpected_count, "observed_value": e.observed_value, "note": e.skipped or e.error or ""}
        for e in result.expectations
    ]


def quarantine_frame(df: pd.DataFrame, row_failures: dict[int, list[str]]) -> pd.DataFrame:
    """The invalid rows (by position) with a column listing their failed expectations."""
    positions = sorted(row_failures)
    bad = df.iloc[positions].copy()
    bad[FAILURES_COLUMN] = ["; ".join(row_failures[p]) for p in positions]
    return bad


def valid_rows(df: pd.DataFrame, row_failures: dict[int, list[str]]) -> pd.DataFrame:
    if not row_failures:
        return df
    keep = pd.Series(True, index=range(len(df)))
    keep.iloc[sorted(row_failures)] = False
    return df.iloc[keep.to_numpy()]


def validate_dataset(
    df: pd.DataFrame,
    contract,
    policy: ValidationPolicy,
    *,
    dataset: str,
    include_label: bool,
    evidence_dir: Path,
    quarantine_path: Path | None,
) -> tuple[ValidationResult, pd.DataFrame]:
    """Validate ``df``; write the GE result, its Data Docs page (and quarantined rows); return the result and the valid
    rows. A Data Docs build failure is recorded in ``data_docs_error`` and the reasons, not raised."""
    from data_contracts.data_docs import write_data_docs
    from data_contracts.validate import validate_frame

    outcome = validate_frame(df, contract, include_label=include_label)
    result = validation_result(outcome, policy, dataset=dataset, contract=contract)
    evidence = {"ge_result": write_json(evidence_dir / "ge_validation_result.json", outcome.ge_result)}
    update: dict = {"evidence": evidence}
    if outcome.ge_result:  # empty when GE never ran (duplicated column names, a crash inside GE)
        try:
            evidence["data_docs"] = evidence_file(write_data_docs(outcome.ge_result, evidence_dir, run_name=dataset).html)
        except Exception as exc:  # noqa: BLE001 - docs are evidence, not the decision: record why they are missing
            update["data_docs_error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            update["reasons"] = result.reasons + [f"Data Docs not built: {update['data_docs_error']}"]
    if outcome.row_failures and quarantine_path is not None:
        write_table(quarantine_frame(df, outcome.row_failures), quarantine_path)
        evidence["quarantine"] = evidence_file(quarantine_path)
    return result.model_copy(update=update), valid_rows(df, outcome.row_failures)
