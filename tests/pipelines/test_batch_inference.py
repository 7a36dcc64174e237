"""The batch-inference flow: lineage, quarantine, bad partitions reported (others go on), exactly-once re-runs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def partitions(tmp_path_factory):
    from data_contracts.synthetic_credit import generate_frame

    root = tmp_path_factory.mktemp("stream")
    paths = {}
    clean = generate_frame(300, seed=11, day=date(2026, 11, 1), id_offset=10_000).drop(columns=["defaulted"])
    paths["clean"] = root / "date=2026-11-01"
    paths["clean"].mkdir()
    clean.to_parquet(paths["clean"] / "part-0.parquet", index=False)
    dirty = generate_frame(300, seed=12, day=date(2026, 11, 2), id_offset=20_000, null_spike=0.02).drop(
        columns=["defaulted"])
    paths["dirty"] = root / "dirty.parquet"
    dirty.to_parquet(paths["dirty"], index=False)
    paths["corrupt"] = root / "corrupt.parquet"
    paths["corrupt"].write_bytes(b"PAR1 this is not parquet")
    paths["no_column"] = root / "no_column.parquet"
    clean.drop(columns=["region"]).to_parquet(paths["no_column"], index=False)
    return paths


def _bytes(paths):
    return {k: (p / "part-0.parquet" if p.is_dir() else p).read_bytes() for k, p in paths.items()}


def test_scores_with_lineage_and_reports_bad_partitions(champion, module_settings, partitions):
    from pipelines.batch_inference import batch_inference
    from tasks.stores import ledger_for, registry_for

    before = _bytes(partitions)
    outcomes = {o.partition: o for o in batch_inference(partitions=[str(p) for p in partitions.values()]).outcomes}
    assert _bytes(partitions) == before  # inputs untouched

    clean, dirty = outcomes["date=2026-11-01"], outcomes["dirty"]
    assert clean.status == "scored" and clean.scored == 300 and clean.quarantined == 0
    assert dirty.status == "scored" and dirty.quarantined > 0 and dirty.scored + dirty.quarantined == 300
    assert outcomes["corrupt"].status == "failed" and "not a readable parquet" in outcomes["corrupt"].message
    assert outcomes["no_column"].status == "failed" and "region" in outcomes["no_column"].message
    assert not (module_settings.predictions_dir / module_settings.model_name / "corrupt").exists()

    champion_outcome, _ = champion
    record = registry_for(module_settings).get(module_settings.model_name, champion_outcome.version)
    preds = pd.read_parquet(clean.output)
    assert preds["artifact_sha256"].unique().tolist() == [record.tags["lockgate.artifact_sha256"]]
    assert preds["model_version"].unique().tolist() == [str(record.version)]
    assert preds["contract_version"].unique().tolist() == ["credit_default@1.0.0"]
    assert preds["flow_run_id"].str.len().gt(0).all() and preds["score"].between(0, 1).all()
    quarantine = Path(dirty.evidence["validation.quarantine"].path)  # this scoring's own, named by its row
    assert quarantine.parent.parent == module_settings.quarantine_dir / module_settings.model_name / "dirty"
    assert len(pd.read_parquet(quarantine)) == dirty.quarantined
    bad_ids = set(pd.read_parquet(quarantine)["application_id"])  # scored: every other row, in the input's order
    dirty_ids = pd.read_parquet(partitions["dirty"])["application_id"]
    assert pd.read_parquet(dirty.output)["application_id"].tolist() == [i for i in dirty_ids if i not in bad_ids]

    actions = [e.action for e in ledger_for(module_settings).entries()[-4:]]
    assert sorted(actions) == ["partition.failed"] * 2 + ["partition.scored"] * 2


def test_rerun_is_a_noop_unless_forced(champion, module_settings, partitions):
    from pipelines.batch_inference import batch_inference

    clean = str(partitions["clean"])
    first = batch_inference(partitions=[clean]).outcomes[0]
    assert first.status == "skipped"
    forced = batch_inference(partitions=[clean], force=True).outcomes[0]
    assert forced.status == "scored" and forced.scored == 300


def test_tampered_champion_artifact_scores_nothing_and_is_recorded(champion, module_settings, partitions,
                                                                    stored_file_path):
    from pipelines.batch_inference import batch_inference
    from tasks.registry import CHAMPION
    from tasks.stores import ledger_for, registry_for

    record = registry_for(module_settings).require_alias(module_settings.model_name, CHAMPION)
    artifact = stored_file_path(module_settings, record, "inference.jaxexport")
    original = artifact.read_bytes()
    artifact.write_bytes(original + b" ")
    try:
        outcomes = batch_inference(partitions=[str(partitions["clean"])], force=True).outcomes
    finally:
        artifact.write_bytes(original)
    assert outcomes[0].status == "failed" and "refusing to use a changed artifact" in outcomes[0].message
    last = ledger_for(module_settings).entries()[-1]
    assert last.action == "champion.refused" and "inference.jaxexport" in last.reason
