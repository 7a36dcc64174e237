"""Validation gate: a dataset against its data contract (Great Expectations suite).

Outcome per batch: ``pass``; ``quarantine`` (row-level failures, within the policy's
share: invalid rows go to a quarantine parquet with their failed expectations, valid
rows go on); or ``fail`` (dataset-level failures, broken checks, or too many
quarantined rows). The input is never modified.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
from pydantic import Field

from data_contracts.data_docs import DATA_DOCS_FILE
from data_contracts.validate import ExpectationOutcome
from tasks.datasets import write_table
from tasks.evidence import Check, GateResult, evidence_file, held_to, remove_stale, write_json
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
    n_bad = outcome.n_failed_rows
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


def _add_data_docs(ge_result: dict, folder: Path, run_name: str, key: str, result, update: dict) -> None:
    """Build the Data Docs page of one GE result into ``update["evidence"][key]``; record a failure instead."""
    from data_contracts.data_docs import write_data_docs

    remove_stale(folder / DATA_DOCS_FILE)  # if this build fails, an earlier validation's page must not stand in
    try:
        update["evidence"][key] = evidence_file(write_data_docs(ge_result, folder, run_name=run_name).html)
    except Exception as exc:  # noqa: BLE001 - docs are evidence, not the decision: record why they are missing
        update["data_docs_error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        update["reasons"] = list(update.get("reasons", result.reasons)) + [
            f"Data Docs not built: {update['data_docs_error']}"]


DATA_DOCS_CHUNKS = 3


def _wants_data_docs(policy: ValidationPolicy, result, rows_failed: bool) -> bool:
    return policy.data_docs == "always" or rows_failed or not result.passed


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
    from data_contracts.validate import validate_frame

    outcome = validate_frame(df, contract, include_label=include_label)
    result = validation_result(outcome, policy, dataset=dataset, contract=contract)
    evidence = {"ge_result": write_json(evidence_dir / "ge_validation_result.json", outcome.ge_result)}
    update: dict = {"evidence": evidence}
    if outcome.ge_result and _wants_data_docs(policy, result, rows_failed=bool(outcome.row_failures)):  # {}: no GE run
        _add_data_docs(outcome.ge_result, evidence_dir, dataset, "data_docs", result, update)
    else:
        remove_stale(evidence_dir / DATA_DOCS_FILE)
    if outcome.row_failures and quarantine_path is not None:
        write_table(quarantine_frame(df, outcome.row_failures), quarantine_path)
        evidence["quarantine"] = evidence_file(quarantine_path)
    return result.model_copy(update=update), valid_rows(df, outcome.row_failures)


def validate_location(
    location: str | Path,
    contract,
    policy: ValidationPolicy,
    *,
    dataset: str,
    include_label: bool,
    evidence_dir: Path,
    quarantine_path: Path,
    chunk_rows: int = 500_000,
    workers: int | None = None,
    progress=None,
) -> ValidationResult:
    """Validate a parquet file or dataset of any size chunk by chunk (data_contracts.validate_chunked).

    The same verdict, counts and quarantined rows as validating the whole dataset at once;
    quarantined rows are streamed to ``quarantine_path`` (written under a temporary name,
    renamed when complete), memory stays at about one chunk. ``workers``: processes forked to check chunks
    (default: one per chunk up to 4 and the CPU count; 1 checks them here, e.g. in a process that uses JAX).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_contracts.validate_chunked import validate_chunked
    from tasks.errors import LockgateError

    quarantine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = quarantine_path.with_name(f".{quarantine_path.name}.tmp")
    writer: list[pq.ParquetWriter] = []

    def quarantine(chunk) -> None:  # a data_contracts.chunk_check.ChunkResult
        if not chunk.outcome.row_failures:
            return
        bad = chunk.failing.copy()
        bad[FAILURES_COLUMN] = ["; ".join(chunk.outcome.row_failures[p]) for p in chunk.failing.index]
        if not writer:
            table = pa.Table.from_pandas(bad, preserve_index=False)
            writer.append(pq.ParquetWriter(tmp, table.schema))
        else:
            table = pa.Table.from_pandas(bad, schema=writer[0].schema, preserve_index=False)
        writer[0].write_table(table)

    try:
        outcome = validate_chunked(location, contract, include_label=include_label, chunk_rows=chunk_rows,
                                   on_chunk=quarantine, progress=progress, keep_row_failures=False, workers=workers,
                                   ge_results_path=evidence_dir / "ge_validation_results.jsonl")
    except (pa.ArrowException, OSError) as e:
        raise LockgateError(f"data {dataset} is not a readable parquet file: {str(e).splitlines()[0]}") from None
    finally:
        for w in writer:
            w.close()
    result = validation_result(outcome, policy, dataset=dataset, contract=contract)
    evidence = {"ge_result": write_json(evidence_dir / "ge_validation_result.json", outcome.ge_result)}
    update: dict = {"evidence": evidence}
    evidence["ge_results"] = evidence_file(evidence_dir / "ge_validation_results.jsonl")
    # Data Docs per chunk: the first chunks with a failure (or the first chunk), not one page per million rows.
    chunks = [c for c in outcome.ge_result.get("chunks", []) if c["result"]]
    shown = [c for c in chunks if not c["result"].get("success", True)][:DATA_DOCS_CHUNKS] or chunks[:1]
    if not _wants_data_docs(policy, result, rows_failed=bool(writer)):  # the writer opens at the first quarantined row
        shown = []
    keys = {("data_docs" if len(shown) == 1 else f"data_docs_rows_{c['first_row']}"): c for c in shown}
    for stale in evidence_dir.glob(f"data_docs*/{DATA_DOCS_FILE}"):  # an earlier validation's pages are not this one's
        if stale.parent.name not in keys:
            remove_stale(stale)
            with contextlib.suppress(OSError):
                stale.parent.rmdir()
    for key, c in keys.items():
        _add_data_docs(c["result"], evidence_dir / key, f"{dataset} rows {c['first_row']}+", key, result, update)
    if writer:
        tmp.replace(quarantine_path)
        evidence["quarantine"] = evidence_file(quarantine_path)
    return result.model_copy(update=update)
