"""Contract compatibility: a candidate whose data contract breaks the champion's is refused unless the policy allows it.

Pure decision over :func:`data_contracts.diff.contract_diff`; the lifecycle calls it
with the champion's and the candidate's contracts and the policy's
``validation.allow_breaking_contract_change``.
"""

from __future__ import annotations

from data_contracts.contract import Contract
from data_contracts.diff import ContractChange, contract_diff
from tasks.evidence import Check, GateResult, held_to


class ContractCompatibilityResult(GateResult):
    champion_contract: str
    champion_contract_version: str
    champion_contract_fingerprint: str
    candidate_contract: str
    candidate_contract_version: str
    candidate_contract_fingerprint: str
    version_bump: str
    changes: list[ContractChange]


def contract_compatibility(
    champion_contract: Contract, candidate_contract: Contract, *, allow_breaking: bool
) -> ContractCompatibilityResult:
    """Decide whether the candidate's contract may replace the champion's.

    Decisions: ``compatible`` (no breaking change), ``breaking-allowed`` (breaking
    changes, let through by the policy; each is still named in the reasons) or
    ``breaking`` (refused). One ``Check`` per breaking change plus the count held to 0.
    """
    diff = contract_diff(champion_contract, candidate_contract)
    breaking = diff.breaking_changes
    count = held_to("breaking_contract_changes", len(breaking), "==", 0)
    checks: list[Check] = [
        count if not allow_breaking else count.model_copy(update={"comparison": "info", "passed": True}),
        Check(name="allow_breaking_contract_change", value=allow_breaking, passed=True),
        Check(name="version_bump", value=diff.version_bump, passed=True),
    ]
    checks += [
        Check(name=f"{c.kind}:{c.column or c.path}", value=str(c.new), threshold=str(c.old), passed=allow_breaking)
        for c in breaking
    ]
    described = [f"{c.kind} {c.column or c.path}: {c.old!r} -> {c.new!r} ({c.reason})" for c in breaking]
    ident = f"{champion_contract.name} v{diff.old_version} -> {candidate_contract.name} v{diff.new_version}"
    if not breaking:
        decision, passed = "compatible", True
        reasons = [f"{ident}: {len(diff.changes)} non-breaking change(s)"]
    elif allow_breaking:
        decision, passed = "breaking-allowed", True
        reasons = [f"{ident}: {len(breaking)} breaking change(s) allowed by policy "
                   "(validation.allow_breaking_contract_change)"] + described
    else:
        decision, passed = "breaking", False
        reasons = [f"{ident}: {len(breaking)} breaking change(s) and the policy does not allow them "
                   "(validation.allow_breaking_contract_change: false)"] + described
    if breaking and diff.version_bump != "major":
        reasons.append(f"note: breaking changes with a {diff.version_bump} version bump")
    return ContractCompatibilityResult(
        gate="contract",
        passed=passed,
        decision=decision,
        reasons=reasons,
        checks=checks,
        champion_contract=champion_contract.name,
        champion_contract_version=diff.old_version,
        champion_contract_fingerprint=diff.old_fingerprint,
        candidate_contract=candidate_contract.name,
        candidate_contract_version=diff.new_version,
        candidate_contract_fingerprint=diff.new_fingerprint,
        version_bump=diff.version_bump,
        changes=diff.changes,
    )
