"""Approval gate: does the policy let this promotion go ahead without a human?

Human approvals (Prefect pause with typed input, authorised against the policy)
deepen this gate later; until then a policy that requires approval stops the
lifecycle with decision ``pending`` and nothing is promoted.
"""

from __future__ import annotations

from tasks.evidence import Check, GateResult
from tasks.policy import Policy


class ApprovalResult(GateResult):
    approved_by: str | None
    policy: str


def approval_result(policy: Policy, *, requester: str) -> ApprovalResult:
    required = policy.approval.required
    check = Check(name="approval_required", value=required, threshold=False, comparison="==", passed=not required)
    if not required:
        return ApprovalResult(
            gate="approval",
            passed=True,
            decision="auto-approved",
            reasons=[f"auto-approved by policy '{policy.name}' (approval.required=false); requested by {requester}"],
            checks=[check],
            approved_by=f"policy:{policy.name}",
            policy=policy.name,
        )
    return ApprovalResult(
        gate="approval",
        passed=False,
        decision="pending",
        reasons=[
            f"policy '{policy.name}' requires human approval (approvers: {', '.join(policy.approval.approvers) or 'none named'}); "
            "this lockgate version has no approval step yet, so the candidate is not promoted"
        ],
        checks=[check],
        approved_by=None,
        policy=policy.name,
    )
