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
- ``unsigned`` / ``bad-signature``: the environment's policy says ``identity: signed`` and
  the response carries no signature, or one that none of the approver's keys
  (``approval.public_keys``) made over :func:`approval_payload` of this request and response.
  What is signed names the request (id, flow run, expiry), the model version, its
  artifact sha256, a digest of every gate's evidence, the transition, environment and
  policy, and the response (decision, approver, reason): a signature never carries over
  to another request, run, version, artifact or decision.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import LockgateError
from tasks.evidence import Check, GateResult
from tasks.policy import Policy, Transition
from tasks.signatures import verified_key

Refusal = Literal["unknown-approver", "separation-of-duties", "replayed", "duplicate", "expired", "unsigned",
                  "bad-signature"]
SIGNED_DOMAIN = "lockgate-approval-v1"
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
    identity: Literal["asserted", "signed"] = "asserted"
    public_keys: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="Approver -> public keys (signed).")


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
        separation_of_duties=env.separation_of_duties, expiry_seconds=env.expiry.total_seconds(),
        identity=env.identity, public_keys={u: policy.approval.public_keys[u] for u in policy.approval.approver_names(environment)
                                     if u in policy.approval.public_keys})


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
    artifact_sha256: str | None = Field(None, description="sha256 of the exported artifact the transition deploys.")

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
    signature: str = Field("", description="Base64 Ed25519 signature of approval_payload (identity: signed).")

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
    signed_payload: str | None = Field(None, description="What the signature covers (identity: signed).")
    signature: str | None = None
    key: str | None = Field(None, description="Fingerprint of the approver's key that made the signature.")

    @property
    def action(self) -> str:
        """The ledger action recording this verdict."""
        return f"approval.{self.outcome}"


def authorise_response(request: ApprovalRequest, previous: list[ResponseVerdict], response: ApprovalResponse,
                       now: datetime) -> ResponseVerdict:
    """Decide one response against the request's rules and the verdicts before it (checked in the order below)."""
    rules, who = request.rules, response.approver
    digest = response.sha256()
    signed: dict[str, Any] = {}

    def verdict(outcome, refusal: Refusal | None, why: str) -> ResponseVerdict:
        said = f"{who} {response.decision.removesuffix('e')}ed ({response.reason!r})"
        return ResponseVerdict(outcome=outcome, refusal=refusal, approver=who, decision=response.decision,
                               reason=f"{said}: {why}", input_sha256=digest, received_at=now, **signed)

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
    if rules.identity == "signed":
        if not response.signature:
            return verdict("refused", "unsigned", f"policy '{rules.policy}' requires signed approvals in "
                           f"{rules.environment} (identity: signed); sign with `lockgate approve RUN --key "
                           "~/.ssh/id_ed25519` (a name alone proves nothing)")
        payload = approval_payload(request, decision=response.decision, approver=who, reason=response.reason)
        key = verified_key(rules.public_keys.get(who, ()), payload, response.signature)
        if key is None:
            return verdict("refused", "bad-signature", f"no key approval.public_keys lists for {who} signed this response to "
                           f"request {request.request_id} (v{request.version}, artifact "
                           f"{str(request.artifact_sha256)[:16]})")
        signed = dict(signed_payload=payload, signature=response.signature, key=key)
    proven = f", signed (key {signed['key']})" if signed else ""
    if response.decision == "reject":
        return verdict("rejected", None, f"authorised approver in {rules.environment}{proven} rejected the "
                       f"{TRANSITION_WORDS[rules.transition]}")
    if rules.separation_of_duties and who in (request.requester, request.registrant):
        role = "requested this transition" if who == request.requester else "registered this version"
        return verdict("refused", "separation-of-duties", f"{who} {role} (requester {request.requester}, registrant "
                       f"{request.registrant}); separation_of_duties=true forbids approving it")
    if any(v.outcome == "granted" and v.approver == who for v in previous):
        return verdict("refused", "duplicate", f"{who} already approved this request; distinct approvers count once "
                       f"(min_approvals {rules.min_approvals})")
    count = len(approvers_granted(previous)) + 1
    return verdict("granted", None, f"authorised approver in {rules.environment}{proven}; approval {count} of "
                   f"{rules.min_approvals}")


def approvers_granted(verdicts: list[ResponseVerdict]) -> list[str]:
    """Distinct approvers whose approval counted, in order."""
    return list(dict.fromkeys(v.approver for v in verdicts if v.outcome == "granted"))


def evidence_digest(evidence: dict[str, str]) -> str:
    """sha256 of the canonical JSON of a role -> sha256 evidence map."""
    return hashlib.sha256(json.dumps(evidence, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def approval_payload(request: Any, *, decision: str, approver: str, reason: str) -> str:
    """The canonical text an approver signs for ``request`` (an ApprovalRequest) and their response."""
    rules = request.rules
    body = {
        "domain": SIGNED_DOMAIN, "request_id": request.request_id, "flow_run_id": request.flow_run_id,
        "model_name": request.model_name, "version": request.version, "artifact_sha256": request.artifact_sha256,
        "evidence_digest": evidence_digest(request.evidence), "transition": rules.transition,
        "environment": rules.environment, "policy": rules.policy, "expires_at": request.expires_at.isoformat(),
        "decision": decision, "approver": approver, "reason": reason,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))



class ProofCheck(_Model):
    """``lockgate audit verify``'s re-check of every approval the ledger recorded, from the ledger and the policy."""

    signed: int = Field(description="Signed approvals and rejections whose signature verifies now.")
    asserted: int = Field(description="Approvals and rejections with no signature (identity: asserted).")
    problems: list[str] = Field(default_factory=list, description="One line per row whose proof does not hold.")


def proof_check(entries: list, policy: Policy) -> ProofCheck:
    """Re-verify each signed approval row offline: its signature against the keys the policy lists for the row's
    actor, and what was signed against the row (approver, decision, model, version)."""
    signed, asserted, problems = 0, 0, []
    for e in entries:
        if e.action not in ("approval.granted", "approval.rejected"):
            continue
        if e.proof is None:
            asserted += 1
            continue
        try:
            payload = json.loads(e.proof["signed_payload"])
            claims = (payload["domain"], payload["approver"], payload["decision"], payload["model_name"],
                      payload["version"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"row {e.seq}: its proof is not a signed lockgate approval")
            continue
        expected = (SIGNED_DOMAIN, e.actor, "approve" if e.action == "approval.granted" else "reject", e.model_name,
                    e.version)
        key = verified_key(policy.approval.public_keys.get(e.actor, ()), e.proof["signed_payload"], e.proof.get("signature", ""))
        if claims != expected:
            problems.append(f"row {e.seq}: what was signed ({', '.join(map(str, claims[1:]))}) is not what the row "
                            f"records ({', '.join(map(str, expected[1:]))})")
        elif key is None:
            problems.append(f"row {e.seq}: the signature of {e.actor}'s {expected[2]} does not verify against the keys "
                            f"policy '{policy.name}' lists for {e.actor}")
        else:
            signed += 1
    return ProofCheck(signed=signed, asserted=asserted, problems=problems)


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
