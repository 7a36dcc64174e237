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


class RollbackResult(BaseModel):
    """A rollback of the champion: which version it left and which it restored, and the alias moves."""

    model_config = ConfigDict(extra="forbid")

    from_version: int
    to_version: int
    moves: list[AliasMove]


# MINIMAL VERSION, REPLACED ON MERGE by the governance branch's atomic rollback (same signature, a typed
# result with from_version/to_version). Kept to the one path batch inference needs.
def rollback(
    registry: MlflowRegistry, ledger: Ledger, *, name: str, actor: str, reason: str, to_version: int | None = None,
    policy: str | None = None, flow_run_id: str | None = None, evidence: dict[str, str] | None = None,
) -> RollbackResult:
    """Put ``to_version`` (default: the ``previous-champion`` alias) back as champion; every move a ledger entry.

    The version rolled back from is tagged ``rolled_back``; ``previous-champion`` is removed, so a second
    automatic rollback cannot flip back to the version just left."""
    from tasks.errors import LockgateError

    aliases = registry.aliases(name)
    current, target = aliases.get(CHAMPION), to_version if to_version is not None else aliases.get(PREVIOUS_CHAMPION)
    if current is None:
        raise LockgateError(f"model {name} has no champion to roll back")
    if target is None:
        raise LockgateError(f"model {name} has no '{PREVIOUS_CHAMPION}' alias: nothing to roll back to")
    if target == current:
        raise LockgateError(f"v{target} is already champion of {name}")
    common = dict(actor=actor, policy=policy, evidence=evidence or {}, flow_run_id=flow_run_id)
    moves = [move_alias(registry, ledger, name=name, alias=CHAMPION, version=target,
                        reason=f"rollback v{current} -> v{target}: {reason}", **common)]
    if aliases.get(PREVIOUS_CHAMPION) is not None:
        moves.append(move_alias(registry, ledger, name=name, alias=PREVIOUS_CHAMPION, version=None,
                                reason=f"v{target} restored as champion", **common))
    registry.set_version_tags(name, current, {"lockgate.status": "rolled_back", "lockgate.rolled_back_reason": reason[:5000]})
    registry.set_version_tags(name, target, {"lockgate.status": "champion"})
    return RollbackResult(from_version=current, to_version=target, moves=moves)
