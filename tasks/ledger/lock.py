"""The per-model promotion lock, kept where the ledger is, and released by the system when its holder dies.

- SQLite ledger (one machine): an exclusive ``flock`` on ``<ledger>.locks/<model>.lock``
  beside the database; the holder's pid, host and start time are written into it for
  the error message of whoever waits.
- Postgres ledger (any number of machines): a session-level ``pg_advisory_lock`` on a
  dedicated connection; the server drops it when that connection closes, crash included.

A Prefect global concurrency limit would need a Prefect server, and a crashed holder
keeps its slot until a lease runs out; these locks need nothing beyond the ledger and
free themselves the moment the holding process is gone (SIGKILL included).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from tasks.errors import LockgateError

POLL_SECONDS = 0.05
NAMESPACE = 0x6C6B6774  # first key of the Postgres advisory lock ("lkgt"); the second is the model's


class LockTimeout(LockgateError):
    """Another process held the model's promotion lock for longer than the timeout."""


@contextmanager
def model_lock(ledger, name: str, *, timeout: float):
    if ledger.dialect == "sqlite":
        with _file_lock(lock_path(ledger, name), name, timeout):
            yield
    elif ledger.dialect == "postgresql":
        with _advisory_lock(ledger.engine, name, timeout):
            yield
    else:
        raise LockgateError(f"the promotion lock supports SQLite and Postgres ledgers, not {ledger.dialect}")


def lock_path(ledger, name: str) -> Path:
    db = Path(ledger.engine.url.database or "ledger.db").resolve()
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
    return db.with_name(db.name + ".locks") / f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}.lock"


def _waited(name: str, timeout: float, holder: str) -> LockTimeout:
    return LockTimeout(f"model {name} is being promoted or rolled back by {holder}; waited {timeout:.0f} s for its "
                       "lock (LOCKGATE_LEDGER_LOCK_TIMEOUT_SECONDS); try again when it has finished")


@contextmanager
def _file_lock(path: Path, name: str, timeout: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with open(path, "a+") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    f.seek(0)
                    raise _waited(name, timeout, _holder(f.read())) from None
                time.sleep(POLL_SECONDS)
        try:
            f.seek(0)
            f.truncate()
            f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _holder(text_: str) -> str:
    try:
        h = json.loads(text_)
        return f"pid {h['pid']} on {h['host']} (since {h['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def _advisory_lock(engine, name: str, timeout: float):
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        while not conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": NAMESPACE, "b": key}).scalar():
            if time.monotonic() >= deadline:
                holder = conn.execute(text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :a AND objid = :b AND granted"),
                    {"a": NAMESPACE, "b": key & 0xFFFFFFFF}).scalar()
                raise _waited(name, timeout, f"Postgres backend pid {holder}" if holder else "another session")
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": NAMESPACE, "b": key})
