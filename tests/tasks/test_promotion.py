"""Alias moves on a real SQLite MLflow registry, each with its ledger entry."""

from __future__ import annotations

import pytest

from tasks.ledger import Ledger
from tasks.promotion import move_alias, promote, reject
from tasks.registration import register_candidate
from tasks.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from tasks.stores import ledger_for, registry_for


@pytest.fixture
def two_versions(settings, candidate_files):
    registry, ledger = registry_for(settings), ledger_for(settings)
    for _ in range(2):
        register_candidate(registry, ledger, name=settings.model_name, arch="mlp", config_path=candidate_files.config,
                           params_path=candidate_files.params, reference_path=candidate_files.reference,
                           contract_name="credit_default", actor="tester")
    return registry, ledger


COMMON = dict(actor="tester", policy="demo", evidence={"canary": "c" * 64}, flow_run_id=None)


def test_promote_keeps_previous_champion_and_records_every_move(settings, two_versions):
    registry, ledger = two_versions
    name = settings.model_name
    promote(registry, ledger, name=name, version=1, reason="first", **COMMON)
    move_alias(registry, ledger, name=name, alias=CHALLENGER, version=2, reason="v2 in lifecycle", **COMMON)
    moves = promote(registry, ledger, name=name, version=2, reason="better", **COMMON)
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}
    assert [(m.alias, m.version, m.previous_version) for m in moves] == [
        (PREVIOUS_CHAMPION, 1, None), (CHAMPION, 2, 1), (CHALLENGER, None, 2)]
    entries = [e for e in ledger.entries() if e.action.startswith("alias.")]
    assert [(e.alias, e.version) for e in entries] == [
        (CHAMPION, 1), (CHALLENGER, 2), (PREVIOUS_CHAMPION, 1), (CHAMPION, 2), (CHALLENGER, None)]
    assert entries[3].reason == "better" and entries[3].evidence == COMMON["evidence"]
    assert registry.get(name, 2).tags["lockgate.status"] == "champion"
    assert ledger.verify().ok


def test_reject_records_reason_and_clears_challenger(settings, two_versions):
    registry, ledger = two_versions
    name = settings.model_name
    move_alias(registry, ledger, name=name, alias=CHALLENGER, version=2, reason="in lifecycle", **COMMON)
    entry = reject(registry, ledger, name=name, version=2, reason="canary gate: auc_delta=-0.05 >= -0.01: FAILED",
                   **COMMON)
    assert entry.action == "candidate.rejected" and "auc_delta" in entry.reason
    assert CHALLENGER not in registry.aliases(name)
    assert registry.get(name, 2).tags["lockgate.rejected_reason"].startswith("canary gate")


class BrokenLedger(Ledger):
    def append(self, entry):
        raise RuntimeError("ledger is down")


def test_alias_is_put_back_when_the_ledger_write_fails(settings, two_versions, tmp_path):
    registry, ledger = two_versions
    name = settings.model_name
    promote(registry, ledger, name=name, version=1, reason="first", **COMMON)
    broken = BrokenLedger(f"sqlite:///{tmp_path / 'broken.db'}")
    with pytest.raises(RuntimeError):
        move_alias(registry, broken, name=name, alias=CHAMPION, version=2, reason="x", **COMMON)
    with pytest.raises(RuntimeError):
        move_alias(registry, broken, name=name, alias=CHALLENGER, version=2, reason="x", **COMMON)
    assert registry.aliases(name) == {CHAMPION: 1}
