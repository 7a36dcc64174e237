"""The checks of one chunk (GE suite, uniqueness hashes, failing rows), in this process or in worker processes.

Great Expectations on pandas is single-threaded and takes most of validation's time
(~2.5-3 s per million rows here), so chunks are checked by ``workers`` processes
while this process reads the next ones. A chunk reaches its worker as an Arrow IPC
file in a temporary folder (memory-mapped by the worker, deleted once read), not as
a pickled frame; at most ``workers + 1`` chunks are in flight, so memory stays at a
few chunks whatever the row count. Results come back in chunk order, so everything
downstream (row positions, quarantine file order, progress) is the same as checking
the chunks one by one. Workers are forked from this process after Great Expectations
is loaded, so they start in milliseconds, not the ~9 s of importing GE.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.contract import Contract
from data_contracts.validate import ContractValidation, validate_frame

WHOLE_BATCH = ("ExpectTableRowCountToBeBetween", "ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique")


@dataclass
class ChunkResult:
    """What one chunk contributes to the dataset's result."""

    first_row: int
    rows: int
    columns: frozenset[str]
    outcome: ContractValidation
    failing: pd.DataFrame  # the chunk's rows that failed a row-level expectation, indexed by position in the chunk
    # per uniqueness check: (positions in the chunk of the rows taking part, their 64-bit hashes)
    hashes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def unique_keys(df: pd.DataFrame, columns: list[str], compound: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row positions taking part, their 64-bit hashes) for a uniqueness check on ``columns``.

    GE skips nulls for a column check, and rows whose values are all missing for a compound one.
    """
    part = df[columns]
    take = part.notna().any(axis=1).to_numpy() if compound else part[columns[0]].notna().to_numpy()
    rows = np.flatnonzero(take)
    if compound:
        return rows, pd.util.hash_pandas_object(part.iloc[rows], index=False).to_numpy(np.uint64)
    # One column: hash the values as they are (ids are mostly distinct, so categorising first only costs).
    return rows, pd.util.hash_array(part[columns[0]].to_numpy()[rows], categorize=False)


@dataclass(frozen=True)
class ChunkJob:
    """How to check a chunk: the contract's suite without the whole-batch expectations, plus uniqueness hashes."""

    contract: Contract
    include_label: bool
    unique_checks: dict[str, tuple[list[str], bool]]  # expectation name -> (columns, compound)
    nullable_integers: frozenset[str]

    def check(self, first_row: int, df: pd.DataFrame) -> ChunkResult:
        out = validate_frame(df, self.contract, include_label=self.include_label, exclude=WHOLE_BATCH)
        hashes = {name: unique_keys(df, cols, compound) for name, (cols, compound) in self.unique_checks.items()
                  if all(c in df.columns for c in cols)}
        failing = df.iloc[sorted(out.row_failures)] if out.row_failures else df.iloc[:0]
        return ChunkResult(first_row, len(df), frozenset(df.columns), out, failing, hashes)

    def to_frame(self, table) -> pd.DataFrame:
        from data_contracts.frames import arrow_to_pandas

        return arrow_to_pandas(table, nullable_integers=set(self.nullable_integers))


_WORKER_JOB: ChunkJob | None = None


def _init_worker(job: ChunkJob) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _check_file(path: str, first_row: int) -> ChunkResult:
    import pyarrow as pa

    table = pa.ipc.open_file(pa.memory_map(path)).read_all()
    os.unlink(path)  # the mapping keeps the data readable until the table is dropped
    df = _WORKER_JOB.to_frame(table)
    del table
    release_memory()
    try:
        return _WORKER_JOB.check(first_row, df)
    finally:
        del df
        release_memory()


def release_memory() -> None:
    """Hand freed memory back to the system (Arrow's pool and glibc keep it otherwise), so a process's footprint is
    the chunk it is working on, not the largest one it has seen."""
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def default_workers(total_rows: int, chunk_rows: int) -> int:
    """One process per core (at most 4), and none beyond this one for a single chunk."""
    if total_rows <= chunk_rows or not hasattr(os, "fork"):
        return 1
    return max(1, min(os.cpu_count() or 1, 4, -(-total_rows // chunk_rows)))


def iter_tables(pieces):
    """(first row, Arrow table) per chunk, from (first row, piece, ends chunk) pieces."""
    import pyarrow as pa

    pending = []
    for first_row, piece, ends in pieces:
        pending.append(piece)
        piece = None
        if ends:
            table = pa.concat_tables(pending)
            pending.clear()
            yield first_row, table


def checked_chunks(pieces: Iterable[tuple[int, object, bool]], job: ChunkJob, workers: int) -> Iterator[ChunkResult]:
    """Check each chunk, in order; in ``workers`` forked processes when more than one.

    ``pieces``: (first row of the chunk, Arrow table piece, whether it ends the chunk), as
    data_contracts.validate_chunked reads them. For workers, the pieces of a chunk are
    written to its IPC file as they arrive, so this process never holds a whole chunk.
    """
    if workers <= 1:
        for first_row, table in iter_tables(pieces):
            yield job.check(first_row, job.to_frame(table))
        return
    from concurrent.futures import ProcessPoolExecutor

    import pyarrow as pa

    from data_contracts.ge_suite import ge_runtime

    ge_runtime()  # loaded once here, inherited by the forked workers
    with tempfile.TemporaryDirectory(prefix="lockgate-chunks-") as tmp, ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker,
            initargs=(job,)) as pool:
        in_flight: deque = deque()
        writer = sink = None
        try:
            for first_row, piece, ends in pieces:
                if writer is None:
                    path = Path(tmp) / f"chunk-{first_row}.arrow"
                    sink = pa.OSFile(str(path), "wb")
                    writer = pa.ipc.new_file(sink, piece.schema)
                writer.write_table(piece)
                piece = None
                if ends:
                    writer.close()
                    sink.close()
                    writer = sink = None
                    release_memory()
                    in_flight.append(pool.submit(_check_file, str(path), first_row))
                while len(in_flight) > workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()
            if sink is not None:
                sink.close()
