"""The `rollback` flow: a rollback the policy lets only reviewers approve.

`lockgate rollback` runs this flow when the policy needs a human for ``rollback`` in
LOCKGATE_ENVIRONMENT (otherwise it rolls back directly, approved by the policy). The flow
pauses like the lifecycle does for a promotion; `lockgate pending` lists it and
`lockgate approve RUN` / `lockgate reject RUN` answer it. See tasks/governance/rollback.py.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from pipelines.prefect_clients import share_tls_context
from tasks import gates
from tasks.governance.rollback import RollbackOutcome, approval_role, governed_rollback
from tasks.settings import Settings
from tasks.stores import latest_evidence_dir, policy_for

share_tls_context()  # before any flow runs: one TLS context for Prefect's clients (pipelines/prefect_clients.py)

ROLLBACK_FLOW = "rollback"


@flow(name=ROLLBACK_FLOW, log_prints=True)
def rollback_flow(model_name: str, reason: str, to_version: int | None = None) -> RollbackOutcome:
    """Put the previous champion of ``model_name`` back (or ``to_version``) once reviewers approve."""
    settings = Settings()
    policy = policy_for(settings)
    run_id = str(flow_run.get_id())

    def ask(record, plan, request):
        return gates.decide_approval(settings, policy, record, [request],
                                     latest_evidence_dir(settings, record.name, record.version),
                                     transition="rollback", role=approval_role(run_id))

    outcome = governed_rollback(settings, policy, model_name, reason=reason, to_version=to_version,
                                flow_run_id=run_id, ask=ask)
    gates.publish_ledger_head(settings, model_name)
    gates.publish_table(f"rollback-{model_name}-{run_id}", [{"from": f"v{outcome.from_version}",
                        "to": f"v{outcome.to_version}", "status": outcome.status, "approval": outcome.approval.decision,
                        "reason": outcome.reasons[0][:300]}], outcome.summary_line())
    return outcome
