"""Batch inference over one partition: read -> validate and quarantine -> score -> write with lineage -> monitor.

Exactly once, nothing lost: a partition already scored by the same model version is
skipped unless forced; predictions are written under a temporary name and moved into
place, so a crash leaves no partial output; reads and writes retry transient IO errors
with backoff (no transaction is open around them); every problem is an outcome with a
status and a message, never an exception that stops the other partitions.

Write-once: each scoring of a partition (an attempt, ``v<version>-<time>-<random>``) writes
its files to places of its own: predictions to ``<predictions>/_runs/<partition>/<attempt>/``
(dataset readers skip ``_`` folders), quarantine to ``<quarantine>/<partition>/<attempt>/``,
GE and drift evidence to ``<evidence>/<partition>/<attempt>/``; the ledger row names those
files. ``<predictions>/<partition>/predictions.parquet``, what consumers read, is then made
to hold the same bytes (publish_copy): a re-score replaces it and never an attempt's file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tasks.batch.monitoring import MonitoringState
from tasks.batch.partition_io import PartitionTarget, exists, join, maybe_inject_read_failure, read_partition, retried
from tasks.evidence import EvidenceFile
from tasks.drift.results import DriftResult
from tasks.errors import LockgateError
from tasks.registration.inference import ScoringStats
from tasks.policy import Policy
from tasks.batch.scoring import SCORE_COLUMN, Decision, output_columns, prediction_column, score_to_parquet

PREDICTIONS_FILE = "predictions.parquet"
RUNS_FOLDER = "_runs"  # under the predictions root: every attempt's own predictions file, named by its ledger row
STATUSES = ("scored", "skipped", "empty", "missing", "blocked", "failed")


class PartitionOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partition: str
    status: str = Field(description="scored | skipped (already scored by this version) | empty | missing | blocked "
                        "(monitoring block) | failed")
    model_version: int | None = None
    rows: int = 0
    quarantined: int = 0
    scored: int = 0
    read_attempts: int = 0
    seconds: float = 0.0
    drift: str | None = None
    drift_reasons: list[str] = []
    drift_result: DriftResult | None = Field(None, exclude=True)  # for the per-column table artifact
    monitor: str = "none"  # none | alert | block | rollback (tasks.batch.monitoring)
    monitor_reasons: list[str] = []
    monitor_triggers: list[str] = []  # "drift breach", "quality breach", ... (the incident's condition)
    source: str | None = Field(None, description="Where the partition was read from (its data's time starts an "
                               "incident's time to detect).")
    block_seq: int | None = Field(None, description="Ledger seq of the monitoring block that stopped this partition "
                                  "(status blocked), or that was raised while it was being scored (status scored: it "
                                  "was in flight, so it finished and its predictions stand).")
    output: str | None = None
    message: str = ""
    evidence: dict[str, EvidenceFile] = Field({}, description="The files the ledger row names, by role.")
    scoring: ScoringStats | None = Field(None, description="Where the rows were scored: process, devices, sharding.")


class BatchIO(BaseModel):
    """Where one model's batch outputs go and how IO is retried (from Settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    predictions_root: str
    quarantine_dir: Path
    evidence_dir: Path
    batch_rows: int = 65_536
    retries: int = 3
    retry_delay: float = 0.5
    inject_read_failures: float = 0.0
    inject_seed: int = 0
    faults_dir: Path | None = None


def attempt_output(io: BatchIO, partition: str, attempt: str) -> str:
    """Where one attempt's predictions are written (once)."""
    return join(io.predictions_root, RUNS_FOLDER, partition, attempt, PREDICTIONS_FILE)


def earlier_attempts(io: BatchIO, partition: str) -> list[str]:
    """The predictions files (or where they would be) of every earlier scoring of ``partition``, oldest first."""
    from tasks.batch.partition_io import filesystem

    import pyarrow.fs as pafs

    fs, path = filesystem(join(io.predictions_root, RUNS_FOLDER, partition))
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except OSError:
        return []
    names = sorted((i.base_name for i in infos if i.type == pafs.FileType.Directory),
                   key=lambda n: (n.split("-")[1:2], n))  # v<version>-<UTC time>-<random>: by time
    return [attempt_output(io, partition, n) for n in names]


def attempt_holding(io: BatchIO, partition: str, version: int, sha256: str) -> str | None:
    """The attempt file of ``version`` holding the bytes ``sha256`` (newest first), or None."""
    from tasks.batch.partition_io import sha256_of

    for candidate in reversed(earlier_attempts(io, partition)):
        if f"/v{version}-" in candidate and exists(candidate) and sha256_of(candidate) == sha256:
            return candidate
    return None


def blocked_outcome(partition: str, version: int | None, state: MonitoringState, **measured) -> PartitionOutcome:
    """The outcome of a partition a monitoring block stopped before it was scored."""
    return PartitionOutcome(partition=partition, model_version=version, status="blocked", block_seq=state.block_seq,
                            **measured, message=f"scoring blocked by monitoring (ledger #{state.block_seq}): "
                            f"{state.block_reason}; `lockgate unblock --reason ...` lifts it")


def already_scored(output: str, version: int, io: BatchIO) -> bool:
    """Whether ``output`` holds predictions made by ``version`` (a partition is scored once per version)."""
    if not exists(output):
        return False
    done, _ = retried(lambda: read_partition(output, columns=["model_version"]), what=f"read {output}",
                      retries=io.retries, delay=io.retry_delay)
    versions = set(done.column("model_version").to_pylist())
    return versions <= {str(version)}


def read_with_retries(target: PartitionTarget, io: BatchIO, log: Callable[[str], None] | None,
                      dictionary_columns: tuple[str, ...] | list[str] = ()):
    def attempt():
        if io.faults_dir is not None:
            maybe_inject_read_failure(target.uri, share=io.inject_read_failures, seed=io.inject_seed,
                                      state_dir=io.faults_dir)
        return read_partition(target.uri, dictionary_columns=dictionary_columns)

    return retried(attempt, what=f"read partition {target.name}", retries=io.retries, delay=io.retry_delay, log=log)


def score_partition_data(
    target: PartitionTarget, *, model, contract, policy: Policy, reference: pd.DataFrame, io: BatchIO,
    flow_run_id: str | None, force: bool, log: Callable[[str], None] | None = None,
    block_check: Callable[[], MonitoringState] | None = None,
) -> PartitionOutcome:
    """Score one partition with the champion ``model`` (a tasks.registration.inference.CompiledModel).

    ``reference`` is the champion's training snapshot with its scores in SCORE_COLUMN
    (computed once per worker), so prediction drift is monitored beside feature drift.
    ``block_check`` (the monitoring state now) is asked right before the first prediction is written: a block in
    force stops the partition there (status blocked, nothing written); a block raised after that finds it in
    flight: it finishes, scored, and its outcome names the block.
    """
    from data_contracts.frames import arrow_to_pandas, decoded
    from data_contracts.names import name_problem
    from tasks.batch.partition_io import publish_copy, sha256_of
    from tasks.stores import new_attempt_name
    from tasks.validation.gate import validate_dataset

    started = time.perf_counter()
    version, name = model.record.version, target.name
    output = join(io.predictions_root, name, PREDICTIONS_FILE)
    common = dict(partition=name, model_version=version, source=target.uri)
    problem = name_problem(name)
    if problem:  # it becomes a folder of predictions, quarantine and evidence
        return PartitionOutcome(**common, status="failed", message=f"partition name {name!r} is not a safe name: it "
                                f"{problem}; not scored")
    if not force and already_scored(output, version, io):
        return PartitionOutcome(**common, status="skipped", output=output,
                                message=f"already scored by v{version}; use --force to score it again")
    decision = predictions_decision(model, contract, policy)
    try:  # names from the contract: refused here, before anything is read, if two output columns would collide
        output_columns(contract.id_column, decision)
    except ValueError as e:
        return PartitionOutcome(**common, status="failed", message=f"{e}; not scored")
    if not exists(target.uri):
        return PartitionOutcome(**common, status="missing", message=f"partition {name} not found at {target.uri}")
    try:
        table, attempts = read_with_retries(target, io, log, dictionary_columns=contract.categorical_features)
    except LockgateError as e:
        return PartitionOutcome(**common, status="failed", message=str(e))
    common["read_attempts"] = attempts
    attempt = new_attempt_name(version)  # this scoring's own files: nothing an earlier one wrote is replaced
    written_to = attempt_output(io, name, attempt)
    if table.num_rows == 0:
        return PartitionOutcome(**common, status="empty", message=f"partition {name} has no rows; nothing scored")

    df = arrow_to_pandas(decoded(table, contract.categorical_features))
    df.index = pd.RangeIndex(len(df))  # positions (a stored pandas index is not a contract column): see below
    validation, valid = validate_dataset(
        df, contract, policy.validation, dataset=target.uri, include_label=False,
        evidence_dir=io.evidence_dir / name / attempt,
        quarantine_path=io.quarantine_dir / name / attempt / "quarantine.parquet",
    )
    common.update(rows=len(df), quarantined=validation.n_quarantined)
    if not validation.passed or len(valid) == 0:
        reasons = "; ".join(validation.reasons) if not validation.passed else "no valid rows"
        return PartitionOutcome(**common, status="failed", message=f"validation failed: {reasons}")

    if block_check is not None and (state := block_check()).blocked:
        return blocked_outcome(name, version, state, rows=common["rows"], quarantined=common["quarantined"],
                               read_attempts=attempts)

    lineage = {
        "model_name": model.record.name, "model_version": str(version), "artifact_sha256": model.artifact_sha256,
        "contract_version": f"{contract.name}@{contract.version}", "flow_run_id": flow_run_id or "",
        "scored_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    id_type = table.schema.field(contract.id_column).type
    scorer = model.scorer()  # records the devices each batch was scored on

    # the engine scores the valid rows straight from the Arrow table (categoricals as read, dictionary-typed)
    rows = table.select([contract.id_column, *model.feature_spec.columns])
    positions = None if len(valid) == len(df) else valid.index.to_numpy()

    def write():
        from tasks.batch.partition_io import remove_stale_temporaries
        from tasks.batch.scoring import table_batches

        nonlocal scorer
        scorer = model.scorer()  # this attempt's
        for stale in earlier_attempts(io, name) + [written_to]:  # temporaries a crashed scoring left (no row names one)
            remove_stale_temporaries(stale)
        return score_to_parquet(table_batches(rows, io.batch_rows, positions), written_to, features=model.features,
                                score=scorer, id_column=contract.id_column, id_type=id_type,
                                lineage=lineage, decision=decision, keep_scores=True)

    try:
        (written, scores), _ = retried(write, what=f"write predictions of {name}", retries=io.retries,
                                       delay=io.retry_delay, log=log)
    except LockgateError as e:
        return PartitionOutcome(**common, status="failed", message=str(e))

    drift, monitor = monitor_partition(valid.assign(**{SCORE_COLUMN: scores}), reference, contract, policy,
                                       io.evidence_dir / name / attempt / "drift")
    predictions = EvidenceFile(path=written_to, sha256=sha256_of(written_to))
    try:  # what consumers read now holds these bytes; the attempt's file stays as the ledger names it
        retried(lambda: publish_copy(written_to, output), what=f"publish predictions of {name}", retries=io.retries,
                delay=io.retry_delay, log=log)
    except LockgateError as e:
        return PartitionOutcome(**common, status="failed", message=str(e))
    hashes = {"predictions": predictions, **{f"validation.{k}": v for k, v in validation.evidence.items()},
              **({f"drift.{k}": v for k, v in drift.evidence.items()} if drift else {})}
    drift_word = drift.decision if drift else "error"
    scoring = scorer.stats()
    raised = block_check() if block_check is not None else None  # by another partition while this one was scored
    in_flight = (f"; in flight when monitoring block ledger #{raised.block_seq} was raised: finished and scored"
                 if raised is not None and raised.blocked else "")
    return PartitionOutcome(
        **common, status="scored", scored=written, drift=drift_word, drift_reasons=drift.reasons if drift else [],
        drift_result=drift, monitor=monitor.action, monitor_reasons=monitor.reasons, output=output,
        monitor_triggers=monitor.triggers,
        evidence=hashes, seconds=round(time.perf_counter() - started, 3), scoring=scoring,
        block_seq=raised.block_seq if in_flight else None,
        message=f"{len(df)} rows, {validation.n_quarantined} quarantined, {written} scored; drift {drift_word}; "
                f"{monitor.line()}; {scoring.line()}{in_flight}",
    )


def predictions_decision(model, contract, policy: Policy) -> Decision | None:
    """A classifier's class column, ``predicted_<label>`` named from the version's contract, at the policy's
    decision threshold; None for a regressor (its predictions are the value in SCORE_COLUMN only)."""
    if model.config.task != "classification":
        return None
    return Decision(prediction_column(contract.label_column), policy.canary.decision_threshold)


def monitor_partition(current: pd.DataFrame, reference: pd.DataFrame, contract, policy: Policy, out_dir: Path):
    """(drift result or None, monitor decision): drift of the scored rows against the reference, held to the policy.

    Monitoring that cannot run (a column with another type than the reference's, an error inside Evidently) is an
    alert: the partition's predictions are written by then."""
    from tasks.drift.gate import HTML_NAME, RESULT_NAME, SNAPSHOT_NAME, drift_evidence, drift_result, specs_for
    from tasks.evidence import remove_stale, write_json
    from tasks.batch.monitoring import MonitorDecision, monitor_decision

    dp = policy.drift

    def evidently(measured) -> bool:  # the monitor decides on lockgate's measurements, not on the report
        return policy.monitoring.evidently_report == "every_partition" or drift_result(measured, dp).decision != "ok"

    try:
        evidence = drift_evidence(reference, current, specs=specs_for(contract, SCORE_COLUMN), out_dir=out_dir,
                                  drift_share=dp.max_drifted_share, report_rows=dp.report_rows,
                                  sample_rows=dp.sample_rows, evidently=evidently)
    except Exception as e:  # noqa: BLE001 - the predictions are written: a monitor that cannot run is an alert
        remove_stale(*(out_dir / n for n in (HTML_NAME, SNAPSHOT_NAME, RESULT_NAME)))  # not these rows'
        what = str(e) if isinstance(e, LockgateError) else f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        return None, MonitorDecision(action="alert", triggers=["monitoring error"],
                                     reasons=[f"drift could not be measured: {what}"])
    drift = drift_result(evidence, dp)
    if not evidence.evidence:  # no report this time
        remove_stale(out_dir / HTML_NAME, out_dir / SNAPSHOT_NAME)
    drift = drift.model_copy(update={"evidence": {**drift.evidence, "result": write_json(out_dir / RESULT_NAME, drift)}})
    return drift, monitor_decision(drift, policy.monitoring)

