"""Approval rules and the authorisation of responses: pure functions, table-driven."""

from datetime import datetime, timedelta, timezone

import pytest

from tasks.governance.approval import (
    ApprovalRequest,
    ApprovalResponse,
    approval_outcome,
    approval_rules,
    authorise_response,
    auto_approval,
)
from tasks.errors import LockgateError
from tasks.policy import Approvers, ApprovalPolicy, EnvironmentApproval, Policy

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def _policy(**prod) -> Policy:
    rules = dict(transitions=("promote",), approvers=Approvers(users=("carol",), groups=("risk",)), min_approvals=2,
                 expiry=timedelta(hours=1))
    return Policy(name="gov", approval=ApprovalPolicy(
        groups={"risk": ("dave", "erin", "bob")},
        environments={"dev": EnvironmentApproval(), "prod": EnvironmentApproval(**{**rules, **prod})}))


def _request(policy: Policy | None = None, **kw) -> ApprovalRequest:
    rules = approval_rules(policy or _policy(), "prod", "promote")
    fields = dict(request_id="req-a", flow_run_id="run-1", model_name="m", version=3, rules=rules, requester="alice",
                  registrant="bob", requested_at=T0, expires_at=T0 + timedelta(hours=1))
    return ApprovalRequest(**{**fields, **kw})


def _say(approver, decision="approve", reason="looks good", request_id="req-a") -> ApprovalResponse:
    return ApprovalResponse(decision=decision, approver=approver, reason=reason, request_id=request_id)


def test_rules_per_environment_and_transition():
    policy = _policy()
    prod = approval_rules(policy, "prod", "promote")
    assert prod.required and prod.approvers == ("carol", "dave", "erin", "bob") and prod.min_approvals == 2
    assert prod.expiry_seconds == 3600 and prod.separation_of_duties
    assert not approval_rules(policy, "prod", "rollback").required
    assert not approval_rules(policy, "dev", "promote").required
    with pytest.raises(LockgateError, match=r"environment 'prdo' \(LOCKGATE_ENVIRONMENT\) is not in policy 'gov' "
                       r"approval.environments \(dev, prod\)"):
        approval_rules(policy, "prdo", "promote")


def test_auto_approval_names_the_policy_and_environment():
    result = auto_approval(approval_rules(_policy(), "dev", "promote"), requester="alice")
    assert result.passed and result.decision == "auto-approved" and result.approved_by == ["policy:gov"]
    assert result.reasons == ["auto-approved by policy 'gov' (environment dev: promote needs no human approval); "
                              "requested by alice"]


@pytest.mark.parametrize(
    "response,now,outcome,refusal,fragment",
    [
        (_say("carol"), T0, "granted", None, "carol approved ('looks good'): authorised approver in prod; approval 1 of 2"),
        (_say("dave"), T0, "granted", None, "approval 1 of 2"),  # a member of group risk
        (_say("mallory"), T0, "refused", "unknown-approver",
         "'mallory' is not an approver in prod under policy 'gov' (approvers: carol, dave, erin, bob)"),
        (_say("alice"), T0, "refused", "unknown-approver", "'alice' is not an approver"),
        (_say("bob"), T0, "refused", "separation-of-duties",
         "bob registered this version (requester alice, registrant bob); separation_of_duties=true forbids"),
        (_say("carol", request_id="req-old"), T0, "refused", "replayed",
         "response is for request 'req-old', not this request 'req-a'"),
        (_say("carol"), T0 + timedelta(hours=1, seconds=1), "refused", "expired",
         "after the request expired at 2026-11-01T10:00:00+00:00 (expiry 1:00:00)"),
        (_say("carol", "reject", "AUC slice too low"), T0, "rejected", None,
         "carol rejected ('AUC slice too low'): authorised approver in prod rejected the promotion to champion"),
        (_say("bob", "reject", "withdrawn"), T0, "rejected", None, "bob rejected"),  # the registrant may withdraw
        (_say("mallory", "reject"), T0, "refused", "unknown-approver", "'mallory' is not an approver"),
    ],
)
def test_authorise_one_response(response, now, outcome, refusal, fragment):
    verdict = authorise_response(_request(), [], response, now)
    assert (verdict.outcome, verdict.refusal) == (outcome, refusal)
    assert fragment in verdict.reason, verdict.reason
    assert verdict.input_sha256 == response.sha256() and len(verdict.input_sha256) == 64
    assert verdict.action == f"approval.{outcome}" and verdict.received_at == now


def test_requester_cannot_approve_unless_separation_of_duties_is_off():
    policy = _policy(approvers=Approvers(users=("alice", "carol")))
    assert authorise_response(_request(policy), [], _say("alice"), T0).refusal == "separation-of-duties"
    relaxed = _policy(approvers=Approvers(users=("alice", "carol")), separation_of_duties=False)
    assert authorise_response(_request(relaxed), [], _say("alice"), T0).outcome == "granted"


def test_same_approver_twice_counts_once_and_identical_input_is_a_replay():
    request = _request()
    first = authorise_response(request, [], _say("carol"), T0)
    again = authorise_response(request, [first], _say("carol", reason="still good"), T0)
    replay = authorise_response(request, [first], _say("carol"), T0)
    assert again.refusal == "duplicate" and "carol already approved this request" in again.reason
    assert replay.refusal == "replayed" and f"input sha256 {first.input_sha256[:16]} was already consumed" in replay.reason
    pending = approval_outcome(request, [first, again, replay], expired=False)
    assert pending.decision == "pending" and not pending.passed
    assert pending.checks[0].value == 1 and pending.checks[0].threshold == 2
    second = authorise_response(request, [first, again, replay], _say("erin"), T0)
    assert second.outcome == "granted" and "approval 2 of 2" in second.reason
    approved = approval_outcome(request, [first, again, replay, second], expired=False)
    assert approved.passed and approved.decision == "approved" and approved.approved_by == ["carol", "erin"]
    assert approved.reasons[0] == "approved by carol, erin (2 of min_approvals 2) in prod under policy 'gov'"
    assert sum(r.startswith("refused: ") for r in approved.reasons) == 2


@pytest.mark.parametrize(
    "responses,expired,decision,passed",
    [
        ([], True, "expired", False),
        ([("carol", "approve")], True, "expired", False),
        ([("carol", "approve")], False, "pending", False),
        ([("carol", "approve"), ("dave", "reject")], False, "rejected", False),
        ([("carol", "approve"), ("mallory", "reject")], False, "pending", False),  # an unauthorised reject is refused
        ([("carol", "approve"), ("dave", "approve")], False, "approved", True),
        ([("bob", "approve"), ("alice", "approve"), ("carol", "approve")], True, "expired", False),
    ],
)
def test_outcome(responses, expired, decision, passed):
    request, verdicts = _request(), []
    for who, what in responses:
        verdicts.append(authorise_response(request, verdicts, _say(who, what), T0))
    result = approval_outcome(request, verdicts, expired=expired)
    assert (result.decision, result.passed) == (decision, passed)
    assert result.request_id == "req-a" and result.responses == verdicts
    if decision == "expired":
        assert result.reasons[0].startswith("request req-a expired at 2026-11-01T10:00:00+00:00 with ")


def test_request_summary_names_everything_a_reviewer_needs():
    summary = _request().summary()
    assert summary == ("m v3: promotion to champion in prod needs 2 approval(s) from carol, dave, erin, bob by "
                       "2026-11-01T10:00:00+00:00 (policy 'gov'); requested by alice, registered by bob; separation "
                       "of duties: neither may approve")
