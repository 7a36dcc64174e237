"""Rollback under the approval policy (tasks/governance/rollback.py) on a real SQLite registry and ledger: the policy's
approval when none is needed, a one-line refusal when reviewers must decide but cannot be asked, the reviewers'
verdict when they can, and a rollback approved against a champion that has moved since."""

from __future__ import annotations

import pytest

from tasks.errors import LockgateError
from tasks.evidence import sha256_file
from tasks.governance.promotion import plan_rollback, promote, rollback
from tasks.registry import CHAMPION, PREVIOUS_CHAMPION

COMMON = dict(actor="tester", policy="demo", evidence={}, flow_run_id=None)


@pytest.fixture
def model(shared_home, request, candidate_files, exported_artifact, compiled_versions):
    """A model of this test's own: v1 then v2 promoted, v3 registered; (name, registry, ledger)."""
    from tasks.stores import ledger_for, registry_for

    name = request.node.name.removeprefix("test_")[:50].replace("_", "-")
    compiled_versions(shared_home, candidate_files, exported_artifact, 3, name)
    registry, ledger = registry_for(shared_home), ledger_for(shared_home)
    promote(registry, ledger, name=name, version=1, reason="first", expected_champion=None, **COMMON)
    promote(registry, ledger, name=name, version=2, reason="better", expected_champion=1, **COMMON)
    return name, registry, ledger


def _in(settings, environment: str):
    return settings.model_copy(update={"environment": environment})


def test_dev_rollback_is_approved_by_the_policy_and_says_so(shared_home, model):
    from tasks.governance.rollback import governed_rollback
    from tasks.stores import policy_for, version_evidence_dir

    name, registry, ledger = model
    settings = _in(shared_home, "dev")
    outcome = governed_rollback(settings, policy_for(settings), name, reason="drift on day 5")
    assert (outcome.status, outcome.from_version, outcome.to_version) == ("committed", 2, 1)
    assert registry.aliases(name) == {CHAMPION: 1}
    auto, started, committed = ledger.entries(model_name=name)[-3:]
    assert (auto.action, auto.actor, auto.version) == ("approval.auto", "policy:demo", 1)
    assert "environment dev: rollback needs no human approval" in auto.reason
    assert (started.action, committed.action) == ("rollback.started", "rollback.committed")
    assert committed.reason.startswith("rollback from v2 to v1: drift on day 5 (auto-approved by policy 'demo'")
    files = list((version_evidence_dir(settings, name, 1) / "rollbacks").glob("*/approval.json"))
    assert len(files) == 1 and sha256_file(files[0]) == auto.evidence["approval"] == committed.evidence["approval"]
    assert not (version_evidence_dir(settings, name, 1) / "approval.json").exists()  # a promotion's stays its own
    assert ledger.verify().ok


def test_prod_rollback_without_reviewers_is_a_one_line_refusal_that_moves_nothing(shared_home, model):
    from tasks.governance.rollback import governed_rollback
    from tasks.stores import policy_for

    name, registry, ledger = model
    settings = _in(shared_home, "prod")
    rows = len(ledger.entries(model_name=name))
    with pytest.raises(LockgateError) as e:
        governed_rollback(settings, policy_for(settings), name, reason="drift")
    message = str(e.value)
    assert "\n" not in message and f"rollback of {name} from v2 to v1 needs human approval in prod" in message
    assert "lockgate server start" in message
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}
    assert len(ledger.entries(model_name=name)) == rows


def test_a_rollback_the_reviewers_reject_is_recorded_and_moves_nothing(shared_home, model):
    from tasks.governance.approval import ApprovalResult
    from tasks.governance.rollback import governed_rollback
    from tasks.stores import policy_for

    name, registry, ledger = model
    settings = _in(shared_home, "prod")
    asked = []

    def reviewers(record, plan, request):  # what the rollback flow's pause returns when an approver rejects
        asked.append((record.version, plan.from_version, request.reasons[0]))
        return ApprovalResult(gate="approval", passed=False, decision="rejected", policy="demo", environment="prod",
                              transition="rollback", reasons=["rejected by ml-lead: keep v2, the drift is seasonal"])

    outcome = governed_rollback(settings, policy_for(settings), name, reason="drift", ask=reviewers)
    assert asked == [(1, 2, f"rollback of {name} from v2 to v1: drift")]
    assert (outcome.status, outcome.passed) == ("refused", False)
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}
    row = ledger.entries(model_name=name)[-1]
    assert row.action == "rollback.refused" and row.seq == outcome.ledger_seqs[0]
    assert row.reason == ("rollback from v2 to v1 not made: approval rejected: rejected by ml-lead: keep v2, the "
                          "drift is seasonal")
    assert "approval" in row.evidence and ledger.verify().ok


def test_a_rollback_decided_against_a_champion_that_moved_is_refused(shared_home, model):
    name, registry, ledger = model
    plan = plan_rollback(registry, ledger, name=name)
    assert (plan.from_version, plan.to_version) == (2, 1)
    promote(registry, ledger, name=name, version=3, reason="while the rollback waited", expected_champion=2, **COMMON)
    with pytest.raises(LockgateError) as e:
        rollback(registry, ledger, name=name, actor="tester", reason="drift", expected_champion=plan.from_version)
    assert "the champion is v3, but the rollback was decided against v2" in str(e.value)
    assert registry.aliases(name) == {CHAMPION: 3, PREVIOUS_CHAMPION: 2}
    row = ledger.entries(model_name=name)[-1]
    assert (row.action, row.previous_version, row.seq) == ("rollback.refused", 3, e.value.seq)
    assert ledger.verify().ok


def test_the_governed_path_reports_a_moved_champion_as_refused(shared_home, model):
    from tasks.governance.approval import ApprovalResult
    from tasks.governance.promotion import promote
    from tasks.governance.rollback import governed_rollback
    from tasks.stores import policy_for

    name, registry, ledger = model
    settings = _in(shared_home, "prod")

    def reviewers_while_v3_is_promoted(record, plan, request):
        promote(registry, ledger, name=name, version=3, reason="meanwhile", expected_champion=2, **COMMON)
        return ApprovalResult(gate="approval", passed=True, decision="approved", policy="demo", environment="prod",
                              transition="rollback", approved_by=["ml-lead", "risk-officer-1"],
                              reasons=["approved by ml-lead, risk-officer-1"])

    outcome = governed_rollback(settings, policy_for(settings), name, reason="drift", ask=reviewers_while_v3_is_promoted)
    assert (outcome.status, outcome.from_version, outcome.to_version) == ("refused", 2, 1)
    assert "the champion is v3, but the rollback was decided against v2" in outcome.reasons[0]
    assert ledger.entries(model_name=name)[-1].seq == outcome.ledger_seqs[0]
    assert registry.aliases(name) == {CHAMPION: 3, PREVIOUS_CHAMPION: 2}
