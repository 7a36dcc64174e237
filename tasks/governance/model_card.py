"""A model card per version, generated from its evidence: what it is for, what it was trained on, how it measured.

:func:`build_model_card` reads the registration metadata (MLflow tags and run name), the gate
results under ``evidence/<model>/v<version>/`` and the version's ledger entries (and the provenance and licence of its datasets from its registered contract,
tasks/governance/dataset_provenance.py); nothing in
the card is typed by hand except the optional registration tags ``lockgate.intended_use`` and
``lockgate.limitations``. :func:`write_model_card` writes markdown, HTML and JSON and logs
them to the version's MLflow run under ``model_card/<folder>/``. The lifecycle writes a card at the end
of every run (any decision) into that run's folder (``lifecycle-<n>/model_card/``); ``lockgate model-card``
writes one on demand into a new ``model_card/<UTC time>/``. A card is evidence: it is written once and never
replaced, so the card a reviewer saw stays what it was; ``audit_evidence.latest_model_card`` finds the newest.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tasks.governance.audit_evidence import CARD_DIR, CARD_FILES, EvidenceLocator
from tasks.governance.audit_report import CanarySummary, GateSummary, canary_summary, gate_summaries
from tasks.governance.dataset_provenance import DatasetUse, datasets_markdown, version_datasets
from tasks.registry import ModelVersionRecord
from tasks.settings import Settings


class CardEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int | None
    recorded_at: str
    actor: str
    action: str
    reason: str


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    generated_at: str
    status: str
    description: str
    intended_use: str
    limitations: list[str] = Field(description="Registered limitations first, then those the evidence shows.")
    registered_by: str
    registered_at: str
    run_id: str
    arch: str
    training_data: dict[str, str] = Field(description="Reference snapshot fingerprint and the contract it was held to.")
    datasets: list[DatasetUse] = Field(default_factory=list, description="Every dataset the version was trained "
                                       "and evaluated on, with its source, licence, owner and personal data.")
    deployed_artifact: dict[str, str]
    metrics: CanarySummary | None
    compile_targets: list[dict]
    drift: dict | None
    gates: list[GateSummary]
    approvals: list[CardEntry]
    history: list[CardEntry] = Field(description="Every ledger entry about this version, oldest first.")


def _gate(settings: Settings, record: ModelVersionRecord, role: str) -> dict | None:
    try:
        from tasks.stores import latest_evidence_dir

        return json.loads((latest_evidence_dir(settings, record.name, record.version) / f"{role}.json").read_text())
    except (OSError, ValueError):
        return None


def limitations_from(record: ModelVersionRecord, metrics: CanarySummary | None, compilation: dict | None,
                     drift: dict | None, gates: list[GateSummary]) -> list[str]:
    """What the evidence says this version should not be trusted with, each naming its value."""
    t = record.tags
    out = [line.strip() for line in t.get("lockgate.limitations", "").replace(";", "\n").splitlines() if line.strip()]
    out.append(f"Evaluated only on data that satisfies contract {t.get('lockgate.contract', '?')} "
               f"v{t.get('lockgate.contract_version', '?')}; rows outside it are quarantined, never scored.")
    if metrics is not None:
        if metrics.champion_version is None:
            out.append("First deployment: held to the absolute thresholds only, not compared with a champion.")
        for s in metrics.slices:
            if s.get("status") not in ("ok", None):
                out.append(f"Slice {s.get('column')}={s.get('value')} (n={s.get('n')}): {s.get('status')}.")
        for v in metrics.variants:
            if not v.get("accepted"):
                out.append(f"Variant {v.get('variant')} rejected: {v.get('reason')}")
    for v in (compilation or {}).get("report", {}).get("verdicts", []) if compilation and compilation.get("report") else []:
        if v.get("verdict") != "fits":
            out.append(f"Target {v.get('target')}: {v.get('verdict')} ({v.get('reason')}).")
    if drift is not None and drift.get("decision") in ("warn", "breach"):
        out.append(f"Drift {drift['decision']} at evaluation: columns {', '.join(drift.get('drifted_columns', []))}.")
    for g in gates:
        if not g.passed:
            out.append(f"Gate {g.gate}: {g.decision}: {'; '.join(g.reasons)[:500]}")
    return out


def build_model_card(settings: Settings, registry, ledger, record: ModelVersionRecord, out_dir: Path | None = None
                     ) -> ModelCard:
    """The card of ``record`` from its registration metadata, gate results and ledger entries."""
    record = registry.get(record.name, record.version)  # tags change along the lifecycle
    t = record.tags
    locator = EvidenceLocator(settings, registry, out_dir)
    gates = gate_summaries(settings, locator, record.name, record.version)
    metrics = canary_summary(settings, record.name, record.version)
    compilation, drift = _gate(settings, record, "compilation"), _gate(settings, record, "drift")
    entries = [e for e in ledger.entries(model_name=record.name)
               if e.version == record.version or (e.version is None and e.previous_version == record.version)]
    history = [CardEntry(seq=e.seq, recorded_at=e.recorded_at, actor=e.actor, action=e.action, reason=e.reason)
               for e in entries]
    description = registry.run_name(record)
    task = metrics.task if metrics else "classification"
    intended = t.get("lockgate.intended_use") or (
        f"Batch {task} of {t.get('lockgate.contract', '?')} records through its exported, hash-verified artifact"
        + (f": {description}" if description else "."))
    report = (compilation or {}).get("report") or {}
    return ModelCard(
        model_name=record.name, version=record.version,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), status=t.get("lockgate.status", "-"),
        description=description, intended_use=intended,
        limitations=limitations_from(record, metrics, compilation, drift, gates),
        registered_by=t.get("lockgate.registered_by", "-"),
        registered_at=datetime.fromtimestamp(record.created_at_ms / 1000, timezone.utc).isoformat(timespec="seconds"),
        run_id=record.run_id, arch=t.get("lockgate.arch", "-"),
        training_data={"reference_sha256": t.get("lockgate.reference_sha256", "-"),
                       "reference_rows": t.get("lockgate.reference_rows", "-"),
                       "contract": f"{t.get('lockgate.contract', '-')}@{t.get('lockgate.contract_version', '-')}",
                       "contract_fingerprint": t.get("lockgate.contract_fingerprint", "-"),
                       "params_sha256": t.get("lockgate.params_sha256", "-")},
        datasets=version_datasets(settings, registry, record),
        deployed_artifact={"sha256": t.get("lockgate.artifact_sha256", "-"), "platforms": t.get("lockgate.platforms", "-"),
                           "variants_accepted": t.get("lockgate.variants_accepted", "-")},
        metrics=metrics, compile_targets=report.get("verdicts", []),
        drift=None if drift is None else {k: drift.get(k) for k in ("decision", "drifted_share", "drifted_columns",
                                                                      "n_reference", "n_current")},
        gates=gates, approvals=[h for h in history if h.action.startswith("approval.")], history=history)


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def card_markdown(card: ModelCard) -> str:
    lines = [f"# Model card: {card.model_name} v{card.version}", "",
             f"Status **{card.status}** · generated {card.generated_at} from the version's evidence", "",
             "## Intended use", "", card.intended_use, "", "## Limitations", ""]
    lines += [f"- {x}" for x in card.limitations]
    lines += ["", "## Registration", ""] + _md_table(
        ["registered", "by", "arch", "MLflow run", "description"],
        [[card.registered_at, card.registered_by, card.arch, card.run_id, card.description or "-"]])
    lines += ["", "## Training data", ""] + _md_table(["fact", "value"], [[k, f"`{v}`"] for k, v in card.training_data.items()])
    lines += ["", "## Datasets: provenance and licence", ""] + datasets_markdown(card.datasets)
    lines += ["", "## Deployed artifact", ""] + _md_table(["fact", "value"], [[k, f"`{v}`"] for k, v in card.deployed_artifact.items()])
    lines += ["", "## Metrics (golden set)", ""]
    if card.metrics is None:
        lines.append("No canary evidence (the lifecycle stopped before the canary).")
    else:
        m = card.metrics
        lines += [f"Task {m.task}; canary {m.decision}; compared with "
                  f"{'champion v' + str(m.champion_version) if m.champion_version else 'no champion'}.", ""]
        lines += _md_table(["metric", "value"], [[k, str(int(v)) if k == "n" else f"{v:.4f}"] for k, v in m.metrics.items()])
        if m.deltas:
            lines += ["", "Deltas vs the champion with paired bootstrap confidence intervals:", ""]
            lines += _md_table(["metric", "candidate", "champion", "delta", "CI"],
                               [[d.metric, f"{d.candidate:.4f}", f"{d.champion:.4f}", f"{d.delta:+.4f}",
                                 f"{d.confidence:.0%} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"] for d in m.deltas])
        if m.slices:
            lines += ["", "Slices:", ""]
            lines += _md_table(["slice", "n", "metric", "candidate", "champion", "delta", "CI", "status"],
                               [[f"{s['column']}={s['value']}", s["n"], s["metric"], _num(s.get("candidate")),
                                 _num(s.get("champion")), _num(s.get("delta")),
                                 "-" if s.get("ci_low") is None else f"[{s['ci_low']:+.4f}, {s['ci_high']:+.4f}]",
                                 s["status"]] for s in m.slices])
        if m.variants:
            lines += ["", "Precision variants:", ""]
            lines += _md_table(["variant", "accepted", "reason"], [[v["variant"], v["accepted"], v["reason"]]
                                                                    for v in m.variants])
    lines += ["", "## Compile targets", ""]
    lines += _md_table(["target", "description", "verdict", "reason"],
                       [[v.get("target"), v.get("description"), v.get("verdict"), v.get("reason")]
                        for v in card.compile_targets]) if card.compile_targets else ["No compile report."]
    lines += ["", "## Drift at evaluation", ""]
    lines += [f"{card.drift['decision']}: drifted share {card.drift['drifted_share']:.3f} "
              f"({', '.join(card.drift['drifted_columns']) or 'no column'}; {card.drift['n_reference']} reference rows, "
              f"{card.drift['n_current']} current rows)"] if card.drift else ["No drift evidence."]
    lines += ["", "## Gates", ""] + _md_table(["gate", "decision", "reasons"],
                                             [[g.gate, g.decision, "; ".join(g.reasons)] for g in card.gates])
    lines += ["", "## Approvals", ""]
    lines += _md_table(["when", "action", "by", "reason"], [[a.recorded_at[:19], a.action, a.actor, a.reason]
                                                             for a in card.approvals]) if card.approvals else ["None recorded."]
    lines += ["", "## History (ledger)", ""] + _md_table(
        ["#", "when", "action", "by", "reason"], [[h.seq, h.recorded_at[:19], h.action, h.actor, h.reason] for h in card.history])
    return "\n".join(lines) + "\n"


def _num(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def card_html(card: ModelCard) -> str:
    """The markdown's content as a self-contained HTML page (headings, lists, pipe tables, `code`)."""
    from tasks.governance.audit_html import CSS

    out: list[str] = []
    block: list[str] = []  # consecutive table rows or list items

    def inline(text: str) -> str:
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", escape(text)).replace("**", "")

    def flush():
        if block and block[0].startswith("|"):
            rows = [_split_row(r) for r in block if not set(r.replace("|", "")) <= {"-"}]
            out.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in rows[0]) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
                       + "</tbody></table>")
        elif block:
            out.append("<ul>" + "".join(f"<li>{inline(item[2:])}</li>" for item in block) + "</ul>")
        block.clear()

    for line in card_markdown(card).splitlines():
        if line.startswith("|") or line.startswith("- "):
            if block and block[0][0] != line[0]:
                flush()
            block.append(line)
            continue
        flush()
        if line.startswith("# "):
            out.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.startswith("## "):
            out.append(f"<h2>{inline(line[3:])}</h2>")
        elif line:
            out.append(f"<p>{inline(line)}</p>")
    flush()
    body = "\n".join(out)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Model card {escape(card.model_name)} '
            f'v{card.version}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n')


def _split_row(row: str) -> list[str]:
    """``| a | b \\| c |`` -> ["a", "b | c"]: cells of a markdown pipe-table row, escaped pipes restored."""
    cells = re.split(r"(?<!\\)\|", row.strip())[1:-1]
    return [c.strip().replace("\\|", "|") for c in cells]


def write_model_card(settings: Settings, registry, ledger, record: ModelVersionRecord, out_dir: Path | None = None,
                     *, log_to_mlflow: bool = True) -> tuple[ModelCard, list[Path]]:
    """Write model_card.md/.html/.json into ``out_dir`` (default: a new folder
    ``evidence/<model>/v<version>/model_card/<UTC time>/``) and log them to the version's MLflow run under
    ``model_card/<that folder's name>``. Refused (one line) where a card already is: a card is never replaced."""
    from tasks.errors import LockgateError
    from tasks.paths import new_folder

    if out_dir is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = new_folder(settings.evidence_dir / record.name / f"v{record.version}" / CARD_DIR, stamp)
    else:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
    files = [out / name for name in CARD_FILES]
    if taken := [f.name for f in files if f.exists()]:
        raise LockgateError(f"{out} already holds a model card ({', '.join(taken)}): a card is never replaced; "
                            "write it to another folder")
    card = build_model_card(settings, registry, ledger, record, out)
    for path, text in zip(files, (card_markdown(card), card_html(card), card.model_dump_json(indent=2))):
        with path.open("x", encoding="utf-8") as f:  # exclusive: a card written meanwhile is not replaced either
            f.write(text)
    if log_to_mlflow:
        artifact_dir = out.parent.name if out.name == CARD_DIR else out.name  # lifecycle-<n>/model_card -> lifecycle-<n>
        registry.log_files(record, files, f"{CARD_DIR}/{artifact_dir}")
    return card, files
