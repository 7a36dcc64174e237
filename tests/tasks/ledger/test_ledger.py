"""The hash-chained ledger on SQLite and on a real Postgres: chaining, append-only, tamper detection naming the row,
the anchor for rows deleted from the end, serialised appends and the per-model lock."""

import json
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tasks.ledger.entry import GENESIS, LedgerEntry
from tasks.ledger.store import Ledger, ledger_table
from tasks.ledger.lock import LockTimeout


def _entry(i, model="m"):
    return LedgerEntry(actor="alice", action="alias.set", model_name=model, version=i, alias="champion",
                       reason=f"move {i}", evidence={"canary": "ab" * 32}, aliases={"champion": i})


@pytest.fixture
def ledger(ledger_url, tmp_path):
    return Ledger(ledger_url, anchor=tmp_path / "ledger.anchor.json")


@pytest.fixture
def five(ledger):
    return [ledger.append(_entry(i)) for i in range(1, 6)]


def tamper(ledger, *statements):
    """What someone with write access to the database would do: copy the table without its append-only triggers
    and constraints, then run ``statements`` (SQL text, or (SQL, params)) on it."""
    with ledger.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("CREATE TABLE ledger_copy AS SELECT * FROM ledger")
        conn.exec_driver_sql("DROP TABLE ledger")
        conn.exec_driver_sql("ALTER TABLE ledger_copy RENAME TO ledger")
        for s in statements:
            conn.execute(*(s if isinstance(s, tuple) else (text(s),)))


def forged(seq, prev_hash, *, valid=True):
    """An INSERT of a row the ledger never wrote, chained to ``prev_hash`` (with a correct hash when ``valid``)."""
    e = LedgerEntry(actor="mallory", action="alias.set", model_name="m", version=99, alias="champion",
                    reason="forged", aliases={"champion": 99}, seq=seq, prev_hash=prev_hash)
    row = e.model_copy(update={"entry_hash": e.content_hash() if valid else "f" * 64}).model_dump()
    row["evidence"], row["aliases"] = json.dumps(row["evidence"]), json.dumps(row["aliases"])
    cols = ", ".join(row)
    return text(f"INSERT INTO ledger ({cols}) VALUES ({', '.join(':' + c for c in row)})"), row


def test_append_chains_entries_with_consecutive_seqs(ledger):
    first, second = ledger.append(_entry(1)), ledger.append(_entry(2))
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS and second.prev_hash == first.entry_hash
    assert [e.version for e in ledger.entries()] == [1, 2]
    assert ledger.entries()[1].aliases == {"champion": 2}
    check = ledger.verify()
    assert check.ok and check.entries == 2 and "last row 2 matches" in check.anchor


def test_the_database_refuses_updates_and_deletes(ledger, five):
    for sql in ("UPDATE ledger SET reason = 'edited' WHERE seq = 2", "DELETE FROM ledger WHERE seq = 5"):
        with pytest.raises(SQLAlchemyError, match="append-only"):
            with ledger.engine.begin() as conn:
                conn.execute(text(sql))
    assert ledger.verify().ok and len(ledger.entries()) == 5


@pytest.mark.parametrize("case", ["edited", "edited-evidence", "deleted", "deleted-renumbered", "inserted",
                                  "inserted-bad-hash", "reordered", "deleted-tail", "appended-outside"])
def test_tampering_is_detected_and_the_row_named(ledger, five, case):
    h = {e.seq: e.entry_hash for e in five}
    attacks = {
        "edited": (["UPDATE ledger SET reason = 'edited' WHERE seq = 3"], 3, "row 3 was edited"),
        "edited-evidence": (["UPDATE ledger SET evidence = '{}' WHERE seq = 2"], 2, "row 2 was edited"),
        "deleted": (["DELETE FROM ledger WHERE seq = 3"], 3, "row 3 deleted"),
        "deleted-renumbered": (["DELETE FROM ledger WHERE seq = 3", "UPDATE ledger SET seq = seq - 1 WHERE seq > 3"],
                               3, "deleted and the rows after it renumbered"),
        "inserted": (["UPDATE ledger SET seq = seq + 1 WHERE seq >= 3", forged(3, h[2])], 3, "row 3 was inserted"),
        "inserted-bad-hash": (["UPDATE ledger SET seq = seq + 1 WHERE seq >= 3", forged(3, h[2], valid=False)],
                              3, "row 3 was inserted"),
        "reordered": (["UPDATE ledger SET seq = CASE seq WHEN 3 THEN 4 ELSE 3 END WHERE seq IN (3, 4)"],
                      3, "rows reordered: row 3 holds the entry written as row 4"),
        "deleted-tail": (["DELETE FROM ledger WHERE seq = 5"], 5, "row 5 deleted from the end"),
        "appended-outside": ([forged(6, h[5])], 6, "row 6 was appended outside lockgate"),
    }
    statements, bad_seq, problem = attacks[case]
    assert ledger.verify().ok
    tamper(ledger, *statements)
    check = ledger.verify()
    assert not check.ok
    assert check.first_bad_seq == bad_seq and problem in check.problem, check


@pytest.mark.parametrize("signed", [True, False])
def test_a_chain_rewritten_with_recomputed_hashes_and_anchor_needs_the_ledger_key(ledger_url, tmp_path, signed):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tasks.ledger.anchor import head_payload
    from tasks.signatures import load_private_key, public_key_line, sign_with

    key_file = tmp_path / "keys" / "ledger_ed25519" if signed else None  # made by the first append
    anchor = tmp_path / "ledger.anchor.json"
    ledger = Ledger(ledger_url, anchor=anchor, head_key=key_file)
    rows = [ledger.append(_entry(i)) for i in range(1, 6)]
    assert ledger.verify().ok and ("signed by the ledger key" in ledger.verify().anchor) == signed
    # the attacker: rows 3.. rewritten, every hash recomputed, the anchor rewritten (and signed with their own key)
    prev, statements = rows[1].entry_hash, []
    for e in rows[2:]:
        e = e.model_copy(update={"reason": "rewritten" if e.seq == 3 else e.reason, "prev_hash": prev})
        prev = e.content_hash()
        statements.append((text("UPDATE ledger SET reason = :r, prev_hash = :p, entry_hash = :h WHERE seq = :s"),
                           {"r": e.reason, "p": e.prev_hash, "h": prev, "s": e.seq}))
    tamper(ledger, *statements)
    mallory = Ed25519PrivateKey.generate()
    anchor.write_text(json.dumps({"head": {"seq": 5, "hash": prev, "sig": sign_with(mallory, head_payload(5, prev))},
                                  "pending": None}))
    auditor = Ledger(ledger_url, anchor=anchor,
                     head_public_key=public_key_line(load_private_key(key_file)) if signed else None)
    check = auditor.verify()
    if signed:
        assert not check.ok and check.first_bad_seq == 5 and "not signed by the ledger key SHA256:" in check.problem
    else:  # without the key a complete rewrite verifies: what the ledger key is for
        assert check.ok and [e.reason for e in auditor.entries()][2] == "rewritten"


def test_anchor_tells_a_crash_around_the_commit_from_a_deletion(ledger, five, tmp_path):
    anchor = tmp_path / "ledger.anchor.json"
    # killed after the database commit of row 5, before the anchor's head moved to it
    anchor.write_text(json.dumps({"head": {"seq": 4, "hash": five[3].entry_hash},
                                  "pending": {"seq": 5, "hash": five[4].entry_hash}}))
    assert ledger.verify().ok
    # killed before the commit of row 6: the anchor names a row that never made it
    anchor.write_text(json.dumps({"head": {"seq": 5, "hash": five[4].entry_hash},
                                  "pending": {"seq": 6, "hash": "e" * 64}}))
    assert ledger.verify().ok
    anchor.unlink()
    check = ledger.verify()
    assert not check.ok and "anchor file" in check.problem and "missing" in check.problem


def test_concurrent_appends_are_serialised(ledger):
    def work(t):
        for i in range(10):
            ledger.append(_entry(100 * t + i, model=f"m{t}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = ledger.entries()
    assert [e.seq for e in entries] == list(range(1, 81))
    assert all(len([e for e in entries if e.model_name == f"m{t}"]) == 10 for t in range(8))
    assert ledger.verify().ok


def test_older_schema_is_a_one_line_error(tmp_path):
    from sqlalchemy import create_engine

    from tasks.errors import LockgateError

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (seq INTEGER PRIMARY KEY, reason TEXT)")
    with pytest.raises(LockgateError, match="older schema .*no column .*aliases"):
        Ledger(url)
    assert "aliases" in ledger_table.c


HOLDER = """
import sys, time
from tasks.ledger.store import Ledger
with Ledger(sys.argv[1]).lock(sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_model_lock_waits_names_the_holder_and_is_freed_when_the_holder_dies(ledger, ledger_url):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, ledger_url, "m"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with ledger.lock("other", timeout=1):  # other models are not blocked
            pass
        started = time.monotonic()
        with pytest.raises(LockTimeout, match="model m is being promoted or rolled back by") as refused:
            with ledger.lock("m", timeout=0.5):
                pass
        assert time.monotonic() - started >= 0.5
        assert (f"pid {child.pid}" if ledger.dialect == "sqlite" else "Postgres backend pid") in str(refused.value)
    finally:
        child.kill()  # SIGKILL: no cleanup runs in the holder
        child.wait()
    with ledger.lock("m", timeout=10):  # the system released it with the process
        pass


def test_a_reader_makes_no_key_and_says_the_head_is_not_checked(ledger_url, tmp_path):
    key_file = tmp_path / "keys" / "ledger_ed25519"
    writer = Ledger(ledger_url, anchor=tmp_path / "a.json", head_key=key_file)
    writer.append(_entry(1))
    assert key_file.exists() and "signed by the ledger key" in writer.verify().anchor
    elsewhere = tmp_path / "elsewhere" / "ledger_ed25519"
    reader = Ledger(ledger_url, anchor=tmp_path / "a.json", head_key=elsewhere)  # an auditor's machine, no key
    check = reader.verify()
    assert check.ok and "its signature is not checked: no ledger key here" in check.anchor and not elsewhere.exists()


def test_the_head_is_signed_for_witnesses_without_an_anchor(ledger_url, tmp_path):
    seen = []
    ledger = Ledger(ledger_url, anchor=None, head_key=tmp_path / "k", witness=lambda mark, entry: seen.append(mark))
    first = ledger.append(_entry(1))
    assert seen[0]["sig"] and ledger.witness_problem(seen[0], ledger.entries()) is None
    assert ledger.witness_problem({**seen[0], "sig": ""}, ledger.entries()) == \
        f"its record of row {first.seq} is not signed by the ledger key"


def test_a_public_key_setting_is_a_line_or_a_file_and_else_one_line(tmp_path):
    from tasks.errors import LockgateError
    from tasks.signatures import ensure_private_key, public_key_line, public_key_setting

    line = public_key_line(ensure_private_key(tmp_path / "k"))
    (tmp_path / "k.pub").write_text(line + "\n")
    assert public_key_setting(line) == line and public_key_setting(str(tmp_path / "k.pub")) == line
    for bad in (str(tmp_path / "missing.pub"), "ssh-rsa AAAA x"):
        with pytest.raises(LockgateError) as e:
            public_key_setting(bad)
        assert "\n" not in str(e.value)
