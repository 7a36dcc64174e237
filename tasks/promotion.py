"""Promotion and rejection: alias moves in the registry, each one a ledger entry.

An alias move and its ledger entry go together: if the ledger write fails, the
alias is put back, so the registry never shows a move the ledger does not explain.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tasks.ledger import Ledger, LedgerEntry
from tasks.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, MlflowRegistry


class AliasMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str
    version: int | None
    previous_version: int | None
    ledger_seq: int


def move_alias(
    registry: MlflowRegistry,
    ledger: Ledger,
    *,
    name: str,
    alias: str,
    version: int | None,
    actor: str,
    reason: str,
    policy: str | None,
    evidence: dict[str, str],
    flow_run_id: str | None,
) -> AliasMove:
    """Point ``alias`` at ``version`` (or delete it when version is None) and record the move."""
    previous = registry.aliases(name).get(alias)
    if version is None:
        if previous is not None:
            registry.delete_alias(name, alias)
    else:
        registry.set_alias(name, alias, version)
    try:
        entry = ledger.append(
            LedgerEntry(
                actor=actor,
                action="alias.set" if version is not None else "alias.delete",
                model_name=name,
                version=version,
                alias=alias,
                previous_version=previous,
                reason=reason,
                policy=policy,
                flow_run_id=flow_run_id,
                evidence=evidence,
            )
        )
    except Exception:
        if previous is not None:
            registry.set_alias(name, alias, previous)
        elif version is not None:
            registry.delete_alias(name, alias)
        raise
    return AliasMove(alias=alias, version=version, previous_version=previous, ledger_seq=entry.seq)


def promote(
    registry: MlflowRegistry, ledger: Ledger, *, name: str, version: int, actor: str, reason: str,
    policy: str | None, evidence: dict[str, str], flow_run_id: str | None,
) -> list[AliasMove]:
    """Make ``version`` champion; the old champion keeps ``previous-champion`` for one-step rollback."""
    common = dict(actor=actor, policy=policy, evidence=evidence, flow_run_id=flow_run_id)
    moves = []
    current = registry.aliases(name).get(CHAMPION)
    if current is not None and current != version:
        moves.append(move_alias(registry, ledger, name=name, alias=PREVIOUS_CHAMPION, version=current,
                                reason=f"v{current} replaced as champion by v{version}", **common))
    moves.append(move_alias(registry, ledger, name=name, alias=CHAMPION, version=version, reason=reason, **common))
    if registry.aliases(name).get(CHALLENGER) == version:
        moves.append(move_alias(registry, ledger, name=name, alias=CHALLENGER, version=None,
                                reason=f"v{version} promoted to champion", **common))
    registry.set_version_tags(name, version, {"lockgate.status": "champion"})
    return moves


def reject(
    registry: MlflowRegistry, ledger: Ledger, *, name: str, version: int, actor: str, reason: str,
    policy: str | None, evidence: dict[str, str], flow_run_id: str | None,
) -> LedgerEntry:
    """Record a rejected candidate: a ledger entry with the reasons, the version tagged, challenger cleared."""
    common = dict(actor=actor, policy=policy, evidence=evidence, flow_run_id=flow_run_id)
    if registry.aliases(name).get(CHALLENGER) == version:
        move_alias(registry, ledger, name=name, alias=CHALLENGER, version=None,
                   reason=f"v{version} rejected: {reason}", **common)
    registry.set_version_tags(name, version, {"lockgate.status": "rejected", "lockgate.rejected_reason": reason[:5000]})
    return ledger.append(LedgerEntry(action="candidate.rejected", model_name=name, version=version, reason=reason, **common))
