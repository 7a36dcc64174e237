"""The `batch-inference` flow: the champion scores each partition; partitions fan out over the task runner.

Per partition (tasks/batch.py): verify artifact hashes -> validate and quarantine ->
score in bucketed batches -> write predictions with lineage -> monitor drift ->
ledger row. One failing partition does not stop the others.
"""

from __future__ import annotations

from prefect import flow
from prefect.utilities.annotations import quote

from tasks import gates
from tasks.batch import PartitionOutcome
from tasks.errors import LockgateError
from tasks.settings import Settings
from tasks.stores import policy_for


@flow(name="batch-inference", log_prints=True)
def batch_inference(partitions: list[str], model_name: str | None = None, force: bool = False) -> list[PartitionOutcome]:
    """Score ``partitions`` (parquet files or hive partition folders) with the current champion."""
    settings = Settings()
    policy = policy_for(settings)
    name = model_name or settings.model_name
    try:
        # quote(): the loaded model and reference frame are passed as-is, not walked for futures
        champion = gates.load_champion(settings, policy, name)
    except LockgateError as e:  # e.g. a champion artifact whose sha256 changed: nothing is scored, and it is recorded
        return gates.refuse_partitions(settings, policy, name, partitions, e)
    futures = [gates.score_partition.submit(settings, policy, quote(champion), path, force) for path in partitions]
    return [f.result() for f in futures]
