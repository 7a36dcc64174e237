"""The audit report's framework map: lockgate's evidence against NIST AI RMF 1.0 and ISO/IEC 42001:2023 Annex A.

:data:`MAPPING` is the table (data, not prose): each row is something lockgate does, the evidence kinds that show it
in a report, the NIST AI RMF subcategories and the ISO/IEC 42001 Annex A controls it supports evidence for, and the
limit of that support. :data:`NOT_COVERED` lists, as plainly, what lockgate does not do at all. :func:`framework_map`
resolves every evidence kind against one audit report, so each row links to the ledger rows, gate results, model
cards and datasets of the report's period (:data:`EVIDENCE_KINDS` says where each kind comes from).

"Supports" means the evidence helps an organisation show the outcome; it does not meet a subcategory or a control by
itself (those need the organisation's own policies, roles and reviews), and this map is not a conformity assessment.
NIST ids are the subcategories of NIST AI 100-1 (January 2023); ISO/IEC 42001 ids are its Annex A controls, named by
clause area where a single control number would overstate the fit.
"""

from __future__ import annotations

from html import escape
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

NIST = "NIST AI RMF 1.0 (NIST AI 100-1, 2023)"
ISO = "ISO/IEC 42001:2023 Annex A"

MAPPING: tuple[dict, ...] = (
    {"id": "dataset-provenance",
     "capability": "Each dataset's source, SPDX licence, owner and personal-data classification recorded in its data "
                   "contract; registration refused without a licence when the policy requires one; shown for every "
                   "dataset a version was trained and evaluated on",
     "evidence": ("datasets", "contracts"),
     "nist": ("GOVERN 6.1", "MAP 4.1"), "iso": ("A.7.5 data provenance", "A.7.3 acquisition of data"),
     "limit": "the licence is recorded and required, its terms are not checked against the use; provenance is per "
              "contract, not a lineage of transformations"},
    {"id": "data-quality",
     "capability": "Golden and reference data, and every production partition, validated against the data contract "
                   "(Great Expectations); failing rows quarantined with the expectations they broke",
     "evidence": ("gate:validation-golden", "gate:validation-reference", "batches"),
     "nist": ("MEASURE 2.1",), "iso": ("A.7.4 quality of data for AI systems",),
     "limit": "checks what the contract states (types, ranges, sets, nulls, uniqueness), not representativeness"},
    {"id": "poisoning-screen",
     "capability": "The training/reference data screened at registration and in every lifecycle for label-flip "
                   "suspects, conflicting duplicates, a cluster far from the golden set and a label-balance shift, "
                   "each finding with row ids, decided by policy (warn or fail)",
     "evidence": ("gate:poisoning",),
     "nist": ("MEASURE 2.7", "MAP 4.2"), "iso": ("A.7.4 quality of data for AI systems",),
     "limit": "a screen, not a proof: a few percent of random label flips in noisy data and poison that looks like "
              "clean data are not found; no adversarial-example testing of the model"},
    {"id": "verification",
     "capability": "Candidate evaluated before deployment: golden-set metrics with paired-bootstrap CIs against the "
                   "champion, slices, precision variants, latency; the exported artifact checked equal to the model",
     "evidence": ("gate:canary", "gate:compilation"),
     "nist": ("MEASURE 2.3", "MEASURE 2.5", "MANAGE 1.1"), "iso": ("A.6.2.4 AI system verification and validation",),
     "limit": "slices are the contract's slice columns, not protected groups (no fairness evaluation)"},
    {"id": "deployment-decision",
     "capability": "Promotion only through the gates and the policy's approval rules (approvers, separation of "
                   "duties, expiry), every decision recorded with who, why and the policy",
     "evidence": ("decisions", "champion_changes", "gate:approval", "policies"),
     "nist": ("MANAGE 1.1", "GOVERN 2.1", "MAP 1.5"),
     "iso": ("A.6.2.5 AI system deployment", "A.3 internal organization (roles and responsibilities)"),
     "limit": "the policy's thresholds are the organisation's risk tolerance as written; lockgate does not set them"},
    {"id": "monitoring",
     "capability": "Drift and data quality measured at evaluation and on every scored partition (Evidently, the "
                   "contract's stat tests), alerts, blocks or rollbacks per policy",
     "evidence": ("gate:drift", "batches"),
     "nist": ("MEASURE 2.4", "MEASURE 3.1", "MANAGE 4.1"), "iso": ("A.6.2.6 AI system operation and monitoring",),
     "limit": "input and prediction drift only: labels arriving later are not scored against predictions"},
    {"id": "rollback",
     "capability": "The champion can be superseded or put back (previous-champion), by an operator or automatically "
                   "on a breach, through the same recorded path",
     "evidence": ("champion_changes", "decisions"),
     "nist": ("MANAGE 2.4", "MANAGE 4.1"), "iso": ("A.6.2.6 AI system operation and monitoring",),
     "limit": "no decommissioning of a model as a whole"},
    {"id": "incident-response",
     "capability": "Every monitoring alert, scoring block, automatic rollback and rejected promotion opens an "
                   "incident (a ledger row, a Prefect event, a webhook notification); resolved with who and why; "
                   "time to detect and time to resolve per incident",
     "evidence": ("incidents",),
     "nist": ("MANAGE 4.1", "MANAGE 4.3"), "iso": ("A.8.4 communication of incidents",),
     "limit": "notifies operators (webhook, Prefect automations); affected people and regulators are not told"},
    {"id": "event-log",
     "capability": "Every registration, gate decision, approval, alias move and scored partition is a row of a "
                   "hash-chained ledger naming its evidence files by sha256; the report re-hashes them",
     "evidence": ("ledger", "evidence_rehash"),
     "nist": ("MEASURE 2.8",), "iso": ("A.6.2.8 AI system recording of event logs",),
     "limit": "records accountability (who decided what on which evidence); it does not examine transparency risks"},
    {"id": "documentation",
     "capability": "A model card per version from its evidence: intended use, limitations the evidence shows, "
                   "metrics with CIs, datasets and licences, compile targets, gates, approvals, history",
     "evidence": ("model_cards",),
     "nist": ("MAP 2.1", "MAP 2.2", "MEASURE 2.5"),
     "iso": ("A.6.2.7 AI system technical documentation", "A.8 information for interested parties"),
     "limit": "intended use is what the registrant typed; the card is not written for affected people"},
    {"id": "integrity",
     "capability": "Artifacts exported once, hash-verified before every use and signed; unsigned or changed "
                   "artifacts are refused",
     "evidence": ("gate:compilation",),
     "nist": ("MEASURE 2.7",), "iso": ("A.6.2.5 AI system deployment",),
     "limit": "integrity of what is deployed only: no adversarial robustness or security testing"},
)

NOT_COVERED: tuple[dict, ...] = (
    {"area": "AI policy documents, their approval and review", "nist": "GOVERN 1.1, 1.2", "iso": "A.2 policies related to AI"},
    {"area": "AI system impact assessment (individuals, groups, society)", "nist": "MAP 1.1, MAP 3, MAP 5",
     "iso": "A.5 assessing impacts of AI systems"},
    {"area": "Stakeholder engagement, feedback from users and affected communities, appeal",
     "nist": "GOVERN 5, MAP 5.2, MEASURE 3.3, MEASURE 4", "iso": "A.8 information for interested parties (reporting)"},
    {"area": "Fairness and bias across protected groups", "nist": "MEASURE 2.11", "iso": "A.5 (impact on groups)"},
    {"area": "Privacy risk assessment (classification is recorded, not assessed)", "nist": "MEASURE 2.10",
     "iso": "A.7 data for AI systems (beyond provenance)"},
    {"area": "Explainability of the model's outputs", "nist": "MEASURE 2.9", "iso": "-"},
    {"area": "Environmental impact", "nist": "MEASURE 2.12", "iso": "-"},
    {"area": "Workforce training, competence and diversity", "nist": "GOVERN 2.2, GOVERN 3",
     "iso": "A.4 resources for AI systems (human resources)"},
    {"area": "Legal review of licence terms and third-party agreements; contingency for third-party failures",
     "nist": "GOVERN 6.2, MANAGE 3", "iso": "A.10 third-party and customer relationships"},
    {"area": "Communicating incidents to affected parties and external reporting", "nist": "MANAGE 4.3",
     "iso": "A.8 information for interested parties"},
    {"area": "Data preparation lineage (how a snapshot was built)", "nist": "-", "iso": "A.7.6 data preparation"},
    {"area": "Decommissioning an AI system", "nist": "GOVERN 1.7", "iso": "A.6.2 life cycle (retirement)"},
)


class EvidenceLink(BaseModel):
    """One concrete piece of evidence of the report's period."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="The evidence kind (a key of EVIDENCE_KINDS).")
    label: str = Field(description="What it is, e.g. 'credit-default v1 canary.json' or '#12 approval.auto'.")
    link: str | None = Field(None, description="Link to the file (relative to the report) or to a report section.")


class FrameworkRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    capability: str = Field(description="What lockgate does.")
    nist: list[str] = Field(description=f"{NIST} subcategories it supports evidence for.")
    iso: list[str] = Field(description=f"{ISO} controls (or clause areas) it supports evidence for.")
    limit: str = Field(description="Where the support stops.")
    evidence: list[EvidenceLink] = Field(description="The evidence of the report's period (empty: none in range).")


class NotCovered(BaseModel):
    model_config = ConfigDict(extra="forbid")

    area: str
    nist: str
    iso: str


class FrameworkMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frameworks: list[str] = [NIST, ISO]
    note: str = ("Supports evidence for these outcomes; it does not meet a subcategory or control by itself and "
                 "is not a conformity assessment.")
    rows: list[FrameworkRow]
    not_covered: list[NotCovered]


# -- where each evidence kind comes from in an AuditReport ---------------------------------------------------------
def _gate(name: str) -> Callable:
    def resolve(report) -> list[EvidenceLink]:
        return [EvidenceLink(kind=f"gate:{name}", label=f"{v.model_name} v{v.version} {g.gate}.json ({g.decision})",
                             link=g.link) for v in report.versions for g in v.gates if g.gate == name]
    return resolve


def _versions_anchor(v) -> str:
    return f"#version-{v.model_name}-{v.version}"


EVIDENCE_KINDS: dict[str, tuple[str, Callable]] = {
    "ledger": ("the ledger rows in range and the hash chain's check", lambda r: [EvidenceLink(
        kind="ledger", link="#ledger", label=f"{len(r.entries)} ledger rows; hash chain "
        + ("intact" if r.ledger_check.ok else f"BROKEN at #{r.ledger_check.first_bad_seq}"))] if r.entries else []),
    "evidence_rehash": ("every evidence file a row names, re-hashed", lambda r: [EvidenceLink(
        kind="evidence_rehash", link="#evidence-problems",
        label=f"{sum(len(e.evidence) for e in r.entries)} evidence files re-hashed: "
        + (f"{len(r.evidence_problems)} missing or changed" if r.evidence_problems else "all match"))]
        if any(e.evidence for e in r.entries) else []),
    "decisions": ("approval, rejection, rollback and refusal rows", lambda r: [EvidenceLink(
        kind="decisions", link="#decisions",
        label=f"#{e.seq} {e.action} {e.model_name}" + (f" v{e.version}" if e.version is not None else ""))
        for e in r.decisions]),
    "champion_changes": ("rows that moved the champion alias", lambda r: [EvidenceLink(
        kind="champion_changes", link="#champion-changes",
        label=f"#{c.seq} {c.kind} {c.model_name} v{c.version} by {c.actor}") for c in r.champion_changes]),
    "policies": ("the policies named on rows in range", lambda r: [EvidenceLink(
        kind="policies", link="#ledger", label=f"policy {name}: {n} row(s)") for name, n in sorted(_policies(r).items())]),
    "model_cards": ("each version's model card", lambda r: [EvidenceLink(
        kind="model_cards", label=f"{v.model_name} v{v.version} model card", link=v.model_card)
        for v in r.versions if v.model_card]),
    "datasets": ("datasets each version was trained and evaluated on, with licence", lambda r: [EvidenceLink(
        kind="datasets", link=_versions_anchor(v), label=f"{v.model_name} v{v.version} {d.role}: licence "
        f"{d.license or 'NOT RECORDED'}") for v in r.versions for d in v.datasets]),
    "contracts": ("the data contracts in use, with licence", lambda r: [EvidenceLink(
        kind="contracts", link="#contracts", label=f"{c.name}@{c.version} licence {c.license or 'NOT RECORDED'}")
        for c in r.contracts]),
    "incidents": ("incidents open in range, with time to detect and to resolve", lambda r: [EvidenceLink(
        kind="incidents", link=f"#incident-{i.incident_id}", label=f"{i.incident_id} {i.kind} {i.model_name}"
        + (f" v{i.version}" if i.version is not None else "") + f": {i.status}") for i in r.incidents]),
    "batches": ("partitions scored in range", lambda r: [EvidenceLink(
        kind="batches", link="#batches", label=f"#{b.seq} {b.partition} {b.status} by v{b.version}"
        + (f", drift {b.drift_decision}" if b.drift_decision else "")) for b in r.batches]),
    **{f"gate:{g}": (f"each version's {g} gate result", _gate(g)) for g in (
        "contract", "validation-golden", "validation-reference", "poisoning", "compilation", "canary", "drift",
        "approval")},
}


def _policies(report) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in report.entries:
        if e.policy:
            counts[e.policy] = counts.get(e.policy, 0) + 1
    return counts


def framework_map(report) -> FrameworkMap:
    """The map for ``report`` (an AuditReport): every row with the evidence of the report's period."""
    rows = []
    for m in MAPPING:
        evidence = [link for kind in m["evidence"] for link in EVIDENCE_KINDS[kind][1](report)]
        rows.append(FrameworkRow(id=m["id"], capability=m["capability"], nist=list(m["nist"]), iso=list(m["iso"]),
                                 limit=m["limit"], evidence=evidence))
    return FrameworkMap(rows=rows, not_covered=[NotCovered(**n) for n in NOT_COVERED])


def framework_map_html(fm: FrameworkMap | None, *, shown: int = 8) -> str:
    """The section's HTML: the map table (``shown`` evidence links per row, the JSON has all) and the not-covered list."""
    if fm is None:
        return '<p class="muted">no framework map</p>'

    def links(row: FrameworkRow) -> str:
        parts = [f'<a href="{escape(e.link)}">{escape(e.label)}</a>' if e.link else escape(e.label)
                 for e in row.evidence[:shown]]
        more = len(row.evidence) - shown
        return ("<br>".join(parts) + (f'<br><span class="muted">and {more} more (audit_report.json)</span>'
                                      if more > 0 else "")) or '<span class="bad">no evidence in this period</span>'

    body = "".join(
        f'<tr id="framework-{escape(r.id)}"><td>{escape(r.capability)}</td><td>{"<br>".join(map(escape, r.nist))}</td>'
        f'<td>{"<br>".join(map(escape, r.iso))}</td><td>{links(r)}</td><td class="muted">{escape(r.limit)}</td></tr>'
        for r in fm.rows)
    gaps = "".join(f"<tr><td>{escape(n.area)}</td><td>{escape(n.nist)}</td><td>{escape(n.iso)}</td></tr>"
                   for n in fm.not_covered)
    return (f'<p class="muted">{escape(" · ".join(fm.frameworks))}. {escape(fm.note)}</p>'
            '<table id="framework-map-table"><thead><tr><th>what lockgate does</th><th>NIST AI RMF</th>'
            f'<th>ISO/IEC 42001 Annex A</th><th>evidence in this period</th><th>limit</th></tr></thead><tbody>{body}'
            '</tbody></table><h3>Not covered by lockgate</h3>'
            '<table id="framework-not-covered"><thead><tr><th>area</th><th>NIST AI RMF</th><th>ISO/IEC 42001</th>'
            f'</tr></thead><tbody>{gaps}</tbody></table>')
