"""Validate a pandas DataFrame against a contract with Great Expectations.

:func:`validate_frame` runs the contract's suite (:func:`data_contracts.ge_suite.build_suite`)
on one in-memory batch and sorts GE's answer into three kinds of outcome:

- ``row_failures``: positional row index -> names of the row-level expectations the row
  fails (``"annual_income not null"``, ``"region in set"``). Those rows can be
  quarantined; the rest of the batch can go on.
- ``dataset_failures``: whole-batch failures (missing column, wrong dtype, row count,
  uniqueness), each naming the expectation and the observed value.
- ``errors``: broken checks. GE does not raise for a check it could not run; it returns
  ``success=False`` with ``exception_info``. Those are pipeline errors, not data
  failures, except where the cause is already a dataset failure: checks on a missing
  column, or on a column of the wrong dtype, are reported as skipped.

The caller's frame is never modified: GE sees a shallow copy with a fresh
``RangeIndex``, so row indices are positions.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data_contracts.contract import Contract
from data_contracts.ge_suite import META_KEY, build_suite, configurations_built_once, ge_runtime

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    # Row positions are what quarantine needs; the failing values are in the rows
    # themselves. Leaving GE's value lists and its pandas filter query out keeps the
    # evidence small and skips GE's value counting.
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}


class ExpectationOutcome(BaseModel):
    """What one expectation found."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Human name, e.g. 'annual_income not null'.")
    type: str = Field(description="GE expectation type.")
    column: str | None = Field(description="Column, or None for table-level expectations.")
    level: Literal["row", "dataset"] = Field(description="row: quarantinable; dataset: fails the batch.")
    success: bool = Field(description="GE's verdict (False also for broken or skipped checks).")
    unexpected_count: int | None = Field(None, description="Failing rows (row-level and uniqueness checks).")
    unexpected_percent: float | None = Field(None, description="Failing rows in percent of non-null rows.")
    element_count: int | None = Field(None, description="Rows GE looked at (map expectations).")
    missing_count: int | None = Field(None, description="Null rows among them, which map expectations skip.")
    observed_value: Any = Field(None, description="Observed value of dataset-level checks (dtype name, row count).")
    skipped: str | None = Field(None, description="Why the check could not run because of another failure.")
    error: str | None = Field(None, description="Exception message of a broken check.")


class ContractValidation(BaseModel):
    """Outcome of validating one batch against a contract."""

    model_config = ConfigDict(extra="forbid")

    contract_name: str = Field(description="Contract name.")
    contract_version: str = Field(description="Contract version.")
    contract_fingerprint: str = Field(description="sha256 of the contract, for lineage.")
    include_label: bool = Field(description="Whether the label column was expected.")
    n_rows: int = Field(description="Rows in the batch.")
    row_failures: dict[int, list[str]] = Field(
        default_factory=dict, description="Positional row index -> failed row-level expectation names."
    )
    dataset_failures: list[str] = Field(default_factory=list, description="Whole-batch failures with observed values.")
    expectations: list[ExpectationOutcome] = Field(default_factory=list, description="Per expectation, suite order.")
    errors: list[str] = Field(default_factory=list, description="Broken checks (pipeline errors, not data failures).")
    ge_result: dict[str, Any] = Field(default_factory=dict, description="GE validation result (to_json_dict()).")
    failed_row_count: int | None = Field(
        None, description="Rows with a row-level failure when row_failures is not kept (chunked validation, "
        "whose quarantine is streamed); None: len(row_failures).")
    seconds: float = Field(0.0, description="Wall time of the GE validation.")

    @property
    def passed(self) -> bool:
        """No failure of any kind and no broken check."""
        return not (self.n_failed_rows or self.dataset_failures or self.errors)

    @property
    def n_failed_rows(self) -> int:
        return len(self.row_failures) if self.failed_row_count is None else self.failed_row_count

    def failed_rows(self) -> list[int]:
        """Positional indices of rows with at least one row-level failure, ascending."""
        return sorted(self.row_failures)

    def failure_counts(self) -> dict[str, int]:
        """Failing rows per row-level expectation name."""
        return {
            e.name: int(e.unexpected_count or 0)
            for e in self.expectations
            if e.level == "row" and not e.success and e.unexpected_count
        }

    def summary_line(self) -> str:
        verdict = (
            "error"
            if self.errors
            else "fail"
            if self.dataset_failures
            else "rows failed"
            if self.n_failed_rows
            else "pass"
        )
        parts = [f"{self.contract_name}@{self.contract_version}: {verdict}", f"{self.n_rows} rows"]
        if self.n_failed_rows:
            parts.append(f"{self.n_failed_rows} rows with failures")
        parts += self.dataset_failures + [f"error: {e}" for e in self.errors]
        return "; ".join(parts)


_SUITES: dict[tuple[str, bool, tuple[str, ...]], Any] = {}


def validate_frame(df: pd.DataFrame, contract: Contract, *, include_label: bool,
                   exclude: tuple[str, ...] = ()) -> ContractValidation:
    """Validate ``df`` against ``contract``.

    Args:
      df: the batch; any index (row failures are keyed by position). Not modified.
      contract: a loaded contract.
      include_label: expect the label column (training/golden data); False for
        production partitions, which have no label.
      exclude: GE expectation class names to leave out (see :func:`build_suite`).

    Returns:
      A :class:`ContractValidation`; it never raises for bad data.

    Raises:
      ContractError / SuiteBuildError: the contract cannot be compiled into a suite.
    """
    runtime = ge_runtime()
    key = (contract.fingerprint, include_label, exclude)
    suite = _SUITES.get(key)
    if suite is None:
        suite = _SUITES[key] = build_suite(contract, include_label=include_label, exclude=exclude)

    base = {
        "contract_name": contract.name,
        "contract_version": contract.version,
        "contract_fingerprint": contract.fingerprint,
        "include_label": include_label,
        "n_rows": len(df),
    }
    duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if duplicated:  # GE would hand a DataFrame to every check of such a column
        return ContractValidation(**base, dataset_failures=[f"column names unique: duplicated {duplicated}"])

    frame = df.copy(deep=False)  # GE sees our own frame object; the column data is shared, not copied
    frame.index = pd.RangeIndex(len(frame))
    t0 = time.perf_counter()
    try:
        with runtime.lock:
            try:
                batch = runtime.batch_definition.get_batch(batch_parameters={"dataframe": frame})
                with configurations_built_once(suite):
                    result = batch.validate(suite, result_format=RESULT_FORMAT)
            finally:
                _release_batches(runtime)
    except Exception as exc:  # noqa: BLE001 - a crash inside GE is a broken check, reported, not raised
        message = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
        return ContractValidation(
            **base,
            errors=[f"great_expectations raised {type(exc).__name__}: {message}"],
            seconds=time.perf_counter() - t0,
        )
    seconds = time.perf_counter() - t0
    return summarise_result(result, base, columns=set(frame.columns), seconds=seconds)


def _release_batches(runtime) -> None:
    """Drop GE's references to the last batch so a validated frame does not stay in memory.

    GE's batch manager keeps the last batch's data (the whole DataFrame) until the next
    batch replaces it; with daily partitions of millions of rows that is memory held
    for nothing.
    """
    engine = runtime.batch_definition.data_asset.datasource.get_execution_engine()
    manager = getattr(engine, "batch_manager", None)
    if manager is None:
        return
    manager.reset_batch_cache()
    data_cache = getattr(manager, "_batch_data_cache", None)
    if isinstance(data_cache, dict):
        data_cache.clear()
    if hasattr(manager, "_active_batch_data_id"):
        manager._active_batch_data_id = None


def summarise_result(result, base: dict[str, Any], *, columns: set[str], seconds: float) -> ContractValidation:
    runs = []
    for r in result.results:
        config = r.expectation_config
        meta = (config.meta or {}).get(META_KEY, {})
        runs.append((r, config, meta))

    missing = {m["column"] for r, c, m in runs if c.type == "expect_column_to_exist" and not r.success}
    missing |= {m["column"] for r, c, m in runs if m.get("column") is not None and m["column"] not in columns}
    wrong_dtype = {
        m["column"] for r, c, m in runs if c.type.endswith("dtype_to_be_in_list") and not r.success
    } - missing

    outcomes: list[ExpectationOutcome] = []
    row_failures: dict[int, list[str]] = {}
    dataset_failures: list[str] = []
    errors: list[str] = []
    for r, config, meta in runs:
        name = meta.get("name") or f"{config.type}({config.kwargs.get('column', '')})"
        level = meta.get("level", "dataset")
        column = meta.get("column")
        res = r.result or {}
        outcome = ExpectationOutcome(
            name=name,
            type=config.type,
            column=column,
            level=level,
            success=bool(r.success),
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=res.get("unexpected_percent"),
            element_count=res.get("element_count"),
            missing_count=res.get("missing_count"),
            observed_value=_jsonable(res.get("observed_value")),
        )
        error = _exception_message(r)
        is_exists = config.type == "expect_column_to_exist"
        if column in missing and not is_exists:
            outcome.skipped = f"column {column!r} is missing"
        elif column in wrong_dtype and level == "row" and (error is not None or not r.success):
            outcome.skipped = f"column {column!r} has the wrong dtype"
        elif error is not None:
            outcome.error = error
            errors.append(f"{name}: {error}")
        elif not r.success:
            if level == "row":
                _add_row_failures(row_failures, res.get("unexpected_index_list") or [], name)
            else:
                dataset_failures.append(dataset_failure_message(name, config, res, meta, base["n_rows"]))
        outcomes.append(outcome)

    # Every field is built and typed here; validating a million-entry row_failures dict again costs ~0.7 s.
    return ContractValidation.model_construct(
        **base,
        row_failures=row_failures,
        dataset_failures=dataset_failures,
        expectations=outcomes,
        errors=errors,
        ge_result=_ge_evidence(result),
        seconds=seconds,
    )


def _add_row_failures(row_failures: dict[int, list[str]], indices: list, name: str) -> None:
    get = row_failures.get
    for i in np.asarray(indices, dtype=np.int64).tolist():
        names = get(i)
        if names is None:
            row_failures[i] = [name]
        else:
            names.append(name)


def _ge_evidence(result) -> dict[str, Any]:
    """``result.to_json_dict()``, without GE's per-element deep copy of the row index lists.

    GE copies and converts every index one by one (~2 s per million failing rows);
    the lists are plain integers, so they are taken out, the rest is serialised by GE,
    and they are put back as lists of int.
    """
    taken: list[tuple[int, list]] = []
    for pos, r in enumerate(result.results):
        res = r.result
        if isinstance(res, dict) and res.get("unexpected_index_list"):
            taken.append((pos, res.pop("unexpected_index_list")))
    try:
        evidence = result.to_json_dict()
    finally:
        for pos, indices in taken:
            result.results[pos].result["unexpected_index_list"] = indices
    for pos, indices in taken:
        evidence["results"][pos]["result"]["unexpected_index_list"] = np.asarray(indices, dtype=np.int64).tolist()
    return evidence


def dataset_failure_message(name: str, config, res: dict, meta: dict, n_rows: int) -> str:
    kw = config.kwargs
    t = config.type
    if t == "expect_column_to_exist":
        return f"{name}: column {kw['column']!r} is missing"
    if t.endswith("dtype_to_be_in_list"):
        inferred = (res.get("details") or {}).get("inferred_type")
        values = f" holding {inferred} values" if inferred else ""
        observed = res.get("observed_value")
        return f"{name}: observed dtype {observed!r}{values}, contract logicalType {meta.get('logical_type')}"
    if t == "expect_table_row_count_to_be_between":
        bounds = f"between {kw.get('min_value')} and {kw.get('max_value')}"
        return f"{name}: observed {res.get('observed_value')} rows, expected {bounds}"
    if t in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        return f"{name}: {res.get('unexpected_count')} of {n_rows} rows share a duplicated value"
    observed = res.get("observed_value", res.get("unexpected_count"))
    return f"{name}: observed {observed!r}"


def _exception_message(r) -> str | None:
    """GE's exception_info is either one {raised_exception, exception_message, ...} dict or one per metric."""
    info = r.exception_info or {}
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception") or entry.get("exception_message"):
            message = str(entry.get("exception_message") or "unknown error").strip()
            return message.splitlines()[0][:500] if message else "unknown error"
    return None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return value.item()  # numpy scalars
    except AttributeError:
        return str(value)
