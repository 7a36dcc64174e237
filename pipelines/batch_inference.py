"""The `batch-inference` flow: the champion scores each partition; partitions fan out over the task runner.

    which partitions -> load + verify champion -> score each partition (fan-out) -> monitor actions

Per partition (tasks/batch/partition.py): read (retried) -> validate and quarantine -> score in
bucketed batches -> write predictions with lineage atomically -> monitor drift and
quality -> ledger row. One failing partition does not stop the others. A monitoring block
(in force, or raised by a partition of this run) stops every partition not yet writing
predictions; those writing finish. A breach the monitoring policy answers with ``rollback``
puts the previous champion back (once per run) and, if the policy says so, scores the
breached partitions again with it. The result (tasks/batch/run.py) carries the outcomes,
the rollback and the monitoring state before and after, for the command's exit code.

Partitions: explicit locations, or dates under the input root (``date=YYYY-MM-DD``), or,
with neither (a scheduled run), the scheduled date minus ``schedule_offset_days``.
The task runner (threads or Dask) comes from settings; the flow code is the same.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.runtime import deployment

from pipelines.gc_thresholds import tune_gc
from pipelines.prefect_clients import share_tls_context
from pipelines.progress import reporter
from pipelines.runners import task_runner_for
from pipelines.runtime import process_defaults
from tasks import gates
from tasks.batch.partition import PartitionOutcome
from tasks.batch.partition_io import PartitionTarget, dated_partition, partition_name, scheduled_day
from tasks.batch.run import BatchRun, Rollback
from tasks.errors import LockgateError
from tasks.settings import Settings
from tasks.stores import policy_for

share_tls_context()  # before any flow runs: one TLS context for Prefect's clients (pipelines/prefect_clients.py)


def partition_targets(settings: Settings, partitions: list[str] | None, dates: list[str] | None) -> list[PartitionTarget]:
    """Explicit locations, else dates under the input root, else the scheduled run's date."""
    if partitions:
        return [PartitionTarget(name=partition_name(str(p)), uri=str(p)) for p in partitions]
    if not dates:
        from prefect.runtime import flow_run

        when = flow_run.scheduled_start_time
        dates = [scheduled_day(when.date(), settings.schedule_offset_days).isoformat()]
    try:
        days = [date.fromisoformat(d) for d in dates]
    except ValueError as e:
        raise LockgateError(f"dates must be YYYY-MM-DD: {e}") from None
    return [dated_partition(settings.input_uri, d) for d in days]


@flow(name="batch-inference", log_prints=True, task_runner=task_runner_for(None))
def batch_inference(partitions: list[str] | None = None, dates: list[str] | None = None,
                    model_name: str | None = None, force: bool = False) -> BatchRun:
    """Score ``partitions`` (parquet files, hive folders or URIs), or the ``dates`` under the input root, or the
    scheduled date, with the current champion."""
    settings = Settings()
    if deployment.get_id():  # started by a work pool's worker (or `lockgate serve`): set up the process like the CLI
        tune_gc()
        settings.ensure_home()
        process_defaults(settings.jax_cache_path)
    policy = policy_for(settings)
    name = model_name or settings.model_name
    targets = partition_targets(settings, partitions, dates)
    before = gates.monitoring_now(settings, name)
    try:
        champion = gates.load_champion(settings, policy, name)
    except LockgateError as e:  # no champion, or an artifact whose sha256 changed: nothing is scored, it is recorded
        return BatchRun(outcomes=gates.refuse_partitions(settings, policy, name, targets, e),
                        monitoring_before=before, monitoring_after=gates.monitoring_now(settings, name))
    outcomes = score_all(settings, policy, champion, targets, force=force)
    breached = [o for o in outcomes if o.monitor == "rollback"]
    rollback = None
    if breached:
        restored = gates.rollback_model(settings, policy, champion, breached)
        if restored is not None:
            rollback = Rollback(from_version=champion.version, to_version=restored.version,
                                partitions=[o.partition for o in breached],
                                rescored=policy.monitoring.rescore_after_rollback)
        if restored is not None and policy.monitoring.rescore_after_rollback:
            again = {t.name: t for t in targets if t.name in {o.partition for o in breached}}
            rescored = {o.partition: o for o in score_all(settings, policy, restored, list(again.values()),
                                                          force=True, rescore=True)}
            outcomes = [rescored.get(o.partition, o) for o in outcomes]
    return BatchRun(outcomes=outcomes, rollback=rollback, monitoring_before=before,
                    monitoring_after=gates.monitoring_now(settings, name))


def score_all(settings: Settings, policy, champion, targets: list[PartitionTarget], *, force: bool,
              rescore: bool = False) -> list[PartitionOutcome]:
    """Submit one score-partition task per target; collect outcomes as they finish, with progress."""
    logger = get_run_logger()
    futures = {gates.score_partition.submit(settings, policy, champion, t, force, rescore): t for t in targets}
    progress = reporter()
    progress.start(len(targets), f"v{champion.version}")
    done: dict[str, PartitionOutcome] = {}
    for future in as_completed(list(futures)):
        target = futures[future]
        try:
            outcome = future.result()
        except Exception as e:  # noqa: BLE001 - an unexpected crash of one partition is its outcome, not the run's
            outcome = PartitionOutcome(partition=target.name, status="failed", model_version=champion.version,
                                       message=f"unexpected error: {type(e).__name__}: {' '.join(str(e).split())[:300]}")
            gates.record_partition(settings, policy, champion, outcome)
        done[target.name] = outcome
        line = progress.advance(outcome)
        logger.info("progress: %s", line)
    progress.finish()
    return [done[t.name] for t in targets]


def run_batch(settings: Settings, **parameters) -> BatchRun:
    """Run the flow now, in this process, with the task runner the settings choose."""
    return batch_inference.with_options(task_runner=task_runner_for(settings))(**parameters)
