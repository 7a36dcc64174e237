"""The contract's suite on Spark (local mode) gives what pandas GE gives on the same parquet data.

Runs when pyspark is installed (`uv sync --extra spark`, plus a JDK); skipped otherwise.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="pyspark not installed: `uv sync --extra spark` runs this test")

from data_contracts.contract import load_contract  # noqa: E402
from data_contracts.frames import arrow_to_pandas  # noqa: E402
from data_contracts.synthetic_credit import generate_frame  # noqa: E402
from data_contracts.validate import validate_frame  # noqa: E402
from data_contracts.validate_spark import spark_session, validate_spark  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    import shutil

    if shutil.which("java") is None:
        pytest.skip("no JDK on PATH: Spark cannot start")
    # A short-lived JVM: C1's quick compiles only and one compiler thread, serial GC. Its JIT and GC threads otherwise
    # took ~60 CPU-s of both cores for these two tests (the suite's processes count none of the JVM's); 36 with these.
    session = spark_session(driver_java_options="-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -XX:+UseSerialGC")
    yield session
    session.stop()


def _write(df, folder):
    for i, part in enumerate((df.iloc[:700], df.iloc[700:])):
        path = folder / f"day={i}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), path)
    return folder


def _pandas_by_id(folder, contract):
    import pyarrow.dataset as ds

    df = arrow_to_pandas(ds.dataset(str(folder), format="parquet", partitioning="hive").to_table())
    outcome = validate_frame(df, contract, include_label=True)
    ids = df[contract.id_column].astype(str).to_numpy()
    return outcome, {ids[p]: names for p, names in outcome.row_failures.items()}


def test_spark_equals_pandas_ge(spark, tmp_path):
    contract = load_contract("credit_default")
    df = generate_frame(1500, seed=4, day=date(2026, 3, 1))
    df.loc[[3, 900], "age"] = [10, 130]
    df.loc[[40, 1200], "region"] = "atlantis"
    df.loc[[77], "application_id"] = "APP-12"
    df.loc[[100, 101], "loan_amount"] = float("nan")
    folder = _write(df, tmp_path / "data")
    plain, plain_ids = _pandas_by_id(folder, contract)
    on_spark, spark_ids = validate_spark(folder, contract, include_label=True, spark=spark)
    assert plain_ids and spark_ids == plain_ids
    assert on_spark.dataset_failures == plain.dataset_failures == []
    assert on_spark.errors == [] and on_spark.n_rows == 1500
    counts = {e.name: (e.success, e.unexpected_count) for e in plain.expectations}
    assert {e.name: (e.success, e.unexpected_count) for e in on_spark.expectations} == counts


def test_spark_dataset_level_failures_match(spark, tmp_path):
    contract = load_contract("credit_default")
    df = generate_frame(400, seed=5, day=date(2026, 3, 2))
    df.loc[[1, 350], "application_id"] = df.loc[0, "application_id"]  # duplicates across files
    df["credit_score"] = df["credit_score"].astype(str)  # wrong type for the whole column
    folder = _write(df, tmp_path / "data")
    plain, _ = _pandas_by_id(folder, contract)
    on_spark, _ = validate_spark(folder, contract, include_label=True, spark=spark)
    assert not on_spark.passed
    assert [f.split(":")[0] for f in on_spark.dataset_failures] == [f.split(":")[0] for f in plain.dataset_failures]
    unique = {e.name: e.unexpected_count for e in on_spark.expectations}["application_id unique"]
    assert unique == 3
