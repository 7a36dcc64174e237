"""What the ledger says the aliases are, whether the registry agrees, and recovery of interrupted moves.

The ledger is the record of truth for lockgate's aliases (champion, challenger,
previous-champion): every row that changes them carries the aliases after it, so
the expected state is that of the model's last such row. A promotion or rollback
writes ``<kind>.started`` before it moves anything and ``<kind>.committed`` (or
``.reverted``) after; a ``started`` row with nothing after it is a move that was
interrupted (a crash, SIGKILL). :func:`recover`, run under the model's lock before
every alias move, puts the registry back to the expected state and records what it
found, so after any crash the next promotion, rollback or ``lockgate status`` leaves
registry and ledger in agreement.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tasks.errors import LockgateError
from tasks.ledger.entry import LedgerEntry
from tasks.ledger.store import Ledger
from tasks.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, MlflowRegistry

MANAGED = (PREVIOUS_CHAMPION, CHAMPION, CHALLENGER)  # the order moves are made in
OPENS = ("promotion.started", "rollback.started")
CLOSES = ("committed", "reverted", "recovered")


class AliasAgreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    ok: bool
    registry: dict[str, int]
    ledger: dict[str, int]
    interrupted_seq: int | None = None
    problem: str | None = None


def managed(aliases: dict[str, int]) -> dict[str, int]:
    """Only lockgate's aliases: others set by hand in MLflow are neither recorded nor touched."""
    return {a: aliases[a] for a in MANAGED if a in aliases}


def show(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a} v{aliases[a]}" for a in MANAGED if a in aliases) or "no aliases"


def expected_aliases(entries: list[LedgerEntry]) -> dict[str, int]:
    """The aliases after the last row (of one model, in seq order) that set them."""
    return next((dict(e.aliases) for e in reversed(entries) if e.aliases is not None), {})


def interrupted(entries: list[LedgerEntry]) -> LedgerEntry | None:
    """The model's ``started`` row with no commit, revert or recovery after it (moves are serialised per model)."""
    open_row = None
    for e in entries:
        if e.action in OPENS:
            open_row = e
        elif e.action.endswith(CLOSES) or e.action == "aliases.reconciled":
            open_row = None
    return open_row


# the rows that end a candidate's lifecycle: made champion, or not (a failed gate, a refused or reverted promotion)
DECISIONS = ("promotion.committed", "promotion.refused", "promotion.reverted", "candidate.rejected")


def decision_row(entries: list[LedgerEntry], version: int) -> LedgerEntry | None:
    """The last row (of one model) that decided ``version``'s lifecycle; None while it is undecided."""
    return next((e for e in reversed(entries) if e.version == version and e.action in DECISIONS), None)


def champion_history(entries: list[LedgerEntry]) -> list[int]:
    """Every version that was champion, in the order they became champion (repeats kept apart)."""
    history: list[int] = []
    for e in entries:
        v = (e.aliases or {}).get(CHAMPION)
        if v is not None and (not history or history[-1] != v):
            history.append(v)
    return history


def promoted_over(entries: list[LedgerEntry], version: int) -> int | None:
    """The champion ``version`` replaced when it was last promoted (None: a first deployment)."""
    row = next((e for e in reversed(entries) if e.action == "promotion.committed" and e.version == version), None)
    return row.previous_version if row else None


def apply_aliases(registry: MlflowRegistry, name: str, current: dict[str, int], target: dict[str, int],
                  step=lambda alias: None) -> None:
    """Move the registry's managed aliases from ``current`` to ``target``; ``step(alias)`` after each move."""
    for alias in MANAGED:
        if target.get(alias) == current.get(alias):
            continue
        if alias in target:
            registry.set_alias(name, alias, target[alias])
        else:
            registry.delete_alias(name, alias)
        step(alias)


def agreement(registry: MlflowRegistry, ledger: Ledger, name: str) -> AliasAgreement:
    """Do the registry's aliases equal those the ledger says? (Read-only; hold the model's lock for a stable view.)"""
    entries = ledger.entries(model_name=name)
    expected, actual, open_row = expected_aliases(entries), managed(registry.aliases(name)), interrupted(entries)
    problem = None
    if open_row is not None:
        problem = (f"{open_row.action.split('.')[0]} of v{open_row.version} at row {open_row.seq} was interrupted "
                   "(recovered by the next promotion, rollback, `lockgate status` or `lockgate audit verify --recover`)")
    elif actual != expected:
        problem = f"registry has {show(actual)} but the ledger says {show(expected)}"
    return AliasAgreement(model_name=name, ok=problem is None, registry=actual, ledger=expected,
                          interrupted_seq=open_row.seq if open_row else None, problem=problem)


def recover(registry: MlflowRegistry, ledger: Ledger, *, name: str, actor: str) -> LedgerEntry | None:
    """Bring the registry back to the ledger's state after an interrupted move (or a change made outside lockgate),
    recording what was found. The caller holds the model's lock. Returns the row written, or None if all agreed."""
    entries = ledger.entries(model_name=name)
    open_row, expected = interrupted(entries), expected_aliases(entries)
    actual = managed(registry.aliases(name))
    if open_row is None and actual == expected:
        return None
    if actual and not any(e.aliases is not None for e in entries):
        raise LockgateError(f"the ledger at {ledger.url} has no record of model {name}'s aliases but the registry has "
                            f"{show(actual)}; check LOCKGATE_LEDGER_URL points at this registry's ledger")
    found = "no alias had moved" if actual == expected else f"the registry had {show(actual)}"
    if open_row is not None:
        kind = open_row.action.split(".")[0]
        action = f"{kind}.recovered"
        reason = (f"{kind} of v{open_row.version} (row {open_row.seq}) was interrupted before it was committed; "
                  f"{found}; restored the last committed state: {show(expected)}")
    else:
        action = "aliases.reconciled"
        reason = (f"{found}, not what the ledger says (changed outside lockgate, or a move the registry missed); "
                  f"restored the ledger's state: {show(expected)}")
    row = ledger.append(LedgerEntry(actor=actor, action=action, model_name=name,
                                    version=open_row.version if open_row else None,
                                    previous_version=open_row.previous_version if open_row else None,
                                    reason=reason, aliases=expected))
    apply_aliases(registry, name, actual, expected)  # after the row: if this fails, the next recovery redoes it
    return row


def recover_if_idle(registry: MlflowRegistry, ledger: Ledger, *, name: str, actor: str) -> LedgerEntry | None:
    """:func:`recover` when no one holds the model's lock; None (nothing done) while a move is in progress."""
    from tasks.ledger.lock import LockTimeout

    try:
        with ledger.lock(name, timeout=0):
            return recover(registry, ledger, name=name, actor=actor)
    except LockTimeout:
        return None


def committed_alias(registry: MlflowRegistry, ledger: Ledger, *, name: str, alias: str, actor: str):
    """The version ``alias`` points to once no move is half-done: under the model's lock (waiting for a promotion
    in progress), after recovering a move a crash left open. A decision made against a half-moved alias (a champion
    the ledger never committed) would be refused, or score with the wrong model."""
    with ledger.lock(name):
        recover(registry, ledger, name=name, actor=actor)
        return registry.by_alias(name, alias)
