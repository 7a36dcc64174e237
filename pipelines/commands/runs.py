"""Flow-running commands: `run lifecycle`, `run batch-inference`, `backfill`, `serve`, and the monitoring block (`unblock`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from pipelines.commands.console import console
from pipelines.temporary_api import ensure_api
from tasks.errors import LockgateError
from tasks.settings import Settings


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """`run lifecycle`, `run batch-inference`, `backfill`, `serve`, `unblock`."""
    if args.command == "serve":
        return serve_command(settings, name=args.name, cron=args.cron, timezone=args.timezone)
    if args.command == "unblock":
        return unblock(settings, reason=args.reason)
    from tasks.stores import policy_for

    policy_for(settings)  # a bad policy is a one-line error before any flow starts
    if args.command == "backfill":
        return backfill(settings, args.start, args.end, force=args.force)
    if args.flow == "lifecycle":
        return run_lifecycle(settings, args.version, args.golden, args.current)
    return run_batch_inference(settings, partitions=[str(p) for p in args.partitions], force=args.force)


def require_parquet(path: Path, what: str) -> None:
    """Fail fast, before any flow starts, on a missing or unreadable input."""
    from tasks.datasets import read_table

    read_table(path, what=what).head(0)


def lifecycle_outcome(settings: Settings, version: int, golden: Path, current: Path | None = None):
    """Check the inputs, make sure a Prefect API answers, and run the lifecycle flow: its LifecycleOutcome."""
    from pipelines.commands.approval import require_reachable_api
    from tasks.stores import registry_for

    require_reachable_api(settings)  # before any work: a run paused for approval must be reachable by reviewers
    registry_for(settings).get(settings.model_name, version)  # one-line error if missing
    require_parquet(golden, "golden set")
    if current is not None:
        require_parquet(current, "current data")
    ensure_api(settings)
    from pipelines.lifecycle import lifecycle

    return lifecycle(version=version, golden=str(golden), current=str(current) if current else None,
                     model_name=settings.model_name)


def run_lifecycle(settings: Settings, version: int, golden: Path, current: Path | None) -> int:
    from pipelines.exit_codes import EXIT_NOT_PROMOTED, EXIT_OK

    with console.status(f"lifecycle for {settings.model_name} v{version} (Prefect; waits for reviewers if the policy "
                        f"needs approval in {settings.environment}: `lockgate pending`)"):
        outcome = lifecycle_outcome(settings, version, golden, current)
    colour = {"champion": "green", "rejected": "red"}.get(outcome.decision, "yellow")
    console.print(f"{outcome.model_name} v{outcome.version}: [bold {colour}]{outcome.decision}[/]")
    for line in outcome.gates:
        console.print(f"  {line}", highlight=False)
    return EXIT_OK if outcome.decision == "champion" else EXIT_NOT_PROMOTED


def batch_outcome(settings: Settings, *, partitions: list[str] | None = None, dates: list[str] | None = None,
                  force: bool = False, announce=None):
    """Score ``partitions`` (or the ``dates`` under the input root) with the champion: the BatchRun.
    ``announce`` (optional) is called with a line once the champion is known, before Prefect starts."""
    from pipelines.batch_inference import run_batch
    from tasks.registry import CHAMPION
    from tasks.stores import registry_for

    registry_for(settings).require_alias(settings.model_name, CHAMPION)
    ensure_api(settings)
    if announce is not None:
        n = len(partitions or dates or [])
        announce(f"scoring {n} partition(s) with the champion ({settings.task_runner} task runner; Prefect starts "
                 "its API first)")
    return run_batch(settings, partitions=partitions, dates=dates, force=force)


def run_batch_inference(settings: Settings, *, partitions: list[str] | None = None, dates: list[str] | None = None,
                        force: bool) -> int:
    from pipelines.exit_codes import EXIT_OK, EXIT_ROLLED_BACK
    from pipelines.progress import progress_bar

    with progress_bar(console):
        run = batch_outcome(settings, partitions=partitions, dates=dates, force=force,
                            announce=lambda line: console.print(line, highlight=False))
    outcomes = run.outcomes
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
    if any(o.monitor != "none" or o.status == "blocked" for o in outcomes) or run.monitoring_after.blocked:
        show_monitoring(settings)
    code, line = batch_exit(run)
    colour = {EXIT_OK: "green", EXIT_ROLLED_BACK: "yellow"}.get(code, "red")
    console.print(f"[bold {colour}]exit {code}[/]: {escape(line)}", highlight=False, soft_wrap=True)
    return code


def batch_exit(run) -> tuple[int, str]:
    """A batch run's exit code (pipelines/exit_codes.py: 4 > 6 > 5 > 0) and the line that says why."""
    from pipelines.exit_codes import EXIT_OK, EXIT_PARTITIONS_FAILED, EXIT_ROLLED_BACK, EXIT_SCORING_BLOCKED
    from tasks.batch.run import run_verdict

    verdict = run_verdict(run)
    return {"ok": EXIT_OK, "partitions_failed": EXIT_PARTITIONS_FAILED, "blocked": EXIT_SCORING_BLOCKED,
            "rolled_back": EXIT_ROLLED_BACK}[verdict.verdict], verdict.line


def backfill(settings: Settings, start: str, end: str, *, force: bool) -> int:
    """Every date from START to END (both included) under the input root, in one flow run."""
    from datetime import date

    from tasks.batch.partition_io import dates_between

    try:
        days = dates_between(date.fromisoformat(start), date.fromisoformat(end))
    except ValueError as e:
        raise LockgateError(f"--from/--to must be dates YYYY-MM-DD: {e}") from None
    console.print(f"backfill {days[0]} .. {days[-1]} ({len(days)} day(s)) from {settings.input_uri}", highlight=False)
    return run_batch_inference(settings, dates=[d.isoformat() for d in days], force=force)


def serve_command(settings: Settings, *, name: str, cron: str | None, timezone: str | None) -> int:
    from prefect.schedules import Cron

    from pipelines.batch_inference import batch_inference
    from pipelines.serve import deployment_schedule

    if not os.environ.get("PREFECT_API_URL"):
        raise LockgateError("lockgate serve needs a Prefect server: start one (`prefect server start`) and set "
                            "PREFECT_API_URL; the temporary API of other commands has no scheduler")
    ensure_api(settings)
    spec = deployment_schedule()
    try:
        schedule = Cron(cron or spec.cron, timezone=timezone or spec.timezone)
    except ValueError as e:
        raise LockgateError(f"invalid schedule: {' '.join(str(e).split())[:300]}") from None
    console.print(f"serving batch-inference/{name} on '{schedule.cron}' ({schedule.timezone}); each run scores "
                  f"the partition {settings.schedule_offset_days} day(s) before its scheduled date under "
                  f"{settings.input_uri} with the {settings.task_runner} task runner. Stop with Ctrl-C or SIGTERM "
                  "(the schedule stays active).", highlight=False)
    batch_inference.serve(name=name, schedules=[schedule], paused=False, pause_on_shutdown=False,
                          print_starting_message=False, tags=["lockgate", "batch-inference"],
                          description="Score the scheduled date's partition with the champion (lockgate serve).")
    console.print("serve stopped", highlight=False)
    return 0


def show_monitoring(settings: Settings) -> None:
    from tasks.batch.monitoring import monitoring_state
    from tasks.stores import ledger_for

    state = monitoring_state(ledger_for(settings).entries(model_name=settings.model_name))
    colour = "red" if state.blocked else ("yellow" if state.alerts else "green")
    console.print(f"monitoring: [bold {colour}]{escape(state.line())}[/]", highlight=False, soft_wrap=True)


def unblock(settings: Settings, *, reason: str) -> int:
    from tasks.ledger.entry import LedgerEntry
    from tasks.batch.monitoring import CLEAR, monitoring_state
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
