"""Find the evidence files a ledger entry names by hash, and re-check each file's sha256 against the ledger.

A ledger entry's ``evidence`` maps a role to the sha256 of a file, not to a path. Where the
writers of those entries put the files is known (the rules in :meth:`EvidenceLocator.expected`):
a gate's result at ``evidence/<model>/v<version>/<role>.json``, the registered files in the
version's MLflow run, a partition's predictions, validation and drift files under its name.
A role no rule knows (a new action's evidence), or a file not where the rule says (the
previous champion's alias entry carries the evidence of the version that replaced it), is
looked up by content among the version folders' gate results, then among every file under
LOCKGATE_HOME's evidence, predictions and quarantine folders, so it is checked too.

The verdict of each check: ``ok`` (the file holds the recorded bytes), ``mismatch`` (the file
is where it should be but its bytes changed since the entry was written) or ``missing``
(no file holds the recorded bytes).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.evidence import sha256_file
from tasks.settings import Settings

REGISTERED_FILES = ("params.msgpack", "model_config.json", "feature_spec.json", "reference.parquet", "contract.yaml",
                    "model_code.json",  # the manifest of a user's model code (models given by code)
                    "poisoning_screen.json")  # the registration's poisoning screen (when a policy was given)
# roles of a partition's entry -> its file, relative to (folder kind, partition)
PARTITION_FILES = {
    "predictions": ("predictions", "predictions.parquet"),
    "validation.ge_result": ("batches", "ge_validation_result.json"),
    "validation.quarantine": ("quarantine", "quarantine.parquet"),
    "drift.html": ("batches", "drift/drift_report.html"),
    "drift.json": ("batches", "drift/drift_snapshot.json"),
    "drift.result": ("batches", "drift/drift.json"),
}
_PARTITION = re.compile(r"\bpartition (\S+?):?(?:\s|$)")


class EvidenceCheck(BaseModel):
    """One evidence file named by a ledger entry (or by a gate result), re-hashed now."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="The role the entry gives the file, e.g. 'canary' or 'predictions'.")
    sha256: str = Field(description="The sha256 recorded when the decision was made.")
    status: Literal["ok", "mismatch", "missing"]
    path: str | None = Field(None, description="Where the file is (or should be) now.")
    link: str | None = Field(None, description="Link to the file: relative to the report, or a file:// URI.")
    actual_sha256: str | None = Field(None, description="The file's sha256 now, when it differs.")


def is_identifier(role: str) -> bool:
    """Evidence roles that record an identifier (the contract's fingerprint), not the sha256 of a file."""
    return role.endswith(".fingerprint")


def partition_of(reason: str) -> str | None:
    """The partition a partition.* entry is about: its reason reads 'v1 scored partition date=...: ...'."""
    m = _PARTITION.search(reason)
    return m.group(1) if m else None


class EvidenceLocator:
    """Locates and re-hashes evidence files for one report; each file is hashed at most once."""

    def __init__(self, settings: Settings, registry, link_base: Path | None):
        self.settings = settings
        self.registry = registry
        self.link_base = link_base
        self._hashes: dict[Path, str] = {}
        self._index: dict[str, Path] | None = None
        self._records: dict[tuple[str, int], object] = {}

    # -- hashing and links --------------------------------------------------------------
    def sha(self, path: Path) -> str:
        if path not in self._hashes:
            self._hashes[path] = sha256_file(path)
        return self._hashes[path]

    def link(self, path: Path | str | None) -> str | None:
        """Relative to the report's folder when both sit under one root folder, else a file:// URI."""
        if path is None:
            return None
        path = Path(path).resolve()
        if self.link_base is not None:
            try:
                return Path(os.path.relpath(path, self.link_base.resolve())).as_posix()
            except ValueError:  # another drive
                pass
        return path.as_uri()

    # -- where a role's file should be ------------------------------------------------------
    def _record(self, model: str, version: int):
        key = (model, version)
        if key not in self._records:
            try:
                self._records[key] = self.registry.get(model, version)
            except Exception:  # a version deleted from the registry: its files cannot be found
                self._records[key] = None
        return self._records[key]

    def expected(self, model: str, version: int | None, role: str, reason: str = "") -> Path | None:
        """Where the writer of an entry put the file of ``role``; None when no rule knows the role."""
        from tasks.registration.inference import ARTIFACT_FILE

        s = self.settings
        if role in PARTITION_FILES:
            partition = partition_of(reason)
            if partition is None:
                return None
            kind, rel = PARTITION_FILES[role]
            root = {"predictions": s.predictions_dir, "quarantine": s.quarantine_dir,
                    "batches": s.evidence_dir / model / "batches"}[kind]
            return (root / partition / rel) if kind == "batches" else (root / model / partition / rel)
        if version is None:
            return None
        if role in REGISTERED_FILES or role == "artifact.jaxexport":
            record = self._record(model, version)
            if record is None:
                return None
            name = ARTIFACT_FILE if role == "artifact.jaxexport" else role
            found = self.registry.artifact_file(record, f"model/{name}", s.home_dir / "cache" / "audit")
            return found  # None: not in the run at all
        if "." not in role and "/" not in role:  # a gate result published for the version
            return s.evidence_dir / model / f"v{version}" / f"{role}.json"
        return None

    def _by_content(self, sha256: str) -> Path | None:
        if self._index is None:
            self._index = {}
            for root in (self.settings.evidence_dir, self.settings.predictions_dir, self.settings.quarantine_dir):
                if root.is_dir():
                    for path in sorted(root.rglob("*")):
                        if path.is_file():
                            self._index.setdefault(self.sha(path), path)
        return self._index.get(sha256)

    # -- checks -------------------------------------------------------------------------
    def check(self, role: str, sha256: str, path: Path | None, elsewhere: list[Path] = ()) -> EvidenceCheck:
        """Check one file against its recorded hash. When the file at ``path`` is absent or differs, the recorded
        bytes may still be kept elsewhere (``elsewhere`` first, then any evidence file): e.g. the previous
        champion's alias entry carries the evidence of the version that replaced it."""
        if path is not None and path.is_file() and self.sha(path) == sha256:
            return EvidenceCheck(role=role, sha256=sha256, status="ok", path=str(path), link=self.link(path))
        found = next((p for p in elsewhere if p != path and p.is_file() and self.sha(p) == sha256), None)
        found = found or self._by_content(sha256)
        if found is not None:
            return EvidenceCheck(role=role, sha256=sha256, status="ok", path=str(found), link=self.link(found))
        if path is None or not path.is_file():
            return EvidenceCheck(role=role, sha256=sha256, status="missing", path=str(path) if path else None)
        return EvidenceCheck(role=role, sha256=sha256, status="mismatch", path=str(path), link=self.link(path),
                             actual_sha256=self.sha(path))

    def check_entry(self, model: str, version: int | None, evidence: dict[str, str], reason: str,
                    files: dict[str, str] | None = None) -> list[EvidenceCheck]:
        """Each file of an entry against its recorded sha256. A file the entry names by path (write-once evidence)
        is checked there and only there: it was written once and never replaced, so any other bytes are a change."""
        checks = []
        for role, sha in sorted(evidence.items()):
            if is_identifier(role):
                continue
            if files and role in files:
                checks.append(self.check_named(role, sha, files[role]))
                continue
            gate_role = "." not in role and "/" not in role
            elsewhere = sorted((self.settings.evidence_dir / model).glob(f"v*/{role}.json")) if gate_role else []
            checks.append(self.check(role, sha, self.expected(model, version, role, reason), elsewhere))
        return checks

    def check_named(self, role: str, sha256: str, where: str) -> EvidenceCheck:
        """The file a ledger row names by path (a local path or a pyarrow filesystem URI) against its sha256."""
        if "://" in where:
            actual = _remote_sha256(where)
            if actual is None:
                return EvidenceCheck(role=role, sha256=sha256, status="missing", path=where)
            status = "ok" if actual == sha256 else "mismatch"
            return EvidenceCheck(role=role, sha256=sha256, status=status, path=where, link=where,
                                 actual_sha256=None if status == "ok" else actual)
        path = Path(where)
        if not path.is_file():
            return EvidenceCheck(role=role, sha256=sha256, status="missing", path=where)
        actual = self.sha(path)
        return EvidenceCheck(role=role, sha256=sha256, status="ok" if actual == sha256 else "mismatch", path=where,
                             link=self.link(path), actual_sha256=None if actual == sha256 else actual)

    def check_gate_files(self, gate_json: Path) -> list[EvidenceCheck]:
        """The files a gate result names (plots, HTML reports, GE results), held to the hashes in that result."""
        import json

        try:
            result = json.loads(gate_json.read_text())
        except (OSError, ValueError):
            return []
        files = result.get("evidence") or {}
        return [self.check(role, ev.get("sha256", ""), Path(ev["path"]) if ev.get("path") else None)
                for role, ev in sorted(files.items()) if isinstance(ev, dict)]


def _remote_sha256(uri: str) -> str | None:
    """sha256 of an object at a pyarrow filesystem URI (``s3://...``), or None when it cannot be read."""
    import hashlib

    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        h = hashlib.sha256()
        with fs.open_input_stream(path) as f:
            while block := f.read(1 << 20):
                h.update(block)
        return h.hexdigest()
    except Exception:  # noqa: BLE001 - gone, not allowed, or the store unreachable: not verifiable now
        return None


CARD_DIR, CARD_FILES = "model_card", ("model_card.md", "model_card.html", "model_card.json")


def latest_model_card(settings: Settings, name: str, version: int) -> Path | None:
    """The newest model card HTML of the version (a lifecycle run's ``lifecycle-<n>/model_card/`` or an on-demand
    ``model_card/<UTC time>/``, tasks/governance/model_card.py), None when none was written."""
    folder = settings.evidence_dir / name / f"v{version}"
    cards = [*folder.glob(f"lifecycle-*/{CARD_DIR}/{CARD_FILES[1]}"), *folder.glob(f"{CARD_DIR}/*/{CARD_FILES[1]}")]
    return max(cards, key=lambda p: (p.stat().st_mtime_ns, str(p)), default=None)
