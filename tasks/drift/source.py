"""Drift inputs as partitions of record batches: a pandas frame, a parquet file, or a
partitioned parquet dataset on any pyarrow filesystem (local path, ``s3://``, ``gs://``).

Only the declared columns are read. A big single file is split by row group and a
frame by row slices, so the summaries can be built in parallel and merged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from tasks.errors import LockgateError

BATCH_ROWS = 1 << 18
FRAME_SLICE_ROWS = 1 << 19


class DriftInputError(LockgateError, ValueError):
    """Reference or current data cannot be compared: the message says which and why."""


Partition = Callable[[list[str]], Iterator[pa.RecordBatch]]


@dataclass
class Source:
    """One side of a drift comparison."""

    what: str  # "reference" or "current", for messages
    schema: pa.Schema
    rows: int
    partitions: list[Partition]
    partition_rows: list[int]
    partition_fields: tuple[str, ...] = ()  # hive keys (part=0001): in the schema but not in the files

    def type_of(self, column: str) -> pa.DataType:
        return self.schema.field(column).type


def _frame_source(frame: pd.DataFrame, columns: list[str], what: str) -> Source:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DriftInputError(f"{what} data is missing column(s) {missing} (has {list(frame.columns)})")
    try:
        table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise DriftInputError(f"{what} data cannot be read as columns: {str(e).splitlines()[0]}") from None
    slices = [table.slice(start, FRAME_SLICE_ROWS) for start in range(0, max(len(table), 1), FRAME_SLICE_ROWS)]

    def partition(piece: pa.Table) -> Partition:
        return lambda cols: iter(piece.select(cols).to_batches(max_chunksize=BATCH_ROWS))

    return Source(what=what, schema=table.schema, rows=len(table), partitions=[partition(p) for p in slices],
                  partition_rows=[len(p) for p in slices])


def _dataset_source(location: str, what: str) -> Source:
    import pyarrow.dataset as ds

    if "://" not in location and not Path(location).exists():
        raise DriftInputError(f"{what} data not found: {location}")
    try:
        dataset = ds.dataset(location, format="parquet", partitioning="hive")
        # One unit of work per row group: a file fragment would be decoded whole, ahead of use.
        fragments = [rg for f in sorted(dataset.get_fragments(), key=lambda f: f.path) for rg in f.split_by_row_group()]
        counts = [sum(rg.num_rows for rg in f.row_groups) for f in fragments]
        physical = set(fragments[0].physical_schema.names) if fragments else set(dataset.schema.names)
        keys = tuple(n for n in dataset.schema.names if n not in physical)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        raise DriftInputError(f"{what} data {location} is not readable parquet: {str(e).splitlines()[0]}") from None

    def partition(fragment) -> Partition:
        def batches(cols: list[str]) -> Iterator[pa.RecordBatch]:
            try:
                yield from fragment.to_batches(columns=cols, batch_size=BATCH_ROWS, use_threads=False, batch_readahead=1, fragment_readahead=1)
            except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
                raise DriftInputError(f"{what} data {fragment.path}: {str(e).splitlines()[0]}") from None
        return batches

    return Source(what=what, schema=dataset.schema, rows=sum(counts), partitions=[partition(f) for f in fragments],
                  partition_rows=counts,
                  partition_fields=keys)


def open_source(data: pd.DataFrame | str | Path, columns: list[str], what: str) -> Source:
    """Open ``data`` (a frame, a parquet file or dataset folder, or a pyarrow filesystem URI) for ``columns``."""
    source = _frame_source(data, columns, what) if isinstance(data, pd.DataFrame) else _dataset_source(str(data), what)
    missing = [c for c in columns if c not in source.schema.names or c in source.partition_fields]
    if missing:
        raise DriftInputError(f"{what} data is missing column(s) {missing} (has {source.schema.names})")
    if source.rows == 0:
        raise DriftInputError(f"{what} data has no rows")
    return source


def _family(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_null(t):
        return "null"
    return str(t)


def check_schemas(reference: Source, current: Source, numeric: list[str], categorical: list[str]) -> None:
    """Declared numeric columns are numeric on both sides; categorical ones have the same type family."""
    for col in numeric:
        for side in (reference, current):
            t = side.type_of(col)
            if _family(t) not in ("numeric", "null"):
                raise DriftInputError(f"column {col!r} is declared numeric but is {t} in {side.what} data")
    for col in categorical:
        a, b = _family(reference.type_of(col)), _family(current.type_of(col))
        if "null" not in (a, b) and a != b:
            raise DriftInputError(f"column {col!r} is {reference.type_of(col)} in reference data but "
                                  f"{current.type_of(col)} in current data: the schemas differ")
