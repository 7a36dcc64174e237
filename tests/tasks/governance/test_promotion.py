"""Promotion, rollback and rejection on a real SQLite MLflow registry with exported artifacts: the lock-protected
started -> move -> smoke test -> committed path, stale-champion refusal, revert on a failed smoke test, recovery."""

from __future__ import annotations

import pytest

from tasks.errors import LockgateError
from tasks.ledger.entry import LedgerEntry
from tasks.ledger.store import Ledger
from tasks.governance.promotion import RollbackFailed, move_alias, promote, reject, rollback
from tasks.governance.promotion_state import agreement, recover
from tasks.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION

COMMON = dict(actor="tester", policy="demo", evidence={"canary": "c" * 64}, flow_run_id=None)


@pytest.fixture
def name(request):
    return request.node.name.removeprefix("test_")[:60].replace("_", "-")


@pytest.fixture
def versions(shared_home, name, candidate_files, exported_artifact, compiled_versions):
    """Three registered versions of model ``name`` with the exported artifact; (registry, ledger)."""
    from tasks.stores import ledger_for, registry_for

    compiled_versions(shared_home, candidate_files, exported_artifact, 3, name)
    return registry_for(shared_home), ledger_for(shared_home)


def _consistent(registry, ledger, name):
    check, agree = ledger.verify(), agreement(registry, ledger, name)
    assert check.ok, check
    assert agree.ok, agree


def _promote(registry, ledger, name, version, expected, **kw):
    return promote(registry, ledger, name=name, version=version, reason=f"v{version} passed", expected_champion=expected,
                   **COMMON, **kw)


def test_promotion_moves_champion_keeps_previous_and_records_started_and_committed(name, versions):
    registry, ledger = versions
    first = _promote(registry, ledger, name, 1, None)
    assert first.status == "committed" and registry.aliases(name) == {CHAMPION: 1}, first.reason
    move_alias(registry, ledger, name=name, alias=CHALLENGER, version=2, reason="v2 in lifecycle", **COMMON)
    second = _promote(registry, ledger, name, 2, 1)
    assert second.status == "committed" and second.champion_before == 1
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1} == second.aliases_after
    assert "artifact" in second.smoke_test and "verified" in second.smoke_test and "8 reference rows" in second.smoke_test
    started, committed = (ledger.entries()[s - 1] for s in second.ledger_seqs)
    assert (started.action, committed.action) == ("promotion.started", "promotion.committed")
    assert committed.aliases == {CHAMPION: 2, PREVIOUS_CHAMPION: 1} and committed.previous_version == 1
    assert committed.evidence == COMMON["evidence"] and committed.reason.startswith("v2 passed; smoke test: v2")
    assert registry.get(name, 2).tags["lockgate.status"] == "champion"
    assert registry.get(name, 1).tags["lockgate.status"] == "previous-champion"
    _consistent(registry, ledger, name)
    again = _promote(registry, ledger, name, 2, 1)  # a re-run after a crash that followed the commit
    assert again.status == "committed" and again.ledger_seqs == [] and "already champion" in again.reason


def test_stale_champion_is_refused_with_the_reason_recorded(name, versions):
    registry, ledger = versions
    _promote(registry, ledger, name, 1, None)
    _promote(registry, ledger, name, 2, 1)
    move_alias(registry, ledger, name=name, alias=CHALLENGER, version=3, reason="v3 in lifecycle", **COMMON)
    refused = _promote(registry, ledger, name, 3, 1)  # v3's canary ran against v1; v2 was promoted meanwhile
    assert refused.status == "refused" and refused.champion_before == 2
    assert "champion is v2" in refused.reason and "made against v1" in refused.reason
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}  # untouched, challenger cleared
    row = ledger.entries()[-1]
    assert row.action == "promotion.refused" and row.version == 3 and "different champion" in row.reason
    assert registry.get(name, 3).tags["lockgate.status"] == "refused"
    _consistent(registry, ledger, name)


def test_tampered_artifact_fails_the_smoke_test_and_the_aliases_go_back(name, versions, stored_artifact_path):
    registry, ledger = versions
    _promote(registry, ledger, name, 1, None)
    move_alias(registry, ledger, name=name, alias=CHALLENGER, version=2, reason="v2 in lifecycle", **COMMON)
    path = stored_artifact_path(registry, registry.get(name, 2))
    path.write_bytes(path.read_bytes() + b"\x00")
    before = registry.aliases(name)
    result = _promote(registry, ledger, name, 2, 1)
    assert result.status == "reverted" and registry.aliases(name) == before == {CHAMPION: 1, CHALLENGER: 2}
    assert "refusing to use a changed artifact" in result.reason
    started, reverted = (ledger.entries()[s - 1] for s in result.ledger_seqs)
    assert started.action == "promotion.started" and reverted.action == "promotion.reverted"
    assert reverted.aliases == before and "aliases restored: champion v1, challenger v2" in reverted.reason
    assert registry.get(name, 2).tags["lockgate.status"] == "reverted"
    _consistent(registry, ledger, name)


def test_a_failing_smoke_test_reverts_every_alias(name, versions):
    registry, ledger = versions
    _promote(registry, ledger, name, 1, None)
    seen = []

    def broken(registry_, record):
        seen.append(dict(registry_.aliases(name)))
        raise RuntimeError("scores are NaN")

    result = _promote(registry, ledger, name, 2, 1, smoke_test=broken)
    assert seen == [{CHAMPION: 2, PREVIOUS_CHAMPION: 1}]  # the smoke test ran on the moved aliases
    assert result.status == "reverted" and registry.aliases(name) == {CHAMPION: 1} and "scores are NaN" in result.reason
    _consistent(registry, ledger, name)


def test_rollback_walks_back_through_earlier_champions(name, versions):
    registry, ledger = versions
    for version, expected in ((1, None), (2, 1), (3, 2)):
        _promote(registry, ledger, name, version, expected)
    back = rollback(registry, ledger, name=name, actor="oncall", reason="drift breach on 2026-10-05")
    assert (back.from_version, back.to_version, back.status) == (3, 2, "committed")
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}  # v2's own predecessor, for the next step
    started, committed = (ledger.entries()[s - 1] for s in back.ledger_seqs)
    assert (started.action, committed.action) == ("rollback.started", "rollback.committed")
    assert "rollback from v3 to v2: drift breach" in committed.reason and committed.actor == "oncall"
    assert registry.get(name, 3).tags["lockgate.status"] == "rolled_back"
    again = rollback(registry, ledger, name=name, actor="oncall", reason="still bad")
    assert (again.from_version, again.to_version) == (2, 1) and registry.aliases(name) == {CHAMPION: 1}
    with pytest.raises(LockgateError, match=r"no previous champion to roll back to \(champion v1; earlier champions: "
                                            r"v2, v3\); name one with --to-version"):
        rollback(registry, ledger, name=name, actor="oncall", reason="x")
    named = rollback(registry, ledger, name=name, actor="oncall", reason="v3 was fine after all", to_version=3)
    assert named.to_version == 3 and registry.aliases(name) == {CHAMPION: 3, PREVIOUS_CHAMPION: 2}
    _consistent(registry, ledger, name)


def test_rollback_refusals_are_one_line_and_name_why(name, versions):
    registry, ledger = versions
    with pytest.raises(LockgateError, match="has no champion: nothing to roll back"):
        rollback(registry, ledger, name=name, actor="a", reason="x")
    _promote(registry, ledger, name, 1, None)
    _promote(registry, ledger, name, 2, 1)
    reject(registry, ledger, name=name, version=3, reason="canary gate: fail: auc_delta: delta -0.05, CI low -0.08 < -0.01: FAILED",
           **COMMON)
    with pytest.raises(LockgateError, match=r"v3 of .* was never champion \(status rejected: canary gate: fail: "
                                            r"auc_delta.*\); rollback returns to an earlier champion: v1"):
        rollback(registry, ledger, name=name, actor="a", reason="x", to_version=3)
    with pytest.raises(LockgateError, match="v2 is already the champion"):
        rollback(registry, ledger, name=name, actor="a", reason="x", to_version=2)
    with pytest.raises(LockgateError, match="v9 not found"):
        rollback(registry, ledger, name=name, actor="a", reason="x", to_version=9)
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}
    _consistent(registry, ledger, name)


def test_rollback_to_a_tampered_version_fails_and_restores(name, versions, stored_artifact_path):
    registry, ledger = versions
    _promote(registry, ledger, name, 1, None)
    _promote(registry, ledger, name, 2, 1)
    path = stored_artifact_path(registry, registry.get(name, 1))
    path.write_bytes(b"not the exported program")
    with pytest.raises(RollbackFailed, match="refusing to use a changed artifact") as failed:
        rollback(registry, ledger, name=name, actor="monitor", reason="drift breach")
    assert failed.value.result.status == "reverted" and failed.value.result.to_version == 1
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}
    assert ledger.entries()[-1].action == "rollback.reverted"
    _consistent(registry, ledger, name)


def test_interrupted_promotion_and_outside_changes_are_recovered(name, versions):
    registry, ledger = versions
    _promote(registry, ledger, name, 1, None)
    # what a crash mid-promotion leaves: a started row and half the moves
    ledger.append(LedgerEntry(action="promotion.started", model_name=name, version=2, previous_version=1,
                              reason="v2 passed", actor="tester"))
    registry.set_alias(name, PREVIOUS_CHAMPION, 1)
    registry.set_alias(name, CHAMPION, 2)
    found = agreement(registry, ledger, name)
    assert not found.ok and "promotion of v2" in found.problem and "interrupted" in found.problem
    with ledger.lock(name):
        row = recover(registry, ledger, name=name, actor="tester")
    assert row.action == "promotion.recovered" and "previous-champion v1, champion v2" in row.reason
    assert registry.aliases(name) == {CHAMPION: 1}
    _consistent(registry, ledger, name)
    registry.set_alias(name, CHAMPION, 3)  # by hand, outside lockgate
    found = agreement(registry, ledger, name)
    assert not found.ok and found.problem == "registry has champion v3 but the ledger says champion v1"
    move_alias(registry, ledger, name=name, alias=CHALLENGER, version=2, reason="v2 in lifecycle", **COMMON)
    reconciled = [e for e in ledger.entries() if e.action == "aliases.reconciled"]
    assert len(reconciled) == 1 and "the registry had champion v3" in reconciled[0].reason
    assert registry.aliases(name) == {CHAMPION: 1, CHALLENGER: 2}
    _consistent(registry, ledger, name)


def test_reject_records_reason_and_clears_challenger(name, versions):
    registry, ledger = versions
    move_alias(registry, ledger, name=name, alias=CHALLENGER, version=2, reason="in lifecycle", **COMMON)
    entry = reject(registry, ledger, name=name, version=2, reason="canary gate: auc_delta: delta -0.05, CI low -0.08 < -0.01: FAILED",
                   **COMMON)
    assert entry.action == "candidate.rejected" and "auc_delta" in entry.reason and entry.aliases == {}
    assert CHALLENGER not in registry.aliases(name)
    assert registry.get(name, 2).tags["lockgate.rejected_reason"].startswith("canary gate")
    _consistent(registry, ledger, name)


class BrokenLedger(Ledger):
    def append(self, entry):
        raise RuntimeError("ledger is down")


def test_no_alias_moves_when_the_ledger_write_fails(name, versions, tmp_path):
    registry, ledger = versions
    _promote(registry, ledger, name, 1, None)
    broken = BrokenLedger(ledger.url)
    with pytest.raises(RuntimeError):
        move_alias(registry, broken, name=name, alias=CHALLENGER, version=2, reason="x", **COMMON)
    with pytest.raises(RuntimeError):
        promote(registry, broken, name=name, version=2, reason="x", expected_champion=1, **COMMON)
    assert registry.aliases(name) == {CHAMPION: 1}
    elsewhere = Ledger(f"sqlite:///{tmp_path / 'other.db'}")  # a ledger that never saw this model
    with pytest.raises(LockgateError, match="no record of model .* aliases but the registry has champion v1"):
        rollback(registry, elsewhere, name=name, actor="a", reason="x")
    assert registry.aliases(name) == {CHAMPION: 1}


def test_promotion_and_rollback_on_a_postgres_ledger(name, versions, postgres_db, tmp_path):
    """The same path with the ledger on a real Postgres server (advisory lock, append lock, triggers)."""
    registry, _ = versions
    ledger = Ledger(postgres_db, anchor=tmp_path / "pg.anchor.json")
    assert _promote(registry, ledger, name, 1, None).status == "committed"
    assert _promote(registry, ledger, name, 2, 1).status == "committed"
    assert _promote(registry, ledger, name, 3, 1).status == "refused"
    back = rollback(registry, ledger, name=name, actor="oncall", reason="breach")
    assert (back.from_version, back.to_version) == (2, 1) and registry.aliases(name) == {CHAMPION: 1}
    assert [e.action for e in ledger.entries(model_name=name)] == [
        "promotion.started", "promotion.committed", "promotion.started", "promotion.committed", "promotion.refused",
        "rollback.started", "rollback.committed"]
    _consistent(registry, ledger, name)


def test_every_commit_is_witnessed_in_the_registry_and_a_rewritten_ledger_disagrees(name, versions):
    import json

    from tasks.registry import LEDGER_HEAD_TAG as WITNESS_TAG

    registry, ledger = versions
    result = _promote(registry, ledger, name, 1, None)
    mark = json.loads(registry.model_tags(name)[WITNESS_TAG])
    committed = ledger.entries()[result.ledger_seqs[-1] - 1]
    assert (mark["seq"], mark["hash"]) == (committed.seq, committed.entry_hash) and mark["sig"]
    assert ledger.witness_problem(mark, ledger.entries()) is None
    # the ledger as an attacker rewrote it (the committed row edited, its hash recomputed; the shared ledger itself
    # stays intact for the other tests): the registry's witness disagrees
    forged = committed.model_copy(update={"reason": "rewritten"})
    forged = forged.model_copy(update={"entry_hash": forged.content_hash()})
    problem = ledger.witness_problem(mark, [forged if e.seq == forged.seq else e for e in ledger.entries()])
    assert problem.startswith(f"it records row {committed.seq} with hash {committed.entry_hash[:12]}")
    assert ledger.witness_problem({**mark, "sig": mark["sig"][::-1]}, [committed]) == (
        f"its record of row {committed.seq} is not signed by the ledger key")
