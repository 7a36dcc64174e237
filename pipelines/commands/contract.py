"""Data-contract commands: `contract lint`, `contract diff`, `validate`."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from pipelines.commands.console import console
from tasks.errors import LockgateError
from tasks.settings import Settings


def contract_lint(file: str, *, build_suites: bool = False) -> int:
    """Lint ``file``; ``build_suites`` also builds its GE suites (GE's import is most of a lint's time)."""
    from pipelines.exit_codes import EXIT_OK, EXIT_USAGE
    from data_contracts.lint import lint_contract

    with console.status("linting contract" + (" (builds its Great Expectations suites)" if build_suites else "")):
        findings = lint_contract(file, build_suites=build_suites)
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        colour = "red" if f.level == "error" else "yellow"
        console.print(f"[{colour}]{f.level}[/]: {escape(f.path)}: {escape(f.message)}", highlight=False, soft_wrap=True)
    n_warn = len(findings) - len(errors)
    verdict = "[red]errors[/]" if errors else "[green]ok[/]"
    console.print(f"{escape(file)}: {verdict} ({len(errors)} error(s), {n_warn} warning(s))", highlight=False, soft_wrap=True)
    return EXIT_USAGE if errors else EXIT_OK


def contract_diff_command(old: str, new: str) -> int:
    from pipelines.exit_codes import EXIT_BREAKING, EXIT_OK
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
    from pipelines.exit_codes import EXIT_OK, EXIT_VALIDATION_FAILED
    from data_contracts.contract import load_contract
    from tasks.stores import policy_for

    policy = policy_for(settings).validation
    contract = load_contract(contract_ref)
    with console.status(f"validating {data} against {contract.name} v{contract.version}") as status:
        def progress(chunks: int, rows: int) -> None:
            status.update(f"validating {data} against {contract.name} v{contract.version}: {rows:,} rows "
                          f"({chunks} chunk{'s' if chunks > 1 else ''})")

        result = validation_of(settings, contract, data, include_label=include_label, progress=progress)
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


def validation_of(settings: Settings, contract, data: str, *, include_label: bool, progress=None):
    """Validate ``data`` (a parquet file, hive folder or URI) against ``contract`` (a loaded Contract, a name or a
    path) under the policy's validation limits: the validation GateResult, its evidence under
    LOCKGATE_HOME/validation/<contract>/<data name>/ (what `lockgate validate` prints). The input is only read."""
    from data_contracts.contract import Contract, load_contract
    from tasks.evidence import write_json
    from tasks.paths import path_under
    from tasks.stores import policy_for
    from tasks.validation.gate import validate_location

    policy = policy_for(settings).validation
    contract = contract if isinstance(contract, Contract) else load_contract(contract)
    data = str(data)
    uri = "://" in data  # any pyarrow filesystem: s3://, gs://, file://, ...
    if not uri and not Path(data).exists():
        raise LockgateError(f"data not found: {data}")
    data_name = data.rstrip("/").rsplit("/", 1)[-1].removesuffix(".parquet") if uri else (
        Path(data).stem if Path(data).is_file() else Path(data).resolve().name)
    out = path_under(settings.home_dir / "validation", contract.name, data_name, what="contract or data name")
    quarantine = out / "quarantine.parquet"
    if quarantine.exists() and (uri or quarantine.resolve() != Path(data).resolve()):
        quarantine.unlink()  # a stale file from an earlier run would be mistaken for this run's
    result = validate_location(data, contract, policy, dataset=data, include_label=include_label, evidence_dir=out,
                               quarantine_path=quarantine, progress=progress)
    return result.model_copy(update={"evidence": {**result.evidence,
                                                  "result": write_json(out / "validation.json", result)}})
