"""Promotion, rollback and rejection: alias moves in the registry, each explained by the ledger.

A promotion or rollback is one step under the model's lock (``Ledger.lock``):
recover any interrupted move -> check the champion is still the one the decision
expected (MLflow has no compare-and-set; the lock makes read-compare-move atomic) ->
``<kind>.started`` row -> move the aliases (the old champion keeps
``previous-champion``) -> smoke-test the new champion through the alias (artifact
and params sha256 verified, reference rows scored) -> ``<kind>.committed`` row. Any
failure puts the aliases back and writes ``<kind>.reverted`` with the reason; a crash
leaves ``started`` open for :func:`tasks.governance.promotion_state.recover`. Nothing here
runs inside a Prefect ``transaction()`` or under task retries: a retried task in a
transaction is rolled back on its first failed attempt even when the retry succeeds.

A simple move (challenger) is written to the ledger first, then made in the registry;
if the registry write is lost, the next recovery makes it.
"""

from __future__ import annotations

from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict

from tasks.errors import LockgateError
from tasks.evidence import EvidenceFile
from tasks.faults import failpoint
from tasks.ledger.entry import LedgerEntry
from tasks.ledger.store import Ledger
from tasks.governance.promotion_state import (apply_aliases, champion_history, managed, promoted_over, recover, show)
from tasks.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, MlflowRegistry, ModelVersionRecord

SmokeTest = Callable[[MlflowRegistry, ModelVersionRecord], str]
FAILPOINTS = ("locked", "started", f"moved-{PREVIOUS_CHAMPION}", f"moved-{CHAMPION}", f"moved-{CHALLENGER}",
              "smoke-tested", "committed", "restored")


class AliasMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str
    version: int | None
    previous_version: int | None
    ledger_seq: int


class PromotionResult(BaseModel):
    """What one promotion did: committed, reverted (aliases put back, the reason says why) or refused."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    status: Literal["committed", "reverted", "refused"]
    expected_champion: int | None
    champion_before: int | None
    aliases_before: dict[str, int]
    aliases_after: dict[str, int]
    reason: str
    smoke_test: str | None = None
    ledger_seqs: list[int]


class RollbackResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    from_version: int
    to_version: int
    status: Literal["committed", "reverted"]
    aliases_before: dict[str, int]
    aliases_after: dict[str, int]
    reason: str
    smoke_test: str | None = None
    ledger_seqs: list[int]


class RollbackPlan(BaseModel):
    """Which champion a rollback replaces with which earlier one, read before asking for approval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str
    from_version: int
    to_version: int


def plan_rollback(registry: MlflowRegistry, ledger: Ledger, *, name: str, to_version: int | None = None) -> RollbackPlan:
    """The rollback :func:`rollback` would make now (one-line LockgateError when there is nothing to roll back to)."""
    aliases = managed(registry.aliases(name))
    target = _rollback_target(registry, name, aliases, champion_history(ledger.entries(model_name=name)), to_version)
    return RollbackPlan(model_name=name, from_version=aliases[CHAMPION], to_version=target)


class RollbackRefused(LockgateError):
    """The champion is no longer the one the rollback was decided against: nothing moved, ledger row ``seq`` says
    why."""

    def __init__(self, reason: str, seq: int):
        self.seq = seq
        super().__init__(reason)


class RollbackFailed(LockgateError):
    """The rollback target failed its smoke test (or a move failed): aliases restored, ledger row written."""

    def __init__(self, result: RollbackResult):
        self.result = result
        super().__init__(result.reason)


def move_alias(
    registry: MlflowRegistry, ledger: Ledger, *, name: str, alias: str, version: int | None, actor: str, reason: str,
    policy: str | None, evidence: dict[str, str | EvidenceFile], flow_run_id: str | None,
) -> AliasMove:
    """Point ``alias`` at ``version`` (or delete it when version is None): ledger row first, then the registry."""
    with ledger.lock(name):
        recover(registry, ledger, name=name, actor=actor)
        before = managed(registry.aliases(name))
        after = {**before, alias: version} if version is not None else {a: v for a, v in before.items() if a != alias}
        entry = ledger.append(LedgerEntry(
            actor=actor, action="alias.set" if version is not None else "alias.delete", model_name=name,
            version=version, alias=alias, previous_version=before.get(alias), reason=reason, policy=policy,
            flow_run_id=flow_run_id, evidence=evidence, aliases=after))
        apply_aliases(registry, name, before, after)
    return AliasMove(alias=alias, version=version, previous_version=before.get(alias), ledger_seq=entry.seq)


def promote(
    registry: MlflowRegistry, ledger: Ledger, *, name: str, version: int, actor: str, reason: str,
    policy: str | None, evidence: dict[str, str | EvidenceFile], flow_run_id: str | None, expected_champion: int | None,
    smoke_test: SmokeTest | None = None,
) -> PromotionResult:
    """Make ``version`` champion if the champion is still ``expected_champion`` (the one the canary compared it
    with; None: no champion); the old champion keeps ``previous-champion``. See the module docstring."""
    common = dict(actor=actor, model_name=name, policy=policy, flow_run_id=flow_run_id, evidence=evidence)
    with ledger.lock(name):
        recover(registry, ledger, name=name, actor=actor)
        failpoint("locked")
        before = managed(registry.aliases(name))
        current = before.get(CHAMPION)
        result = dict(model_name=name, version=version, expected_champion=expected_champion, champion_before=current,
                      aliases_before=before)
        if current == version:  # a re-run after a crash that followed the commit: only its challenger mark goes
            after, seqs = _without_challenger(before, version), []
            why = f"v{version} is already champion"
            if after != before:
                seqs.append(ledger.append(LedgerEntry(
                    action="alias.delete", version=None, alias=CHALLENGER, previous_version=version,
                    reason=f"{why} (a re-run of its lifecycle)", aliases=after, **common)).seq)
                apply_aliases(registry, name, before, after)
            return PromotionResult(status="committed", aliases_after=after, reason=why, ledger_seqs=seqs, **result)
        if current != expected_champion:
            after = _without_challenger(before, version)
            why = (f"v{version} not promoted: the champion is {_v(current)}, but the decision was made against "
                   f"{_v(expected_champion)} (the candidate was judged against a different champion); run its "
                   "lifecycle again")
            row = ledger.append(LedgerEntry(action="promotion.refused", version=version, alias=CHAMPION,
                                            previous_version=current, reason=why, aliases=after, **common))
            apply_aliases(registry, name, before, after)
            registry.set_version_tags(name, version, {"lockgate.status": "refused", "lockgate.refused_reason": why})
            return PromotionResult(status="refused", aliases_after=after, reason=why, ledger_seqs=[row.seq], **result)
        target = {**before, CHAMPION: version}
        if current is not None and current != version:
            target[PREVIOUS_CHAMPION] = current
        target = _without_challenger(target, version)
        status, seqs, detail = _switch(registry, ledger, kind="promotion", name=name, version=version,
                                       previous=current, before=before, target=target, reason=reason, common=common,
                                       smoke_test=smoke_test)
    if status == "committed":
        registry.set_version_tags(name, version, {"lockgate.status": "champion"})
        if current is not None and current != version:
            registry.set_version_tags(name, current, {"lockgate.status": "previous-champion"})
        return PromotionResult(status=status, aliases_after=target, reason=reason, smoke_test=detail,
                               ledger_seqs=seqs, **result)
    registry.set_version_tags(name, version, {"lockgate.status": "reverted", "lockgate.reverted_reason": detail[:5000]})
    return PromotionResult(status=status, aliases_after=before, reason=detail, ledger_seqs=seqs, **result)


def rollback(registry: MlflowRegistry, ledger: Ledger, *, name: str, actor: str, reason: str,
             to_version: int | None = None, policy: str | None = None, flow_run_id: str | None = None,
             evidence: dict[str, str | EvidenceFile] | None = None, expected_champion: int | None = None) -> RollbackResult:
    """Put the previous champion back (or ``to_version``, an earlier champion) through the promotion path.

    ``expected_champion``: the champion the rollback was approved against; if another one is champion by the time
    the lock is held, nothing moves and a ``rollback.refused`` row says why (MLflow has no compare-and-set).
    Raises LockgateError (one line) when there is nothing to roll back to or the champion moved, and
    :class:`RollbackFailed` when the target fails its smoke test (the aliases are back as they were and the ledger
    says so)."""
    common = dict(actor=actor, model_name=name, policy=policy, flow_run_id=flow_run_id, evidence=evidence or {})
    with ledger.lock(name):
        recover(registry, ledger, name=name, actor=actor)
        failpoint("locked")
        entries = ledger.entries(model_name=name)
        before = managed(registry.aliases(name))
        current = before.get(CHAMPION)
        if expected_champion is not None and current != expected_champion:
            why = (f"rollback not made: the champion is {_v(current)}, but the rollback was decided against "
                   f"v{expected_champion} (it moved while the rollback awaited approval): {reason}")
            row = ledger.append(LedgerEntry(action="rollback.refused", version=to_version, alias=CHAMPION,
                                            previous_version=current, reason=why, **common))
            raise RollbackRefused(why, row.seq)
        target_version = _rollback_target(registry, name, before, champion_history(entries), to_version)
        target = _without_challenger({**before, CHAMPION: target_version}, target_version)
        target.pop(PREVIOUS_CHAMPION, None)
        earlier = promoted_over(entries, target_version)
        if earlier is not None and earlier not in (current, target_version):
            target[PREVIOUS_CHAMPION] = earlier
        why = f"rollback from v{current} to v{target_version}: {reason}"
        status, seqs, detail = _switch(registry, ledger, kind="rollback", name=name, version=target_version,
                                       previous=current, before=before, target=target, reason=why, common=common,
                                       smoke_test=None)
    result = RollbackResult(model_name=name, from_version=current, to_version=target_version, status=status,
                            aliases_before=before, aliases_after=target if status == "committed" else before,
                            reason=why if status == "committed" else detail, smoke_test=detail, ledger_seqs=seqs)
    if status != "committed":
        raise RollbackFailed(result)
    registry.set_version_tags(name, current, {"lockgate.status": "rolled_back", "lockgate.rolled_back_reason": why})
    registry.set_version_tags(name, target_version, {"lockgate.status": "champion"})
    return result


def reject(
    registry: MlflowRegistry, ledger: Ledger, *, name: str, version: int, actor: str, reason: str,
    policy: str | None, evidence: dict[str, str | EvidenceFile], flow_run_id: str | None,
) -> LedgerEntry:
    """Record a rejected candidate: a ledger row with the reasons, the challenger alias cleared, the version tagged."""
    with ledger.lock(name):
        recover(registry, ledger, name=name, actor=actor)
        before = managed(registry.aliases(name))
        after = _without_challenger(before, version)
        entry = ledger.append(LedgerEntry(
            actor=actor, action="candidate.rejected", model_name=name, version=version, reason=reason, policy=policy,
            flow_run_id=flow_run_id, evidence=evidence, aliases=after if after != before else None))
        apply_aliases(registry, name, before, after)
    registry.set_version_tags(name, version, {"lockgate.status": "rejected", "lockgate.rejected_reason": reason[:5000]})
    return entry


def _switch(registry: MlflowRegistry, ledger: Ledger, *, kind: str, name: str, version: int, previous: int | None,
            before: dict[str, int], target: dict[str, int], reason: str, common: dict,
            smoke_test: SmokeTest | None) -> tuple[str, list[int], str]:
    """started row -> alias moves -> smoke test -> committed row; on failure aliases back and a reverted row.
    Returns (status, ledger seqs, smoke-test description or the failure)."""
    started = ledger.append(LedgerEntry(action=f"{kind}.started", version=version, alias=CHAMPION,
                                        previous_version=previous, reason=f"{reason} [moving to: {show(target)}]",
                                        **common))
    failpoint("started")
    try:
        apply_aliases(registry, name, before, target, step=lambda alias: failpoint(f"moved-{alias}"))
        record = registry.by_alias(name, CHAMPION)
        if record is None or record.version != version:
            raise LockgateError(f"the champion alias reads {_v(record.version if record else None)} after the move, "
                                f"not v{version}")
        detail = (smoke_test or _smoke_test)(registry, record)
        detail += "; " + _signed(registry, record)
        failpoint("smoke-tested")
        committed = ledger.append(LedgerEntry(action=f"{kind}.committed", version=version, alias=CHAMPION,
                                              previous_version=previous, reason=f"{reason}; smoke test: {detail}",
                                              aliases=target, **common))
    except Exception as e:
        problem = " ".join(str(e).split())[:1000] or type(e).__name__
        # if the restore itself fails, the started row stays open and the next holder of the lock recovers
        apply_aliases(registry, name, managed(registry.aliases(name)), before)
        failpoint("restored")
        detail = f"v{version} not made champion ({kind} reverted): {problem}; aliases restored: {show(before)}"
        reverted = ledger.append(LedgerEntry(action=f"{kind}.reverted", version=version, alias=CHAMPION,
                                             previous_version=previous, reason=detail, aliases=before, **common))
        return "reverted", [started.seq, reverted.seq], detail
    failpoint("committed")
    return "committed", [started.seq, committed.seq], detail


def _signed(registry: MlflowRegistry, record: ModelVersionRecord) -> str:
    """The champion-to-be's files against the model signature the compile gate made: a version whose files changed
    since, or that was never signed, is never made champion (nothing is signed here, so nothing swapped in after
    the canary can be blessed by a promotion)."""
    from tasks.governance.artifact_signature import verify_version

    return verify_version(registry.settings, registry, record).split(": ", 1)[1]




def _smoke_test(registry: MlflowRegistry, record: ModelVersionRecord) -> str:
    from tasks.registration.inference import smoke_test

    return smoke_test(registry, record)


def _rollback_target(registry: MlflowRegistry, name: str, aliases: dict[str, int], champions: list[int],
                     to_version: int | None) -> int:
    current = aliases.get(CHAMPION)
    if current is None:
        raise LockgateError(f"model {name} has no champion: nothing to roll back")
    earlier = [v for v in dict.fromkeys(reversed(champions)) if v != current]
    listed = ", ".join(f"v{v}" for v in earlier) or "none"
    if to_version is None:
        if PREVIOUS_CHAMPION not in aliases:
            raise LockgateError(f"model {name} has no previous champion to roll back to (champion v{current}; earlier "
                                f"champions: {listed}); name one with --to-version")
        return aliases[PREVIOUS_CHAMPION]
    if to_version == current:
        raise LockgateError(f"v{to_version} is already the champion of {name}")
    if to_version not in champions:
        tags = registry.get(name, to_version).tags  # one-line error if the version does not exist
        status = tags.get("lockgate.status", "registered")
        why = tags.get(f"lockgate.{status}_reason") or tags.get("lockgate.rejected_reason")
        raise LockgateError(f"v{to_version} of {name} was never champion (status {status}"
                            + (f": {why[:300]}" if why else "") + f"); rollback returns to an earlier champion: {listed}")
    return to_version


def _without_challenger(aliases: dict[str, int], version: int) -> dict[str, int]:
    return {a: v for a, v in aliases.items() if not (a == CHALLENGER and v == version)}


def _v(version: int | None) -> str:
    return "none" if version is None else f"v{version}"
