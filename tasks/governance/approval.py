"""Approval gate: does a transition need a human, and does a reviewer's response count?

Pure functions, no orchestrator: the policy's rules for (environment, transition),
the open request, and :func:`authorise_response` deciding each response the Prefect
pause returned (tasks/governance/approval_prefect.py). Prefect does not authenticate who
resumes a run: the approver's name is self-asserted, so every response - from the
CLI, the UI form or the API - is authorised here after the flow resumes, and every
refused response is recorded with its reason.

Refusals (the response does not count):

- ``unknown-approver``: not a named user nor a member of a named group.
- ``separation-of-duties``: the approver registered the version or requested the
  transition (approving only; the requester may still withdraw with a reject if they
  are a named approver).
- ``replayed``: the response carries another request's id (an approval captured from
  an earlier request - another run, or an earlier lifecycle of the same version - and
  submitted again), or it is byte-for-byte an input this request already consumed.
  Request ids are random per request, so an approval never carries over.
- ``duplicate``: an approver who already approved this request approves again; it
  counts once toward ``min_approvals``.
- ``expired``: received after the request's expiry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import LockgateError
from tasks.evidence import Check, GateResult
from tasks.policy import Policy, Transition

Refusal = Literal["unknown-approver", "separation-of-duties", "replayed", "duplicate", "expired"]
TRANSITION_WORDS = {"promote": "promotion to champion", "rollback": "rollback to the previous champion"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovalRules(_Model):
    """The policy's rules for one (environment, transition)."""

    policy: str
    environment: str
    transition: Transition
    required: bool
    approvers: tuple[str, ...] = ()
    min_approvals: int = 1
    separation_of_duties: bool = True
    expiry_seconds: float = 86400.0


def approval_rules(policy: Policy, environment: str, transition: Transition) -> ApprovalRules:
    """Rules for ``transition`` in ``environment``; a one-line error when the policy does not list the environment."""
    environments = policy.approval.environments
    if environment not in environments:
        raise LockgateError(
            f"environment {environment!r} (LOCKGATE_ENVIRONMENT) is not in policy '{policy.name}' "
            f"approval.environments ({', '.join(sorted(environments))}); add it or pick one of those"
        )
    env = environments[environment]
    return ApprovalRules(
        policy=policy.name, environment=environment, transition=transition, required=transition in env.transitions,
        approvers=policy.approval.approver_names(environment), min_approvals=env.min_approvals,
        separation_of_duties=env.separation_of_duties, expiry_seconds=env.expiry.total_seconds())


class ApprovalRequest(_Model):
    """One open request for a human decision; written as evidence and hashed into the ledger."""

    request_id: str = Field(description="Random per request; a response must carry it (see 'replayed').")
    flow_run_id: str | None
    model_name: str
    version: int
    rules: ApprovalRules
    requester: str = Field(description="Who runs the transition (settings.actor of the flow).")
    registrant: str = Field(description="Who registered the version (its lockgate.registered_by tag).")
    requested_at: datetime
    expires_at: datetime
    gates: list[str] = Field(default_factory=list, description="Every gate's summary line so far.")
    evidence: dict[str, str] = Field(default_factory=dict, description="sha256 of every gate result, by role.")

    def summary(self) -> str:
        r = self.rules
        return (f"{self.model_name} v{self.version}: {TRANSITION_WORDS[r.transition]} in {r.environment} needs "
                f"{r.min_approvals} approval(s) from {', '.join(r.approvers)} by {self.expires_at.isoformat()} "
                f"(policy '{r.policy}'); requested by {self.requester}, registered by {self.registrant}"
                + ("; separation of duties: neither may approve" if r.separation_of_duties else ""))


class ApprovalResponse(_Model):
    """What a reviewer sent (the fields of the Prefect RunInput form)."""

    decision: Literal["approve", "reject"]
    approver: str
    reason: str
    request_id: str

    def sha256(self) -> str:
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseVerdict(_Model):
    """The authorisation of one response: whether it counts, and why, naming the values."""

    outcome: Literal["granted", "rejected", "refused"]
    refusal: Refusal | None = None
    approver: str
    decision: Literal["approve", "reject"]
    reason: str
    input_sha256: str
    received_at: datetime

    @property
    def action(self) -> str:
        """The ledger action recording this verdict."""
        return f"approval.{self.outcome}"


def authorise_response(request: ApprovalRequest, previous: list[ResponseVerdict], response: ApprovalResponse,
                       now: datetime) -> ResponseVerdict:
    """Decide one response against the request's rules and the verdicts before it (checked in the order below)."""
    rules, who = request.rules, response.approver
    digest = response.sha256()

    def verdict(outcome, refusal: Refusal | None, why: str) -> ResponseVerdict:
        said = f"{who} {response.decision.removesuffix('e')}ed ({response.reason!r})"
        return ResponseVerdict(outcome=outcome, refusal=refusal, approver=who, decision=response.decision,
                               reason=f"{said}: {why}", input_sha256=digest, received_at=now)

    if response.request_id != request.request_id:
        return verdict("refused", "replayed", f"response is for request {response.request_id!r}, not this request "
                       f"{request.request_id!r} (an approval never carries over to another request)")
    if any(v.input_sha256 == digest for v in previous):
        return verdict("refused", "replayed", f"input sha256 {digest[:16]} was already consumed by this request")
    if now > request.expires_at:
        return verdict("refused", "expired", f"received {now.isoformat()} after the request expired at "
                       f"{request.expires_at.isoformat()} (expiry {timedelta(seconds=rules.expiry_seconds)})")
    if who not in rules.approvers:
        return verdict("refused", "unknown-approver", f"{who!r} is not an approver in {rules.environment} under "
                       f"policy '{rules.policy}' (approvers: {', '.join(rules.approvers)})")
    if response.decision == "reject":
        return verdict("rejected", None, f"authorised approver in {rules.environment} rejected the "
                       f"{TRANSITION_WORDS[rules.transition]}")
    if rules.separation_of_duties and who in (request.requester, request.registrant):
        role = "requested this transition" if who == request.requester else "registered this version"
        return verdict("refused", "separation-of-duties", f"{who} {role} (requester {request.requester}, registrant "
                       f"{request.registrant}); separation_of_duties=true forbids approving it")
    if any(v.outcome == "granted" and v.approver == who for v in previous):
        return verdict("refused", "duplicate", f"{who} already approved this request; distinct approvers count once "
                       f"(min_approvals {rules.min_approvals})")
    count = len(approvers_granted(previous)) + 1
    return verdict("granted", None, f"authorised approver in {rules.environment}; approval {count} of "
                   f"{rules.min_approvals}")


def approvers_granted(verdicts: list[ResponseVerdict]) -> list[str]:
    """Distinct approvers whose approval counted, in order."""
    return list(dict.fromkeys(v.approver for v in verdicts if v.outcome == "granted"))


class ApprovalResult(GateResult):
    approved_by: list[str] = Field(default_factory=list, description="Approvers whose approval counted (or the policy).")
    policy: str
    environment: str = "dev"
    transition: Transition = "promote"
    request_id: str | None = None
    responses: list[ResponseVerdict] = Field(default_factory=list, description="Every response, counted or refused.")


def approval_outcome(request: ApprovalRequest, verdicts: list[ResponseVerdict], *, expired: bool) -> ApprovalResult:
    """approved (enough distinct approvers), rejected (one authorised reject), expired, or pending (keep waiting)."""
    rules = request.rules
    granted = approvers_granted(verdicts)
    rejects = [v for v in verdicts if v.outcome == "rejected"]
    refused = [v for v in verdicts if v.outcome == "refused"]
    checks = [
        Check(name="distinct_approvals", value=len(granted), threshold=rules.min_approvals, comparison=">=",
              passed=len(granted) >= rules.min_approvals),
        Check(name="authorised_rejects", value=len(rejects), threshold=0, comparison="==", passed=not rejects),
        Check(name="refused_responses", value=len(refused), comparison="info", passed=True),
    ]
    if rejects:
        decision, passed = "rejected", False
        reasons = [f"rejected by {rejects[0].approver}: {rejects[0].reason}"]
    elif len(granted) >= rules.min_approvals:
        decision, passed = "approved", True
        reasons = [f"approved by {', '.join(granted)} ({len(granted)} of min_approvals {rules.min_approvals}) in "
                   f"{rules.environment} under policy '{rules.policy}'"]
    elif expired:
        decision, passed = "expired", False
        reasons = [f"request {request.request_id} expired at {request.expires_at.isoformat()} with {len(granted)} of "
                   f"{rules.min_approvals} approval(s) ({', '.join(granted) or 'none'}) and {len(refused)} refused "
                   "response(s)"]
    else:
        decision, passed = "pending", False
        reasons = [f"{len(granted)} of {rules.min_approvals} approval(s) so far; waiting until "
                   f"{request.expires_at.isoformat()}"]
    reasons += [f"refused: {v.reason}" for v in refused]
    return ApprovalResult(gate="approval", passed=passed, decision=decision, reasons=reasons, checks=checks,
                          approved_by=granted if passed else [], policy=rules.policy, environment=rules.environment,
                          transition=rules.transition, request_id=request.request_id, responses=verdicts)


def auto_approval(rules: ApprovalRules, *, requester: str) -> ApprovalResult:
    """The policy lets ``rules.transition`` through in this environment without a human; the reason says so."""
    check = Check(name="approval_required", value=rules.required, threshold=False, comparison="==", passed=True)
    return ApprovalResult(
        gate="approval", passed=True, decision="auto-approved",
        reasons=[f"auto-approved by policy '{rules.policy}' (environment {rules.environment}: "
                 f"{rules.transition} needs no human approval); requested by {requester}"],
        checks=[check], approved_by=[f"policy:{rules.policy}"], policy=rules.policy,
        environment=rules.environment, transition=rules.transition)
