import sqlite3

import pytest

from tasks.ledger import GENESIS, Ledger, LedgerEntry


def _entry(i):
    return LedgerEntry(actor="alice", action="alias.set", model_name="m", version=i, alias="champion",
                       reason=f"move {i}", evidence={"canary": "ab" * 32})


@pytest.fixture
def ledger(tmp_path):
    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


def test_append_chains_entries(ledger):
    first = ledger.append(_entry(1))
    second = ledger.append(_entry(2))
    assert first.prev_hash == GENESIS and second.prev_hash == first.entry_hash
    assert [e.version for e in ledger.entries()] == [1, 2]
    assert ledger.verify().ok and ledger.verify().entries == 2


@pytest.mark.parametrize(
    "sql,problem",
    [
        ("UPDATE ledger SET reason = 'edited' WHERE seq = 2", "content"),
        ("UPDATE ledger SET evidence = '{}' WHERE seq = 2", "content"),
        ("DELETE FROM ledger WHERE seq = 2", "link"),
    ],
)
def test_tampering_is_detected(tmp_path, ledger, sql, problem):
    for i in range(1, 4):
        ledger.append(_entry(i))
    con = sqlite3.connect(tmp_path / "ledger.db")
    con.execute(sql)
    con.commit()
    con.close()
    check = ledger.verify()
    assert not check.ok and problem in check.problem
    assert check.first_bad_seq in (2, 3)


def test_entries_filter_and_limit(ledger):
    for i in range(5):
        ledger.append(_entry(i))
    ledger.append(LedgerEntry(actor="a", action="x", model_name="other", reason="r"))
    last_two = ledger.entries(model_name="m", limit=2)
    assert [e.version for e in last_two] == [3, 4]
