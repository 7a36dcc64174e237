"""Rollback under the approval policy: plan -> approval (the policy's or reviewers') -> the governed rollback.

`lockgate rollback` and the monitor's automatic rollback both come here.

- The policy needs no human for ``rollback`` in this environment: the approval is the
  policy's, recorded as an ``approval.auto`` row naming it, and no Prefect server is
  involved.
- It needs one: the rollback runs as the ``rollback`` flow (pipelines/rollback.py), which
  pauses exactly as the lifecycle does for a promotion: ``lockgate pending`` lists it,
  ``lockgate approve`` / ``reject`` (or the UI form) answer it, and every response is
  authorised against the policy and recorded. The monitor cannot wait days inside a
  batch run, so it blocks scoring instead and names the command that asks (see
  :func:`tasks.gates.rollback_model`); the approved rollback moves the champion, which
  lifts the block.

A rollback is decided against the champion of that moment (:class:`RollbackPlan`): if the
champion moves while the request waits, nothing moves and a ``rollback.refused`` row says
why. A rollback that is not approved leaves a ``rollback.refused`` row with the approval's
decision and reasons.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Literal

from pydantic import Field

from tasks.governance.approval import ApprovalResult, ApprovalRules, approval_rules, auto_approval
from tasks.errors import LockgateError
from tasks.evidence import Check, EvidenceFile, GateResult, evidence_file, write_json
from tasks.ledger.entry import LedgerEntry
from tasks.policy import Policy
from tasks.governance.promotion import RollbackFailed, RollbackPlan, RollbackRefused, plan_rollback, rollback
from tasks.registry import ModelVersionRecord
from tasks.settings import Settings
from tasks.stores import latest_evidence_dir, ledger_for, registry_for

AskReviewers = Callable[[ModelVersionRecord, RollbackPlan, GateResult], ApprovalResult]


class RollbackOutcome(GateResult):
    """What one governed rollback did: committed, reverted (smoke test failed), or refused (not approved, or the
    champion moved meanwhile); the approval behind it and the ledger rows it wrote."""

    model_name: str
    from_version: int
    to_version: int
    status: Literal["committed", "reverted", "refused"]
    approval: ApprovalResult
    smoke_test: str | None = None
    ledger_seqs: list[int] = Field(default_factory=list)
    aliases_after: dict[str, int] = Field(default_factory=dict)


def rollback_rules(settings: Settings, policy: Policy) -> ApprovalRules:
    return approval_rules(policy, settings.environment, "rollback")


def rollback_request(plan: RollbackPlan, reason: str) -> GateResult:
    """What reviewers are asked to approve, as the one 'gate' the request lists (`lockgate pending` shows its
    decision: 'rollback v2->v1 requested: <reason>')."""
    return GateResult(gate="rollback", passed=True,
                      decision=f"v{plan.from_version}->v{plan.to_version} requested: {' '.join(reason.split())[:300]}",
                      reasons=[f"rollback of {plan.model_name} from v{plan.from_version} to v{plan.to_version}: "
                               f"{reason}"])


def checked_reason(reason: str) -> str:
    if not reason.strip():
        raise LockgateError("--reason must not be empty: it is recorded in the ledger")
    return reason


def governed_rollback(settings: Settings, policy: Policy, name: str, *, reason: str, to_version: int | None = None,
                      flow_run_id: str | None = None, evidence: dict[str, str | EvidenceFile] | None = None,
                      ask: AskReviewers | None = None) -> RollbackOutcome:
    """Plan, approve and make one rollback. ``ask`` pauses for reviewers (only inside the ``rollback`` flow); when
    the policy needs reviewers and there is no ``ask``, a one-line LockgateError says how to ask them.

    Raises LockgateError (one line) when there is nothing to roll back to."""
    checked_reason(reason)
    registry, ledger = registry_for(settings), ledger_for(settings)
    plan = plan_rollback(registry, ledger, name=name, to_version=to_version)
    record = registry.get(name, plan.to_version)
    rules = rollback_rules(settings, policy)
    request = rollback_request(plan, reason)
    key = flow_run_id or secrets.token_hex(8)  # this rollback's evidence folder (see approval_role)
    if rules.required:
        if ask is None:
            raise LockgateError(
                f"rollback of {name} from v{plan.from_version} to v{plan.to_version} needs human approval in "
                f"{rules.environment} (policy '{rules.policy}'); `lockgate rollback {name} --reason ...` with a "
                "Prefect server running (`lockgate server start`) asks the reviewers")
        approval = ask(record, plan, request)
    else:
        approval = auto_approval(rules, requester=settings.actor)
    approval_evidence = _approval_evidence(settings, record, approval, key)
    common = dict(actor=settings.actor, model_name=name, policy=policy.name, flow_run_id=flow_run_id)
    if not rules.required:  # the policy's own approval, named in the ledger like a reviewer's
        ledger.append(LedgerEntry(**{**common, "actor": approval.approved_by[0]}, action="approval.auto",
                                  version=record.version, reason=approval.reasons[0], evidence=approval_evidence))
    base = dict(gate="rollback", model_name=name, from_version=plan.from_version, to_version=plan.to_version,
                approval=approval)
    if not approval.passed:
        why = (f"rollback from v{plan.from_version} to v{plan.to_version} not made: approval {approval.decision}: "
               f"{'; '.join(approval.reasons)}")
        row = ledger.append(LedgerEntry(action="rollback.refused", version=plan.to_version, reason=why, **common,
                                        evidence={**(evidence or {}), **approval_evidence}))
        return RollbackOutcome(passed=False, decision="refused", status="refused", reasons=[why],
                               checks=_checks(approval), ledger_seqs=[row.seq], **base)
    said = f"{reason} ({approval.reasons[0]})"
    try:
        result = rollback(registry, ledger, name=name, actor=settings.actor, reason=said, to_version=to_version,
                          policy=policy.name, flow_run_id=flow_run_id, expected_champion=plan.from_version,
                          evidence={**(evidence or {}), **approval_evidence})
    except RollbackRefused as e:  # the champion moved while the request waited
        return RollbackOutcome(passed=False, decision="refused", status="refused", reasons=[str(e)],
                               checks=_checks(approval), ledger_seqs=[e.seq], **base)
    except RollbackFailed as e:
        r = e.result
        return RollbackOutcome(passed=False, decision="reverted", status="reverted", reasons=[r.reason],
                               checks=_checks(approval), smoke_test=r.smoke_test, ledger_seqs=r.ledger_seqs,
                               aliases_after=r.aliases_after, **base)
    return RollbackOutcome(passed=True, decision="committed", status="committed", reasons=[result.reason],
                           checks=_checks(approval), smoke_test=result.smoke_test, ledger_seqs=result.ledger_seqs,
                           aliases_after=result.aliases_after, **base)


def _checks(approval: ApprovalResult) -> list[Check]:
    return [Check(name="approval", value=approval.decision, threshold="approved or auto-approved", comparison="in",
                  passed=approval.passed)]


def approval_role(key: str) -> str:
    """Where a rollback's approval result goes in the target version's evidence (its last lifecycle run's folder):
    one folder per rollback (a version can be rolled back to twice; the promotion's approval.json stays as it is)."""
    return f"rollbacks/{key}/approval"


def _approval_evidence(settings: Settings, record: ModelVersionRecord, approval: ApprovalResult,
                       key: str) -> dict[str, EvidenceFile]:
    """The approval's evidence file, written here unless the reviewers' path published it already."""
    path = latest_evidence_dir(settings, record.name, record.version) / f"{approval_role(key)}.json"
    if not path.exists():
        write_json(path, approval)
    return {"approval": evidence_file(path)}
