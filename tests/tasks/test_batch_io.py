"""Partition IO: retries with backoff, injected transient failures, atomic writes, discovery helpers."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def test_retried_recovers_from_transient_errors_and_counts_attempts():
    from tasks.batch_io import retried

    calls, logged = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection reset")
        return "ok"

    assert retried(flaky, what="read x", retries=3, delay=0.001, log=logged.append) == ("ok", 3)
    assert len(logged) == 2 and "retry 1/3" in logged[0] and "connection reset" in logged[0]


def test_retried_gives_up_with_one_line_and_never_retries_not_found():
    from tasks.batch_io import retried
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
    from tasks.batch_io import InjectedReadFailure, maybe_inject_read_failure

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
    from tasks.batch_io import AtomicParquetWriter, remove_stale_temporaries

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
    from tasks.batch_io import exists, read_partition
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


@pytest.mark.parametrize("location,name", [("/s/date=2026-01-02", "date=2026-01-02"), ("s3://b/s/date=2026-01-02/", "date=2026-01-02"),
                                           ("/x/day.parquet", "day"), ("gs://b/day.parquet", "day")])
def test_partition_name(location, name):
    from tasks.batch_io import partition_name

    assert partition_name(location) == name


def test_dates_and_schedule():
    from tasks.batch_io import dated_partition, dates_between, scheduled_day
    from tasks.errors import LockgateError

    assert dates_between(date(2026, 2, 27), date(2026, 3, 1)) == [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)]
    with pytest.raises(LockgateError, match="before"):
        dates_between(date(2026, 3, 2), date(2026, 3, 1))
    assert scheduled_day(date(2026, 3, 1), 1) == date(2026, 2, 28) and scheduled_day(date(2026, 3, 1), 0) == date(2026, 3, 1)
    assert dated_partition("s3://b/stream/", date(2026, 1, 5)).uri == "s3://b/stream/date=2026-01-05"
