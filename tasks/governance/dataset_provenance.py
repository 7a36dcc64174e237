"""Provenance and licence of every dataset a version was trained and evaluated on, for its model card and the audit
report.

A version meets three datasets in its lifecycle: the **reference** snapshot it was registered with (its training
data, stored with the version, sha256 in its tags), the **golden** set the validation gate and the canary
evaluated it on (path and rows from ``validation-golden.json``) and the **stream** data the drift gate and the
shadow comparison measured (path and rows from ``drift.json``; the golden set when the lifecycle got no stream
partition; the canary's shadow rows, without a path, when the lifecycle stopped before drift). All three are held
to the version's registered data contract, so their source, licence, owner and personal-data classification are
that contract's (data_contracts/provenance.py): one contract per dataset shape, not per file.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from tasks.registry import ModelVersionRecord
from tasks.settings import Settings

ROLES = ("reference", "golden", "stream")


class DatasetUse(BaseModel):
    """One dataset a version was trained or evaluated on, with its contract's provenance and licence."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="reference (trained on), golden (evaluated: validation, canary) or stream "
                      "(evaluated: drift, shadow).")
    used_for: str = Field(description="What the lifecycle did with it, in words.")
    dataset: str = Field(description="Path as given to the lifecycle, or the registered snapshot.")
    sha256: str | None = Field(None, description="Its sha256 where recorded (the reference snapshot).")
    rows: int | None = Field(None, description="Rows, as the gate that read it counted them.")
    contract: str = Field(description="name@version of the contract it was held to.")
    source: str | None = Field(description="The contract's dataSource (None: not recorded).")
    license: str | None = Field(description="The contract's SPDX licence (None: not recorded or 'unknown').")
    owner: str | None = Field(description="The contract's owner (ODCS team).")
    personal_data: str | None = Field(description="The contract's personalData category.")
    classification: str = Field(description="Columns per ODCS classification, e.g. 'confidential: 9, internal: 4'.")


def version_datasets(settings: Settings, registry, record: ModelVersionRecord) -> list[DatasetUse]:
    """The reference, golden and stream datasets of ``record`` (those its evidence names), each with provenance.

    A version whose contract cannot be read (its stored copy changed) is listed with no provenance, never raised:
    the audit report's evidence check names that problem."""
    from tasks.stores import cache_dir, latest_evidence_dir

    t = record.tags
    contract_ref = f"{t.get('lockgate.contract', '-')}@{t.get('lockgate.contract_version', '-')}"
    try:
        from tasks.registration.inference import load_version_contract

        provenance = load_version_contract(registry, record, cache_dir(settings)).provenance
        facts = dict(source=provenance.source, license=provenance.license, owner=provenance.owner,
                     personal_data=provenance.personal_data, classification=provenance.classification_summary())
    except Exception as exc:  # noqa: BLE001 - any unreadable contract: shown as such, the report goes on
        facts = dict(source=None, license=None, owner=None, personal_data=None,
                     classification=f"contract unreadable: {str(exc).splitlines()[0][:200]}")
    rows = t.get("lockgate.reference_rows")
    out = [DatasetUse(role="reference", used_for="trained on (registered snapshot)",
                      dataset=f"{record.name} v{record.version} reference.parquet",
                      sha256=t.get("lockgate.reference_sha256"), rows=int(rows) if (rows or "").isdigit() else None,
                      contract=contract_ref, **facts)]
    folder = latest_evidence_dir(settings, record.name, record.version)
    golden, drift = _read(folder / "validation-golden.json"), _read(folder / "drift.json")
    if golden and golden.get("dataset"):
        out.append(DatasetUse(role="golden", used_for="evaluated on (validation, canary metrics)",
                              dataset=str(golden["dataset"]), rows=golden.get("n_rows"), contract=contract_ref,
                              **facts))
    if drift and drift.get("dataset"):
        same = golden is not None and drift["dataset"] == golden.get("dataset")
        out.append(DatasetUse(role="stream", used_for="evaluated on (drift, shadow)"
                              + (": the golden set, no stream partition was given" if same else ""),
                              dataset=str(drift["dataset"]), rows=drift.get("n_current"), contract=contract_ref,
                              **facts))
    elif (shadow := (_read(folder / "canary.json") or {}).get("shadow")) and shadow.get("n"):
        # the lifecycle stopped after the canary: its shadow comparison scored the stream data, whose path the
        # canary result does not record
        out.append(DatasetUse(role="stream", used_for="evaluated on (shadow only: the lifecycle stopped before drift)",
                              dataset="the partition given to the lifecycle (path not recorded by the canary)",
                              rows=shadow.get("n"), contract=contract_ref, **facts))
    return out


def _read(path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def datasets_markdown(datasets: list[DatasetUse]) -> list[str]:
    """The model card's table: one row per dataset with source, licence, owner and personal data."""
    if not datasets:
        return ["No dataset recorded."]
    head = ["dataset", "used for", "data", "rows", "contract", "licence (SPDX)", "source", "owner", "personal data",
            "column classification"]
    rows = [[d.role, d.used_for, f"`{d.dataset}`" + (f" sha256 `{d.sha256[:16]}`" if d.sha256 else ""),
             "-" if d.rows is None else str(d.rows), d.contract, d.license or "NOT RECORDED", d.source or "-",
             d.owner or "-", d.personal_data or "-", d.classification] for d in datasets]

    def cell(v: str) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
