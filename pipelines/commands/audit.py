"""`lockgate audit report` and `lockgate model-card`: governance views, no Prefect run needed."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from rich.markup import escape

from pipelines.commands.console import console
from pipelines.commands.versions import resolve_model_spec
from tasks.errors import LockgateError
from tasks.paths import new_folder
from tasks.settings import Settings


def audit_dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "model-card":
        return model_card_command(settings, args.model, out=args.out)
    if args.audit_command == "report":
        return audit_report_command(settings, since=args.since, until=args.until, model=args.model, out=args.out)
    raise LockgateError(f"unknown audit action {args.audit_command}")


def audit_report_command(settings: Settings, *, since: str | None, until: str | None, model: str | None,
                         out: Path | None) -> int:
    from pipelines.exit_codes import EXIT_NOT_PROMOTED, EXIT_OK
    from tasks.governance.audit_html import write_report
    from tasks.governance.audit_report import build_report, parse_when
    from tasks.stores import ledger_for, registry_for

    start, end = parse_when(since), parse_when(until, end=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = (out or new_folder(settings.home_dir / "audit", stamp)).resolve()
    with console.status("gathering the audit report (ledger, registry, evidence hashes)"):
        report = build_report(settings, registry_for(settings), ledger_for(settings), since=start, until=end,
                              model_name=model, out_dir=out_dir)
        html_path, json_path = write_report(report, out_dir)
    chain = report.ledger_check
    console.print(f"audit report: {escape(str(html_path))}\n         json: {escape(str(json_path))}", highlight=False)
    console.print(f"{len(report.entries)} ledger entries from {report.since or 'the start'} to {report.until or 'now'}; "
                  f"{len(report.champion_changes)} champion change(s), {len(report.decisions)} approval/rejection/"
                  f"rollback entries, {len(report.batches)} partition(s), {len(report.versions)} version(s)",
                  highlight=False)
    _print_framework_map(report)
    for span in report.champion_timeline:
        console.print(f"  champion {escape(span.model_name)} v{span.version}: {span.start[:19]} -> "
                      f"{(span.end or 'now')[:19]} ({span.kind})", highlight=False)
    if report.incidents:
        from tasks.governance.audit_incidents import duration

        still = sum(i.status == "open" for i in report.incidents)
        console.print(f"{len(report.incidents)} incident(s), {still} open:", highlight=False)
        for i in report.incidents:
            console.print(f"  {i.incident_id} {i.kind} {escape(i.model_name)} v{i.version}: detected in "
                          f"{duration(i.time_to_detect_seconds)}, " + (f"resolved in {duration(i.time_to_resolve_seconds)}"
                                                                      if i.resolved_at else "open"), highlight=False)
    console.print("ledger hash chain: " + ("[green]intact[/]" if chain.ok else
                                         f"[red]BROKEN at entry {chain.first_bad_seq}: {escape(chain.problem or '')}[/]"))
    if report.evidence_problems:
        console.print(f"[red]{len(report.evidence_problems)} evidence file(s) missing or changed:[/]")
        for line in report.evidence_problems[:20]:
            console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    else:
        console.print("evidence: [green]every file matches the ledger's sha256[/]")
    return EXIT_OK if chain.ok and not report.evidence_problems else EXIT_NOT_PROMOTED


def _print_framework_map(report) -> None:
    fm = report.framework_map
    if fm is not None:
        bare = [r.id for r in fm.rows if not r.evidence]
        console.print(f"framework map (NIST AI RMF, ISO/IEC 42001): {len(fm.rows)} rows"
                      + (f", without evidence in this period: {', '.join(bare)}" if bare else ", each with evidence")
                      + f"; {len(fm.not_covered)} areas not covered", highlight=False)


def model_card_command(settings: Settings, spec: str, *, out: Path | None) -> int:
    from pipelines.exit_codes import EXIT_OK
    from tasks.governance.model_card import write_model_card
    from tasks.stores import ledger_for, registry_for

    record = resolve_model_spec(settings, spec)
    card, files = write_model_card(settings, registry_for(settings), ledger_for(settings), record,
                                   out.resolve() if out else None)
    console.print(f"model card {card.model_name} v{card.version} ({card.status}), logged to MLflow run "
                  f"{card.run_id} under model_card/:", highlight=False)
    for path in files:
        console.print(f"  {escape(str(path))}", highlight=False)
    return EXIT_OK

