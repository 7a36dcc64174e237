"""A partition's predictions are named from the version's contract: ``score``, ``predicted_<label>`` for a
classifier, no class column for a regressor; a clash of names is a failed outcome naming it, nothing written."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.batch.scoring import LINEAGE_COLUMNS

ROOT = Path(__file__).resolve().parents[3]


def _contract(name: str, renames: dict[str, str]):
    """A contract of this repo with words renamed in its text (another label or id column name)."""
    from data_contracts.contract import parse_contract

    text = (ROOT / "data_contracts" / f"{name}.yaml").read_text()
    for old, new in renames.items():
        text = text.replace(old, new)
    return parse_contract(text)


def _model(contract, frame: pd.DataFrame, task: str):
    from models.config import MLPConfig
    from models.export import export_inference, load_exported
    from models.features import fit_feature_spec
    from models.train import init_params
    from tasks.registration.inference import CompiledModel
    from tasks.registry import ModelVersionRecord

    spec = fit_feature_spec(frame, contract.numeric_features, contract.categorical_features)
    config = MLPConfig(num_features=spec.num_features, hidden_sizes=(8,), task=task)
    params = init_params(config, seed=0)
    record = ModelVersionRecord(name="m", version=1, run_id="r", source="s", tags={}, aliases=(), created_at_ms=0)
    return CompiledModel(record=record, arch="mlp", config=config, feature_spec=spec, params=params,
                         exported=load_exported(export_inference(config, params, platforms=("cpu",))),
                         artifact_sha256="ab" * 32, buckets=(1, 64, 256))


def _score(tmp_path, contract, frame, task):
    from tasks.batch.partition import BatchIO, score_partition_data
    from tasks.batch.partition_io import PartitionTarget
    from tasks.policy import load_policy

    model = _model(contract, frame, task)
    production = frame.drop(columns=[contract.label_column])
    src = tmp_path / "date=2026-11-01.parquet"
    production.to_parquet(src, index=False)
    io = BatchIO(predictions_root=str(tmp_path / "predictions"), quarantine_dir=tmp_path / "quarantine",
                 evidence_dir=tmp_path / "evidence")
    reference = production.assign(score=model.score(production))
    outcome = score_partition_data(PartitionTarget(name="date=2026-11-01", uri=str(src)), model=model,
                                   contract=contract, policy=load_policy(ROOT / "pipelines/policies/demo.yaml"),
                                   reference=reference, io=io, flow_run_id="run-1", force=False)
    return outcome, model.score(production)


@pytest.mark.parametrize(("label", "column"), [("defaulted", "predicted_defaulted"), ("churned", "predicted_churned")])
def test_a_classifiers_class_column_is_predicted_and_the_contracts_label(tmp_path, label, column):
    from data_contracts.synthetic_credit import generate_frame

    contract = _contract("credit_default", {"defaulted": label})
    assert contract.label_column == label
    frame = generate_frame(200, seed=3, day=date(2026, 11, 1)).rename(columns={"defaulted": label})
    outcome, expected = _score(tmp_path, contract, frame, "classification")
    assert outcome.status == "scored", outcome.message
    out = pd.read_parquet(outcome.output)
    assert list(out.columns) == [contract.id_column, "score", column, *LINEAGE_COLUMNS]
    np.testing.assert_allclose(out["score"], expected, atol=1e-6)
    assert (out[column] == (expected >= 0.5)).all()


def test_a_regressors_predictions_have_the_value_in_score_and_no_class_column(tmp_path):
    from data_contracts.synthetic_credit import generate_lgd_frame

    contract = _contract("loss_given_default", {})
    frame = generate_lgd_frame(200, seed=3, day=date(2026, 11, 1))
    outcome, expected = _score(tmp_path, contract, frame, "regression")
    assert outcome.status == "scored", outcome.message
    out = pd.read_parquet(outcome.output)
    assert list(out.columns) == [contract.id_column, "score", *LINEAGE_COLUMNS]
    np.testing.assert_allclose(out["score"], expected, atol=1e-6)


def test_an_id_column_named_like_the_class_column_fails_the_partition_naming_it(tmp_path):
    from data_contracts.synthetic_credit import generate_frame

    contract = _contract("credit_default", {"application_id": "predicted_defaulted"})
    frame = generate_frame(50, seed=3, day=date(2026, 11, 1)).rename(columns={"application_id": "predicted_defaulted"})
    outcome, _ = _score(tmp_path, contract, frame, "classification")
    assert outcome.status == "failed" and "two columns named ['predicted_defaulted']" in outcome.message
    assert not (tmp_path / "predictions").exists()
