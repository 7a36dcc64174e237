"""The audit report's incident section: per incident, when its data came to be, when it was opened (time to detect),
when and by whom it was resolved (time to resolve), and its evidence re-hashed with links.

Kept apart from tasks/governance/audit_report.py, which holds one field of :class:`IncidentReport` values and calls
:func:`incident_reports`; tasks/governance/audit_html.py calls :func:`incidents_html`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from html import escape

from pydantic import BaseModel, ConfigDict, Field

from tasks.governance.audit_evidence import EvidenceCheck, EvidenceLocator
from tasks.governance.incidents import incidents_from, opened_document, seconds_between


class IncidentReport(BaseModel):
    """One incident as the audit report shows it."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str
    kind: str
    model_name: str
    version: int | None
    status: str
    summary: str
    occurrences: int
    detected_from: str | None = Field(None, description="When the triggering data or evidence came to be.")
    detected_from_what: str | None = None
    opened_at: str
    time_to_detect_seconds: float | None = Field(None, description="opened_at - detected_from.")
    resolved_at: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    resolution_signed: bool = False
    time_to_resolve_seconds: float | None = Field(None, description="resolved_at - opened_at; None while open.")
    open_for_seconds: float | None = Field(None, description="Report time - opened_at, while still open.")
    notifications: list[str] = []
    evidence: list[EvidenceCheck] = Field(description="The incident's document and every file its rows name.")


def _utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def incident_reports(locator: EvidenceLocator, entries: list, *, since: datetime | None, until: datetime | None,
                     now: str) -> list[IncidentReport]:
    """Incidents that were open at some time in [since, until], from every ledger row (``entries``, oldest first)."""
    reports = []
    for i in incidents_from(entries):
        if (until is not None and _utc(i.opened_at) > until) or (
                since is not None and i.resolved_at is not None and _utc(i.resolved_at) < since):
            continue
        rows = [e for e in entries if e.action in ("incident.opened", "incident.attached")
                and e.reason.startswith(f"incident {i.incident_id} ")]
        checks = []
        for n, row in enumerate(rows, start=1):
            for c in locator.check_entry(row.model_name, row.version, row.evidence, row.reason, row.evidence_files):
                checks.append(c if n == 1 else c.model_copy(update={"role": f"{c.role}#{n}"}))
        doc = opened_document(i)
        data_at = doc.trigger.data_at if doc else None
        reports.append(IncidentReport(
            incident_id=i.incident_id, kind=i.kind, model_name=i.model_name, version=i.version, status=i.status,
            summary=i.summary, occurrences=i.occurrences, detected_from=data_at,
            detected_from_what=doc.trigger.data_what if doc else None, opened_at=i.opened_at,
            time_to_detect_seconds=seconds_between(data_at, i.opened_at), resolved_at=i.resolved_at,
            resolved_by=i.resolved_by, resolution=i.resolution, resolution_signed=i.resolution_signed_by_key is not None,
            time_to_resolve_seconds=seconds_between(i.opened_at, i.resolved_at),
            open_for_seconds=None if i.resolved_at else seconds_between(i.opened_at, now),
            notifications=i.notifications, evidence=checks))
    return reports


def duration(seconds: float | None) -> str:
    """'42 s', '3.5 min', '2.1 h', '1.2 d'; '-' for none."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def incidents_html(incidents: list[IncidentReport], links: Callable[[list[EvidenceCheck]], str]) -> str:
    """The section's table; ``links`` renders evidence checks (audit_html.evidence_links)."""
    if not incidents:
        return '<p class="muted">no incidents in range</p>'
    head = "".join(f"<th>{h}</th>" for h in (
        "incident", "kind", "model version", "summary", "data / evidence at", "opened", "time to detect", "resolved",
        "time to resolve", "resolution", "notified", "evidence"))
    rows = []
    for i in incidents:
        status = (f'<span class="ok">{escape(i.resolved_at[:19])}</span> by {escape(i.resolved_by or "-")}'
                  + (" (signed)" if i.resolution_signed else "") if i.resolved_at
                  else f'<span class="bad">open</span> ({duration(i.open_for_seconds)})')
        cells = [f"<code>{escape(i.incident_id)}</code>", escape(i.kind),
                 escape(f"{i.model_name} v{i.version}" if i.version is not None else i.model_name),
                 escape(i.summary) + (f" <b>(x{i.occurrences})</b>" if i.occurrences > 1 else ""),
                 f'<span title="{escape(i.detected_from_what or "")}">{escape((i.detected_from or "-")[:19])}</span>',
                 escape(i.opened_at[:19]), duration(i.time_to_detect_seconds), status,
                 duration(i.time_to_resolve_seconds), escape(i.resolution or "-"),
                 "<br>".join(escape(n) for n in i.notifications) or "-", links(i.evidence)]
        rows.append(f'<tr id="incident-{escape(i.incident_id)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
