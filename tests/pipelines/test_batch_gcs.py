"""Batch inference with its input and predictions on GCS: a GCS JSON API (gcp-storage-emulator, a process on
127.0.0.1) reached through pyarrow's GCS filesystem, both by URI options (``?scheme=http&endpoint_override=...``)
and by CLOUD_STORAGE_EMULATOR_ENDPOINT (the variable pyarrow's GCS client reads; STORAGE_EMULATOR_HOST it does not).
Credentials: Google's default credentials, a throwaway service-account key (see the gcs_server fixture)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.object_stores import upload_day

pytestmark = pytest.mark.flow
MODEL = "credit-default"


def test_gcs_input_and_output_scored_once_with_lineage_and_nothing_left_behind(home, gcs_server, monkeypatch):
    from pipelines.batch_inference import run_batch
    from tasks.batch.partition_io import read_partition, sha256_of
    from tasks.settings import Settings
    from tasks.stores import ledger_for

    days = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]  # the third is never uploaded
    inputs = [upload_day(gcs_server, "batch-gcs/stream", d, seed=40 + i) for i, d in enumerate(days[:2])]
    monkeypatch.setenv("LOCKGATE_INPUT_ROOT", gcs_server.uri("batch-gcs/stream"))
    monkeypatch.setenv("LOCKGATE_OUTPUT_ROOT", gcs_server.uri("batch-gcs/predictions"))
    settings = Settings()
    outcomes = {o.partition: o for o in run_batch(settings, dates=[d.isoformat() for d in days]).outcomes}
    first, second, missing = (outcomes[f"date={d}"] for d in days)

    assert first.status == second.status == "scored", (first.message, second.message)
    assert first.scored + first.quarantined == 300 and second.scored + second.quarantined == 300
    assert missing.status == "missing" and missing.message.startswith("partition date=2026-11-03 not found at gs://")
    outputs = [f"batch-gcs/predictions/{MODEL}/date={d}/predictions.parquet" for d in days[:2]]
    # each scoring's own file (named by its ledger row) under _runs/, which dataset readers skip
    runs = [k for k in gcs_server.keys("batch-gcs/") if "/_runs/" in k]
    assert sorted(r.split("/")[4] for r in runs) == [f"date={d}" for d in days[:2]], runs
    assert all(o.evidence["predictions"].path.split("?")[0].endswith(r) for o, r in zip((first, second), sorted(runs)))
    outputs += runs
    # final names only: no temporary object, no folder marker (GCS cannot list unfinished resumable uploads; one is
    # never visible as an object)
    assert gcs_server.keys("batch-gcs/") == sorted(inputs + outputs)
    preds = read_partition(first.output).to_pandas()
    assert first.output == gcs_server.uri(outputs[0]) and len(preds) == first.scored
    assert preds["model_version"].unique().tolist() == ["2"] and preds["score"].between(0, 1).all()
    assert set(preds.columns) >= {"application_id", "score", "predicted_defaulted", "model_name", "artifact_sha256",
                                  "contract_version", "flow_run_id", "scored_at"}
    assert preds["flow_run_id"].ne("").all() and preds["artifact_sha256"].str.len().eq(64).all()

    def rows(action, day):
        return [e for e in ledger_for(settings).entries(model_name=MODEL)
                if e.action == action and f"partition date={day}:" in e.reason]

    (scored,) = rows("partition.scored", days[0])
    assert scored.evidence["predictions"] == sha256_of(first.output)
    assert len(rows("partition.missing", days[2])) == 1

    # a re-run, by date and by the partition's own URI (its query is not part of its name), is a no-op
    generations = {k: gcs_server.generation(k) for k in outputs}
    again = run_batch(settings, dates=[d.isoformat() for d in days[:2]]).outcomes
    by_uri = run_batch(settings, partitions=[gcs_server.uri(f"batch-gcs/stream/date={days[0]}")]).outcomes
    assert [o.status for o in again + by_uri] == ["skipped"] * 3 and by_uri[0].partition == f"date={days[0]}"
    assert {k: gcs_server.generation(k) for k in outputs} == generations
    assert len(rows("partition.scored", days[0])) == 1 and gcs_server.keys("batch-gcs/") == sorted(inputs + outputs)

    # plain gs:// URIs with the endpoint from CLOUD_STORAGE_EMULATOR_ENDPOINT; --force replaces the object whole
    monkeypatch.setenv("CLOUD_STORAGE_EMULATOR_ENDPOINT", f"http://{gcs_server.endpoint}")
    monkeypatch.setenv("LOCKGATE_INPUT_ROOT", f"gs://{gcs_server.bucket}/batch-gcs/stream")
    monkeypatch.setenv("LOCKGATE_OUTPUT_ROOT", f"gs://{gcs_server.bucket}/batch-gcs/predictions")
    (forced,) = run_batch(Settings(), dates=[days[1].isoformat()], force=True).outcomes
    assert forced.status == "scored" and forced.output == f"gs://{gcs_server.bucket}/{outputs[1]}"
    assert gcs_server.generation(outputs[1]) != generations[outputs[1]]
    assert read_partition(forced.output).num_rows == forced.scored
    forced_run = forced.evidence["predictions"].path.split(f"{gcs_server.bucket}/", 1)[1]  # a new file of its own
    assert forced_run not in outputs and "/_runs/" in forced_run
    assert {k: gcs_server.generation(k) for k in runs} == {k: generations[k] for k in runs}  # untouched
    assert gcs_server.keys("batch-gcs/") == sorted(inputs + outputs + [forced_run])
