"""Model-version commands: `register`, `compile`, `status` (and the NAME[:VERSION|@ALIAS] lookup others share)."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from pipelines.commands.console import console
from pipelines.exit_codes import EXIT_NOT_PROMOTED, EXIT_OK
from tasks.errors import LockgateError
from tasks.settings import Settings


def register(settings: Settings, args: argparse.Namespace) -> int:
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, policy_for, registry_for

    golden = getattr(args, "golden", None) or settings.golden
    with console.status("registering candidate"):
        record = register_candidate(
            registry_for(settings), ledger_for(settings), name=settings.model_name, arch=args.arch,
            model=args.model, code_root=args.code_root, config_path=args.config, params_path=args.params, reference_path=args.reference,
            contract_name=args.contract, actor=settings.actor, description=args.description,
            intended_use=args.intended_use, limitations=args.limitations, policy=policy_for(settings),
            poisoning=policy_for(settings).poisoning, golden_path=golden,
        )
    console.print(f"registered [bold]{record.name} v{record.version}[/] (run {record.run_id})")
    screen = record.tags.get("lockgate.registration.poisoning")
    if screen and screen != "pass":
        found = record.tags.get("lockgate.registration.poisoning_findings")
        console.print(f"poisoning screen: {screen} ({found} finding(s), see poisoning_screen.json in the version's "
                      "files)", highlight=False)
    return 0


def resolve_model_spec(settings: Settings, spec: str):
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` -> the model version record (latest when no version)."""
    from tasks.paths import checked_name
    from tasks.stores import registry_for

    registry = registry_for(settings)
    if "@" in spec:
        name, alias = spec.split("@", 1)
        checked_name(name, "model name")
        return registry.require_alias(name, alias)
    name, _, version = spec.partition(":")
    checked_name(name, "model name")
    if version:
        if not version.isdigit():
            raise LockgateError(f"version in {spec!r} must be a number, e.g. {name}:3")
        return registry.get(name, int(version))
    versions = registry.versions(name)
    if not versions:
        raise LockgateError(f"model {name} has no registered versions; run `lockgate register` first")
    return versions[-1]


def compile_command(settings: Settings, spec: str, *, targets, buckets, variants) -> int:
    from models.aot import model_request
    from tasks.compilation.report import MIB, compile_report
    from tasks.evidence import write_json
    from tasks.policy import CompilationPolicy
    from tasks.registration.inference import load_version_files
    from tasks.stores import cache_dir, policy_for, registry_for, version_evidence_dir

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
    _, model, _, params = load_version_files(registry_for(settings), record, cache_dir(settings))
    with console.status(f"compiling {record.name} v{record.version} for {', '.join(policy.targets)}"):
        report = compile_report(model_request(model, params), targets=list(policy.targets),
                                buckets=list(policy.batch_buckets), variants=list(policy.variants),
                                cache_dir=settings.compile_cache_path, timeout=policy.compile_timeout_seconds,
                                headroom=policy.hbm_headroom, workers=policy.compile_workers,
                                group_targets=policy.group_targets)
    table = Table(title=f"compile report: {record.name} v{record.version} ({escape(model.arch)})")
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


def status_command(settings: Settings, *, limit: int) -> int:
    show_status(settings, limit=limit)
    return EXIT_OK


def show_status(settings: Settings, *, limit: int) -> None:
    from pipelines.status import model_status

    st = model_status(settings, limit=limit)
    console.print(f"[bold]{st.model_name}[/]  registry: {st.tracking_uri}")
    if st.recovered is not None:
        action, _, rest = st.recovered.partition(" ")
        console.print(f"  [yellow]{action}[/] {escape(rest)}", highlight=False)
    if not st.aliases:
        console.print("  no aliases yet (no champion)")
    for alias, version in st.aliases.items():
        console.print(f"  {alias}: v{version}")
    state = st.monitoring
    colour = "red" if state.blocked else ("yellow" if state.alerts else "green")
    console.print(f"monitoring: [bold {colour}]{escape(state.line())}[/]", highlight=False, soft_wrap=True)
    _show_incidents(settings)
    versions = Table(title="versions")
    for col in ("version", "status", "contract", "artifact sha256", "created by"):
        versions.add_column(col)
    for v in st.versions:
        versions.add_row(str(v.version), v.status, v.contract, v.artifact_sha256[:16], v.registered_by)
    console.print(versions)
    entries = Table(title=f"last {limit} ledger entries")
    for col in ("#", "when (UTC)", "actor", "action", "version", "alias", "reason"):
        entries.add_column(col, overflow="fold")
    for e in st.entries:
        entries.add_row(str(e.seq), e.recorded_at[:19], e.actor, e.action, f"v{e.version}" if e.version else "-",
                        e.alias or "-", e.reason)
    console.print(entries)
    verdict = "[green]hash chain intact[/]" if st.ledger_ok else f"[red]TAMPERED at {st.ledger_problem}[/]"
    console.print(f"ledger {st.ledger_uri}: {st.ledger_entries} entries, {verdict}")
    console.print("aliases: [green]registry agrees with the ledger[/]" if st.aliases_agree
                  else f"aliases: [red]{escape(st.aliases_problem or '')}[/]", highlight=False)


def _show_incidents(settings: Settings) -> None:
    """One line per open incident of the model (`lockgate incidents` lists them with their evidence)."""
    from tasks.governance.incidents import incidents_from
    from tasks.stores import ledger_for

    found = incidents_from(ledger_for(settings).entries(model_name=settings.model_name))
    still = [i for i in found if i.status == "open"]
    colour = "red" if still else "green"
    console.print(f"incidents: [{colour}]{len(still)} open[/], {len(found) - len(still)} resolved", highlight=False)
    for i in still:
        console.print(f"  {escape(i.line())}", highlight=False, soft_wrap=True)
