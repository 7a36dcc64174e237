"""Check a contract file and report findings instead of raising.

:func:`lint_contract` returns a list of :class:`LintFinding`:

- **error**: whatever :func:`~data_contracts.contract.load_contract` refuses (invalid
  YAML, unknown key, min > max, bad regex, unknown type, ...) as one finding; and, for a
  contract that loads, whatever stops its Great Expectations suite from building (with
  and without the label column).
- **warning**: no owner (a team member with role owner, or a team name); a column
  without a description; a version that is not semver ``X.Y.Z`` (``contract diff``
  cannot tell the bump); no dataset licence, data source or personal-data category,
  columns without a ``classification`` (:mod:`data_contracts.provenance`). A malformed
  licence (not an SPDX expression) is an error: the contract does not load.

Feature columns without their own drift setting use ``driftDefaults``; that is fine
and not reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from data_contracts.contract import ContractError, load_contract


class LintFinding(BaseModel):
    """One problem in a contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["error", "warning"] = Field(description="error: the contract cannot be used; warning: it can.")
    path: str = Field(description="Key path in the contract, e.g. schema[0](applications).properties[2](age).")
    message: str = Field(description="What is wrong, one line.")

    def line(self) -> str:
        return f"{self.level}: {self.path}: {self.message}"


def lint_contract(path: str | Path, *, build_suites: bool = True) -> list[LintFinding]:
    """Lint the contract at ``path`` (a file path or a bare contract name).

    Args:
      path: contract file, or a name resolved like :func:`load_contract`.
      build_suites: also build the GE suite with and without the label (imports GE, ~9 s once).

    Returns:
      Findings, errors first; empty for a clean contract.
    """
    try:
        contract = load_contract(path if isinstance(path, str) else Path(path))
    except ContractError as exc:
        return [_error_finding(str(exc), str(path))]

    findings: list[LintFinding] = []
    if build_suites:
        from data_contracts.ge_suite import SuiteBuildError, build_suite

        for include_label in (True, False):
            try:
                build_suite(contract, include_label=include_label)
            except (ContractError, SuiteBuildError) as exc:
                f = _error_finding(str(exc), str(contract.source))
                if f not in findings:
                    findings.append(f)
    else:
        from data_contracts.ge_suite import expectation_specs

        for include_label in (True, False):
            try:
                expectation_specs(contract, include_label=include_label)
            except ContractError as exc:
                f = _error_finding(str(exc), str(contract.source))
                if f not in findings:
                    findings.append(f)

    if contract.owner is None:
        findings.append(LintFinding(level="warning", path="team",
                                    message="no owner: add a team member with role owner (or a team name)"))
    if not re.fullmatch(r"v?\d+\.\d+\.\d+(?:[-+].*)?", str(contract.version)):
        findings.append(LintFinding(level="warning", path="version",
                                    message=f"version {contract.version!r} is not semver X.Y.Z; contract diff cannot "
                                    "tell the bump"))
    from data_contracts.provenance import provenance_warnings

    findings += [LintFinding(level="warning", path=path, message=message)
                 for path, message in provenance_warnings(contract)]
    table = contract.table
    for i, prop in enumerate(table.properties):
        if not (prop.description or "").strip():
            findings.append(LintFinding(level="warning", path=f"schema[0]({table.name}).properties[{i}]({prop.name})",
                                        message="no description"))
    return findings


def _error_finding(message: str, where: str) -> LintFinding:
    """``"<file>: <path>: <message>"`` (ContractError's shape) -> a finding with the path split out."""
    rest = message[len(where) + 2:] if message.startswith(f"{where}: ") else message
    if rest.startswith("contract ") or rest.startswith(where):  # unresolved name: no file to point into
        return LintFinding(level="error", path="<file>", message=rest)
    head, sep, tail = rest.partition(": ")
    if sep and " " not in head.strip():
        return LintFinding(level="error", path=head, message=tail)
    return LintFinding(level="error", path="<file>", message=rest)
