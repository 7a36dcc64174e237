"""`lockgate rollback` and `lockgate audit verify` (imported only after argument parsing)."""

from __future__ import annotations

from rich.markup import escape

from pipelines.commands import console
from tasks.settings import Settings


def rollback_command(settings: Settings, name: str, *, reason: str, to_version: int | None) -> int:
    from pipelines.cli import EXIT_OK, EXIT_ROLLBACK_FAILED
    from tasks.promotion import RollbackFailed, rollback
    from tasks.stores import ledger_for, registry_for

    target = f"v{to_version}" if to_version else "the previous champion"
    try:
        with console.status(f"rolling {name} back to {target} (smoke test through the alias)"):
            result = rollback(registry_for(settings), ledger_for(settings), name=name, actor=settings.actor,
                              reason=reason, to_version=to_version)
    except RollbackFailed as e:
        console.print(f"[red]rollback of {name} reverted[/]: {escape(str(e))}", highlight=False, soft_wrap=True)
        console.print(f"  ledger rows {', '.join(map(str, e.result.ledger_seqs))}; champion still "
                      f"v{e.result.from_version}", highlight=False)
        return EXIT_ROLLBACK_FAILED
    console.print(f"{name}: champion [bold green]v{result.to_version}[/] (was v{result.from_version})", highlight=False)
    console.print(f"  smoke test: {escape(result.smoke_test or '-')}", highlight=False, soft_wrap=True)
    console.print(f"  ledger rows {', '.join(map(str, result.ledger_seqs))}; aliases now "
                  f"{', '.join(f'{a} v{v}' for a, v in sorted(result.aliases_after.items()))}", highlight=False)
    return EXIT_OK


def audit_verify(settings: Settings, *, model: str | None, recover_first: bool) -> int:
    """Chain and anchor, then per model: the registry's aliases against the ledger's (under the model's lock)."""
    from pipelines.cli import EXIT_AUDIT_FAILED, EXIT_OK
    from tasks.promotion_state import agreement, recover
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(settings), ledger_for(settings)
    check = ledger.verify()
    if check.ok:
        console.print(f"ledger {settings.ledger_uri}: {check.entries} rows, [green]hash chain intact[/]", highlight=False)
        console.print(f"  {escape(check.anchor)}", highlight=False, soft_wrap=True)
    else:
        console.print(f"ledger {settings.ledger_uri}: {check.entries} rows, [red]row {check.first_bad_seq}: "
                      f"{escape(check.problem)}[/]", highlight=False, soft_wrap=True)
    names = [model] if model else list(dict.fromkeys(e.model_name for e in ledger.entries() if e.aliases is not None))
    agreed = True
    for name in names:
        with ledger.lock(name):  # a stable view: no promotion of this model moves aliases meanwhile
            if recover_first and check.ok:
                row = recover(registry, ledger, name=name, actor=settings.actor)
                if row is not None:
                    console.print(f"{name}: [yellow]{row.action}[/] (row {row.seq}): {escape(row.reason)}",
                                  highlight=False, soft_wrap=True)
            agree = agreement(registry, ledger, name)
        agreed &= agree.ok
        shown = ", ".join(f"{a} v{v}" for a, v in sorted(agree.registry.items())) or "no aliases"
        console.print(f"{name}: " + (f"[green]registry agrees with the ledger[/] ({shown})" if agree.ok
                                     else f"[red]{escape(agree.problem)}[/]"), highlight=False, soft_wrap=True)
    if recover_first and not check.ok:
        console.print("nothing recovered: the ledger does not verify", highlight=False)
    return EXIT_OK if check.ok and agreed else EXIT_AUDIT_FAILED
