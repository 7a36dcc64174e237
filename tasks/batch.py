"""Batch inference over one partition: validate -> quarantine -> score -> write with lineage -> monitor.

Predictions are written atomically; a partition already scored by the same model
version is skipped unless forced; a failed partition is reported and never leaves
partial output.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tasks.datasets import read_table, write_table
from tasks.errors import LockgateError
from tasks.drift_models import DriftResult
from tasks.policy import Policy
from tasks.validation import validate_dataset

SCORE_COLUMN, PREDICTION_COLUMN = "score", "predicted_default"


class PartitionOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partition: str
    status: str  # scored | skipped | failed
    rows: int = 0
    quarantined: int = 0
    scored: int = 0
    drift: str | None = None
    drift_reasons: list[str] = []
    drift_result: DriftResult | None = Field(None, exclude=True)  # for the per-column table artifact
    output: str | None = None
    message: str = ""
    evidence: dict[str, str] = {}


def partition_name(path: str | Path) -> str:
    """``.../stream/date=2026-01-01`` -> ``date=2026-01-01``; a file -> its stem."""
    p = Path(path)
    return p.name if p.is_dir() or "=" in p.name else p.stem


def predictions_frame(valid: pd.DataFrame, scores: np.ndarray, *, id_column: str, lineage: dict[str, str],
                      threshold: float | None) -> pd.DataFrame:
    """Predictions with one lineage column per entry of ``lineage`` (model, version, artifact sha256, ...).

    ``scores``: the artifact's outputs (probabilities of a classifier, predicted values of a regressor).
    ``threshold``: a classifier's decision threshold, giving the 0/1 decision column; None for a regressor,
    whose score column is the prediction itself and which has no decision column."""
    out = pd.DataFrame({id_column: valid[id_column].to_numpy(), SCORE_COLUMN: scores.astype(np.float32)})
    if threshold is not None:
        out[PREDICTION_COLUMN] = (out[SCORE_COLUMN] >= threshold).astype(np.int8)
    for key, value in lineage.items():
        out[key] = value
    return out


def score_partition_data(
    path: str, *, model, contract, policy: Policy, reference: pd.DataFrame, out_dir: Path, quarantine_dir: Path,
    evidence_dir: Path, flow_run_id: str | None, force: bool,
) -> PartitionOutcome:
    """Score one partition with the champion ``model`` (a tasks.inference.CompiledModel).

    ``reference`` is the champion's training snapshot with its scores in SCORE_COLUMN
    (computed once per run), so prediction drift is monitored beside feature drift.
    """
    from tasks.drift import drift_evidence, drift_result, specs_for
    from tasks.evidence import sha256_file

    name = partition_name(path)
    output = out_dir / name / "predictions.parquet"
    version = str(model.record.version)
    if output.exists() and not force:
        done = pd.read_parquet(output, columns=["model_version"])
        if len(done) == 0 or (done["model_version"] == version).all():
            return PartitionOutcome(partition=name, status="skipped", output=str(output),
                                    message=f"already scored by v{version}; use --force to re-score")
    try:
        df = read_table(path, what=f"partition {name}")
    except LockgateError as e:
        return PartitionOutcome(partition=name, status="failed", message=str(e))

    validation, valid = validate_dataset(
        df, contract, policy.validation, dataset=str(path), include_label=False,
        evidence_dir=evidence_dir / name, quarantine_path=quarantine_dir / name / "quarantine.parquet",
    )
    if not validation.passed:
        return PartitionOutcome(partition=name, status="failed", rows=len(df), quarantined=validation.n_quarantined,
                                message="; ".join(validation.reasons))
    scores = model.score(valid)
    lineage = {
        "model_name": model.record.name,
        "model_version": version,
        "artifact_sha256": model.artifact_sha256,
        "contract_version": f"{contract.name}@{contract.version}",
        "flow_run_id": flow_run_id or "",
        "scored_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    frame = predictions_frame(valid, scores, id_column=contract.id_column, lineage=lineage,
                              threshold=policy.canary.decision_threshold if model.config.task == "classification"
                              else None)
    write_table(frame, output)

    dp = policy.drift
    evidence = drift_evidence(reference, valid.assign(**{SCORE_COLUMN: scores}), specs=specs_for(contract, SCORE_COLUMN),
                              out_dir=evidence_dir / name / "drift", drift_share=dp.max_drifted_share,
                              report_rows=dp.report_rows, sample_rows=dp.sample_rows)
    drift = drift_result(evidence, policy.drift)
    hashes = {"predictions": sha256_file(output), **{f"validation.{k}": v.sha256 for k, v in validation.evidence.items()},
              **{f"drift.{k}": v.sha256 for k, v in drift.evidence.items()}}
    return PartitionOutcome(
        partition=name, status="scored", rows=len(df), quarantined=validation.n_quarantined, scored=len(frame),
        drift=drift.decision, drift_reasons=drift.reasons, drift_result=drift, output=str(output), evidence=hashes,
        message=f"{len(frame)} rows scored, {validation.n_quarantined} quarantined; drift {drift.decision}",
    )
