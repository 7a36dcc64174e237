"""Approvals through Prefect: the flow pauses with a typed input; reviewers resume it from anywhere.

In the flow, :func:`wait_for_decision` loops ``pause_flow_run(wait_for_input=ApprovalInput, timeout=<time left>)``
until the request is approved, rejected or expired, authorising each response with
:func:`tasks.governance.approval.authorise_response`. Outside the flow (the CLI, tests),
:func:`pending_approvals` lists the paused lifecycle runs with their request from the
ledger, and :func:`respond` resumes one with an approve or reject. The Prefect UI shows
the same input as a form (request id prefilled, the evidence summary as its
description); whichever path resumed the run, the flow authorises the response the
same way.

A blocking pause keeps the flow's process alive while it waits (``suspend_flow_run``
would free it but needs a deployment and re-runs the flow from the top).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Literal
from uuid import UUID

from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field

from tasks.governance.approval import (
    ApprovalRequest,
    ApprovalResponse,
    ApprovalResult,
    ResponseVerdict,
    approval_outcome,
    authorise_response,
)
from tasks.errors import LockgateError
from tasks.settings import Settings

LIFECYCLE_FLOW = "lifecycle"
PAUSING_FLOWS = [LIFECYCLE_FLOW, "rollback"]  # the flows that pause for approval


class ApprovalInput(RunInput):
    """The typed input a paused run waits for; Prefect's server validates it before resuming the run."""

    decision: Literal["approve", "reject"] = Field(description="approve or reject the transition")
    approver: str = Field(min_length=1, description="your user name; checked against the policy's approvers")
    reason: str = Field(min_length=1, description="why; recorded in the ledger")
    request_id: str = Field(min_length=1, description="the request this response is for (prefilled; do not change)")
    signature: str = Field("", description="where the policy says identity: signed, the Ed25519 signature "
                           "`lockgate approve --key` makes (the form cannot sign: use the CLI)")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def request_markdown(request: ApprovalRequest) -> str:
    """The form's description in the Prefect UI: what is asked, by whom, and the evidence behind it."""
    lines = [f"### {request.summary()}", "", f"Request id: `{request.request_id}`", "", "| gate | decision |",
             "|---|---|"]
    lines += [f"| {g.split(' ', 1)[0]} | {g.split(' ', 1)[-1]} |" for g in request.gates]
    lines += ["", "| evidence | sha256 |", "|---|---|"]
    lines += [f"| {role} | `{sha[:16]}` |" for role, sha in sorted(request.evidence.items())]
    return "\n".join(lines)


def wait_for_decision(settings: Settings, request: ApprovalRequest,
                      record: Callable[[ResponseVerdict], None]) -> ApprovalResult:
    """Pause the current flow run until the request is approved, rejected or expired; ``record`` each verdict.

    Must run in a flow (not a task). On expiry the pause raises FlowPauseTimeout and Prefect's server would fail
    the run at its next transition, so the run forces itself back to Running to record the outcome."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    form = ApprovalInput.with_initial_data(description=request_markdown(request), request_id=request.request_id)
    verdicts: list[ResponseVerdict] = []
    while True:
        remaining = (request.expires_at - utc_now()).total_seconds()
        if remaining <= 0:
            return approval_outcome(request, verdicts, expired=True)
        _announce(request, verdicts)
        try:
            got = pause_flow_run(wait_for_input=form, timeout=math.ceil(remaining),
                                 poll_interval=settings.approval_poll_seconds)
        except FlowPauseTimeout:
            _force_running(request.flow_run_id)
            return approval_outcome(request, verdicts, expired=True)
        response = ApprovalResponse(**got.model_dump(include=set(ApprovalResponse.model_fields)))
        verdict = authorise_response(request, verdicts, response, utc_now())
        record(verdict)
        verdicts.append(verdict)
        outcome = approval_outcome(request, verdicts, expired=False)
        if outcome.decision != "pending":
            return outcome


def _announce(request: ApprovalRequest, verdicts: list[ResponseVerdict]) -> None:
    """To the run's log (the UI) and to stderr (the terminal of `lockgate run lifecycle`, where Prefect's console
    logs are off)."""
    import sys

    from prefect import get_run_logger

    run = request.flow_run_id
    if verdicts:
        line = f"{approval_outcome(request, verdicts, expired=False).reasons[0]} (flow run {run})"
    else:
        line = (f"awaiting approval: {request.summary()}. Reviewers: `lockgate pending`, then `lockgate approve {run} "
                "--reason TEXT` or `lockgate reject ...`, or the run's Resume form in the Prefect UI")
    get_run_logger().info(line)
    sys.stderr.write(f"lockgate: {line}\n")


def _force_running(flow_run_id: str | None) -> None:
    """Back to Running after an expired pause, unless someone cancelled the run meanwhile."""
    from prefect import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
        if state is not None and (state.is_paused() or state.is_failed()):  # failed: a late resume hit the timeout
            client.set_flow_run_state(UUID(flow_run_id), Running(), force=True)


class PendingApproval(BaseModel):
    """A lifecycle run paused for approval, as `lockgate pending` lists it."""

    model_config = ConfigDict(extra="forbid")

    flow_run_id: str
    flow_run_name: str
    model_name: str
    version: int | None
    transition: str
    environment: str
    requested_by: str
    requested_at: str
    expires_at: str | None
    approvals: int
    min_approvals: int | None
    gates: str


def pending_approvals(settings: Settings) -> tuple[list[PendingApproval], int]:
    """Paused lifecycle and rollback runs with an approval request in this ledger, and how many paused runs have none here."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=PAUSING_FLOWS)),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
    requests, granted = _ledger_requests(settings)
    pending, unmatched = [], 0
    for run in runs:
        row = requests.get(str(run.id))
        if row is None:
            unmatched += 1
            continue
        request = load_request(settings, row)
        timeout = run.state.state_details.pause_timeout if run.state else None
        pending.append(PendingApproval(
            flow_run_id=str(run.id), flow_run_name=run.name, model_name=row.model_name, version=row.version,
            transition=request.rules.transition if request else "-",
            environment=request.rules.environment if request else "-", requested_by=row.actor,
            requested_at=row.recorded_at, expires_at=timeout.isoformat() if timeout else None,
            approvals=len(granted.get((str(run.id), row.evidence.get("approval-request")), set())),
            min_approvals=request.rules.min_approvals if request else None,
            gates=", ".join(request.gates) if request else row.reason))
    return sorted(pending, key=lambda p: p.requested_at), unmatched


def _ledger_requests(settings: Settings):
    from tasks.stores import ledger_for

    requests, granted = {}, {}
    for e in ledger_for(settings).entries():
        if e.action == "approval.requested" and e.flow_run_id:
            requests[e.flow_run_id] = e  # the latest request of a run wins
        elif e.action == "approval.granted" and e.flow_run_id:
            granted.setdefault((e.flow_run_id, e.evidence.get("approval-request")), set()).add(e.actor)
    return requests, granted


def request_path(settings: Settings, model_name: str, version: int, flow_run_id: str):
    from tasks.stores import version_evidence_dir

    return version_evidence_dir(settings, model_name, version) / "approvals" / flow_run_id / "request.json"


def load_request(settings: Settings, row) -> ApprovalRequest | None:
    """The request document a ledger row points to, if it is here and its sha256 matches the row."""
    from tasks.evidence import sha256_file

    path = request_path(settings, row.model_name, row.version, row.flow_run_id)
    if not path.is_file() or sha256_file(path) != row.evidence.get("approval-request"):
        return None
    return ApprovalRequest.model_validate_json(path.read_text())


def checked_run_id(run_id: str, reason: str) -> UUID:
    """The run id as a UUID, and a non-empty reason; one-line errors otherwise."""
    if not reason.strip():
        raise LockgateError("--reason must not be empty: it is recorded in the ledger")
    try:
        return UUID(run_id)
    except ValueError:
        raise LockgateError(f"{run_id!r} is not a flow run id (see `lockgate pending`)") from None


def respond(settings: Settings, run_id: str, *, decision: Literal["approve", "reject"], reason: str,
            approver: str | None = None, request_id: str | None = None,
            key_file: str | None = None) -> ApprovalResponse:
    """Resume paused run ``run_id`` with a response (approver defaults to settings.actor; the request id to the one
    the run is waiting for), signed with ``key_file`` when given. One-line LockgateError when the run is not
    awaiting approval, or when signing and the run's request document is not here or does not match the ledger."""
    flow_run_id = checked_run_id(run_id, reason)
    from prefect import get_client
    from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            raise LockgateError(f"flow run {run_id} not found on the Prefect API (see `lockgate pending`)") from None
        state = run.state
        if state is None or not state.is_paused():
            raise LockgateError(f"flow run {run_id} is not awaiting approval (state {state.name if state else 'none'})")
        timeout = state.state_details.pause_timeout
        if timeout is not None and timeout < utc_now():
            raise LockgateError(f"the approval request of flow run {run_id} expired at {timeout.isoformat()}")
        if request_id is None:
            request_id = _awaited_request_id(client, flow_run_id, state)
    who = approver or settings.actor
    signature = "" if key_file is None else signed_response(settings, str(flow_run_id), request_id, decision=decision,
                                                            approver=who, reason=reason, key_file=key_file)
    response = ApprovalResponse(decision=decision, approver=who, reason=reason, request_id=request_id,
                                signature=signature)
    try:
        resume_flow_run(flow_run_id, run_input=response.model_dump())
    except NotPausedError:
        raise LockgateError(f"flow run {run_id} is not awaiting approval any more (resumed or finished meanwhile)") from None
    except FlowPauseTimeout:
        raise LockgateError(f"the approval request of flow run {run_id} expired before the response arrived") from None
    except RuntimeError as e:  # the server rejected the input (its types) or the transition
        raise LockgateError(f"Prefect refused the response to flow run {run_id}: {' '.join(str(e).split())}") from None
    return response


def signed_response(settings: Settings, run_id: str, request_id: str, *, decision: str, approver: str, reason: str,
                    key_file: str) -> str:
    """The signature of this response over the run's request document (found through its ledger row and checked
    against the sha256 there), made with ``key_file``."""
    from tasks.governance.approval import approval_payload
    from tasks.signatures import sign

    requests, _ = _ledger_requests(settings)
    row = requests.get(run_id)
    request = load_request(settings, row) if row is not None else None
    if request is None or request.request_id != request_id:
        raise LockgateError(f"the approval request of flow run {run_id} is not in this LOCKGATE_HOME's ledger (or its "
                            "document does not match the ledger): nothing to sign")
    return sign(key_file, approval_payload(request, decision=decision, approver=approver, reason=reason))


def _awaited_request_id(client, flow_run_id: UUID, state) -> str:
    """The request id prefilled in the paused run's input form (its schema's default), as the UI shows it."""
    import json

    from prefect.input.run_input import keyset_from_paused_state

    try:
        schema = json.loads(client.read_flow_run_input(flow_run_id, keyset_from_paused_state(state)["schema"]))
        return schema["properties"]["request_id"]["default"]
    except Exception:  # not a lockgate approval pause
        raise LockgateError(f"flow run {flow_run_id} is paused but not for a lockgate approval") from None
