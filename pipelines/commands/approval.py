"""`lockgate server start|stop|status`, `lockgate pending`, `lockgate approve` and `lockgate reject`."""

from __future__ import annotations

import argparse
import os
import time

from rich.markup import escape
from rich.table import Table

from pipelines.commands.console import console
from tasks.errors import LockgateError
from tasks.settings import Settings


def server_command(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines import prefect_server

    if args.server_command == "start":
        with console.status(f"starting a Prefect server on {prefect_server.HOST}:{args.port} (about 15-30 s)"):
            state, started = prefect_server.start_server(settings, port=args.port)
        verb = "started" if started else "already running"
        console.print(f"Prefect server {verb}: {state.url} (pid {state.pid}); UI {state.url.removesuffix('/api')}",
                      highlight=False)
        console.print(f"lockgate commands with LOCKGATE_HOME={settings.home_dir} use it; for plain `prefect` "
                      f"commands: export PREFECT_API_URL={state.url}", highlight=False, soft_wrap=True)
        return 0
    if args.server_command == "stop":
        state = prefect_server.stop_server(settings)
        console.print(f"stopped the Prefect server at {state.url} (pid {state.pid})" if state
                      else "no lockgate Prefect server recorded for this LOCKGATE_HOME", highlight=False)
        return 0
    console.print(prefect_server.describe(settings), highlight=False, soft_wrap=True)
    from pipelines.temporary_api import reap_orphans, running_leases

    for lease in reap_orphans(settings):
        what = "stopped" if lease.get("stopped") else "already gone"
        console.print(f"orphaned temporary API {lease.get('url')} (pid {lease.get('pid')}, its command pid "
                      f"{lease.get('owner')} is gone): {what}", highlight=False, soft_wrap=True)
    for lease in running_leases(settings):
        console.print(f"temporary API {lease.get('url')} (pid {lease.get('pid')}) of running command pid "
                      f"{lease.get('owner')}", highlight=False, soft_wrap=True)
    return 0


def require_reachable_api(settings: Settings, transition: str = "promote") -> None:
    """When the policy needs a human for ``transition`` here, refuse to start on Prefect's in-process API (nobody
    could reach the paused run)."""
    from tasks.governance.approval import approval_rules
    from tasks.stores import policy_for

    rules = approval_rules(policy_for(settings), settings.environment, transition)
    url = os.environ.get("PREFECT_API_URL")
    if rules.required and (not url or url == os.environ.get("LOCKGATE_TEMPORARY_API")):
        raise LockgateError(
            f"policy '{rules.policy}' needs human approval for {transition} in {rules.environment}, but no Prefect "
            "server is running for reviewers to reach the paused run; run `lockgate server start` (or set "
            "PREFECT_API_URL) first")


def _require_server(settings: Settings) -> None:
    from pipelines.temporary_api import ensure_api

    if not os.environ.get("PREFECT_API_URL"):  # Prefect's temporary API would start empty and answer nothing
        raise LockgateError("no Prefect server for this LOCKGATE_HOME, so no run can be awaiting approval; runs "
                            "pause on the server from `lockgate server start` (or PREFECT_API_URL)")
    ensure_api(settings)  # answering /health, or one line saying so


def pending_command(settings: Settings) -> int:
    _require_server(settings)  # before Prefect's import (~2-4 s): without a server there is nothing to ask
    from tasks.governance.approval_prefect import pending_approvals

    pending, unmatched = pending_approvals(settings)
    table = Table(title=f"awaiting approval ({len(pending)}, server {os.environ['PREFECT_API_URL']})")
    table.add_column("run id", no_wrap=True, min_width=36)  # copied into `lockgate approve RUN`: never folded
    for col in ("model", "transition", "requested by", "requested at (UTC)", "expires (UTC)", "approvals"):
        table.add_column(col, overflow="fold")
    for p in pending:
        table.add_row(p.flow_run_id, escape(f"{p.model_name} v{p.version}"), f"{p.transition} in {p.environment}",
                      escape(p.requested_by), _minute(p.requested_at), _minute(p.expires_at),
                      f"{p.approvals}/{p.min_approvals or '?'}")
    if pending:
        console.print(table)
    else:
        console.print("no runs awaiting approval", highlight=False)
    for p in pending:
        console.print(f"{p.flow_run_id}: gates: {escape(p.gates)}", highlight=False, soft_wrap=True)
    if unmatched:
        console.print(f"{unmatched} other paused lifecycle run(s) have no approval request in this ledger "
                      f"({settings.ledger_uri})", highlight=False, soft_wrap=True)
    if pending:
        console.print("approve: `lockgate approve RUN --reason TEXT`; reject: `lockgate reject RUN --reason TEXT`; "
                      "or in the Prefect UI (the run's Resume form)", highlight=False, soft_wrap=True)
    return 0


def _minute(timestamp: str | None) -> str:
    return timestamp[:16].replace("T", " ") if timestamp else "-"


def respond_command(settings: Settings, args: argparse.Namespace, decision: str) -> int:
    from pipelines.exit_codes import EXIT_NOT_PROMOTED
    from tasks.governance.approval_prefect import checked_run_id, respond

    checked_run_id(args.run, args.reason)  # bad input is its own error, before the server question
    _require_server(settings)
    response = respond(settings, args.run, decision=decision, reason=args.reason, approver=args.approver,
                       key_file=getattr(args, "key", None))
    signed = " (signed)" if response.signature else ""
    console.print(f"{decision} from {escape(response.approver)}{signed} delivered to flow run {args.run}; the run "
                  "authorises it against the policy", highlight=False, soft_wrap=True)
    row = _verdict_row(settings, args.run, response.sha256(), wait=args.wait)
    if row is None:
        console.print(f"no verdict recorded within {args.wait:.0f} s; see `lockgate status` or `lockgate pending`",
                      highlight=False)
        return 0
    colour = "red" if row.action == "approval.refused" else "green"
    console.print(f"[{colour}]{row.action}[/]: {escape(row.reason)}", highlight=False, soft_wrap=True)
    return EXIT_NOT_PROMOTED if row.action == "approval.refused" else 0


def _verdict_row(settings: Settings, run_id: str, input_sha: str, *, wait: float):
    """The ledger row the paused run wrote for this input, polling up to ``wait`` seconds."""
    from tasks.stores import ledger_for

    deadline = time.monotonic() + wait
    while True:
        rows = [e for e in ledger_for(settings).entries(limit=200)
                if e.flow_run_id == run_id and e.evidence.get("approval-input") == input_sha]
        if rows or time.monotonic() >= deadline:
            return rows[-1] if rows else None
        time.sleep(0.5)
