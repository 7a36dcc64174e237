from tasks.approval import approval_result
from tasks.policy import ApprovalPolicy, Policy


def test_auto_approved_when_policy_does_not_require_approval():
    result = approval_result(Policy(name="p"), requester="bob")
    assert result.passed and result.decision == "auto-approved" and result.approved_by == "policy:p"
    assert "auto-approved by policy 'p'" in result.reasons[0]


def test_pending_when_policy_requires_approval():
    policy = Policy(name="prod", approval=ApprovalPolicy(required=True, approvers=("carol",)))
    result = approval_result(policy, requester="bob")
    assert not result.passed and result.decision == "pending" and result.approved_by is None
    assert "carol" in result.reasons[0]
