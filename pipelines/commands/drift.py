"""`lockgate drift REFERENCE CURRENT`: the per-column drift table, the decision, and the reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines.commands.console import console
from tasks.errors import LockgateError
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.drift.results import DriftEvidence, DriftResult


def _name(location: str) -> str:
    stem = location.rstrip("/").rsplit("/", 1)[-1]
    return stem.removesuffix(".parquet") or "data"


IDENTIFIER_ROWS = 10_000  # reference rows read to tell an identifier from a category
IDENTIFIER_MIN = 50  # fewer distinct non-null values than this are a small category, not an identifier


def inferred_specs(reference: str, prediction: str | None):
    """Without a contract: numeric columns by arrow type, strings/booleans as categorical; other types skipped, and
    so are identifiers (:func:`identifier_columns`). Returns (specs, skipped), skipped as "name (why)"."""
    import pyarrow as pa

    from tasks.drift.gate import DriftSpec
    from tasks.drift.source import open_source

    source = open_source(reference, [], "reference")
    specs, skipped, strings = [], [], []
    for field in source.schema:
        t = field.type
        if field.name == prediction or field.name in source.partition_fields:
            continue
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            specs.append(DriftSpec(name=field.name, kind="numeric"))
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            specs.append(DriftSpec(name=field.name, kind="categorical"))
            strings.append(field.name)
        elif pa.types.is_boolean(t):
            specs.append(DriftSpec(name=field.name, kind="categorical"))
        else:
            skipped.append(f"{field.name} ({t})")
    identifiers = identifier_columns(source, strings)
    if identifiers:
        specs = [s for s in specs if s.name not in identifiers]
        skipped += [f"{name} (identifier: {rows:,} values, all distinct)" for name, rows in identifiers.items()]
    if prediction:
        specs.append(DriftSpec(name=prediction, kind="numeric", role="prediction"))
    return specs, skipped


def identifier_columns(source, names: list[str]) -> dict[str, int]:
    """String columns whose non-null values in the reference's first IDENTIFIER_ROWS rows are all distinct (at
    least IDENTIFIER_MIN of them) -> how many: identifiers (Evidently's ``id`` role), not categories. Every current
    value of one is unseen, so its categorical drift is total and meaningless, and Evidently's report of it is the
    slowest part of the whole report (3,000 ids: 5 of 6 CPU-s)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not names:
        return {}
    chunks: dict[str, list] = {n: [] for n in names}
    rows = 0
    for partition in source.partitions:
        for batch in partition(names):
            for n in names:
                chunks[n].append(batch.column(n))
            rows += batch.num_rows
            if rows >= IDENTIFIER_ROWS:
                break
        if rows >= IDENTIFIER_ROWS:
            break
    found = {}
    for n, parts in chunks.items():
        values = pa.chunked_array(parts, type=source.type_of(n)).slice(0, IDENTIFIER_ROWS)
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        values = pc.drop_null(values)
        if len(values) >= IDENTIFIER_MIN and pc.count_distinct(values).as_py() == len(values):
            found[n] = len(values)
    return found


class DriftMeasurement(NamedTuple):
    """What `lockgate drift` measured: the gate's typed result, Evidently's evidence, how columns were chosen."""

    result: DriftResult
    evidence: DriftEvidence
    columns: int
    what: str
    skipped: list[str]


def drift_of(settings: Settings, reference: str, current: str, *, contract_ref: str | None = None,
             prediction: str | None = None, out: Path | None = None, progress=None) -> DriftMeasurement:
    """Drift of ``current`` against ``reference`` under the policy's drift limits, per column with the contract's
    methods (else the reference schema's columns with Evidently's choices); reports and drift.json under ``out``
    (default LOCKGATE_HOME/drift/<current name>)."""
    from tasks.drift.gate import RESULT_NAME, DriftSpec, drift_evidence, drift_result, specs_for
    from tasks.evidence import write_json
    from tasks.stores import policy_for

    policy = policy_for(settings).drift
    reference, current = str(reference), str(current)
    skipped: list[str] = []
    if contract_ref:
        from data_contracts.contract import load_contract

        contract = load_contract(contract_ref)
        specs = specs_for(contract) + ([DriftSpec(name=prediction, kind="numeric", role="prediction")]
                                       if prediction else [])
        what = f"contract {contract.name} v{contract.version}"
    else:
        specs, skipped = inferred_specs(reference, prediction)
        if not specs:
            raise LockgateError(f"reference data {reference} has no numeric or string columns to compare")
        what = "columns inferred from the reference schema (pass --contract for the contract's methods)"
    out = Path(out) if out is not None else settings.home_dir / "drift" / _name(current)
    evidence = drift_evidence(reference, current, specs=specs, out_dir=out, drift_share=policy.max_drifted_share,
                              report_rows=policy.report_rows, sample_rows=policy.sample_rows, progress=progress)
    result = drift_result(evidence, policy)
    result = result.model_copy(update={"evidence": {**result.evidence, "result": write_json(out / RESULT_NAME, result)}})
    return DriftMeasurement(result=result, evidence=evidence, columns=len(specs), what=what, skipped=skipped)


def drift_command(settings: Settings, reference: str, current: str, *, contract_ref: str | None,
                  prediction: str | None, out: Path | None) -> int:
    from pipelines.exit_codes import EXIT_DRIFT_BREACH, EXIT_OK

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("reading", total=None, rate="")
        started: dict[str, float] = {}

        def progress(phase: str, done: int, total: int, rows: int) -> None:
            import time

            t0 = started.setdefault(phase, time.perf_counter() - 1e-9)
            rate = f"{rows / (time.perf_counter() - t0):,.0f} rows/s" if rows else ""
            bar.update(task, description=f"{phase} (partitions)", completed=done, total=total, rate=rate)

        measured = drift_of(settings, reference, current, contract_ref=contract_ref, prediction=prediction, out=out,
                            progress=progress)
    result, evidence, what, skipped = measured.result, measured.evidence, measured.what, measured.skipped
    console.print(f"{escape(current)} vs reference {escape(reference)}: {evidence.n_current:,} vs "
                  f"{evidence.n_reference:,} rows, {measured.columns} columns ({what}), {evidence.seconds:.1f} s",
                  highlight=False, soft_wrap=True)
    rows = [{k: v for k, v in row.items() if k != "threshold"} for row in result.table()]  # "drift if" has it
    table = Table(title="drift per column")
    for key in rows[0]:
        table.add_column(key, justify="right" if key in ("score", "drift if", "null share", "unseen share",
                                                         "out of range") else "left")
    for row in rows:
        style = {"DRIFT": "red", "no data": "yellow"}.get(row["verdict"])
        table.add_row(*[escape("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
                        for v in row.values()], style=style)
    console.print(table)
    colour = {"ok": "green", "warn": "yellow"}.get(result.decision, "red")
    console.print(f"decision: [bold {colour}]{result.decision}[/]", highlight=False)
    for reason in result.reasons:
        console.print(f"  {escape(reason)}", highlight=False, soft_wrap=True)
    console.print(f"  accuracy: {escape(result.accuracy)}", highlight=False, soft_wrap=True)
    if skipped:
        console.print(f"  not compared: {escape(', '.join(skipped))}", highlight=False, soft_wrap=True)
    for role, ev in result.evidence.items():
        console.print(f"  {role}: {escape(ev.path)}", highlight=False, soft_wrap=True)
    return EXIT_DRIFT_BREACH if result.decision == "breach" else EXIT_OK
