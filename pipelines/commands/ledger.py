"""`lockgate rollback` and `lockgate audit verify` (imported only after argument parsing)."""

from __future__ import annotations

from rich.markup import escape

from pipelines.commands.console import console
from tasks.settings import Settings


def rollback_command(settings: Settings, name: str, *, reason: str, to_version: int | None) -> int:
    """Directly when the policy approves rollbacks in this environment; otherwise as the `rollback` flow, which
    waits for reviewers on the Prefect server (`lockgate pending`, `lockgate approve`)."""
    from pipelines.exit_codes import EXIT_OK, EXIT_ROLLBACK_FAILED
    from tasks.paths import checked_name

    checked_name(name, "model name")
    from tasks.governance.promotion import plan_rollback
    from tasks.governance.rollback import checked_reason, governed_rollback, rollback_rules
    from tasks.stores import ledger_for, policy_for, registry_for

    checked_reason(reason)  # bad input first, before what the registry says
    policy = policy_for(settings)
    plan = plan_rollback(registry_for(settings), ledger_for(settings), name=name, to_version=to_version)
    move = f"{name} from v{plan.from_version} to v{plan.to_version}"
    if rollback_rules(settings, policy).required:
        from pipelines.commands.approval import require_reachable_api

        require_reachable_api(settings, "rollback")
        from pipelines.temporary_api import ensure_api

        ensure_api(settings)
        from pipelines.rollback import rollback_flow

        with console.status(f"rollback of {move} awaits approval in {settings.environment} (`lockgate pending`; "
                            "`lockgate approve RUN --reason ...`)"):
            outcome = rollback_flow(model_name=name, reason=reason, to_version=to_version)
    else:
        with console.status(f"rolling {move} back (smoke test through the alias)"):
            outcome = governed_rollback(settings, policy, name, reason=reason, to_version=to_version)
    console.print(f"approval: {outcome.approval.decision}: {escape(outcome.approval.reasons[0])}", highlight=False,
                  soft_wrap=True)
    if outcome.status != "committed":
        console.print(f"[red]rollback of {name} {outcome.status}[/]: {escape(outcome.reasons[0])}", highlight=False,
                      soft_wrap=True)
        console.print(f"  ledger rows {', '.join(map(str, outcome.ledger_seqs))}; champion still "
                      f"v{outcome.from_version}", highlight=False)
        return EXIT_ROLLBACK_FAILED
    console.print(f"{name}: champion [bold green]v{outcome.to_version}[/] (was v{outcome.from_version})",
                  highlight=False)
    console.print(f"  smoke test: {escape(outcome.smoke_test or '-')}", highlight=False, soft_wrap=True)
    console.print(f"  ledger rows {', '.join(map(str, outcome.ledger_seqs))}; aliases now "
                  f"{', '.join(f'{a} v{v}' for a, v in sorted(outcome.aliases_after.items()))}", highlight=False)
    return EXIT_OK


def audit_verify(settings: Settings, *, model: str | None, recover_first: bool) -> int:
    """Chain and anchor, then per model: the registry's aliases against the ledger's (under the model's lock)."""
    from pipelines.exit_codes import EXIT_AUDIT_FAILED, EXIT_OK
    from tasks.governance.promotion_state import agreement, recover
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(settings), ledger_for(settings)
    check = ledger.verify()
    if check.ok:
        console.print(f"ledger {settings.ledger_uri}: {check.entries} rows, [green]hash chain intact[/]", highlight=False)
        console.print(f"  {escape(check.anchor)}", highlight=False, soft_wrap=True)
    else:
        console.print(f"ledger {settings.ledger_uri}: {check.entries} rows, [red]row {check.first_bad_seq}: "
                      f"{escape(check.problem)}[/]", highlight=False, soft_wrap=True)
    from tasks.governance.approval import proof_check
    from tasks.stores import policy_for

    proofs = proof_check(ledger.entries(), policy_for(settings))
    colour = "red" if proofs.problems else "green"
    console.print(f"approvals: [{colour}]{proofs.signed} signature(s) verify[/] against the policy's keys, "
                  f"{proofs.asserted} asserted (unsigned)", highlight=False)
    for problem in proofs.problems:
        console.print(f"  [red]{escape(problem)}[/]", highlight=False, soft_wrap=True)
    from tasks.governance.incidents import resolution_proof_problems

    resolutions = resolution_proof_problems(ledger.entries(), policy_for(settings))
    for problem in resolutions:  # signed incident resolutions, re-checked like signed approvals
        console.print(f"  [red]incident resolution {escape(problem)}[/]", highlight=False, soft_wrap=True)
    names = [model] if model else list(dict.fromkeys(e.model_name for e in ledger.entries() if e.aliases is not None))
    agreed = not proofs.problems and not resolutions
    agreed &= _evidence_files(settings, registry, ledger, model)
    for name in names:
        with ledger.lock(name):  # a stable view: no promotion of this model moves aliases meanwhile
            if recover_first and check.ok:
                row = recover(registry, ledger, name=name, actor=settings.actor)
                if row is not None:
                    console.print(f"{name}: [yellow]{row.action}[/] (row {row.seq}): {escape(row.reason)}",
                                  highlight=False, soft_wrap=True)
            agree = agreement(registry, ledger, name)
        agreed &= agree.ok
        agreed &= _witness(registry, ledger, name)
        agreed &= _prefect_witness(ledger, name)
        agreed &= _champion_signature(settings, registry, name)
        shown = ", ".join(f"{a} v{v}" for a, v in sorted(agree.registry.items())) or "no aliases"
        console.print(f"{name}: " + (f"[green]registry agrees with the ledger[/] ({shown})" if agree.ok
                                     else f"[red]{escape(agree.problem)}[/]"), highlight=False, soft_wrap=True)
    if recover_first and not check.ok:
        console.print("nothing recovered: the ledger does not verify", highlight=False)
    return EXIT_OK if check.ok and agreed else EXIT_AUDIT_FAILED


def _evidence_files(settings: Settings, registry, ledger, model: str | None) -> bool:
    """Every evidence file a row names by path (written once, never replaced) re-hashed: each one changed or gone is
    a line naming the row, the role and the file."""
    from tasks.governance.audit_evidence import EvidenceLocator

    locator = EvidenceLocator(settings, registry, None)
    rows = [e for e in ledger.entries(model_name=model) if e.evidence_files]
    checks = [(e, locator.check_named(role, e.evidence[role], where))
              for e in rows for role, where in sorted(e.evidence_files.items()) if role in e.evidence]
    bad = [(e, c) for e, c in checks if c.status != "ok"]
    colour = "red" if bad else "green"
    console.print(f"evidence: [{colour}]{len(checks) - len(bad)} of {len(checks)} file(s) named by {len(rows)} row(s) "
                  "hold the bytes the ledger recorded[/]", highlight=False)
    for e, c in bad:
        console.print(f"  [red]row {e.seq} {e.action}: {c.role} {c.status}: {escape(c.path or '-')}[/]",
                      highlight=False, soft_wrap=True)
    return not bad


def _witness(registry, ledger, name: str) -> bool:
    """The ledger head the registry keeps for ``name`` (a tag written at every promotion and rollback) against the
    ledger: whether this second store agrees."""
    import json

    from tasks.registry import LEDGER_HEAD_TAG as WITNESS_TAG

    tag = registry.model_tags(name).get(WITNESS_TAG)
    if tag is None:  # every row of a registered model moves it: gone means removed (or a home older than witnesses)
        console.print(f"{name}: [red]the registry holds no witness of the ledger head (tag {WITNESS_TAG})[/]",
                      highlight=False)
        return False
    try:
        mark = json.loads(tag)
    except ValueError:
        mark = None
    problem = ledger.witness_problem(mark, ledger.entries()) if isinstance(mark, dict) else "it is not JSON"
    if problem is None:
        signed = ", signed by the ledger key" if mark.get("sig") and ledger.head_public_key else ""
        last = max((e.seq for e in ledger.entries(model_name=name)), default=0)
        lag = "" if mark["seq"] >= last else f"; rows of {name} after it (to row {last}) are not witnessed"
        console.print(f"{name}: [green]the registry's witness agrees[/] (ledger row {mark['seq']}{signed}){lag}",
                      highlight=False)
        return True
    console.print(f"{name}: [red]the registry's witness (tag {WITNESS_TAG}) disagrees: {escape(problem)}[/]",
                  highlight=False, soft_wrap=True)
    return False


def _champion_signature(settings: Settings, registry, name: str) -> bool:
    """The champion's files against their OpenSSF model signature, as a batch run checks them before scoring."""
    from tasks.errors import LockgateError
    from tasks.governance.artifact_signature import verify_version
    from tasks.registry import CHAMPION

    record = registry.by_alias(name, CHAMPION)
    if record is None:
        return True
    try:
        line = verify_version(settings, registry, record)
    except LockgateError as e:
        console.print(f"{name}: [red]{escape(str(e))}[/]", highlight=False, soft_wrap=True)
        return False
    console.print(f"{name}: [green]{escape(line.split(': ', 1)[1])}[/] (champion v{record.version})", highlight=False)
    return True


def _prefect_witness(ledger, name: str) -> bool:
    """The ledger head published as a Prefect artifact at ``name``'s last move, against the ledger, when a Prefect
    server is running (`lockgate server start` or PREFECT_API_URL; a command's temporary API keeps none)."""
    import json
    import os
    import re

    if not os.environ.get("PREFECT_API_URL"):
        console.print(f"{name}: the Prefect witness is not checked (no Prefect server running)", highlight=False)
        return True
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    from tasks.gates import LEDGER_HEAD_ARTIFACT, _artifact_key

    key = _artifact_key(f"{LEDGER_HEAD_ARTIFACT}-{name}")
    try:
        with get_client(sync_client=True) as client:
            found = client.read_latest_artifacts(artifact_filter=ArtifactCollectionFilter(
                key=ArtifactCollectionFilterKey(any_=[key])), limit=1)
    except Exception as e:  # an unreachable server is a fact to report, not a verdict on the ledger
        console.print(f"{name}: the Prefect witness could not be read ({escape(' '.join(str(e).split())[:120])})",
                      highlight=False)
        return True
    if not found:
        console.print(f"{name}: no Prefect witness (artifact {key}) on this server", highlight=False)
        return True
    body = re.search(r"```json\n(.*?)\n```", str(found[0].data or ""), re.S)
    try:
        mark = json.loads(body.group(1)) if body else None
    except ValueError:
        mark = None
    problem = ledger.witness_problem(mark, ledger.entries()) if isinstance(mark, dict) else "it holds no ledger head"
    if problem is None:
        console.print(f"{name}: [green]the Prefect witness agrees[/] (artifact {key}, ledger row {mark['seq']})",
                      highlight=False)
        return True
    console.print(f"{name}: [red]the Prefect witness (artifact {key}) disagrees: {escape(problem)}[/]", highlight=False,
                  soft_wrap=True)
    return False
