"""The append-only, hash-chained ledger of alias moves and decisions (SQLAlchemy; SQLite or Postgres).

Each row's hash covers its content, its ``seq`` and the previous row's hash, so an
edited, deleted, inserted or reordered row breaks the chain and :meth:`Ledger.verify`
names it (``tasks/ledger/chain.py``). Deleting rows from the end leaves a valid
chain; the anchor file (``tasks/ledger/anchor.py``), written with every append,
catches that. The database refuses UPDATE and DELETE on the table (triggers), so
changing a row takes dropping a trigger first.

Appends are serialised (SQLite ``BEGIN IMMEDIATE``, Postgres a transaction-level
advisory lock) so ``seq`` has no gaps and every row links to the one before it.
:meth:`Ledger.lock` is the per-model promotion lock (``tasks/ledger/lock.py``).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, event, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from tasks.errors import LockgateError
from tasks.ledger.entry import GENESIS, LedgerEntry, LedgerVerification

APPEND_LOCK_KEY = 0x6C6F636B  # Postgres advisory key serialising appends ("lock")

metadata = MetaData()
ledger_table = Table(
    "ledger",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
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
    Column("aliases", Text, nullable=True),
    Column("proof", Text, nullable=True),
    Column("evidence_files", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("entry_hash", String(64), nullable=False, unique=True),
)

# nullable JSON columns added after the first release (signed approvals, write-once evidence): an older ledger gets
# them on open, and a row hashes them only when set, so its rows keep their hashes
ADDED_COLUMNS = frozenset({"proof", "evidence_files"})

_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger "
        "BEGIN SELECT RAISE(ABORT, 'the lockgate ledger is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger "
        "BEGIN SELECT RAISE(ABORT, 'the lockgate ledger is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION lockgate_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the lockgate ledger is append-only'; END $$",
        "CREATE OR REPLACE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger "
        "FOR EACH ROW EXECUTE FUNCTION lockgate_ledger_append_only()",
        "CREATE OR REPLACE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger "
        "FOR EACH STATEMENT EXECUTE FUNCTION lockgate_ledger_append_only()",
    ],
}


class Ledger:
    """The ledger table at a SQLAlchemy URL, with an optional anchor file and the per-model promotion lock."""

    def __init__(self, url: str, *, anchor: Path | None = None, lock_timeout: float = 120.0,
                 head_key: Path | None = None, head_public_key: str | None = None, witness=None):
        """``head_key``: the file of the ledger's Ed25519 private key, which signs the head at every append (created
        by the first append when missing: a writer's key; a reader never makes one). ``head_public_key``: the key
        line the head must be signed by (default: derived from ``head_key`` when that file exists; neither: the
        head's signature is not checked, and verify says so). ``witness(mark, entry)``: called after every append
        with the signed head, to record it in a second store."""
        from tasks.ledger.anchor import Anchor

        self.url = url
        self.lock_timeout = lock_timeout
        self.head_key_path = head_key
        self._head_key = None
        if head_public_key is None and head_key is not None and Path(head_key).exists():
            from tasks.signatures import load_private_key, public_key_line

            head_public_key = public_key_line(load_private_key(head_key))
        self.head_public_key = head_public_key
        self.witness = witness
        signer = self._signing_key if head_key is not None else None
        self.anchor = Anchor(anchor, signer=signer, verifier=head_public_key) if anchor is not None else None
        try:
            self.engine = create_engine(url, **({"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}))
            self.dialect = self.engine.dialect.name
            if self.dialect == "sqlite":
                _serialisable_sqlite(self.engine)
            with self._write() as conn:
                metadata.create_all(conn)
                installed = self.dialect == "postgresql" and conn.execute(text(
                    "SELECT count(*) FROM pg_trigger WHERE tgname IN ('ledger_append_only', 'ledger_no_truncate') "
                    "AND tgrelid = 'ledger'::regclass")).scalar() == 2  # re-creating needs CREATE rights
                for ddl in [] if installed else _APPEND_ONLY.get(self.dialect, []):
                    conn.execute(text(ddl))
            columns = {c["name"] for c in inspect(self.engine).get_columns("ledger")}
        except SQLAlchemyError as e:
            raise LockgateError(f"ledger at {_safe(url)} cannot be opened: {str(e).splitlines()[0]}") from None
        missing = {c.name for c in ledger_table.columns} - columns
        if missing and missing <= ADDED_COLUMNS:  # a ledger from before these columns: added, no row changes
            with self._write() as conn:  # under the write lock; another process may have added them meanwhile
                have = {c["name"] for c in inspect(conn).get_columns("ledger")}
                for column in sorted(missing - have):
                    conn.execute(text(f"ALTER TABLE ledger ADD COLUMN {column} TEXT"))
            missing = set()
        if missing:
            raise LockgateError(f"ledger at {_safe(url)} has an older schema (no column {', '.join(sorted(missing))}); "
                                "move it aside or set LOCKGATE_LEDGER_URL to start a new ledger")

    @contextmanager
    def _write(self):
        """A transaction that holds the ledger's write lock from its first statement to commit."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(lockgate_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_KEY})
                yield conn

    def append(self, entry: LedgerEntry) -> LedgerEntry:
        """Append one entry as row ``last seq + 1``, chained to the last row, and move the anchor with it."""
        with self._write() as conn:
            last = conn.execute(select(ledger_table.c.seq, ledger_table.c.entry_hash)
                                .order_by(ledger_table.c.seq.desc()).limit(1)).first()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            entry = entry.model_copy(update={"seq": seq, "prev_hash": prev})
            entry = entry.model_copy(update={"entry_hash": entry.content_hash()})
            row = entry.model_dump()
            row["evidence"] = json.dumps(row["evidence"], sort_keys=True)
            row["aliases"] = None if entry.aliases is None else json.dumps(entry.aliases, sort_keys=True)
            for column in ADDED_COLUMNS:
                row[column] = None if row[column] is None else json.dumps(row[column], sort_keys=True)
            conn.execute(ledger_table.insert().values(**row))
            if self.anchor is not None:
                self.anchor.before_commit(last[0] if last else 0, prev, seq, entry.entry_hash)
        if self.anchor is not None:
            self.anchor.after_commit(seq, entry.entry_hash)
        if self.witness is not None:
            try:
                self.witness(self.head_mark(seq, entry.entry_hash), entry)
            except Exception:  # the row stands; that store's witness lags behind by this row (audit verify says so)
                pass
        return entry

    def entries(self, *, model_name: str | None = None, limit: int | None = None) -> list[LedgerEntry]:
        query = select(ledger_table).order_by(ledger_table.c.seq.desc())
        if model_name:
            query = query.where(ledger_table.c.model_name == model_name)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [LedgerEntry(**{**row, "evidence": json.loads(row["evidence"]),
                               "aliases": None if row["aliases"] is None else json.loads(row["aliases"]),
                               **{c: None if row[c] is None else json.loads(row[c]) for c in ADDED_COLUMNS}})
                for row in reversed(rows)]

    def verify(self) -> LedgerVerification:
        """Walk the whole chain, then hold its end to the anchor; name the first bad row and what is wrong."""
        from tasks.ledger.chain import chain_problem

        entries = self.entries()
        found = chain_problem(entries)
        if found is not None:
            return LedgerVerification(ok=False, entries=len(entries), first_bad_seq=found[0], problem=found[1])
        if self.anchor is None:
            return LedgerVerification(ok=True, entries=len(entries),
                                      anchor="no anchor configured: rows deleted from the end would go unnoticed")
        bad_seq, problem, note = self.anchor.check(entries[-1].seq if entries else 0,
                                                   {e.seq: e.entry_hash for e in entries})
        return LedgerVerification(ok=problem is None, entries=len(entries), first_bad_seq=bad_seq, problem=problem,
                                  anchor=note)

    def _signing_key(self):
        if self._head_key is None:
            from tasks.signatures import ensure_private_key, public_key_line

            self._head_key = ensure_private_key(self.head_key_path)
            if self.head_public_key is None:  # the first append made the key: verify with it from now on
                self.head_public_key = public_key_line(self._head_key)
                if self.anchor is not None:
                    self.anchor.verifier = self.head_public_key
        return self._head_key

    def head_mark(self, seq: int, entry_hash: str) -> dict:
        """(seq, hash) of a row, signed with the ledger key when there is one: what a witness keeps."""
        mark = {"seq": seq, "hash": entry_hash}
        if self.head_key_path is not None:
            from tasks.ledger.anchor import head_payload
            from tasks.signatures import sign_with

            mark["sig"] = sign_with(self._signing_key(), head_payload(seq, entry_hash))
        return mark

    def witness_problem(self, mark: dict, entries: list[LedgerEntry]) -> str | None:
        """Why a witness's mark does not agree with this ledger (its row gone or changed, its signature not the
        ledger key's), or None when it agrees."""
        from tasks.ledger.anchor import head_payload
        from tasks.signatures import verified_key

        try:
            seq, entry_hash = int(mark["seq"]), str(mark["hash"])
        except (KeyError, TypeError, ValueError):
            return "it is not a ledger head mark"
        row = next((e for e in entries if e.seq == seq), None)
        if row is None:
            return f"it records row {seq}, which the ledger no longer has"
        if row.entry_hash != entry_hash:
            return f"it records row {seq} with hash {entry_hash[:12]}…, the ledger's row {seq} has {row.entry_hash[:12]}…"
        if self.head_public_key is not None and verified_key(
                [self.head_public_key], head_payload(seq, entry_hash), mark.get("sig", "")) is None:
            return f"its record of row {seq} is not signed by the ledger key"
        return None

    def lock(self, name: str, *, timeout: float | None = None):
        """Context manager: the promotion lock of model ``name`` (one holder across processes and machines
        sharing this ledger); one-line error after ``timeout`` seconds (default: the ledger's lock timeout)."""
        from tasks.ledger.lock import model_lock

        return model_lock(self, name, timeout=self.lock_timeout if timeout is None else timeout)


def _serialisable_sqlite(engine) -> None:
    """pysqlite's own BEGIN is deferred; ledger writes start with BEGIN IMMEDIATE so two appends never interleave."""

    @event.listens_for(engine, "connect")
    def _no_pysqlite_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("lockgate_write") else "BEGIN")


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
