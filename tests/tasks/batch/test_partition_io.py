"""Partition IO: retries with backoff, injected transient failures, atomic writes (local, on a real S3 API and on a
GCS JSON API), discovery helpers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def test_retried_recovers_from_transient_errors_and_counts_attempts():
    from tasks.batch.partition_io import retried

    calls, logged = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection reset")
        return "ok"

    assert retried(flaky, what="read x", retries=3, delay=0.001, log=logged.append) == ("ok", 3)
    assert len(logged) == 2 and "retry 1/3" in logged[0] and "connection reset" in logged[0]


def test_retried_gives_up_with_one_line_and_never_retries_not_found():
    from tasks.batch.partition_io import retried
    from tasks.errors import LockgateError

    def always():
        raise OSError("timeout\nsecond line")

    with pytest.raises(LockgateError, match=r"read x failed after 3 attempt\(s\): timeout second line"):
        retried(always, what="read x", retries=2, delay=0.001)
    calls = []

    def missing():
        calls.append(1)
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        retried(missing, what="read y", retries=5, delay=0.001)
    assert len(calls) == 1


def test_injected_failures_are_seeded_and_fail_only_the_first_read(tmp_path):
    from tasks.batch.partition_io import InjectedReadFailure, maybe_inject_read_failure

    names = [f"/data/part-{i:03d}" for i in range(200)]

    def failing(seed, state):
        out = []
        for n in names:
            try:
                maybe_inject_read_failure(n, share=0.3, seed=seed, state_dir=state)
            except InjectedReadFailure:
                out.append(n)
        return out

    first = failing(0, tmp_path / "a")
    assert 30 <= len(first) <= 90  # about 30% of 200
    assert failing(0, tmp_path / "a") == []  # second attempt of every partition succeeds
    assert failing(0, tmp_path / "b") == first  # same seed, same partitions, in a fresh state (another run)
    assert failing(1, tmp_path / "c") != first
    maybe_inject_read_failure(names[0], share=0.0, seed=0, state_dir=tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_atomic_writer_moves_into_place_or_leaves_nothing(tmp_path):
    from tasks.batch.partition_io import AtomicParquetWriter, remove_stale_temporaries

    dest = tmp_path / "p" / "predictions.parquet"
    table = pa.table({"id": [1, 2, 3]})
    with AtomicParquetWriter(str(dest), table.schema) as w:
        w.write(table)
        w.write(table)
        assert not dest.exists() and len(list(dest.parent.glob(".predictions.parquet.*.tmp"))) == 1
    assert pq.read_table(dest).num_rows == 6 and list(dest.parent.iterdir()) == [dest]

    with pytest.raises(RuntimeError):
        with AtomicParquetWriter(str(dest), table.schema) as w:
            w.write(pa.table({"id": [9]}))
            raise RuntimeError("crash mid-partition")
    assert pq.read_table(dest).num_rows == 6 and list(dest.parent.iterdir()) == [dest]  # the old file, no temporary

    (dest.parent / ".predictions.parquet.dead.tmp").write_bytes(b"half")
    (dest.parent / ".other.parquet.dead.tmp").write_bytes(b"not ours")
    assert remove_stale_temporaries(str(dest)) == 1
    assert sorted(p.name for p in dest.parent.iterdir()) == [".other.parquet.dead.tmp", "predictions.parquet"]


def test_read_partition_on_a_uri_and_bad_parquet(tmp_path):
    from tasks.batch.partition_io import exists, read_partition
    from tasks.errors import LockgateError

    folder = tmp_path / "date=2026-01-01"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), folder / "part-0.parquet")
    assert read_partition(folder.as_uri()).num_rows == 2  # file:// through pyarrow's filesystem layer
    assert exists(folder.as_uri()) and not exists((tmp_path / "nope").as_uri())
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not parquet")
    with pytest.raises(LockgateError, match="not a readable parquet file"):
        read_partition(str(bad))


def test_atomic_writer_on_s3_puts_the_whole_object_or_nothing(s3_server):
    """No rename on S3: the file is spooled locally and uploaded whole; a failure uploads nothing and the previous
    object stays; no temporary object, folder marker or unfinished multipart upload is left."""
    from tasks.batch.partition_io import AtomicParquetWriter, read_partition, sha256_of

    dest = s3_server.uri("atomic/date=2026-01-01/predictions.parquet")
    table = pa.table({"id": list(range(1000))})
    with AtomicParquetWriter(dest, table.schema) as w:
        w.write(table)
        w.write(table)
        assert w.object_store and s3_server.keys("atomic/") == []  # nothing on the store until the file is complete
    spool = Path(w.tmp)
    assert not spool.exists() and read_partition(dest).num_rows == 2000
    assert s3_server.keys("atomic/") == ["atomic/date=2026-01-01/predictions.parquet"]
    before = sha256_of(dest)

    with pytest.raises(RuntimeError):
        with AtomicParquetWriter(dest, table.schema) as w:
            w.write(pa.table({"id": [9]}))
            raise RuntimeError("crash mid-partition")
    assert sha256_of(dest) == before and not Path(w.tmp).exists()
    assert s3_server.keys("atomic/") == ["atomic/date=2026-01-01/predictions.parquet"]
    assert s3_server.uploads_in_progress("atomic/") == []


def test_atomic_writer_on_gcs_puts_the_whole_object_or_nothing(gcs_server):
    """The same on GCS (its JSON API): spooled locally and uploaded whole; a failure uploads nothing and the previous
    object (its generation) stays; no temporary object or folder marker is left, and no stale temporary is found
    beside it. A URI option pyarrow's GCS filesystem does not know is a one-line error."""
    from tasks.batch.partition_io import AtomicParquetWriter, filesystem, read_partition, remove_stale_temporaries, sha256_of
    from tasks.errors import LockgateError

    key = "atomic-gcs/date=2026-01-01/predictions.parquet"
    dest = gcs_server.uri(key)
    table = pa.table({"id": list(range(1000))})
    with AtomicParquetWriter(dest, table.schema) as w:
        w.write(table)
        w.write(table)
        assert w.object_store and gcs_server.keys("atomic-gcs/") == []  # nothing on the store until complete
    assert not Path(w.tmp).exists() and read_partition(dest).num_rows == 2000
    assert gcs_server.keys("atomic-gcs/") == [key] and remove_stale_temporaries(dest) == 0
    before, generation = sha256_of(dest), gcs_server.generation(key)

    with pytest.raises(RuntimeError):
        with AtomicParquetWriter(dest, table.schema) as w:
            w.write(pa.table({"id": [9]}))
            raise RuntimeError("crash mid-partition")
    assert sha256_of(dest) == before and gcs_server.generation(key) == generation and not Path(w.tmp).exists()
    assert gcs_server.keys("atomic-gcs/") == [key]

    with pytest.raises(LockgateError, match=r"cannot open gs://.*Unexpected query parameter in GCS URI: 'anonymous'"):
        filesystem(f"{dest}&anonymous=true")


@pytest.mark.parametrize("root,parts,expected", [
    ("/out/", ("m", "p.parquet"), "/out/m/p.parquet"),
    ("s3://b/out?endpoint_override=127.0.0.1:9000&scheme=http", ("m", "date=2026-01-01"),
     "s3://b/out/m/date=2026-01-01?endpoint_override=127.0.0.1:9000&scheme=http"),
    ("s3://b/out/?region=eu-west-1", ("m",), "s3://b/out/m?region=eu-west-1"),
    ("gs://b/out?scheme=http&endpoint_override=127.0.0.1:9023", ("m", "date=2026-01-01"),
     "gs://b/out/m/date=2026-01-01?scheme=http&endpoint_override=127.0.0.1:9023"),
])
def test_join_keeps_a_uri_query_at_the_end(root, parts, expected):
    from tasks.batch.partition_io import join, split_query

    assert join(root, *parts) == expected
    assert split_query("/local/a?b") == ("/local/a?b", "")  # a local path has no query


@pytest.mark.parametrize("location,name", [("/s/date=2026-01-02", "date=2026-01-02"), ("s3://b/s/date=2026-01-02/", "date=2026-01-02"),
                                           ("/x/day.parquet", "day"), ("gs://b/day.parquet", "day"),
                                           ("s3://b/s/date=2026-01-03?endpoint_override=h:9000&scheme=http",
                                            "date=2026-01-03")])
def test_partition_name(location, name):
    from tasks.batch.partition_io import partition_name

    assert partition_name(location) == name


def test_dates_and_schedule():
    from tasks.batch.partition_io import dated_partition, dates_between, scheduled_day
    from tasks.errors import LockgateError

    assert dates_between(date(2026, 2, 27), date(2026, 3, 1)) == [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)]
    with pytest.raises(LockgateError, match="before"):
        dates_between(date(2026, 3, 2), date(2026, 3, 1))
    assert scheduled_day(date(2026, 3, 1), 1) == date(2026, 2, 28) and scheduled_day(date(2026, 3, 1), 0) == date(2026, 3, 1)
    assert dated_partition("s3://b/stream/", date(2026, 1, 5)).uri == "s3://b/stream/date=2026-01-05"
