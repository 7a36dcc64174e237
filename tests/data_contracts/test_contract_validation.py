"""Validating frames against the contract with real Great Expectations."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from data_contracts.contract import Contract
from data_contracts.ge_suite import expectation_specs
from data_contracts.synthetic_credit import generate_frame
from data_contracts.validate import ContractValidation, validate_frame

DAY = date(2024, 5, 1)


def _validate(df: pd.DataFrame, contract: Contract, *, include_label: bool = True) -> ContractValidation:
    before = df.copy(deep=True)
    result = validate_frame(df, contract, include_label=include_label)
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is never modified
    assert df.index.equals(before.index)
    json.dumps(result.ge_result)  # evidence is plain JSON
    return result


def _rows_failing(result: ContractValidation, name: str) -> list[int]:
    return sorted(i for i, names in result.row_failures.items() if name in names)


@pytest.mark.parametrize("backend", ["numpy", "numpy_nullable", "pyarrow"])
def test_clean_data_passes_on_every_dtype_backend(contract, ge_runtime, clean_frame, backend):
    df = clean_frame if backend == "numpy" else clean_frame.convert_dtypes(dtype_backend=backend)
    result = _validate(df, contract)
    assert result.passed, result.summary_line()
    assert result.n_rows == 400 and not result.row_failures and not result.dataset_failures and not result.errors
    n_expectations = len(expectation_specs(contract, include_label=True))
    assert len(result.expectations) == len(result.ge_result["results"]) == n_expectations
    assert all(e.success for e in result.expectations)
    assert result.contract_fingerprint == contract.fingerprint


def test_production_partition_has_no_label(contract, ge_runtime, clean_frame):
    stream = clean_frame.drop(columns=["defaulted"])
    assert _validate(stream, contract, include_label=False).passed
    labeled = _validate(stream, contract, include_label=True)
    assert labeled.dataset_failures == ["defaulted exists: column 'defaulted' is missing"]
    assert not labeled.errors and not labeled.row_failures
    skipped = {e.name for e in labeled.expectations if e.skipped}
    assert skipped == {"defaulted dtype", "defaulted not null", "defaulted in set"}


def test_incidents_fail_the_right_rows_by_position(contract, ge_runtime):
    df = generate_frame(600, seed=8, day=DAY, null_spike=0.05, unseen_categories=0.05)
    df.index = pd.Index([f"row-{i}" for i in range(len(df))])[::-1]  # any index: failures are positions
    result = _validate(df, contract)
    nulls = np.flatnonzero(df["annual_income"].isna().to_numpy()).tolist()
    unseen = np.flatnonzero((df["region"] == "offshore").to_numpy()).tolist()
    assert nulls and unseen
    assert _rows_failing(result, "annual_income not null") == nulls
    assert _rows_failing(result, "region in set") == unseen
    assert set(result.row_failures) == set(nulls) | set(unseen)
    assert result.failure_counts() == {"annual_income not null": len(nulls), "region in set": len(unseen)}
    assert not result.dataset_failures and not result.errors and not result.passed


def test_unit_change_breaks_the_income_range(contract, ge_runtime):
    df = generate_frame(300, seed=9, day=DAY, unit_change=True)
    result = _validate(df, contract)
    below = np.flatnonzero((df["annual_income"] < 1000).to_numpy()).tolist()
    assert len(below) > 290
    assert _rows_failing(result, "annual_income in range") == below


def test_out_of_range_and_pattern_rows(contract, ge_runtime, clean_frame):
    df = clean_frame.copy()
    df.loc[3, "age"] = 200
    df.loc[4, "loan_amount"] = np.inf
    df.loc[5, "application_id"] = "APP-12"
    df.loc[6, "defaulted"] = 2
    result = _validate(df, contract)
    assert result.row_failures == {
        3: ["age in range"],
        4: ["loan_amount in range"],
        5: ["application_id matches pattern"],
        6: ["defaulted in set"],
    }


@pytest.mark.parametrize(
    "mutate, failure",
    [
        (lambda df: df.drop(columns=["credit_score"]), "credit_score exists: column 'credit_score' is missing"),
        (
            lambda df: df.assign(age=df["age"].astype(str)),
            "age dtype: observed dtype 'object' holding string values, contract logicalType integer",
        ),
        (
            lambda df: df.assign(annual_income=df["annual_income"].astype(str)),
            "annual_income dtype: observed dtype 'object' holding string values",
        ),
        (
            lambda df: df.assign(credit_score=df["credit_score"].astype(float)),
            "credit_score dtype: observed dtype 'float64'",
        ),
        (
            lambda df: df.assign(applied_at=df["applied_at"].dt.tz_localize("Europe/Paris")),
            "applied_at dtype: observed dtype 'datetime64[us, Europe/Paris]'",
        ),
        (
            lambda df: df.assign(region=df["region"].where(df.index != 7, 5)),
            "region dtype: observed dtype 'object' holding mixed-integer values",
        ),
        (lambda df: df.iloc[:0], "row count in range: observed 0 rows, expected between 1 and 50000000"),
        (
            lambda df: df.assign(application_id=df["application_id"].where(df.index != 9, df["application_id"][8])),
            "application_id unique: 2 of 400 rows share a duplicated value",
        ),
        (lambda df: pd.concat([df, df[["region"]]], axis=1), "column names unique: duplicated ['region']"),
    ],
    ids=[
        "missing-column",
        "int-as-str",
        "float-as-str",
        "int-as-float",
        "other-timezone",
        "mixed-types",
        "zero-rows",
        "duplicate-ids",
        "duplicate-column",
    ],
)
def test_dataset_failures(contract, ge_runtime, clean_frame, mutate, failure):
    result = _validate(mutate(clean_frame), contract)
    assert any(f.startswith(failure) for f in result.dataset_failures), result.dataset_failures
    assert not result.errors, result.errors
    assert not result.row_failures  # checks on a missing or mistyped column are skipped, not counted per row
    assert not result.passed


def test_broken_check_is_an_error_not_a_data_failure(contract_raw, ge_runtime, clean_frame):
    """GE reports a check it could not run as success=False with exception_info, not as an exception."""
    raw = copy.deepcopy(contract_raw)
    region = next(p for p in raw["schema"][0]["properties"] if p["name"] == "region")
    region["quality"][0]["arguments"]["validValues"] = [1, 2, 3]  # load-time checks refuse this; build it anyway
    broken = Contract.model_validate(raw)
    result = _validate(clean_frame.convert_dtypes(dtype_backend="pyarrow"), broken)
    assert len(result.errors) == 1 and result.errors[0].startswith("region in set: ")
    assert not result.row_failures and not result.dataset_failures and not result.passed
    outcome = next(e for e in result.expectations if e.name == "region in set")
    assert outcome.error and not outcome.success


def test_outcomes_and_summary(contract, ge_runtime, clean_frame):
    df = clean_frame.copy()
    df.loc[[1, 2], "annual_income"] = np.nan
    result = _validate(df.drop(columns=["channel"]), contract)
    assert result.summary_line() == (
        "credit_default@1.0.0: fail; 400 rows; 2 rows with failures; channel exists: column 'channel' is missing"
    )
    income = next(e for e in result.expectations if e.name == "annual_income not null")
    assert (income.level, income.success, income.unexpected_count, income.column) == ("row", False, 2, "annual_income")
    assert income.unexpected_percent == pytest.approx(0.5)
    assert result.failed_rows() == [1, 2]
    again = ContractValidation.model_validate_json(result.model_dump_json())
    assert again.row_failures == result.row_failures


def _dirty(frame: pd.DataFrame) -> pd.DataFrame:
    """Row failures of several kinds and a dataset failure (a duplicated id)."""
    df = frame.copy()
    df.loc[1, "annual_income"] = None
    df.loc[2, "age"] = 150
    df.loc[3, "region"] = "atlantis"
    df.loc[4, "application_id"] = df.loc[5, "application_id"]
    return df


@pytest.mark.parametrize("contract_name", ["credit_default", "loss_given_default"])
def test_configurations_built_once_give_ges_own_results(contract_name):
    """The same GE results, expectation by expectation, with each configuration built once as without."""
    from data_contracts.contract import load_contract
    from data_contracts.ge_suite import build_suite, configurations_built_once, ge_runtime
    from data_contracts.synthetic_credit import generate_lgd_frame
    from data_contracts.validate import RESULT_FORMAT

    contract = load_contract(contract_name)
    make = generate_lgd_frame if contract_name == "loss_given_default" else generate_frame
    frame = _dirty(make(300, seed=11, day=DAY))
    runtime, suite = ge_runtime(), build_suite(contract, include_label=True)

    def results(memo: bool) -> dict:
        with runtime.lock:
            batch = runtime.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            with configurations_built_once(suite) if memo else contextlib.nullcontext():
                out = batch.validate(suite, result_format=RESULT_FORMAT).to_json_dict()
        out["meta"]["batch_markers"].pop("ge_load_time")
        out["meta"].pop("validation_time", None)
        return out

    plain, once = results(False), results(True)
    assert not plain["success"] and sum(not r["success"] for r in plain["results"]) >= 4
    assert json.dumps(once, sort_keys=True, default=str) == json.dumps(plain, sort_keys=True, default=str)


def test_configurations_built_once_only_on_this_thread_and_only_in_the_block(contract):
    import threading

    from data_contracts.ge_suite import build_suite, configurations_built_once

    suite = build_suite(contract, include_label=True)
    expectation = suite.expectations[0]
    assert expectation.configuration is not expectation.configuration  # GE builds it on every read
    config = expectation.configuration
    assert config.to_domain_obj() is not config.to_domain_obj()  # and a new expectation from it on every call
    with pytest.raises(RuntimeError), configurations_built_once(suite):
        assert expectation.configuration is expectation.configuration  # built once here
        assert config.to_domain_obj() is config.to_domain_obj()
        assert config.to_domain_obj().configuration is config.to_domain_obj().configuration
        with configurations_built_once(suite):  # nested: the same build
            first = expectation.configuration
        assert expectation.configuration is first
        elsewhere = []
        t = threading.Thread(target=lambda: elsewhere.append(expectation.configuration is expectation.configuration))
        t.start()
        t.join()
        assert elsewhere == [False]  # another thread builds it afresh, as GE does
        raise RuntimeError("GE's behaviour is back after an error too")
    assert expectation.configuration is not expectation.configuration
    assert config.to_domain_obj() is not config.to_domain_obj()


def test_configurations_built_once_leaves_suites_ge_changes_while_validating(contract):
    """A suite parameter or a per-expectation result_format: GE changes those configurations in place, so such a
    suite is validated as GE does it."""
    import great_expectations as gx

    from data_contracts.ge_suite import build_suite, configurations_built_once

    plain = build_suite(contract, include_label=True)
    for extra in (gx.expectations.ExpectColumnValuesToBeBetween(column="age", min_value={"$PARAMETER": "min_age"}),
                  gx.expectations.ExpectColumnValuesToNotBeNull(column="age", result_format="COMPLETE")):
        suite = gx.ExpectationSuite(name=f"changed-{type(extra).__name__}", expectations=[extra])
        with configurations_built_once(suite):
            assert extra.configuration is not extra.configuration
    with configurations_built_once(plain):
        assert plain.expectations[0].configuration is plain.expectations[0].configuration
