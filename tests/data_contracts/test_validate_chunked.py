"""Chunked validation equals one Great Expectations run on the whole dataset.

Same verdict, same failing rows (by position) with the same expectation names, same
per-expectation counts and the same dataset-level messages, on data whose problems sit
across chunk boundaries: duplicates in different chunks, an integer column with a null
in one chunk only, a row count outside the contract's bounds.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts.contract import load_contract
from data_contracts.frames import arrow_to_pandas
from data_contracts.synthetic_credit import generate_frame
from data_contracts.validate import validate_frame
from data_contracts.validate_chunked import iter_chunks, validate_chunked

N = 2400


@pytest.fixture(scope="module")
def contract():
    return load_contract("credit_default")


def _write_partitions(df: pd.DataFrame, folder, parts: int = 3, row_group_size: int = 250):
    bounds = np.linspace(0, len(df), parts + 1).astype(int)
    for i in range(parts):
        path = folder / f"day={i}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(df.iloc[bounds[i]:bounds[i + 1]], preserve_index=False), path,
                       row_group_size=row_group_size)
    return folder


def _dirty(seed: int) -> pd.DataFrame:
    df = generate_frame(N, seed=seed, day=date(2026, 2, 1))
    df.loc[[5, 1900], "application_id"] = df.loc[0, "application_id"]  # duplicates across chunks
    df.loc[[17, 900], "age"] = [-3, 400]  # out of range
    df.loc[[33, 1400, 1401], "region"] = "atlantis"  # not in the allowed set
    df.loc[[50], "application_id"] = "not-an-id"  # pattern
    df["credit_score"] = df["credit_score"].astype("Int64")
    df.loc[[2000], "credit_score"] = pd.NA  # a null only in the last chunk: Int64 everywhere, one quarantined row
    df.loc[[60, 61], "annual_income"] = np.nan
    return df


def _plain(folder, contract, include_label=True):
    import pyarrow.dataset as ds

    table = ds.dataset(str(folder), format="parquet", partitioning="hive").to_table()
    return validate_frame(arrow_to_pandas(table), contract, include_label=include_label)


def _comparable(outcome):
    return {
        "rows": outcome.n_rows,
        "row_failures": outcome.row_failures,
        "dataset_failures": sorted(outcome.dataset_failures),
        "errors": sorted(outcome.errors),
        "passed": outcome.passed,
        # GE lists results in its own order when checks error; lockgate's chunked result is in suite order
        "expectations": sorted((e.name, e.success, e.unexpected_count, e.skipped) for e in outcome.expectations),
    }


@pytest.mark.parametrize(("chunk_rows", "workers"), [(300, 1), (300, 3), (1000, None), (10_000, None)])
def test_chunked_equals_plain_ge(tmp_path, contract, chunk_rows, workers):
    """Checked in this process (workers=1), in 3 worker processes, or as many as there are cores."""
    folder = _write_partitions(_dirty(1), tmp_path / "data")
    plain = _plain(folder, contract)
    chunked = validate_chunked(folder, contract, include_label=True, chunk_rows=chunk_rows, workers=workers)
    assert not plain.passed and plain.row_failures and plain.dataset_failures  # the case exercises all kinds
    assert _comparable(chunked) == _comparable(plain)
    unique = next(e for e in chunked.expectations if e.name == "application_id unique")
    assert unique.unexpected_count == 3 and unique.unexpected_percent == pytest.approx(
        next(e for e in plain.expectations if e.name == "application_id unique").unexpected_percent)


def test_clean_data_passes_and_chunks_cover_every_row_once(tmp_path, contract):
    df = generate_frame(N, seed=2, day=date(2026, 2, 2))
    folder = _write_partitions(df, tmp_path / "data", parts=4, row_group_size=333)
    seen = []
    chunked = validate_chunked(folder, contract, include_label=True, chunk_rows=500,
                               on_chunk=lambda chunk: seen.append((chunk.first_row, chunk.rows)))
    assert chunked.passed and chunked.n_rows == N
    assert [first for first, _ in seen] == list(np.cumsum([0] + [n for _, n in seen[:-1]]))
    assert sum(n for _, n in seen) == N
    assert "day" in next(iter_chunks(folder, 500))[1].columns  # hive keys are columns, as in read_table


def test_row_count_and_missing_column_match_plain(tmp_path, contract):
    df = generate_frame(50, seed=3, day=date(2026, 2, 3)).drop(columns=["region"])
    folder = _write_partitions(df, tmp_path / "data", parts=2, row_group_size=10)
    plain = _plain(folder, contract)
    chunked = validate_chunked(folder, contract, include_label=True, chunk_rows=20)
    assert any("region" in f for f in plain.dataset_failures)
    assert _comparable(chunked) == _comparable(plain)


@pytest.mark.parametrize("workers", [1, 2])
def test_flat_memory_mode_keeps_counts_and_writes_every_chunk_result(tmp_path, contract, workers):
    import json

    folder = _write_partitions(_dirty(4), tmp_path / "data")
    plain = _plain(folder, contract)
    lines = tmp_path / "ge.jsonl"
    seen, failing_ids = [], []

    def on_chunk(chunk):
        seen.extend(chunk.first_row + p for p in sorted(chunk.outcome.row_failures))
        failing_ids.extend(chunk.failing["application_id"])

    lean = validate_chunked(folder, contract, include_label=True, chunk_rows=500, keep_row_failures=False,
                            ge_results_path=lines, keep_ge_results=1, on_chunk=on_chunk, workers=workers)
    assert lean.row_failures == {} and lean.n_failed_rows == len(plain.row_failures) > 0
    assert seen == sorted(plain.row_failures)  # every failing row reached the caller once, in row order
    whole = _dirty(4)
    assert failing_ids == whole["application_id"].iloc[seen].tolist()  # the failing rows themselves, in order
    assert lean.passed == plain.passed and sorted(lean.dataset_failures) == sorted(plain.dataset_failures)
    entries = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [e["first_row"] for e in entries] == list(np.cumsum([0] + [e["rows"] for e in entries[:-1]]))
    assert sum(e["rows"] for e in entries) == N and len(entries) > 3
    assert len(lean.ge_result["chunks"]) <= 2  # the first chunk and at most one failing chunk stay in memory


def test_colliding_hashes_are_settled_on_the_real_values(tmp_path):
    """Two different ids under one hash are not duplicates; two equal ids are, wherever their chunks are."""
    from data_contracts.validate_chunked import _dataset, _exact_duplicates, _Spill

    ids = pd.DataFrame({"application_id": [f"APP-{i:010d}" for i in range(10)]})
    ids.loc[7, "application_id"] = ids.loc[2, "application_id"]
    folder = _write_partitions(ids, tmp_path / "data", parts=2, row_group_size=3)
    spill = _Spill(tmp_path, "u0")
    hashes = np.arange(10, dtype=np.uint64) << np.uint64(40)
    hashes[5] = hashes[0]  # a collision of different values
    hashes[7] = hashes[2]  # the real duplicate
    spill.add(np.arange(5), hashes[:5])
    spill.add(np.arange(5, 10), hashes[5:])
    rows = spill.colliding_rows()
    assert rows.tolist() == [0, 2, 5, 7] and spill.rows == 10
    assert _exact_duplicates(_dataset(folder), 4, ["application_id"], rows, set()) == 2
