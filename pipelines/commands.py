"""Implementations of the CLI commands (imported only after argument parsing)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tasks.errors import LockgateError
from tasks.settings import Settings

# Rich uses 80 columns when not on a terminal; logs and CI output read better wider.
console = Console(width=None if sys.stdout.isatty() else 140)


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.cli import EXIT_OK

    if args.command == "demo":
        from pipelines.demo import run_demo

        return run_demo(settings, size=args.size, days=args.days)
    if args.command == "register":
        return register(settings, args)
    if args.command == "run":
        from tasks.stores import policy_for

        policy_for(settings)  # a bad policy is a one-line error before any flow starts
    if args.command == "run" and args.flow == "lifecycle":
        return run_lifecycle(settings, args.version, args.golden, args.current)
    if args.command == "run" and args.flow == "batch-inference":
        return run_batch_inference(settings, partitions=[str(p) for p in args.partitions], force=args.force)
    if args.command == "backfill":
        from tasks.stores import policy_for

        policy_for(settings)
        return backfill(settings, args.start, args.end, force=args.force)
    if args.command == "serve":
        from pipelines.serve import serve_command

        return serve_command(settings, name=args.name, cron=args.cron, timezone=args.timezone)
    if args.command == "unblock":
        return unblock(settings, reason=args.reason)
    if args.command == "compile":
        return compile_command(settings, args.model, targets=args.target, buckets=args.bucket, variants=args.variant)
    if args.command in ("server", "pending", "approve", "reject"):
        from pipelines import approval_commands

        if args.command == "server":
            return approval_commands.server_command(settings, args)
        if args.command == "pending":
            return approval_commands.pending_command(settings)
        return approval_commands.respond_command(settings, args, args.command)
    if args.command == "status":
        show_status(settings, limit=args.limit)
        return EXIT_OK
    if args.command == "rollback":
        from pipelines.ledger_commands import rollback_command

        return rollback_command(settings, args.model or settings.model_name, reason=args.reason,
                                to_version=args.to_version)
    if args.command == "audit" and args.audit_command == "verify":
        from pipelines.ledger_commands import audit_verify

        return audit_verify(settings, model=args.model, recover_first=args.recover)
    if args.command == "contract" and args.contract_command == "lint":
        return contract_lint(args.file)
    if args.command == "contract" and args.contract_command == "diff":
        return contract_diff_command(args.old, args.new)
    if args.command == "validate":
        return validate_command(settings, args.contract, args.data, include_label=args.include_label)
    if args.command == "drift":
        from pipelines.drift_command import drift_command

        return drift_command(settings, args.reference, args.current, contract_ref=args.contract,
                             prediction=args.prediction, out=args.out)
    if args.command in ("audit", "model-card"):
        from pipelines.audit_command import audit_dispatch

        return audit_dispatch(args, settings)
    raise LockgateError(f"unknown command {args.command}")


def register(settings: Settings, args: argparse.Namespace) -> int:
    from tasks.registration import register_candidate
    from tasks.stores import ledger_for, registry_for

    with console.status("registering candidate"):
        record = register_candidate(
            registry_for(settings), ledger_for(settings), name=settings.model_name, arch=args.arch,
            config_path=args.config, params_path=args.params, reference_path=args.reference,
            contract_name=args.contract, actor=settings.actor, description=args.description,
            intended_use=args.intended_use, limitations=args.limitations,
        )
    console.print(f"registered [bold]{record.name} v{record.version}[/] (run {record.run_id})")
    return 0


def require_parquet(path: Path, what: str) -> None:
    """Fail fast, before any flow starts, on a missing or unreadable input."""
    from tasks.datasets import read_table

    read_table(path, what=what).head(0)


def run_lifecycle(settings: Settings, version: int, golden: Path, current: Path | None) -> int:
    from pipelines.approval_commands import require_reachable_api
    from pipelines.cli import EXIT_NOT_PROMOTED, EXIT_OK
    from tasks.stores import registry_for

    require_reachable_api(settings)  # before any work: a run paused for approval must be reachable by reviewers
    registry_for(settings).get(settings.model_name, version)  # one-line error if missing
    require_parquet(golden, "golden set")
    if current is not None:
        require_parquet(current, "current data")
    from pipelines.lifecycle import lifecycle

    with console.status(f"lifecycle for {settings.model_name} v{version} (Prefect; waits for reviewers if the policy "
                        f"needs approval in {settings.environment}: `lockgate pending`)"):
        outcome = lifecycle(version=version, golden=str(golden), current=str(current) if current else None)
    colour = {"champion": "green", "rejected": "red"}.get(outcome.decision, "yellow")
    console.print(f"{outcome.model_name} v{outcome.version}: [bold {colour}]{outcome.decision}[/]")
    for line in outcome.gates:
        console.print(f"  {line}", highlight=False)
    return EXIT_OK if outcome.decision == "champion" else EXIT_NOT_PROMOTED


def run_batch_inference(settings: Settings, *, partitions: list[str] | None = None, dates: list[str] | None = None,
                        force: bool) -> int:
    from pipelines.batch_inference import run_batch
    from pipelines.cli import EXIT_OK, EXIT_PARTITIONS_FAILED
    from pipelines.progress import progress_bar
    from tasks.registry import CHAMPION
    from tasks.stores import registry_for

    registry_for(settings).require_alias(settings.model_name, CHAMPION)
    n = len(partitions or dates or [])
    console.print(f"scoring {n} partition(s) with the champion ({settings.task_runner} task runner; Prefect starts "
                  "its API first)", highlight=False)
    with progress_bar(console):
        outcomes = run_batch(settings, partitions=partitions, dates=dates, force=force)
    table = Table(title="batch inference")
    for col in ("partition", "status", "version", "rows", "quarantined", "scored", "drift", "monitor", "message"):
        table.add_column(col, overflow="fold")
    colours = {"scored": "green", "skipped": "dim", "failed": "red", "missing": "red", "blocked": "red",
               "empty": "yellow"}
    for o in outcomes:
        table.add_row(o.partition, f"[{colours.get(o.status, 'white')}]{o.status}[/]",
                      f"v{o.model_version}" if o.model_version else "-", str(o.rows), str(o.quarantined),
                      str(o.scored), o.drift or "-", o.monitor, escape(o.message))
    console.print(table)
    if any(o.monitor != "none" for o in outcomes):
        show_monitoring(settings)
    bad = [o for o in outcomes if o.status in ("failed", "missing", "blocked")]
    return EXIT_PARTITIONS_FAILED if bad else EXIT_OK


def backfill(settings: Settings, start: str, end: str, *, force: bool) -> int:
    """Every date from START to END (both included) under the input root, in one flow run."""
    from datetime import date

    from tasks.batch_io import dates_between

    try:
        days = dates_between(date.fromisoformat(start), date.fromisoformat(end))
    except ValueError as e:
        raise LockgateError(f"--from/--to must be dates YYYY-MM-DD: {e}") from None
    console.print(f"backfill {days[0]} .. {days[-1]} ({len(days)} day(s)) from {settings.input_uri}", highlight=False)
    return run_batch_inference(settings, dates=[d.isoformat() for d in days], force=force)


def show_monitoring(settings: Settings) -> None:
    from tasks.monitoring import monitoring_state
    from tasks.stores import ledger_for

    state = monitoring_state(ledger_for(settings).entries(model_name=settings.model_name))
    colour = "red" if state.blocked else ("yellow" if state.alerts else "green")
    console.print(f"monitoring: [bold {colour}]{escape(state.line())}[/]", highlight=False, soft_wrap=True)


def unblock(settings: Settings, *, reason: str) -> int:
    from tasks.ledger import LedgerEntry
    from tasks.monitoring import CLEAR, monitoring_state
    from tasks.stores import ledger_for

    ledger = ledger_for(settings)
    state = monitoring_state(ledger.entries(model_name=settings.model_name))
    if not state.blocked and not state.alerts:
        console.print("monitoring: nothing to clear (no block, no open alert)")
        return 0
    entry = ledger.append(LedgerEntry(actor=settings.actor, action=CLEAR, model_name=settings.model_name,
                                      reason=f"cleared {'block and ' if state.blocked else ''}{len(state.alerts)} "
                                      f"alert(s): {reason}"))
    console.print(f"monitoring cleared (ledger #{entry.seq}): scoring may go on", highlight=False)
    return 0


def show_status(settings: Settings, *, limit: int) -> None:
    from tasks.promotion_state import agreement, recover_if_idle
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(settings), ledger_for(settings)
    name = settings.model_name
    recovered = recover_if_idle(registry, ledger, name=name, actor=settings.actor)
    aliases = registry.aliases(name)
    console.print(f"[bold]{name}[/]  registry: {settings.tracking_uri}")
    if recovered is not None:
        console.print(f"  [yellow]{recovered.action}[/] (row {recovered.seq}): {escape(recovered.reason)}",
                      highlight=False)
    if not aliases:
        console.print("  no aliases yet (no champion)")
    for alias, version in sorted(aliases.items()):
        console.print(f"  {alias}: v{version}")
    show_monitoring(settings)
    versions = Table(title="versions")
    for col in ("version", "status", "contract", "artifact sha256", "created by"):
        versions.add_column(col)
    for r in registry.versions(name):
        versions.add_row(str(r.version), r.tags.get("lockgate.status", "-"),
                         f"{r.tags.get('lockgate.contract', '-')}@{r.tags.get('lockgate.contract_version', '-')}",
                         r.tags.get("lockgate.artifact_sha256", "-")[:16], r.tags.get("lockgate.registered_by", "-"))
    console.print(versions)
    entries = Table(title=f"last {limit} ledger entries")
    for col in ("#", "when (UTC)", "actor", "action", "version", "alias", "reason"):
        entries.add_column(col, overflow="fold")
    for e in ledger.entries(model_name=name, limit=limit):
        entries.add_row(str(e.seq), e.recorded_at[:19], e.actor, e.action, f"v{e.version}" if e.version else "-",
                        e.alias or "-", e.reason)
    console.print(entries)
    check = ledger.verify()
    verdict = "[green]hash chain intact[/]" if check.ok else f"[red]TAMPERED at entry {check.first_bad_seq}: {check.problem}[/]"
    console.print(f"ledger {settings.ledger_uri}: {check.entries} entries, {verdict}")
    agree = agreement(registry, ledger, name)
    console.print("aliases: [green]registry agrees with the ledger[/]" if agree.ok
                  else f"aliases: [red]{escape(agree.problem)}[/]", highlight=False)


def resolve_model_spec(settings: Settings, spec: str):
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` -> the model version record (latest when no version)."""
    from tasks.stores import registry_for

    registry = registry_for(settings)
    if "@" in spec:
        name, alias = spec.split("@", 1)
        return registry.require_alias(name, alias)
    name, _, version = spec.partition(":")
    if version:
        if not version.isdigit():
            raise LockgateError(f"version in {spec!r} must be a number, e.g. {name}:3")
        return registry.get(name, int(version))
    versions = registry.versions(name)
    if not versions:
        raise LockgateError(f"model {name} has no registered versions; run `lockgate register` first")
    return versions[-1]


def compile_command(settings: Settings, spec: str, *, targets, buckets, variants) -> int:
    from pipelines.cli import EXIT_NOT_PROMOTED, EXIT_OK
    from tasks.compile_report import MIB, compile_report
    from tasks.evidence import write_json
    from tasks.policy import CompilationPolicy
    from tasks.stores import policy_for, registry_for, version_evidence_dir

    base = policy_for(settings).compilation
    try:  # the same validation as the policy file: unknown targets, bad buckets, variants
        policy = CompilationPolicy.model_validate({
            **base.model_dump(), **({"targets": targets} if targets else {}),
            **({"batch_buckets": sorted(set(buckets))} if buckets else {}),
            **({"variants": ["f32", *[v for v in variants if v != "f32"]]} if variants else {}),
            "required_targets": [t for t in base.required_targets if not targets or t in targets]})
    except ValueError as e:
        raise LockgateError(f"invalid compile options: {e.errors()[0]['msg'] if hasattr(e, 'errors') else e}") from None
    record = resolve_model_spec(settings, spec)
    cfg = registry_for(settings).fetch_json(record, "model_config.json")
    with console.status(f"compiling {record.name} v{record.version} for {', '.join(policy.targets)}"):
        report = compile_report(cfg["arch"], cfg["config"], targets=list(policy.targets),
                                buckets=list(policy.batch_buckets), variants=list(policy.variants),
                                cache_dir=settings.home_dir / "compile_cache", timeout=policy.compile_timeout_seconds,
                                headroom=policy.hbm_headroom)
    table = Table(title=f"compile report: {record.name} v{record.version} ({cfg['arch']})")
    for col in ("target", "bucket", "variant", "compile s", "peak MiB", "capacity MiB", "GFLOP", "est. latency", "verdict"):
        table.add_column(col, justify="right" if col not in ("target", "variant", "verdict") else "left")
    for r in report.rows:
        verdict = "fits" if r.fits else ("compile error" if r.status == "error" else "does not fit")
        table.add_row(r.target, str(r.bucket), r.variant,
                      "-" if r.compile_seconds is None else f"{r.compile_seconds:.2f}{' (cached)' if r.cached else ''}",
                      "-" if r.memory_bytes is None else f"{r.memory_bytes / MIB:,.2f}",
                      f"{r.capacity_bytes / MIB:,.0f}" if r.capacity_bytes else "host",
                      "-" if r.flops is None else f"{r.flops / 1e9:.4f}",
                      "-" if r.estimated_seconds is None else f"{r.estimated_seconds * 1e6:,.1f} µs",
                      f"[{'green' if r.fits else 'red'}]{verdict}[/]")
    console.print(table)
    for v in report.verdicts:
        required = " (required)" if v.target in policy.required_targets else ""
        colour = "green" if v.verdict == "fits" else "red"
        console.print(f"{v.target}{required}: [{colour}]{v.verdict}[/] — {v.reason}", highlight=False)
    path = version_evidence_dir(settings, record.name, record.version) / "compile_report_cli.json"
    write_json(path, report)
    console.print(f"report: {path} ({report.wall_seconds:.1f} s)")
    failed = [v for v in report.verdicts if v.target in policy.required_targets and v.verdict != "fits"]
    return EXIT_NOT_PROMOTED if failed else EXIT_OK


def contract_lint(file: str) -> int:
    from pipelines.cli import EXIT_OK, EXIT_USAGE
    from data_contracts.lint import lint_contract

    with console.status("linting contract (builds its Great Expectations suite)"):
        findings = lint_contract(file)
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        colour = "red" if f.level == "error" else "yellow"
        console.print(f"[{colour}]{f.level}[/]: {escape(f.path)}: {escape(f.message)}", highlight=False, soft_wrap=True)
    n_warn = len(findings) - len(errors)
    verdict = "[red]errors[/]" if errors else "[green]ok[/]"
    console.print(f"{escape(file)}: {verdict} ({len(errors)} error(s), {n_warn} warning(s))", highlight=False, soft_wrap=True)
    return EXIT_USAGE if errors else EXIT_OK


def contract_diff_command(old: str, new: str) -> int:
    from pipelines.cli import EXIT_BREAKING, EXIT_OK
    from data_contracts.contract import load_contract
    from data_contracts.diff import contract_diff

    diff = contract_diff(load_contract(old), load_contract(new))
    if diff.changes:
        table = Table(title=f"contract {diff.name}: {diff.old_version} -> {diff.new_version}")
        for col in ("change", "column", "old", "new", "breaking", "why"):
            table.add_column(col)
        for c in diff.changes:
            table.add_row(c.kind, escape(c.column or c.path), escape(_show(c.old)), escape(_show(c.new)),
                          "[red]yes[/]" if c.breaking else "no", escape(c.reason))
        console.print(table)
    colour = "red" if diff.is_breaking else "green"
    console.print(f"[{colour}]{escape(diff.summary_line())}[/]", highlight=False, soft_wrap=True)
    return EXIT_BREAKING if diff.is_breaking else EXIT_OK


def _show(value) -> str:
    return "-" if value is None else str(value)


def validate_command(settings: Settings, contract_ref: str, data: str, *, include_label: bool) -> int:
    from pipelines.cli import EXIT_OK, EXIT_VALIDATION_FAILED
    from data_contracts.contract import load_contract
    from tasks.evidence import write_json
    from tasks.stores import policy_for
    from tasks.validation import validate_location

    policy = policy_for(settings).validation
    contract = load_contract(contract_ref)
    uri = "://" in data  # any pyarrow filesystem: s3://, gs://, file://, ...
    if not uri and not Path(data).exists():
        raise LockgateError(f"data not found: {data}")
    data_name = data.rstrip("/").rsplit("/", 1)[-1].removesuffix(".parquet") if uri else (
        Path(data).stem if Path(data).is_file() else Path(data).resolve().name)
    out = settings.home_dir / "validation" / contract.name / data_name
    quarantine = out / "quarantine.parquet"
    if quarantine.exists() and (uri or quarantine.resolve() != Path(data).resolve()):
        quarantine.unlink()  # a stale file from an earlier run would be mistaken for this run's
    with console.status(f"validating {data} against {contract.name} v{contract.version}") as status:
        def progress(chunks: int, rows: int) -> None:
            status.update(f"validating {data} against {contract.name} v{contract.version}: {rows:,} rows "
                          f"({chunks} chunk{'s' if chunks > 1 else ''})")

        result = validate_location(data, contract, policy, dataset=str(data), include_label=include_label,
                                   evidence_dir=out, quarantine_path=quarantine, progress=progress)
    result = result.model_copy(update={"evidence": {**result.evidence,
                                                    "result": write_json(out / "validation.json", result)}})
    colour = {"pass": "green", "quarantine": "yellow"}.get(result.decision, "red")
    console.print(f"{escape(str(data))} against {contract.name} v{contract.version} "
                  f"({contract.fingerprint[:12]}): [bold {colour}]{result.decision}[/] "
                  f"({result.n_rows} rows, {result.n_quarantined} quarantined)", highlight=False, soft_wrap=True)
    if result.failed_expectations:
        table = Table(title="failed expectations")
        table.add_column("expectation")
        table.add_column("failing rows", justify="right")
        for name, count in result.failed_expectations.items():
            table.add_row(escape(name), "-" if count is None else str(count))
        console.print(table)
    for reason in result.reasons:
        console.print(f"  {escape(reason)}", highlight=False, soft_wrap=True)
    if result.decision == "quarantine":
        share = result.n_quarantined / result.n_rows
        console.print(f"[yellow]warning[/]: {result.n_quarantined} row(s) quarantined ({share:.2%}, policy limit "
                      f"{policy.max_quarantine_share:.2%}); the other rows may go on", highlight=False, soft_wrap=True)
    for role, ev in result.evidence.items():
        console.print(f"  {role}: {escape(ev.path)}", highlight=False, soft_wrap=True)
    return EXIT_OK if result.passed else EXIT_VALIDATION_FAILED
