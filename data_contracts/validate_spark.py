"""Validate a parquet dataset with the same contract suite on Spark: the cluster path.

Needs ``pyspark`` (``uv sync --extra spark``) and a JDK. The suite is the one pandas
validation uses: lockgate's dtype expectation knows Spark's type names, so the
contract's types map per engine. Spark rows have no stable position, so failing rows
are identified by the contract's id column (GE's ``unexpected_index_column_names``);
tests compare them, the counts and the verdicts with pandas GE on the same data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from data_contracts.contract import Contract
from data_contracts.ge_suite import build_suite, configurations_built_once, ge_runtime
from data_contracts.validate import ContractValidation, summarise_result


def spark_session(master: str = "local[2]", driver_java_options: str | None = None):
    """A local Spark session for validation (UI off, UTC); ``driver_java_options``: the driver JVM's flags (only
    when this call starts the JVM)."""
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName("lockgate-validation")
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "4"))
    if driver_java_options:
        builder = builder.config("spark.driver.extraJavaOptions", driver_java_options)
    return builder.getOrCreate()


_BATCH_DEFINITIONS: dict[int, Any] = {}


def _batch_definition(context):
    key = id(context)
    if key not in _BATCH_DEFINITIONS:
        asset = context.data_sources.add_spark(name="lockgate_spark").add_dataframe_asset(name="frame")
        _BATCH_DEFINITIONS[key] = asset.add_batch_definition_whole_dataframe(name="whole_frame")
    return _BATCH_DEFINITIONS[key]


def validate_spark(location: str | Path, contract: Contract, *, include_label: bool, spark=None,
                   ) -> tuple[ContractValidation, dict[str, list[str]]]:
    """Validate the parquet data at ``location`` on Spark.

    Returns the validation (``row_failures`` left empty: Spark rows have no position) and
    the failing rows as ``{id: [failed row-level expectation names]}``.
    """
    spark = spark or spark_session()
    runtime = ge_runtime()
    suite = build_suite(contract, include_label=include_label)
    frame = spark.read.parquet(str(location))
    base = {"contract_name": contract.name, "contract_version": contract.version,
            "contract_fingerprint": contract.fingerprint, "include_label": include_label, "n_rows": frame.count()}
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": [contract.id_column],
                     "exclude_unexpected_values": True, "return_unexpected_index_query": False}
    t0 = time.perf_counter()
    with runtime.lock:
        batch = _batch_definition(runtime.context).get_batch(batch_parameters={"dataframe": frame})
        with configurations_built_once(suite):
            result = batch.validate(suite, result_format=result_format)
    by_id: dict[str, list[str]] = {}
    for r in result.results:
        meta = (r.expectation_config.meta or {}).get("lockgate", {})
        rows = (r.result or {}).get("unexpected_index_list") or []
        if meta.get("level") == "row" and not r.success:
            for row in rows:
                ids = row[contract.id_column]  # GE on Spark: one dict holding every id, or one dict per row
                for row_id in ids if isinstance(ids, list) else [ids]:
                    by_id.setdefault(str(row_id), []).append(meta["name"])
        if rows:
            r.result["unexpected_index_list"] = []  # positions are a pandas notion; the ids are returned instead
    outcome = summarise_result(result, base, columns=set(frame.columns), seconds=time.perf_counter() - t0)
    return outcome, by_id
