"""The audit report: which model scored which batch, trained on what, approved by whom, on what evidence.

:func:`build_report` gathers one typed :class:`AuditReport` from the ledger (every entry in
[since, until], read generically by action, so actions added later show up as they are), the
registry (versions, registration metadata, contracts) and the stored evidence (gate results,
re-hashed against the ledger by :mod:`tasks.governance.audit_evidence`). The JSON report is this model
dumped; tasks/governance/audit_html.py renders the HTML with its plots.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tasks.governance.audit_evidence import (EvidenceCheck, EvidenceLocator, is_identifier, latest_model_card,
                                             partition_of)
from tasks.governance.audit_incidents import IncidentReport, incident_reports
from tasks.governance.dataset_provenance import DatasetUse, version_datasets
from tasks.governance.framework_map import FrameworkMap, framework_map
from tasks.errors import LockgateError
from tasks.ledger.entry import LedgerEntry, LedgerVerification
from tasks.registry import CHAMPION
from tasks.settings import Settings

GATE_ORDER = ("contract", "validation-golden", "validation-reference", "poisoning", "compilation", "canary", "drift", "approval")


def parse_when(text: str | None, *, end: bool = False) -> datetime | None:
    """An ISO date or date-time; a bare date means its start (``end``: its last microsecond); naive means UTC."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise LockgateError(f"time {text!r} is not an ISO date or date-time (e.g. 2026-11-01 or 2026-11-01T08:00)") from None
    if end and len(text) <= 10:  # a date: up to the end of that day
        when = when.replace(hour=23, minute=59, second=59, microsecond=999999)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def entry_time(entry: LedgerEntry) -> datetime:
    when = datetime.fromisoformat(entry.recorded_at)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


# -- the report's parts -------------------------------------------------------------------
class AuditEntry(BaseModel):
    """One ledger row as recorded, with its evidence files re-checked."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    recorded_at: str
    actor: str
    action: str
    model_name: str
    version: int | None
    alias: str | None
    previous_version: int | None
    reason: str
    policy: str | None
    flow_run_id: str | None
    aliases: dict[str, int] | None = None
    identifiers: dict[str, str] = {}  # evidence roles that are identifiers, e.g. contract.fingerprint
    proof: dict[str, str] | None = None  # a signed approval's payload, signature and key (audit verify re-checks it)
    evidence: list[EvidenceCheck]

    @property
    def evidence_ok(self) -> bool:
        return all(e.status == "ok" for e in self.evidence)


class GateSummary(BaseModel):
    """One gate's published result for a version, and the files it names (re-checked against its hashes)."""

    model_config = ConfigDict(extra="forbid")

    gate: str
    decision: str
    passed: bool
    reasons: list[str]
    result_file: str
    link: str | None
    files: list[EvidenceCheck]


class MetricCI(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    candidate: float
    champion: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None


class CanarySummary(BaseModel):
    """The canary's headline numbers: the candidate's metrics, deltas against the champion with CIs, slices."""

    model_config = ConfigDict(extra="forbid")

    task: str
    decision: str
    champion_version: int | None
    metrics: dict[str, float]
    deltas: list[MetricCI]
    slices: list[dict]
    variants: list[dict]


class VersionSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    status: str
    registered_at: str
    registered_by: str
    description: str
    arch: str
    contract: str
    contract_version: str
    contract_fingerprint: str
    reference_sha256: str
    reference_rows: str
    artifact_sha256: str
    gates: list[GateSummary]
    canary: CanarySummary | None
    model_card: str | None = Field(None, description="Link to the version's model card, when one was written.")
    datasets: list[DatasetUse] = Field(default_factory=list, description="Datasets it was trained and evaluated on, "
                                       "with provenance and licence (tasks/governance/dataset_provenance.py).")


class ChampionChange(BaseModel):
    """The champion alias moved (or was removed): who, why, and the evidence the move was made on."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    at: str
    model_name: str
    version: int | None
    previous_version: int | None
    kind: str = Field(description="promotion, rollback (back to a version that was champion before) or removal")
    actor: str
    reason: str
    policy: str | None
    flow_run_id: str | None
    evidence: list[EvidenceCheck]


class ChampionSpan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    start: str
    end: str | None = Field(description="When it stopped being champion; None: still champion at the report's end.")
    kind: str


class BatchScore(BaseModel):
    """A partition scored (or failed) by a version."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    at: str
    model_name: str
    version: int | None
    partition: str | None
    status: str
    reason: str
    contract: str | None = None
    drift_decision: str | None = None
    drifted_share: float | None = None
    rows_scored: int | None = None
    rows_quarantined: int | None = None
    evidence_ok: bool


class ContractUse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    fingerprint: str
    model_versions: list[str]
    license: str | None = Field(None, description="The contract's dataset licence (SPDX); None: not recorded.")
    source: str | None = Field(None, description="The contract's dataSource.")


class AuditReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generated_at: str
    generated_by: str
    since: str | None
    until: str | None
    models: list[str]
    tracking_uri: str
    ledger_url: str
    ledger_check: LedgerVerification
    action_counts: dict[str, int]
    champion_changes: list[ChampionChange]
    champion_timeline: list[ChampionSpan]
    decisions: list[AuditEntry] = Field(description="Approvals, rejections, rollbacks, refusals in the range.")
    batches: list[BatchScore]
    versions: list[VersionSummary]
    contracts: list[ContractUse]
    entries: list[AuditEntry] = Field(description="Every ledger entry in the range, as recorded.")
    evidence_problems: list[str] = Field(description="One line per evidence file that is missing or changed.")
    incidents: list[IncidentReport] = Field(default_factory=list, description="Incidents open at some time in the "
                                            "range: opened, time to detect, resolved, time to resolve, evidence.")
    framework_map: FrameworkMap | None = Field(None, description="lockgate's evidence mapped to NIST AI RMF 1.0 "
                                               "and ISO/IEC 42001:2023, and what it does not cover.")


def is_decision(action: str) -> bool:
    """Approvals, rejections, rollbacks and refusals: what an auditor reads first (actions matched by name)."""
    return (action.startswith("approval.") or action in ("candidate.rejected", "promotion.reverted")
            or "rollback" in action or action.endswith(".refused") or action.endswith(".rejected"))


def champion_moves(entries: list[LedgerEntry]):
    """(entry, new champion version or None) for every ledger row that changed a model's champion.

    Rows carry the model's aliases after every move (``aliases``): a promotion or rollback changes the champion at its
    ``*.committed`` row, a recovery at its ``*.recovered`` row; started, reverted and refused rows leave it as it was.
    Rows without ``aliases`` count when they set or delete the ``champion`` alias itself."""
    last: dict[str, int | None] = {}
    for e in entries:
        if e.aliases is not None:
            new = e.aliases.get(CHAMPION)
        elif e.alias == CHAMPION and e.action in ("alias.set", "alias.delete"):
            new = e.version if e.action == "alias.set" else None
        else:
            continue
        if last.get(e.model_name) == new:
            continue
        last[e.model_name] = new
        yield e, new


def champion_timeline(entries: list[LedgerEntry], until: datetime | None) -> list[ChampionSpan]:
    """Spans of the champion alias per model from every row that changed it (all time)."""
    spans: list[ChampionSpan] = []
    current: dict[str, ChampionSpan] = {}
    seen: dict[str, set[int]] = {}
    for e, new in champion_moves(entries):
        if until is not None and entry_time(e) > until:
            break
        open_span = current.pop(e.model_name, None)
        if open_span is not None:
            spans.append(open_span.model_copy(update={"end": e.recorded_at}))
        if new is not None:
            kind = change_kind(e, new, seen.setdefault(e.model_name, set()))
            current[e.model_name] = ChampionSpan(model_name=e.model_name, version=new, start=e.recorded_at,
                                                 end=None, kind=kind)
            seen[e.model_name].add(new)
    return sorted(spans + list(current.values()), key=lambda s: s.start)


def change_kind(entry: LedgerEntry, new: int | None, earlier_champions: set[int]) -> str:
    if new is None:
        return "removal"
    if (new in earlier_champions or entry.action.startswith("rollback.") or "rollback" in entry.reason.lower()
            or "roll back" in entry.reason.lower()):
        return "rollback"
    return "promotion"


def clip_spans(spans: list[ChampionSpan], since: datetime | None) -> list[ChampionSpan]:
    """Spans that end before ``since`` are left out; the one running at ``since`` is kept whole."""
    if since is None:
        return spans
    return [s for s in spans if s.end is None or datetime.fromisoformat(s.end) >= since]


# -- evidence summaries ------------------------------------------------------------------------
def gate_summaries(settings: Settings, locator: EvidenceLocator, model: str, version: int) -> list[GateSummary]:
    from tasks.stores import latest_evidence_dir

    folder = latest_evidence_dir(settings, model, version)  # the version's last lifecycle run
    found = sorted(folder.glob("*.json"), key=lambda p: (GATE_ORDER.index(p.stem) if p.stem in GATE_ORDER else 99,
                                                          p.stem))
    gates = []
    for path in found:
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(result, dict) or "decision" not in result:  # e.g. compile_report_cli.json
            continue
        gates.append(GateSummary(gate=path.stem, decision=str(result["decision"]), passed=bool(result.get("passed")),
                                 reasons=[str(r) for r in result.get("reasons", [])], result_file=str(path),
                                 link=locator.link(path), files=locator.check_gate_files(path)))
    return gates


def canary_summary(settings: Settings, model: str, version: int) -> CanarySummary | None:
    from tasks.stores import latest_evidence_dir

    path = latest_evidence_dir(settings, model, version) / "canary.json"
    try:
        c = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    metrics = {k: float(v) for k, v in (c.get("candidate") or {}).items() if isinstance(v, (int, float))}
    deltas = [MetricCI(metric=d["metric"], candidate=d["candidate"], champion=d["champion"], delta=d["delta"],
                       ci_low=d["ci_low"], ci_high=d["ci_high"], confidence=d.get("confidence"))
              for d in c.get("deltas", [])]
    return CanarySummary(task=c.get("task", "classification"), decision=c.get("decision", "?"),
                         champion_version=c.get("champion_version"), metrics=metrics, deltas=deltas,
                         slices=c.get("slices", []), variants=c.get("variants", []))


def partition_drift(settings: Settings, model: str, partition: str | None,
                    folder: Path | None = None) -> float | None:
    """Share of drifted columns in a scored partition: the monitor's own (drift/drift.json), else, for partitions
    scored before that file was written, the Evidently snapshot's DriftedColumnsCount. ``folder``: the scoring's
    drift folder, as its row names it (else where partitions were scored before write-once evidence)."""
    if partition is None:
        return None
    folder = folder or settings.evidence_dir / model / "batches" / partition / "drift"
    try:
        return float(json.loads((folder / "drift.json").read_text())["drifted_share"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    path = folder / "drift_snapshot.json"
    try:
        snapshot = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for result in (snapshot.get("metric_results") or {}).values():
        params = ((result.get("metric_value_location") or {}).get("metric") or {}).get("params") or {}
        if str(params.get("type", "")).endswith("DriftedColumnsCount"):
            share = (result.get("share") or {}).get("value")
            return float(share) if share is not None else None
    return None


def _named(entry: AuditEntry, role: str) -> str | None:
    return next((c.path for c in entry.evidence if c.role == role and c.path), None)


def _batch(settings: Settings, entry: AuditEntry) -> BatchScore:
    import re

    partition = partition_of(entry.reason)
    # tasks/batch/partition.py's message: "<rows> rows, <quarantined> quarantined, <scored> scored; drift <decision>; ..."
    counts = re.search(r"(\d+) rows, (\d+) quarantined, (\d+) scored", entry.reason)
    drift = re.search(r"drift (ok|warn|breach)\b", entry.reason)
    return BatchScore(seq=entry.seq, at=entry.recorded_at, model_name=entry.model_name, version=entry.version,
                      partition=partition, status=entry.action.split(".", 1)[1], reason=entry.reason,
                      drift_decision=drift.group(1) if drift else None,
                      drifted_share=partition_drift(settings, entry.model_name, partition, Path(named).parent
                                                    if (named := _named(entry, "drift.result")) else None),
                      rows_scored=int(counts.group(3)) if counts else None,
                      rows_quarantined=int(counts.group(2)) if counts else None, evidence_ok=entry.evidence_ok)


def _version(settings, registry, locator, record) -> VersionSummary:
    t = record.tags
    card = latest_model_card(settings, record.name, record.version)
    return VersionSummary(
        model_name=record.name, version=record.version, status=t.get("lockgate.status", "-"),
        registered_at=datetime.fromtimestamp(record.created_at_ms / 1000, timezone.utc).isoformat(timespec="seconds"),
        registered_by=t.get("lockgate.registered_by", "-"), description=registry.run_name(record),
        arch=t.get("lockgate.arch", "-"), contract=t.get("lockgate.contract", "-"),
        contract_version=t.get("lockgate.contract_version", "-"),
        contract_fingerprint=t.get("lockgate.contract_fingerprint", "-"),
        reference_sha256=t.get("lockgate.reference_sha256", "-"), reference_rows=t.get("lockgate.reference_rows", "-"),
        artifact_sha256=t.get("lockgate.artifact_sha256", "-"),
        gates=gate_summaries(settings, locator, record.name, record.version),
        canary=canary_summary(settings, record.name, record.version),
        model_card=locator.link(card) if card is not None else None,
        datasets=version_datasets(settings, registry, record))


def build_report(settings: Settings, registry, ledger, *, since: datetime | None = None, until: datetime | None = None,
                 model_name: str | None = None, out_dir: Path | None = None) -> AuditReport:
    """Gather the report over ledger entries recorded in [since, until] (all when None); links relative to
    ``out_dir`` (where the report will be written)."""
    if since and until and since > until:
        raise LockgateError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    locator = EvidenceLocator(settings, registry, out_dir)
    everything = ledger.entries(model_name=model_name)
    in_range = [e for e in everything if (since is None or entry_time(e) >= since)
                and (until is None or entry_time(e) <= until)]
    entries = [AuditEntry(**e.model_dump(exclude={"evidence", "evidence_files", "prev_hash", "entry_hash"}),
                          identifiers={k: v for k, v in e.evidence.items() if is_identifier(k)},
                          evidence=locator.check_entry(e.model_name, e.version if e.version is not None else
                                                        e.previous_version, e.evidence, e.reason, e.evidence_files))
               for e in in_range]
    by_seq = {e.seq: e for e in entries}

    changes, seen = [], {}
    for e, new in champion_moves(everything):  # kinds need the history before the range
        kind = change_kind(e, new, seen.setdefault(e.model_name, set()))
        if new is not None:
            seen[e.model_name].add(new)
        if e.seq in by_seq:
            a = by_seq[e.seq]
            changes.append(ChampionChange(seq=a.seq, at=a.recorded_at, model_name=a.model_name, version=new,
                                          previous_version=a.previous_version, kind=kind, actor=a.actor,
                                          reason=a.reason, policy=a.policy, flow_run_id=a.flow_run_id,
                                          evidence=a.evidence))

    models = sorted({e.model_name for e in everything} | ({model_name} if model_name else set()))
    mentioned = {(e.model_name, e.version) for e in entries if e.version is not None}
    versions = []
    for name in models:
        for record in registry.versions(name):
            if (name, record.version) in mentioned or (since is None and until is None):
                versions.append(_version(settings, registry, locator, record))
    contracts: dict[tuple[str, str], ContractUse] = {}
    for v in versions:
        use = contracts.setdefault((v.contract, v.contract_version),
                                   ContractUse(name=v.contract, version=v.contract_version,
                                               fingerprint=v.contract_fingerprint, model_versions=[],
                                               license=v.datasets[0].license if v.datasets else None,
                                               source=v.datasets[0].source if v.datasets else None))
        use.model_versions.append(f"{v.model_name} v{v.version}")

    batches = [_batch(settings, e) for e in entries if e.action.startswith("partition.")]
    contract_of = {(v.model_name, v.version): f"{v.contract}@{v.contract_version}" for v in versions}
    batches = [b.model_copy(update={"contract": contract_of.get((b.model_name, b.version))}) for b in batches]
    problems = [f"#{e.seq} {e.action} v{e.version}: {c.role} {c.status}" + (f" ({c.path})" if c.path else "")
                for e in entries for c in e.evidence if c.status != "ok"]
    problems += [f"{v.model_name} v{v.version} {g.gate}: {c.role} {c.status} ({c.path})"
                 for v in versions for g in v.gates for c in g.files if c.status != "ok"]
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.action] = counts.get(e.action, 0) + 1
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    incidents = incident_reports(locator, everything, since=since, until=until, now=now)
    report = AuditReport(
        generated_at=now, generated_by=settings.actor, incidents=incidents,
        since=since.isoformat() if since else None, until=until.isoformat() if until else None, models=models,
        tracking_uri=settings.tracking_uri, ledger_url=settings.ledger_uri, ledger_check=ledger.verify(),
        action_counts=counts, champion_changes=changes,
        champion_timeline=clip_spans(champion_timeline(everything, until), since),
        decisions=[e for e in entries if is_decision(e.action)], batches=batches, versions=versions,
        contracts=sorted(contracts.values(), key=lambda c: (c.name, c.version)), entries=entries,
        evidence_problems=problems)
    report.framework_map = framework_map(report)
    return report
