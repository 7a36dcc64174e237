"""Validate a parquet dataset of any size against a contract, chunk by chunk, with the same result as one GE run.

Great Expectations runs the contract's suite on chunks of ``chunk_rows`` rows (read
in file order, so row positions are the positions plain GE would report), without the
three whole-batch expectations, which lockgate computes over all chunks itself:

- row count: the sum of the chunks;
- column uniqueness and compound uniqueness: 64-bit hashes of the values, with their
  row positions, are spilled to disk in 64 buckets by their top bits, each bucket
  counted on its own (memory per bucket, not per dataset); the rows whose hash repeats
  are then taken by position in a second, Arrow-only read of those columns and compared
  on their real values, so the count is exact.

Row-level failures, expectation counts and dataset-level messages are merged so the
result equals :func:`data_contracts.validate.validate_frame` on the whole dataset
(tests compare the two). Integer columns holding a null anywhere become nullable
``Int64`` in every chunk, as they would in the whole frame. Chunks are checked in
parallel worker processes (data_contracts.chunk_check) and merged in order. Memory is
a few chunks plus the merged row failures (or only their count), whatever the row count.
"""

from __future__ import annotations

import tempfile
from types import SimpleNamespace
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.contract import Contract
from data_contracts.ge_suite import expectation_specs
from data_contracts.chunk_check import WHOLE_BATCH, ChunkJob, ChunkResult, checked_chunks, default_workers, iter_tables
from data_contracts.validate import ContractValidation, ExpectationOutcome, dataset_failure_message

_BUCKET_BITS = 6

ChunkCallback = Callable[[ChunkResult], None]


def _dataset(location: str | Path):
    import pyarrow.dataset as ds

    return ds.dataset(str(location), format="parquet", partitioning="hive")


def _nullable_integer_columns(dataset) -> set[str]:
    """Integer columns with a null in any file (pandas would make them float; lockgate keeps Int64)."""
    import pyarrow as pa

    ints = [f.name for f in dataset.schema if pa.types.is_integer(f.type)]
    found: set[str] = set()
    for fragment in dataset.get_fragments():
        todo = [c for c in ints if c not in found]
        if not todo:
            break
        table = fragment.to_table(schema=dataset.schema, columns=todo)
        found |= {c for c in todo if table.column(c).null_count}
    return found


def _nullable_and_pieces(dataset, chunk_rows: int, columns: list[str] | None = None):
    """(integer columns of ``dataset`` to read as Int64, iterator of chunk pieces: see :func:`_iter_pieces`)."""
    from data_contracts.chunk_check import release_memory

    nullable = _nullable_integer_columns(dataset)
    release_memory()
    return nullable, _iter_pieces(dataset, chunk_rows, columns)


def _iter_pieces(dataset, chunk_rows: int, columns: list[str] | None):
    """(first row of the chunk, Arrow table piece, whether the piece ends its chunk), in ``read_table``'s row order.

    A chunk is the pieces from one chunk start to the piece that ends it: about ``chunk_rows``
    rows. Pieces stream, so a consumer can pass a chunk on without holding it whole.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    schema = dataset.schema if columns is None else pa.schema([dataset.schema.field(c) for c in columns])
    fragments = list(dataset.get_fragments())
    in_files = set(fragments[0].physical_schema.names) if fragments else set(schema.names)
    read = [n for n in schema.names if n in in_files]  # the rest are hive keys, filled per fragment
    lean = ds.ParquetFragmentScanOptions(pre_buffer=False)
    rows = offset = 0
    for fragment in fragments:
        keys = ds.get_partition_keys(fragment.partition_expression)
        # Pyarrow's defaults read far ahead (16 batches, whole files pre-buffered): hundreds of MB per chunk.
        for batch in fragment.to_batches(schema=dataset.schema, columns=read, batch_size=min(chunk_rows, 1 << 18),
                                         batch_readahead=1, fragment_readahead=1, use_threads=False,
                                         fragment_scan_options=lean):
            n = batch.num_rows
            arrays = [batch.column(name) if name in in_files else pa.repeat(pa.scalar(keys.get(name), field.type), n)
                      for name, field in zip(schema.names, schema)]
            rows += n
            batch = None
            yield offset, pa.Table.from_arrays(arrays, schema=schema), rows >= chunk_rows
            arrays = None
            if rows >= chunk_rows:
                offset, rows = offset + rows, 0
    if rows or offset == 0:
        yield offset, schema.empty_table(), True


def iter_chunks(location: str | Path, chunk_rows: int,
                columns: list[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first row position, frame) per chunk of about ``chunk_rows`` rows, in the order ``read_table`` reads.

    ``columns``: read only these (default: every column, hive keys included, as ``read_table`` does).
    """
    from data_contracts.frames import arrow_to_pandas

    nullable, pieces = _nullable_and_pieces(_dataset(location), chunk_rows, columns)
    for offset, table in iter_tables(pieces):
        yield offset, arrow_to_pandas(table, nullable_integers=nullable)


_KEY = np.dtype([("hash", np.uint64), ("row", np.int64)])


class _Spill:
    """(64-bit hash, row position) of the rows in one uniqueness check, spilled to disk in buckets by the hash's top
    bits: one bucket at a time is in memory when counting."""

    def __init__(self, folder: Path, name: str):
        self.paths = [folder / f"{name}-{b:02d}.keys" for b in range(1 << _BUCKET_BITS)]
        self.rows = 0  # rows that take part (non-null ones)

    def add(self, rows: np.ndarray, hashes: np.ndarray) -> None:
        self.rows += len(hashes)
        keys = np.empty(len(hashes), _KEY)
        keys["hash"], keys["row"] = hashes, rows
        bucket = (hashes >> np.uint64(64 - _BUCKET_BITS)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        keys = keys[order]
        bounds = np.searchsorted(bucket[order], np.arange((1 << _BUCKET_BITS) + 1))
        for b in range(1 << _BUCKET_BITS):
            if bounds[b + 1] > bounds[b]:
                with open(self.paths[b], "ab") as f:
                    f.write(keys[bounds[b]:bounds[b + 1]].tobytes())

    def colliding_rows(self) -> np.ndarray:
        """Row positions whose hash some other row shares (every real duplicate is among them), sorted."""
        out = []
        for path in self.paths:
            if path.exists():
                keys = np.fromfile(path, dtype=_KEY)
                u, inverse, counts = np.unique(keys["hash"], return_inverse=True, return_counts=True)
                out.append(keys["row"][counts[inverse] > 1])
        return np.sort(np.concatenate(out)) if out else np.empty(0, np.int64)


def _exact_duplicates(dataset, chunk_rows, columns: list[str], rows: np.ndarray, nullable: set[str]) -> int:
    """Rows whose values really repeat, among the ``rows`` (positions) whose hash repeats: a second, Arrow-only read of
    these columns, taking just those rows."""
    if len(rows) == 0:
        return 0
    import pyarrow as pa

    from data_contracts.frames import arrow_to_pandas

    taken, start = [], 0
    for _, piece, _ in _iter_pieces(dataset, chunk_rows, columns):
        lo, hi = np.searchsorted(rows, [start, start + piece.num_rows])
        if hi > lo:
            taken.append(piece.take(pa.array(rows[lo:hi] - start)))
        start += piece.num_rows
    frame = arrow_to_pandas(pa.concat_tables(taken), nullable_integers=nullable)
    return int(frame.duplicated(keep=False).sum())


def _merge(outcomes: list[ExpectationOutcome]) -> ExpectationOutcome:
    first = outcomes[0]
    counts = [o.unexpected_count for o in outcomes if o.unexpected_count is not None]
    elements = [o.element_count for o in outcomes if o.element_count is not None]
    missing = [o.missing_count for o in outcomes if o.missing_count is not None]
    failing = next((o for o in outcomes if not o.success), first)
    merged = failing.model_copy(update={
        "success": all(o.success for o in outcomes),
        "unexpected_count": sum(counts) if counts else None,
        "element_count": sum(elements) if elements else None,
        "missing_count": sum(missing) if missing else None,
        "skipped": next((o.skipped for o in outcomes if o.skipped), None),
        "error": next((o.error for o in outcomes if o.error), None),
    })
    if merged.unexpected_count is not None and merged.element_count is not None:
        nonnull = merged.element_count - (merged.missing_count or 0)
        merged.unexpected_percent = 100.0 * merged.unexpected_count / nonnull if nonnull else 0.0
    return merged


def validate_chunked(
    location: str | Path,
    contract: Contract,
    *,
    include_label: bool,
    chunk_rows: int = 500_000,
    on_chunk: ChunkCallback | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_row_failures: bool = True,
    ge_results_path: Path | None = None,
    keep_ge_results: int = 3,
    workers: int | None = None,
) -> ContractValidation:
    """Validate the parquet file or dataset at ``location`` chunk by chunk (see the module doc).

    ``on_chunk(chunk)`` sees every chunk's :class:`ChunkResult` in order (its failing
    rows, to write the quarantine, say); ``progress(chunks_done, rows_done)`` is called
    after each. ``workers``: processes checking chunks in parallel (default: one per
    core, up to 4, when there is more than one chunk; 1 checks them in this process).
    For flat memory at any size: ``keep_row_failures=False`` keeps only their count
    (``failed_row_count``; the caller streams the rows from ``on_chunk``), and with
    ``ge_results_path`` every chunk's GE result is appended there as one JSON line while
    ``ge_result["chunks"]`` keeps the first chunk and the first ``keep_ge_results``
    failing ones (what Data Docs are built from).
    """
    import json
    specs = expectation_specs(contract, include_label=include_label)
    whole = [s for s in specs if s.ge_type in WHOLE_BATCH and s.ge_type != "ExpectTableRowCountToBeBetween"]
    per_chunk: dict[str, list[ExpectationOutcome]] = {}
    row_failures: dict[int, list[str]] = {}
    dataset_failures: dict[str, str] = {}
    errors: list[str] = []
    ge_results: list[dict[str, Any]] = []
    failed_rows = 0
    if ge_results_path is not None:
        ge_results_path.parent.mkdir(parents=True, exist_ok=True)
        ge_results_path.write_text("")
    n_rows = chunks = 0
    seconds = 0.0
    columns_seen: set[str] = set()
    unique_checks = {s.name: (s.kwargs.get("column_list") or [s.kwargs["column"]], "column_list" in s.kwargs)
                     for s in whole}
    dataset = _dataset(location)  # opened once: files listed and footers read once
    nullable, pieces = _nullable_and_pieces(dataset, chunk_rows)
    job = ChunkJob(contract, include_label, unique_checks, frozenset(nullable))
    if workers is None:
        workers = default_workers(dataset.count_rows(), chunk_rows)
    with tempfile.TemporaryDirectory(prefix="lockgate-unique-") as tmp:
        spills = {s.name: _Spill(Path(tmp), f"u{i}") for i, s in enumerate(whole)}
        for chunk in checked_chunks(pieces, job, workers):
            offset, out = chunk.first_row, chunk.outcome
            if out.dataset_failures and not out.expectations:  # e.g. duplicated column names: nothing else ran
                return out.model_copy(update={"n_rows": n_rows + chunk.rows})
            for o in out.expectations:
                per_chunk.setdefault(o.name, []).append(o)
            failed_rows += len(out.row_failures)
            if keep_row_failures:
                for position, names in out.row_failures.items():
                    row_failures[offset + position] = names
            for message in out.dataset_failures:
                dataset_failures.setdefault(message.split(":", 1)[0], message)
            errors += [e for e in out.errors if e not in errors]
            entry = {"first_row": offset, "rows": chunk.rows, "result": out.ge_result}
            if ge_results_path is not None:
                with open(ge_results_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry, default=str) + "\n")
            failing_kept = sum(1 for g in ge_results if not g["result"].get("success", True))
            if ge_results_path is None or not ge_results or (
                    not out.ge_result.get("success", True) and failing_kept < keep_ge_results):
                ge_results.append(entry)
            for name, keys in chunk.hashes.items():
                spills[name].add(chunk.first_row + keys[0], keys[1])
            columns_seen |= chunk.columns
            if on_chunk:
                on_chunk(chunk)
            n_rows += chunk.rows
            chunks += 1
            seconds += out.seconds
            if progress:
                progress(chunks, n_rows)

        outcomes, messages = [], []
        for s in specs:
            meta = {"logical_type": s.logical_type}
            if s.ge_type == "ExpectTableRowCountToBeBetween":
                lo, hi = s.kwargs.get("min_value"), s.kwargs.get("max_value")
                ok = (lo is None or n_rows >= lo) and (hi is None or n_rows <= hi)
                o = ExpectationOutcome(name=s.name, type=s.expectation_type, column=None, level=s.level, success=ok,
                                       observed_value=n_rows)
                res = {"observed_value": n_rows}
            elif s.name in spills:
                cols = s.kwargs.get("column_list") or [s.kwargs["column"]]
                absent = [c for c in cols if c not in columns_seen]
                if absent:
                    outcomes.append(ExpectationOutcome(name=s.name, type=s.expectation_type, column=s.column,
                                                       level=s.level, success=False,
                                                       skipped=f"column {absent[0]!r} is missing"))
                    continue
                count = _exact_duplicates(dataset, chunk_rows, cols, spills[s.name].colliding_rows(), nullable)
                taking_part = spills[s.name].rows
                o = ExpectationOutcome(name=s.name, type=s.expectation_type, column=s.column, level=s.level,
                                       success=count == 0, unexpected_count=count,
                                       unexpected_percent=100.0 * count / taking_part if taking_part else 0.0)
                res = {"unexpected_count": count}
            else:
                if s.name in per_chunk:
                    outcomes.append(_merge(per_chunk[s.name]))
                    if s.name in dataset_failures:
                        messages.append(dataset_failures[s.name])
                continue
            outcomes.append(o)
            if not o.success:
                config = SimpleNamespace(type=s.expectation_type, kwargs=s.kwargs)
                messages.append(dataset_failure_message(s.name, config, res, meta, n_rows))

    return ContractValidation.model_construct(
        contract_name=contract.name, contract_version=contract.version, contract_fingerprint=contract.fingerprint,
        include_label=include_label, n_rows=n_rows, row_failures=row_failures,
        dataset_failures=messages, expectations=outcomes, errors=errors,
        ge_result={"chunks": ge_results, "chunk_rows": chunk_rows,
                   "all_chunks": str(ge_results_path) if ge_results_path else None},
        seconds=seconds, failed_row_count=None if keep_row_failures else failed_rows,
    )
