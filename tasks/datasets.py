"""The data-source interface: read and write parquet tables with one-line errors.

Reads never modify their input; writes are atomic (temporary name, then rename),
so a crash leaves either the old file or the complete new one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.errors import LockgateError

if TYPE_CHECKING:
    import pandas as pd


def read_table(path: str | Path, *, what: str = "dataset") -> pd.DataFrame:
    """Read a parquet file or a folder of parquet files into pandas (numpy-backed dtypes)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    path = Path(path)
    if not path.exists():
        raise LockgateError(f"{what} not found: {path}")
    try:
        table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        raise LockgateError(f"{what} {path} is not a readable parquet file: {str(e).splitlines()[0]}") from None
    return _to_pandas(table)


def _to_pandas(table) -> pd.DataFrame:
    from data_contracts.frames import arrow_to_pandas

    return arrow_to_pandas(table)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` as parquet atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
