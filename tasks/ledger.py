"""The append-only, hash-chained ledger of alias moves and decisions (SQLAlchemy).

Each entry's hash covers its content and the previous entry's hash, so editing or
deleting any row breaks the chain from that row on; :meth:`Ledger.verify` finds it.
SQLite under LOCKGATE_HOME by default; the same schema works on Postgres.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError

from tasks.errors import LockgateError

GENESIS = "0" * 64

metadata = MetaData()
ledger_table = Table(
    "ledger",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("recorded_at", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(80), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("version", Integer, nullable=True),
    Column("alias", String(80), nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("reason", Text, nullable=False),
    Column("policy", String(200), nullable=True),
    Column("flow_run_id", String(80), nullable=True),
    Column("evidence", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
)


class LedgerEntry(BaseModel):
    """One ledger row. ``evidence`` maps an evidence role to the sha256 of its file."""

    model_config = ConfigDict(extra="forbid")

    seq: int | None = None
    recorded_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="microseconds"))
    actor: str
    action: str = Field(description="alias.set, alias.delete, candidate.rejected, approval.auto, partition.scored, ...")
    model_name: str
    version: int | None = None
    alias: str | None = None
    previous_version: int | None = None
    reason: str
    policy: str | None = None
    flow_run_id: str | None = None
    evidence: dict[str, str] = Field(default_factory=dict)
    prev_hash: str = GENESIS
    entry_hash: str = ""

    def content_hash(self) -> str:
        body = self.model_dump(exclude={"seq", "entry_hash"})
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class LedgerVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


class Ledger:
    def __init__(self, url: str):
        self.url = url
        try:
            sqlite = url.startswith("sqlite")
            self.engine = create_engine(url, **({"connect_args": {"timeout": 60}} if sqlite else {}))
            if sqlite:
                _serialize_sqlite_transactions(self.engine)
            metadata.create_all(self.engine)
        except SQLAlchemyError as e:
            raise LockgateError(f"ledger at {url} cannot be opened: {str(e).splitlines()[0]}") from None

    def append(self, entry: LedgerEntry) -> LedgerEntry:
        """Append one entry, chaining it to the last one, in a single transaction."""
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":  # appenders from many processes queue here, not fork the chain
                conn.exec_driver_sql("LOCK TABLE ledger IN SHARE ROW EXCLUSIVE MODE")
            last = conn.execute(select(ledger_table.c.entry_hash).order_by(ledger_table.c.seq.desc()).limit(1)).scalar()
            entry = entry.model_copy(update={"prev_hash": last or GENESIS})
            entry = entry.model_copy(update={"entry_hash": entry.content_hash()})
            row = entry.model_dump(exclude={"seq"})
            row["evidence"] = json.dumps(row["evidence"], sort_keys=True)
            seq = conn.execute(ledger_table.insert().values(**row)).inserted_primary_key[0]
        return entry.model_copy(update={"seq": seq})

    def entries(self, *, model_name: str | None = None, limit: int | None = None) -> list[LedgerEntry]:
        query = select(ledger_table).order_by(ledger_table.c.seq.desc())
        if model_name:
            query = query.where(ledger_table.c.model_name == model_name)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [LedgerEntry(**{**row, "evidence": json.loads(row["evidence"])}) for row in reversed(rows)]

    def verify(self) -> LedgerVerification:
        """Walk the whole chain; report the first row whose hash or link does not match."""
        prev = GENESIS
        entries = self.entries()
        for e in entries:
            if e.prev_hash != prev:
                return LedgerVerification(ok=False, entries=len(entries), first_bad_seq=e.seq, problem="broken link to previous entry")
            if e.content_hash() != e.entry_hash:
                return LedgerVerification(ok=False, entries=len(entries), first_bad_seq=e.seq, problem="entry content does not match its hash")
            prev = e.entry_hash
        return LedgerVerification(ok=True, entries=len(entries))


def _serialize_sqlite_transactions(engine) -> None:
    """Every SQLite transaction starts with BEGIN IMMEDIATE (SQLAlchemy's pysqlite recipe), so two appenders (threads
    or processes, e.g. Dask workers) never read the same last hash: the second waits for the first's commit."""

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
