"""Partition IO on any pyarrow filesystem: discovery, reads with retries, atomic parquet writes.

A location is a local path or a URI pyarrow understands (``s3://``, ``gs://``,
``file://``), with its options as a query (``s3://bucket/stream?region=eu-west-1``:
paths are joined before the query). Transient IO errors (an ``OSError`` that is not
"not found" or "not allowed") are retried with exponential backoff; nothing here runs
inside a transaction, so a retry never rolls anything back.

Outputs appear under their final name only when complete (AtomicParquetWriter): on a
filesystem that renames (local, HDFS, any other non-object store) the file is written
under a hidden temporary name beside it and renamed; on an object store (S3, GCS,
Azure) it is spooled to a local temporary file and uploaded to its final key in one
call, because an object becomes visible only once its upload completes, while a
"move" there is a copy and a delete.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict

from tasks.errors import LockgateError

T = TypeVar("T")
_NOT_TRANSIENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})  # pyarrow FileSystem.type_name of stores without a rename


class PartitionTarget(BaseModel):
    """One partition to score: its name (``date=2026-11-01`` or a file stem) and location."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    uri: str


class InjectedReadFailure(OSError):
    """A transient read failure injected by the ``inject_read_failures`` testing hook."""


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) of a local path or a pyarrow filesystem URI."""
    if "://" in location:
        try:
            return pafs.FileSystem.from_uri(location)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
            raise LockgateError(f"cannot open {location}: {str(e).splitlines()[0]}") from None
    return pafs.LocalFileSystem(), str(Path(location).expanduser().resolve())


def split_query(location: str) -> tuple[str, str]:
    """(URI without its query, ``?query`` or ""): ``s3://b/p?region=x`` -> (``s3://b/p``, ``?region=x``)."""
    if "://" in location and "?" in location:
        base, query = location.split("?", 1)
        return base, f"?{query}"
    return location, ""


def join(root: str, *parts: str) -> str:
    """``root``/``parts``, before the root's query if it has one."""
    base, query = split_query(root)
    return "/".join([base.rstrip("/"), *parts]) + query


def partition_name(location: str) -> str:
    """``.../stream/date=2026-01-01`` -> ``date=2026-01-01``; ``.../day.parquet`` -> ``day`` (a URI's query ignored)."""
    last = split_query(location)[0].rstrip("/").rsplit("/", 1)[-1]
    return last.removesuffix(".parquet") if "=" not in last else last


def dated_partition(root: str, day: date) -> PartitionTarget:
    name = f"date={day.isoformat()}"
    return PartitionTarget(name=name, uri=join(root, name))


def dates_between(start: date, end: date) -> list[date]:
    """Every date from ``start`` to ``end``, both included."""
    if end < start:
        raise LockgateError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def scheduled_day(scheduled: date, offset_days: int) -> date:
    """The partition a run scheduled on ``scheduled`` scores: ``offset_days`` earlier (1 = yesterday)."""
    return scheduled - timedelta(days=offset_days)


def exists(location: str) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def retried(fn: Callable[[], T], *, what: str, retries: int, delay: float, log=None) -> tuple[T, int]:
    """``fn()`` with up to ``retries`` retries of transient OSErrors, sleeping delay, 2*delay, ...;
    returns (result, attempts). The last error is raised as a one-line LockgateError naming the attempts."""
    for attempt in range(retries + 1):
        try:
            return fn(), attempt + 1
        except _NOT_TRANSIENT:
            raise
        except OSError as e:
            if attempt == retries:
                raise LockgateError(f"{what} failed after {attempt + 1} attempt(s): {' '.join(str(e).split())[:300]}"
                                    ) from None
            if log is not None:
                log(f"{what}: transient error ({' '.join(str(e).split())[:200]}); retry {attempt + 1}/{retries} "
                    f"in {delay * 2 ** attempt:.2g} s")
            time.sleep(delay * 2**attempt)
    raise AssertionError("unreachable")


def maybe_inject_read_failure(location: str, *, share: float, seed: int, state_dir: Path) -> None:
    """Testing hook: fail the first read of a seeded ``share`` of partitions with a transient OSError.

    The choice hashes (seed, partition name), so it is the same in every process; the first
    attempt is claimed by creating a marker file exclusively, so a retry in another worker
    process still succeeds."""
    if share <= 0:
        return
    key = hashlib.sha256(f"{seed}:{partition_name(location)}".encode()).hexdigest()
    if int(key[:8], 16) / 0xFFFFFFFF >= share:
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(state_dir / key[:16], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    raise InjectedReadFailure(f"injected transient read failure of {location}")


def read_partition(location: str, columns: list[str] | None = None,
                   dictionary_columns: tuple[str, ...] | list[str] = ()) -> pa.Table:
    """The whole partition (a parquet file or a hive folder) as one Arrow table.

    ``dictionary_columns``: string columns read as dictionary arrays straight from parquet's dictionary pages
    (categoricals: a handful of values, so no string per row is decoded; names not in the data, or of
    non-string columns, are ignored). Raises LockgateError for data that is not readable parquet; OSError
    (retryable) for IO."""
    import pyarrow.dataset as ds

    fs, path = filesystem(location)
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=list(dictionary_columns)))
    try:
        return ds.dataset(path, filesystem=fs, format=fmt, partitioning="hive").to_table(columns=columns)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise LockgateError(f"partition {location} is not a readable parquet file: {str(e).splitlines()[0]}") from None


class AtomicParquetWriter:
    """Write one parquet file batch by batch; it appears under ``destination`` only when complete.

    ``with AtomicParquetWriter(dest, schema) as w: w.write(table)``: on an exception ``dest``
    is untouched (the previous file, if any, stays) and the temporary is removed. A crash
    leaves ``dest`` untouched too, and its temporary behind (beside ``dest``: removed by
    remove_stale_temporaries before the next attempt; a spool file: in ``TMPDIR``).

    Local, HDFS and other filesystems that rename: written under ``.name.<random>.tmp``
    beside ``dest`` (dataset readers skip dot files) and renamed into place. Object stores
    (``OBJECT_STORES``): pyarrow completes an upload stream that is closed or dropped
    half-written (it never aborts one), its move is a server-side copy then a delete (the
    bytes written twice, and a crash between the two leaves the temporary object behind,
    which nothing cleans once the partition counts as scored), and its create_dir writes
    empty folder-marker objects. But a new object is atomic: it is visible only once its
    upload completes, and replaces the old one whole. So the file is spooled to a local
    temporary file (``tempfile``'s folder, ``TMPDIR``) and uploaded to ``dest`` by one
    C++ call once complete; a crash before or during the upload leaves no object (an
    interrupted S3 multipart upload is never completed, a bucket lifecycle rule reclaims
    it; an interrupted GCS resumable upload is never finalized and expires).
    """

    def __init__(self, destination: str, schema: pa.Schema, **parquet_options):
        self.fs, self.path = filesystem(destination)
        folder, name = self.path.rsplit("/", 1)
        self.object_store = self.fs.type_name in OBJECT_STORES
        if self.object_store:
            fd, self.tmp = tempfile.mkstemp(prefix=f"lockgate-{name}.", suffix=".tmp")
            os.close(fd)
            self._tmp_fs: pafs.FileSystem = pafs.LocalFileSystem()
        else:
            self.tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}.tmp"
            self._tmp_fs = self.fs
        self.schema = schema
        self.options = parquet_options  # for pyarrow.parquet.ParquetWriter (e.g. use_dictionary)
        self.rows = 0
        self._writer = None
        self._folder = folder

    def __enter__(self) -> "AtomicParquetWriter":
        import pyarrow.parquet as pq

        try:
            if not self.object_store:  # an object store has no folders (pyarrow would write marker objects)
                self.fs.create_dir(self._folder, recursive=True)
            self._writer = pq.ParquetWriter(self.tmp, self.schema, filesystem=self._tmp_fs, **self.options)
        except BaseException:
            self._remove_tmp()
            raise
        return self

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)
        self.rows += table.num_rows

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._writer.close()
            if exc_type is None and self.object_store:
                pafs.copy_files(self.tmp, self.path, source_filesystem=self._tmp_fs, destination_filesystem=self.fs)
            elif exc_type is None:
                self.fs.move(self.tmp, self.path)  # a rename
        finally:
            self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp_fs.get_file_info(self.tmp).type != pafs.FileType.NotFound:
            self._tmp_fs.delete_file(self.tmp)


def publish_copy(source: str, destination: str) -> None:
    """Make ``destination`` hold the bytes of ``source`` (a file written once, which a ledger row names), replacing
    what ``destination`` held without touching ``source``: on a local disk a hard link renamed into place (no
    second copy; an edit of the file in place is an edit of the evidence, which the audit flags), elsewhere a copy
    under a temporary name renamed into place, or on an object store a server-side copy (visible once complete)."""
    fs, src = filesystem(source)
    _, dst = filesystem(destination)
    folder, name = dst.rsplit("/", 1)
    if fs.type_name in OBJECT_STORES:
        fs.copy_file(src, dst)
        return
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        if isinstance(fs, pafs.LocalFileSystem):
            try:
                os.link(src, tmp)
            except OSError:  # another device, or a filesystem without hard links
                fs.copy_file(src, tmp)
            os.replace(tmp, dst)
        else:
            fs.copy_file(src, tmp)
            fs.move(tmp, dst)
    finally:
        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)


def sha256_of(location: str) -> str:
    """sha256 of a file on any pyarrow filesystem, streamed."""
    fs, path = filesystem(location)
    digest = hashlib.sha256()
    with fs.open_input_stream(path) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def remove_stale_temporaries(destination: str) -> int:
    """Delete ``.name.*.tmp`` files a crashed writer left beside ``destination``; return how many."""
    fs, path = filesystem(destination)
    folder, name = path.rsplit("/", 1)
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return 0
    stale = [f.path for f in fs.get_file_info(pafs.FileSelector(folder))
             if f.base_name.startswith(f".{name}.") and f.base_name.endswith(".tmp")]
    for p in stale:
        fs.delete_file(p)
    return len(stale)
