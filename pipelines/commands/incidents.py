"""`lockgate incidents [--all] [--model NAME]` and `lockgate incidents resolve ID --reason TEXT [--as USER] [--key PATH]`."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from pipelines.commands.console import console
from tasks.settings import Settings


def incidents_dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "incidents_command", None) == "resolve":
        return resolve_command(settings, args.incident_id, reason=args.reason, resolver=args.resolver, key=args.key)
    return list_command(settings, include_resolved=args.all, model=args.model)


def incident_list(settings: Settings, *, include_resolved: bool = False, model: str | None = None) -> list:
    """The incidents of the ledger (open ones unless ``include_resolved``), of one model or all, oldest first."""
    from tasks.governance.incidents import incidents_from
    from tasks.stores import ledger_for

    found = incidents_from(ledger_for(settings).entries(model_name=model))
    return [i for i in found if include_resolved or i.status == "open"]


def list_command(settings: Settings, *, include_resolved: bool, model: str | None) -> int:
    from pipelines.exit_codes import EXIT_OK

    found = incident_list(settings, include_resolved=include_resolved, model=model)
    what = "incidents" if include_resolved else "open incidents"
    if not found:
        console.print(f"no {what}" + (f" of {escape(model)}" if model else ""), highlight=False)
        return EXIT_OK
    table = Table(title=f"{what} ({len(found)})")
    table.add_column("id", no_wrap=True, min_width=22)  # copied into `lockgate incidents resolve ID`: never folded
    for col in ("kind", "model", "opened (UTC)", "status", "summary"):
        table.add_column(col, overflow="fold")
    for i in found:
        state = "open" if i.status == "open" else f"resolved {i.resolved_at[:19].replace('T', ' ')} by {i.resolved_by}"
        repeats = f" (x{i.occurrences})" if i.occurrences > 1 else ""
        table.add_row(i.incident_id, i.kind, escape(f"{i.model_name} v{i.version}"),
                      i.opened_at[:19].replace("T", " "), escape(state), escape(i.summary[:300] + repeats))
    console.print(table)
    for i in found:
        files = [f"{role}: {path}" for role, path in {"incident": i.document, **i.evidence}.items() if path]
        console.print(f"{i.incident_id} evidence: {escape('; '.join(files[:8]))}"
                      + (f" (+{len(files) - 8} more)" if len(files) > 8 else ""), highlight=False, soft_wrap=True)
    if any(i.status == "open" for i in found):
        console.print("close one: `lockgate incidents resolve ID --reason TEXT`", highlight=False)
    return EXIT_OK


def resolve(settings: Settings, incident_id: str, *, reason: str, resolver: str | None = None,
            key: str | None = None):
    """Resolve an incident as ``resolver`` (default LOCKGATE_ACTOR / the login name), then notify the webhook and,
    where a Prefect API is set, emit ``lockgate.incident.resolved``. Returns (Incident, notification line)."""
    from tasks.gates import emit_incident_event
    from tasks.governance.incidents import announce, resolve_incident
    from tasks.stores import ledger_for, policy_for

    ledger = ledger_for(settings)
    incident = resolve_incident(ledger, policy_for(settings), environment=settings.environment,
                                incident_id=incident_id, reason=reason, resolver=resolver or settings.actor,
                                key_file=key)
    url = settings.incident_webhook_url.get_secret_value() if settings.incident_webhook_url else None
    line = announce(ledger, incident, "resolved", actor=incident.resolved_by or settings.actor, webhook_url=url,
                    timeout=settings.incident_webhook_timeout_seconds, retries=settings.incident_webhook_retries,
                    emit=emit_incident_event)
    return incident, line


def resolve_command(settings: Settings, incident_id: str, *, reason: str, resolver: str | None,
                    key: str | None) -> int:
    from pipelines.exit_codes import EXIT_OK
    from tasks.governance.incidents import seconds_between

    incident, line = resolve(settings, incident_id, reason=reason, resolver=resolver, key=key)
    took = seconds_between(incident.opened_at, incident.resolved_at)
    signed = f", signed (key {incident.resolution_signed_by_key})" if incident.resolution_signed_by_key else ""
    console.print(f"incident {incident.incident_id} resolved by {escape(incident.resolved_by or '')}{signed} "
                  f"(ledger row {incident.resolved_seq}, {took:.0f} s after it was opened): "
                  f"{escape(incident.resolution or '')}", highlight=False, soft_wrap=True)
    console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    return EXIT_OK
