"""One ledger row and the outcome of walking the chain: the types every ledger reader shares.

The row's hash covers its content, its ``seq`` and the previous row's hash
(:meth:`LedgerEntry.content_hash`); tasks/ledger/chain.py walks rows by it and
tasks/ledger/store.py writes them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, model_validator

GENESIS = "0" * 64


class LedgerEntry(BaseModel):
    """One ledger row. ``evidence`` maps an evidence role to the sha256 of its file, ``evidence_files`` the same
    role to the file's path (or URI), written once and never replaced (see tasks/stores.py): the exact file the
    decision relied on. A writer may give ``evidence`` values as ``EvidenceFile``s (path and sha256, or their dict);
    the row splits them into the two maps."""

    model_config = ConfigDict(extra="forbid")

    seq: int | None = None
    recorded_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="microseconds"))
    actor: str
    action: str = Field(description="alias.set, alias.delete, candidate.rejected, approval.auto, promotion.started, "
                        "promotion.committed, rollback.committed, partition.scored, ...")
    model_name: str
    version: int | None = None
    alias: str | None = None
    previous_version: int | None = None
    reason: str
    policy: str | None = None
    flow_run_id: str | None = None
    evidence: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] | None = Field(
        None, description="the model's aliases after this row, on every row that changes them (None otherwise)")
    proof: dict[str, str] | None = Field(
        None, description="A signed approval's proof: signed_payload, signature (base64 Ed25519) and key "
        "(fingerprint); audit verify re-checks it against the policy's keys. Hashed with the row when present.")
    evidence_files: dict[str, str] | None = Field(
        None, description="Where each evidence file of ``evidence`` is (path or URI), by the same role; rows from "
        "before write-once evidence have none. Hashed with the row when present.")
    prev_hash: str = GENESIS
    entry_hash: str = ""

    @model_validator(mode="before")
    @classmethod
    def _split_evidence_files(cls, data):
        """``evidence`` values that name their file (an EvidenceFile or its dict) become sha256 + ``evidence_files``."""
        if not isinstance(data, dict) or not isinstance(data.get("evidence"), dict):
            return data
        hashes, files = {}, dict(data.get("evidence_files") or {})
        for role, value in data["evidence"].items():
            if isinstance(value, str):
                hashes[role] = value
                continue
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if not isinstance(value, dict) or not {"path", "sha256"} <= set(value):
                raise ValueError(f"evidence {role!r} is neither a sha256 nor a file with path and sha256")
            hashes[role], files[role] = str(value["sha256"]), str(value["path"])
        return {**data, "evidence": hashes, "evidence_files": files or data.get("evidence_files")}

    def content_hash(self, seq: int | None = None) -> str:
        """sha256 of the row's content, its seq (``seq`` overrides it) and the previous row's hash."""
        optional = {k for k in ("proof", "evidence_files") if getattr(self, k) is None}
        body = self.model_dump(exclude={"entry_hash"} | optional)
        if seq is not None:
            body["seq"] = seq
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class LedgerVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    anchor: str = Field("", description="what the anchor check found (or why there is none)")
