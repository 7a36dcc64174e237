"""Incident response: what went wrong in operation, recorded, announced, and closed by a person with a reason.

A monitoring alert or block, an automatic rollback and a rejected promotion each open an incident
(tasks/gates.py builds the :class:`IncidentTrigger`). The ledger is the record of truth, as for monitoring:

- ``incident.opened``: the incident's id, kind and dedupe key in the reason, its document
  (``evidence/<model>/incidents/<id>/opened.json``: the trigger's summary, reasons, the measured values and
  thresholds, the evidence files, when the triggering data came to be) and the trigger's evidence files;
- ``incident.attached``: the same condition again (same model, version, kind and condition, e.g. a drift breach
  on another partition) while the incident is open: recorded on it, with its own document, not a new incident;
- ``incident.notified``: what the webhook and the Prefect event did (delivered or not, and why; URL redacted);
- ``incident.resolved``: who closed it and why, signed where the environment's approvals are
  (``identity: signed``); the row keeps the proof.

:func:`incidents_from` folds those rows into :class:`Incident` values, the one view every reader shares
(`lockgate incidents`, the audit report, the demo's summary).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import LockgateError
from tasks.evidence import Check, EvidenceFile, write_json
from tasks.ledger.entry import LedgerEntry

Kind = Literal["monitoring-alert", "scoring-block", "rollback", "promotion-rejected"]
OPENED, ATTACHED, NOTIFIED, RESOLVED = "incident.opened", "incident.attached", "incident.notified", "incident.resolved"
EVENT_PREFIX = "lockgate.incident."  # lockgate.incident.opened / lockgate.incident.resolved
RESOLUTION_DOMAIN = "lockgate-incident-resolution-v1"
ID_FORMAT = re.compile(r"^INC-\d{8}-[0-9a-f]{6}$")
_ID = re.compile(r"^incident (INC-\d{8}-[0-9a-f]{6})\b")
_OPENED = re.compile(r"^incident \S+ opened \((?P<kind>[a-z-]+), key (?P<key>\S+)\): (?P<summary>.*)$", re.S)
MAX_MEASUREMENTS = 50


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentTrigger(_Model):
    """What opens (or repeats) an incident: one condition of one model version, with its values and evidence."""

    kind: Kind
    model_name: str
    version: int | None
    condition: str = Field(description="What would repeat, e.g. 'drift breach+quality breach' or 'canary gate'; "
                           "with the model, version and kind it is the dedupe key.")
    summary: str = Field(description="One line: what happened, naming the values and thresholds.")
    reasons: list[str] = Field(default_factory=list, description="The decision's reasons (policy keys named).")
    measurements: list[Check] = Field(default_factory=list, description="The measured values and their thresholds.")
    evidence: dict[str, EvidenceFile] = Field(default_factory=dict, description="The triggering evidence by role.")
    data_at: str | None = Field(None, description="When the triggering data or evidence came to be (ISO, UTC): "
                                "time to detect is measured from it.")
    data_what: str | None = Field(None, description="What data_at is the time of.")
    policy: str | None = None
    flow_run_id: str | None = None

    @property
    def key(self) -> str:
        condition = re.sub(r"[^a-z0-9+]+", "-", self.condition.lower()).strip("-") or "-"
        version = "-" if self.version is None else self.version
        return f"{self.model_name}:v{version}:{self.kind}:{condition}"


class IncidentDocument(_Model):
    """An incident's opening (or a repeat's) as evidence: written once, named by its ledger row."""

    incident_id: str
    key: str
    recorded_at: str
    trigger: IncidentTrigger


class Incident(_Model):
    """One incident as the ledger records it."""

    incident_id: str
    kind: str
    key: str
    model_name: str
    version: int | None
    summary: str
    opened_at: str
    opened_seq: int
    opened_by: str
    document: str | None = Field(None, description="opened.json: the trigger's values, thresholds and evidence.")
    evidence: dict[str, str] = Field(default_factory=dict, description="role -> path of every file its rows name.")
    occurrences: int = Field(1, description="1 + the repeats attached to it.")
    last_seen_at: str
    notifications: list[str] = Field(default_factory=list, description="What each webhook/event delivery did.")
    resolved_at: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    resolved_seq: int | None = None
    resolution_signed_by_key: str | None = None

    @property
    def status(self) -> str:
        return "open" if self.resolved_at is None else "resolved"

    def line(self) -> str:
        what = f"{self.model_name} v{self.version}" if self.version is not None else self.model_name
        repeats = f", {self.occurrences} occurrences" if self.occurrences > 1 else ""
        state = "open" if self.resolved_at is None else f"resolved by {self.resolved_by}"
        return f"{self.incident_id} [{self.kind}] {what}, opened {self.opened_at[:19]}{repeats}, {state}: {self.summary}"


def incidents_from(entries: list[LedgerEntry]) -> list[Incident]:
    """Fold ledger rows (any models, oldest first) into incidents, in the order they were opened."""
    found: dict[str, Incident] = {}
    for e in entries:
        if not e.action.startswith("incident."):
            continue
        match = _ID.match(e.reason)
        if match is None:
            continue
        iid = match.group(1)
        if e.action == OPENED:
            parts = _OPENED.match(e.reason)
            if parts is None:
                continue
            files = dict(e.evidence_files or {})
            found[iid] = Incident(
                incident_id=iid, kind=parts["kind"], key=parts["key"], model_name=e.model_name, version=e.version,
                summary=parts["summary"], opened_at=e.recorded_at, opened_seq=e.seq or 0, opened_by=e.actor,
                document=files.get("incident"), evidence={k: v for k, v in files.items() if k != "incident"},
                last_seen_at=e.recorded_at)
            continue
        incident = found.get(iid)
        if incident is None:
            continue
        if e.action == ATTACHED:
            files = {k: v for k, v in (e.evidence_files or {}).items() if k != "incident"}
            n = incident.occurrences + 1
            incident.evidence.update({(k if k not in incident.evidence else f"{k}#{n}"): v for k, v in files.items()})
            incident.occurrences, incident.last_seen_at = n, e.recorded_at
        elif e.action == NOTIFIED:
            incident.notifications.append(e.reason[match.end():].lstrip(" :"))
        elif e.action == RESOLVED and incident.resolved_at is None:
            incident.resolved_at, incident.resolved_by, incident.resolved_seq = e.recorded_at, e.actor, e.seq
            incident.resolution = e.reason.split(": ", 1)[1] if ": " in e.reason else e.reason
            incident.resolution_signed_by_key = (e.proof or {}).get("key")
    return list(found.values())


def opened_document(incident: Incident) -> IncidentDocument | None:
    """The incident's opened.json, when it is still there and readable."""
    if not incident.document or "://" in incident.document:
        return None
    try:
        return IncidentDocument.model_validate_json(Path(incident.document).read_text())
    except (OSError, ValueError):
        return None


# -- when the triggering data came to be --------------------------------------------------------------------------------
def modified_at(location: str | None) -> str | None:
    """Last modification (ISO, UTC) of a file, or of the newest file under a folder, local or a pyarrow URI; None
    when it cannot be read."""
    if not location:
        return None
    import pyarrow.fs as pafs

    try:
        fs, path = (pafs.FileSystem.from_uri(location) if "://" in location
                    else (pafs.LocalFileSystem(), str(Path(location).resolve())))
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            infos = [i for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                     if i.type == pafs.FileType.File and i.mtime is not None]
            when = max((i.mtime for i in infos), default=None)
        else:
            when = info.mtime if info.type == pafs.FileType.File else None
    except Exception:  # noqa: BLE001 - gone, not allowed, unreachable: no time to measure from
        return None
    if when is None:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    a, b = datetime.fromisoformat(start), datetime.fromisoformat(end)
    a, b = (x if x.tzinfo else x.replace(tzinfo=timezone.utc) for x in (a, b))
    return round((b - a).total_seconds(), 3)


# -- opening, repeating, announcing ------------------------------------------------------------------------------------
def _lock_name(model_name: str) -> str:
    return f"{model_name}#incidents"  # not the model's promotion lock: an incident never waits for a promotion


def _new_id(now: datetime) -> str:
    return f"INC-{now:%Y%m%d}-{secrets.token_hex(3)}"


def open_or_attach(ledger, trigger: IncidentTrigger, *, actor: str, evidence_dir: Path) -> tuple[Incident, bool]:
    """(the incident, whether the trigger was attached to an open one with the same key rather than opening a new
    one). Under a lock of the model's incidents, so partitions breaching at once open one incident between them."""
    folder = Path(evidence_dir) / trigger.model_name / "incidents"
    common = dict(actor=actor, model_name=trigger.model_name, version=trigger.version, policy=trigger.policy,
                  flow_run_id=trigger.flow_run_id)
    with ledger.lock(_lock_name(trigger.model_name)):
        key = trigger.key
        current = next((i for i in incidents_from(ledger.entries(model_name=trigger.model_name))
                        if i.status == "open" and i.key == key), None)
        now = datetime.now(timezone.utc)
        if current is not None:
            doc = IncidentDocument(incident_id=current.incident_id, key=key, recorded_at=now.isoformat(), trigger=trigger)
            path = folder / current.incident_id / f"attached-{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}.json"
            ledger.append(LedgerEntry(
                action=ATTACHED, **common, evidence={"incident": write_json(path, doc), **trigger.evidence},
                reason=f"incident {current.incident_id}: the same condition again (key {key}), attached to the open "
                f"incident instead of opening another: {trigger.summary}"))
            found = next(i for i in incidents_from(ledger.entries(model_name=trigger.model_name))
                         if i.incident_id == current.incident_id)
            return found, True
        iid = _new_id(now)
        doc = IncidentDocument(incident_id=iid, key=key, recorded_at=now.isoformat(), trigger=trigger)
        opened = write_json(folder / iid / "opened.json", doc)
        row = ledger.append(LedgerEntry(action=OPENED, **common, evidence={"incident": opened, **trigger.evidence},
                                        reason=f"incident {iid} opened ({trigger.kind}, key {key}): {trigger.summary}"))
    return incidents_from([row])[0], False


def webhook_body(incident: Incident, what: str, document: IncidentDocument | None = None) -> dict:
    """Slack-compatible JSON: ``text`` for people, ``lockgate`` for routing."""
    subject = f"{incident.model_name} v{incident.version}" if incident.version is not None else incident.model_name
    if what == "resolved":
        text = (f"lockgate incident {incident.incident_id} RESOLVED by {incident.resolved_by} "
                f"({incident.kind}, {subject}): {incident.resolution}")
    else:
        text = f"lockgate incident {incident.incident_id} OPENED ({incident.kind}, {subject}): {incident.summary}"
    trigger = document.trigger if document is not None else None
    return {"text": text[:3000], "lockgate": {
        "event": f"{EVENT_PREFIX}{what}", "incident_id": incident.incident_id, "kind": incident.kind,
        "key": incident.key, "status": incident.status, "model_name": incident.model_name,
        "version": incident.version, "opened_at": incident.opened_at, "summary": incident.summary,
        "resolved_at": incident.resolved_at, "resolved_by": incident.resolved_by, "resolution": incident.resolution,
        "evidence": {"incident": incident.document, **incident.evidence},
        "measurements": [c.model_dump() for c in trigger.measurements] if trigger else [],
        "data_at": trigger.data_at if trigger else None,
        "command": f"lockgate incidents resolve {incident.incident_id} --reason '...'"}}


def announce(ledger, incident: Incident, what: Literal["opened", "resolved"], *, actor: str, webhook_url: str | None,
             timeout: float, retries: int, emit: Callable[[str, Incident], str] | None) -> str:
    """Notify the webhook and emit the Prefect event (``emit`` says what it did), then record both outcomes as an
    ``incident.notified`` row. Never raises: an incident is recorded whether or not anyone could be told."""
    from tasks.governance.incident_notify import post_webhook

    delivery = post_webhook(webhook_url, webhook_body(incident, what, opened_document(incident)), timeout=timeout,
                            retries=retries)
    event_name = f"{EVENT_PREFIX}{what}"
    try:
        event = emit(event_name, incident) if emit is not None else f"{event_name} not sent: no Prefect in this caller"
    except Exception as e:  # noqa: BLE001 - the event is a courtesy to automations, never the gate's failure
        event = f"{event_name} not sent: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
    line = f"{what}: webhook {delivery.line()}; Prefect event {event}"
    try:
        ledger.append(LedgerEntry(actor=actor, action=NOTIFIED, model_name=incident.model_name,
                                  version=incident.version, reason=f"incident {incident.incident_id} {line}"))
    except Exception:  # noqa: BLE001 - the incident itself is recorded; only this note about telling people is lost
        pass
    return line


def event_resource(incident: Incident) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(resource, related) of the incident's Prefect event: the model version is the resource automations match."""
    version = "-" if incident.version is None else str(incident.version)
    resource = {"prefect.resource.id": f"lockgate.model.{incident.model_name}.v{version}",
                "prefect.resource.name": f"{incident.model_name} v{version}",
                "lockgate.model": incident.model_name, "lockgate.version": version,
                "lockgate.incident.id": incident.incident_id, "lockgate.incident.kind": incident.kind}
    related = [{"prefect.resource.id": f"lockgate.incident.{incident.incident_id}", "prefect.resource.role": "incident",
                "prefect.resource.name": incident.incident_id}]
    return resource, related


# -- resolving ---------------------------------------------------------------------------------------------------------
def resolution_payload(incident: Incident, *, resolver: str, reason: str) -> str:
    """The canonical text a resolver signs: the incident (id, model, version, key, the row that opened it) and the
    resolution (who, why), so a signature never carries over to another incident or another reason."""
    return json.dumps({"domain": RESOLUTION_DOMAIN, "incident_id": incident.incident_id,
                       "model_name": incident.model_name, "version": incident.version, "key": incident.key,
                       "opened_seq": incident.opened_seq, "resolver": resolver, "reason": reason},
                      sort_keys=True, separators=(",", ":"))


def find_incident(entries: list[LedgerEntry], incident_id: str) -> Incident:
    """The incident ``incident_id``; a one-line LockgateError when the id is malformed or unknown."""
    if not ID_FORMAT.match(incident_id or ""):
        raise LockgateError(f"{incident_id!r} is not an incident id (INC-YYYYMMDD-xxxxxx; see `lockgate incidents`)")
    found = next((i for i in incidents_from(entries) if i.incident_id == incident_id), None)
    if found is None:
        raise LockgateError(f"no incident {incident_id} in this ledger (see `lockgate incidents --all`)")
    return found


def resolve_incident(ledger, policy, *, environment: str, incident_id: str, reason: str, resolver: str,
                     key_file: str | os.PathLike | None = None) -> Incident:
    """Close an open incident with a reason, as ``resolver``, under the approval rules of ``environment``: where the
    environment needs human approval for any transition, only its approvers may resolve; where it says
    ``identity: signed``, only with a signature (``key_file``) by a key ``approval.public_keys`` lists for the
    resolver. One-line LockgateError for an unknown or already resolved incident, an empty reason, a refused
    resolver or signature; nothing is written then."""
    from tasks.governance.approval import approval_rules
    from tasks.signatures import sign, verified_key

    if not reason or not reason.strip():
        raise LockgateError("--reason must not be empty: it is recorded in the ledger")
    incident = find_incident(ledger.entries(), incident_id)
    rules = approval_rules(policy, environment, "promote")
    env = policy.approval.environments[environment]
    if env.transitions and resolver not in rules.approvers:
        raise LockgateError(f"{resolver!r} may not resolve incidents in {environment}: policy '{policy.name}' names "
                            f"its approvers ({', '.join(rules.approvers)}), as for approvals")
    proof = None
    if key_file is not None or rules.identity == "signed":
        if key_file is None:
            raise LockgateError(f"policy '{policy.name}' requires signed approvals in {environment} (identity: "
                                "signed), so resolving an incident needs --key too (a name alone proves nothing)")
        payload = resolution_payload(incident, resolver=resolver, reason=reason)
        signature = sign(key_file, payload)
        key = verified_key(policy.approval.public_keys.get(resolver, ()), payload, signature)
        if key is None:
            raise LockgateError(f"the key {key_file} is none of the keys approval.public_keys lists for {resolver} in "
                                f"policy '{policy.name}': resolution not recorded")
        proof = {"signed_payload": payload, "signature": signature, "key": key}
    with ledger.lock(_lock_name(incident.model_name)):
        incident = find_incident(ledger.entries(model_name=incident.model_name), incident_id)
        if incident.status == "resolved":
            raise LockgateError(f"incident {incident_id} was already resolved at {incident.resolved_at[:19]} by "
                                f"{incident.resolved_by}: {incident.resolution}")
        evidence = {"incident": EvidenceFile(path=incident.document, sha256=_sha(incident.document))} \
            if incident.document and _sha(incident.document) else {}
        ledger.append(LedgerEntry(actor=resolver, action=RESOLVED, model_name=incident.model_name,
                                  version=incident.version, policy=policy.name, evidence=evidence, proof=proof,
                                  reason=f"incident {incident_id} resolved by {resolver}: {' '.join(reason.split())}"))
        return find_incident(ledger.entries(model_name=incident.model_name), incident_id)


def _sha(path: str | None) -> str | None:
    from tasks.evidence import sha256_file

    try:
        return sha256_file(path) if path and "://" not in path else None
    except OSError:
        return None


def resolution_proof_problems(entries: list[LedgerEntry], policy) -> list[str]:
    """Each signed resolution row re-checked offline (`lockgate audit verify`): its signature against the keys the
    policy lists for the row's actor, and what was signed against the row."""
    problems = []
    for e in entries:
        if e.action != RESOLVED or e.proof is None:
            continue
        from tasks.signatures import verified_key

        try:
            signed = json.loads(e.proof["signed_payload"])
            ok = (signed["domain"] == RESOLUTION_DOMAIN and signed["resolver"] == e.actor
                  and e.reason.startswith(f"incident {signed['incident_id']} resolved by {e.actor}: "))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(f"row {e.seq}: its proof is not a signed resolution of what the row records")
        elif verified_key(policy.approval.public_keys.get(e.actor, ()), e.proof["signed_payload"],
                          e.proof.get("signature", "")) is None:
            problems.append(f"row {e.seq}: the signature of {e.actor}'s incident resolution does not verify against "
                            f"the keys policy '{policy.name}' lists for {e.actor}")
    return problems
