"""Typed gate evidence shared by every gate.

Each gate returns a subclass of :class:`GateResult`: the measured values, the
thresholds they were held to (one :class:`Check` each), the decision, the reasons,
and the evidence files with their sha256. Decisions are pure functions over these
values so they can be tested without any orchestrator.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Comparison = Literal["<=", ">=", "<", ">", "==", "in", "info"]


class Check(BaseModel):
    """One measured value held to one threshold."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What was measured, e.g. 'auc_delta' or 'column:income'.")
    value: float | int | str | bool | None = Field(description="The measured value.")
    threshold: float | int | str | bool | list | None = Field(
        default=None, description="The threshold from the policy or contract."
    )
    comparison: Comparison = Field(default="info", description="How value is held to threshold.")
    passed: bool = Field(description="Whether the value satisfies the threshold.")
    informational: bool = Field(
        default=False, description="Measured and held to its threshold, reported, but never fails the gate (e.g. "
        "shadow checks under canary.shadow_decides: false, a latency bucket under canary.latency_floor_ms)."
    )
    note: str | None = Field(
        default=None, description="The relation in words when it is not 'value <comparison> threshold' (e.g. a CI "
        "bound against a margin, a bucket not judged); describe() prints it."
    )

    def relation(self) -> str:
        """The relation that holds, e.g. 'value 0.39 > limit 0.3' for a failed '<= 0.3' check."""
        if self.note is not None:
            return self.note
        if self.comparison == "info":
            return _fmt(self.value)
        if self.value is None:
            return f"no value measured (limit: {self.comparison} {_fmt(self.threshold)})"
        op = self.comparison if self.passed else _NEGATED[self.comparison]
        value, limit = _fmt_pair(self.value, self.threshold)
        return f"value {value} {op} {'' if self.comparison == 'in' else 'limit '}{limit}"

    def describe(self) -> str:
        """'name: relation: verdict', the relation being the one that holds: 'shadow_psi: value 0.76 > limit 0.6:
        FAILED', 'latency_p99_ratio:b64: value 1.2 <= limit 3: ok'; an informational check ends '(informational)'."""
        if self.informational:
            return f"{self.name}: {self.relation()} (informational)"
        return f"{self.name}: {self.relation()}: {'ok' if self.passed else 'FAILED'}"


_NEGATED = {"<=": ">", ">=": "<", "<": ">=", ">": "<=", "==": "!=", "in": "not in"}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _decimals(text: str) -> int | None:
    if "e" in text or "n" in text:  # exponent, nan, inf: leave as is
        return None
    return len(text.split(".", 1)[1]) if "." in text else 0


def _fmt_pair(value: object, threshold: object) -> tuple[str, str]:
    """Value as usual; a float threshold padded to the value's decimals, up to two ('0.76' and '0.60')."""
    a, b = _fmt(value), _fmt(threshold)
    if not all(isinstance(v, float) for v in (value, threshold)):
        return a, b
    da, db = _decimals(a), _decimals(b)
    if da is None or db is None or db >= min(da, 2):
        return a, b
    return a, f"{threshold:.{min(da, 2)}f}"


def held_to(name: str, value: float | int | None, comparison: Comparison, threshold: float | int) -> Check:
    """Build a Check by comparing ``value`` with ``threshold``; a missing value fails."""
    if value is None:
        return Check(name=name, value=None, threshold=threshold, comparison=comparison, passed=False)
    ops = {
        "<=": value <= threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        ">": value > threshold,
        "==": value == threshold,
    }
    return Check(name=name, value=value, threshold=threshold, comparison=comparison, passed=bool(ops[comparison]))


class EvidenceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str


class GateResult(BaseModel):
    """Base of every gate's typed result."""

    model_config = ConfigDict(extra="forbid")

    gate: str = Field(description="Gate name: validation, compilation, canary, drift, approval, ...")
    passed: bool = Field(description="Whether the gate lets the candidate through.")
    decision: str = Field(description="Short decision word, e.g. pass, fail, quarantine, approved.")
    reasons: list[str] = Field(default_factory=list, description="Human-readable reasons naming values and thresholds.")
    checks: list[Check] = Field(default_factory=list)
    evidence: dict[str, EvidenceFile] = Field(default_factory=dict, description="Evidence files by role.")

    def failed_checks(self) -> list[Check]:
        """Checks that fail the gate (an informational check over its limit is reported, not failed)."""
        return [c for c in self.checks if not c.passed and not c.informational]

    def summary_line(self) -> str:
        return f"{self.gate}: {self.decision}" + (f" ({'; '.join(self.reasons)})" if self.reasons else "")

    def markdown(self) -> str:
        """Markdown table of the checks, for Prefect artifacts and the MLflow run."""
        lines = [f"## {self.gate}: **{self.decision}**", ""]
        lines += [f"- {r}" for r in self.reasons]
        if self.checks:
            lines += ["", "| check | value | comparison | threshold | passed |", "|---|---|---|---|---|"]
            for c in self.checks:
                lines.append(f"| {c.name} | {_fmt(c.value)} | {c.comparison} | {_fmt(c.threshold)} | {_verdict_cell(c)} |")
        if self.evidence:
            lines += ["", "| evidence | sha256 |", "|---|---|"]
            lines += [f"| {k}: `{v.path}` | `{v.sha256[:16]}` |" for k, v in self.evidence.items()]
        return "\n".join(lines)


def _verdict_cell(c: Check) -> str:
    return ("yes" if c.passed else "NO") + (" (informational)" if c.informational else "")


def as_informational(checks: list[Check]) -> list[Check]:
    """The same checks, measured and held to their thresholds, reported, but never failing their gate."""
    return [c.model_copy(update={"informational": True}) for c in checks]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_file(path: str | Path) -> EvidenceFile:
    return EvidenceFile(path=str(path), sha256=sha256_file(path))


def write_json(path: str | Path, payload: dict | list | BaseModel) -> EvidenceFile:
    """Write JSON atomically (temp name then rename) and return its evidence record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = payload.model_dump_json(indent=2) if isinstance(payload, BaseModel) else json.dumps(payload, indent=2, default=str)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return evidence_file(path)


def remove_stale(*paths: Path) -> None:
    """Remove files an earlier run left where this run writes none (they would not be this run's evidence); a
    folder of that name is not such a file and is left alone."""
    for path in paths:
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
