"""`lockgate rollback`, `lockgate audit verify` and the status' recovery, through the CLI entry point, on a real
SQLite MLflow registry and ledger."""

from __future__ import annotations

import sqlite3

import pytest

from pipelines.cli import main
from pipelines.exit_codes import EXIT_AUDIT_FAILED, EXIT_OK, EXIT_ROLLBACK_FAILED, EXIT_USAGE
from tasks.registry import CHAMPION, PREVIOUS_CHAMPION

COMMON = dict(actor="tester", policy="test", evidence={}, flow_run_id=None)


@pytest.fixture
def model(shared_home, request, monkeypatch, candidate_files, exported_artifact, compiled_versions):
    """A model of this test's own in the module's home, v1 then v2 promoted; (name, registry, ledger)."""
    from tasks.governance.promotion import promote
    from tasks.stores import ledger_for, registry_for

    name = request.node.name.removeprefix("test_")[:50].replace("_", "-")
    monkeypatch.setenv("LOCKGATE_MODEL_NAME", name)
    compiled_versions(shared_home, candidate_files, exported_artifact, 2, name)
    registry, ledger = registry_for(shared_home), ledger_for(shared_home)
    promote(registry, ledger, name=name, version=1, reason="first", expected_champion=None, **COMMON)
    promote(registry, ledger, name=name, version=2, reason="better", expected_champion=1, **COMMON)
    return name, registry, ledger


def test_rollback_command_and_its_one_line_refusal(model, capsys):
    name, registry, ledger = model
    assert main(["rollback", name, "--reason", "drift breach on day 5"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{name}: champion v1 (was v2)" in out and "verified" in out
    assert registry.aliases(name) == {CHAMPION: 1}
    assert ledger.entries(model_name=name)[-1].reason.startswith("rollback from v2 to v1: drift breach on day 5")
    assert main(["rollback", name, "--reason", "  "]) == EXIT_USAGE
    assert _one_line(capsys) == "lockgate: error: --reason must not be empty: it is recorded in the ledger"
    assert main(["rollback", "--reason", "again"]) == EXIT_USAGE  # MODEL defaults to LOCKGATE_MODEL_NAME
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no previous champion to roll back to" in err and "--to-version" in err


def test_rollback_to_a_tampered_champion_exits_3_and_changes_nothing(model, capsys, stored_artifact_path):
    name, registry, ledger = model
    path = stored_artifact_path(registry, registry.get(name, 1))
    path.write_bytes(path.read_bytes()[:-8])
    assert main(["rollback", name, "--reason", "monitor breach"]) == EXIT_ROLLBACK_FAILED
    out = capsys.readouterr().out
    assert "rollback of" in out and "reverted" in out and "refusing to use a changed artifact" in out
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}


def test_audit_verify_names_a_disagreement_and_recovers_it(model, capsys):
    name, registry, ledger = model
    assert main(["audit", "verify", "--model", name]) == EXIT_OK
    assert "hash chain intact" in capsys.readouterr().out
    registry.set_alias(name, CHAMPION, 1)  # by hand, outside lockgate
    assert main(["audit", "verify"]) == EXIT_AUDIT_FAILED
    out = " ".join(capsys.readouterr().out.split())
    assert (f"{name}: registry has previous-champion v1, champion v1 but the ledger says previous-champion v1, "
            "champion v2") in out
    assert main(["audit", "verify", "--model", name, "--recover"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "aliases.reconciled" in out and "registry agrees with the ledger" in out
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}


def test_audit_verify_names_an_edited_row(model, capsys, shared_home):
    name, registry, ledger = model
    row = ledger.entries(model_name=name)[-1]
    db = sqlite3.connect(shared_home.home_dir / "ledger.db")
    db.execute("DROP TRIGGER ledger_no_update")  # what it takes to edit a row
    db.execute("UPDATE ledger SET reason = 'approved by the board' WHERE seq = ?", (row.seq,))
    db.commit()
    db.close()
    try:
        assert main(["audit", "verify", "--model", name]) == EXIT_AUDIT_FAILED
        out = " ".join(capsys.readouterr().out.split())
        assert f"row {row.seq}: row {row.seq} was edited: its content does not match its hash" in out
    finally:  # the module's other tests share this ledger: put the row back (opening it restored the trigger)
        db = sqlite3.connect(shared_home.home_dir / "ledger.db")
        db.execute("DROP TRIGGER ledger_no_update")
        db.execute("UPDATE ledger SET reason = ? WHERE seq = ?", (row.reason, row.seq))
        db.commit()
        db.close()
    assert ledger.verify().ok


def test_status_recovers_an_interrupted_promotion(model, capsys):
    from tasks.ledger.entry import LedgerEntry

    name, registry, ledger = model
    ledger.append(LedgerEntry(action="rollback.started", model_name=name, version=1, previous_version=2,
                              reason="crashed mid-way", actor="tester"))
    registry.set_alias(name, CHAMPION, 1)
    assert main(["status"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "rollback.recovered" in out and "registry agrees with the ledger" in out and "hash chain intact" in out
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_audit_verify_fails_on_a_chain_rewritten_with_recomputed_hashes_and_anchor(settings, capsys):
    import json

    from sqlalchemy import text

    from tasks.ledger.entry import LedgerEntry
    from tasks.stores import ledger_for

    ledger = ledger_for(settings)
    rows = [ledger.append(LedgerEntry(actor="tester", action="note", model_name="m", reason=f"row {i}"))
            for i in range(1, 4)]
    assert main(["audit", "verify"]) == EXIT_OK
    assert "signed by the ledger key SHA256:" in capsys.readouterr().out
    # with write access to the ledger's folder: triggers dropped, row 2 rewritten, hashes and anchor recomputed
    prev, updates = rows[0].entry_hash, []
    for e in rows[1:]:
        e = e.model_copy(update={"reason": "rewritten" if e.seq == 2 else e.reason, "prev_hash": prev})
        prev = e.content_hash()
        updates.append({"r": e.reason, "p": e.prev_hash, "h": prev, "s": e.seq})
    with ledger.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("DROP TRIGGER ledger_no_update")
        for u in updates:
            conn.execute(text("UPDATE ledger SET reason = :r, prev_hash = :p, entry_hash = :h WHERE seq = :s"), u)
    settings.ledger_anchor_path.write_text(json.dumps({"head": {"seq": 3, "hash": prev}, "pending": None}))
    assert main(["audit", "verify"]) == EXIT_AUDIT_FAILED
    out = capsys.readouterr().out
    assert "row 3: row 3 matches the anchor, but the anchor's record of it is not signed by the ledger key" in out


def test_audit_verify_catches_rows_truncated_behind_a_replayed_signed_head(settings, capsys, candidate_files,
                                                                          exported_artifact, compiled_versions):
    """Rows deleted from the end and the anchor rewritten to an older head the ledger key did sign: the registry's
    witness moved with every row of the model, so it names a row the ledger no longer has."""
    import json

    from sqlalchemy import text

    from tasks.governance.promotion import promote
    from tasks.ledger.entry import LedgerEntry
    from tasks.registry import LEDGER_HEAD_TAG
    from tasks.stores import ledger_for, registry_for

    name = "truncated"
    compiled_versions(settings, candidate_files, exported_artifact, 1, name)
    registry, ledger = registry_for(settings), ledger_for(settings)
    promote(registry, ledger, name=name, version=1, reason="first", expected_champion=None, **COMMON)
    committed = ledger.entries()[-1]
    old_head = ledger.head_mark(committed.seq, committed.entry_hash)  # signed: what an attacker could have kept
    for i in range(3):
        ledger.append(LedgerEntry(actor="tester", action="monitor.alert", model_name=name, version=1,
                                  reason=f"partition {i}: drift breach"))
    assert json.loads(registry.model_tags(name)[LEDGER_HEAD_TAG])["seq"] == committed.seq + 3
    assert main(["audit", "verify"]) == EXIT_OK
    capsys.readouterr()
    with ledger.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("DROP TRIGGER ledger_no_delete")
        conn.execute(text("DELETE FROM ledger WHERE seq > :s"), {"s": committed.seq})
    settings.ledger_anchor_path.write_text(json.dumps({"head": old_head, "pending": None}))
    assert main(["audit", "verify"]) == EXIT_AUDIT_FAILED
    out = capsys.readouterr().out
    assert "hash chain intact" in out  # the chain and the replayed anchor alone would pass
    assert f"{name}: the registry's witness (tag {LEDGER_HEAD_TAG}) disagrees: it records row {committed.seq + 3}, " \
           "which the ledger no longer has" in out
