"""Batch inference with its input and predictions on S3: a real S3 API (moto's server, a process on 127.0.0.1)
reached through pyarrow's S3 filesystem, both by URI options (``?endpoint_override=...&scheme=http``) and by
AWS_ENDPOINT_URL. gs:// is tested the same way in test_batch_gcs.py."""

from __future__ import annotations

from datetime import date

import pytest

from tests.object_stores import upload_day

pytestmark = pytest.mark.flow
MODEL = "credit-default"


def test_s3_input_and_output_scored_once_with_lineage_and_nothing_left_behind(home, s3_server, monkeypatch):
    from pipelines.batch_inference import run_batch
    from tasks.batch.partition_io import read_partition, sha256_of
    from tasks.settings import Settings
    from tasks.stores import ledger_for

    days = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]  # the third is never uploaded
    inputs = [upload_day(s3_server, "batch/stream", d, seed=30 + i) for i, d in enumerate(days[:2])]
    monkeypatch.setenv("LOCKGATE_INPUT_ROOT", s3_server.uri("batch/stream"))
    monkeypatch.setenv("LOCKGATE_OUTPUT_ROOT", s3_server.uri("batch/predictions"))
    settings = Settings()
    outcomes = {o.partition: o for o in run_batch(settings, dates=[d.isoformat() for d in days]).outcomes}
    first, second, missing = (outcomes[f"date={d}"] for d in days)

    assert first.status == second.status == "scored", (first.message, second.message)
    assert first.scored + first.quarantined == 300 and second.scored + second.quarantined == 300
    assert missing.status == "missing" and missing.message.startswith("partition date=2026-11-03 not found at s3://")
    outputs = [f"batch/predictions/{MODEL}/date={d}/predictions.parquet" for d in days[:2]]
    # each scoring's own file (named by its ledger row) under _runs/, which dataset readers skip
    runs = [k for k in s3_server.keys("batch/") if "/_runs/" in k]
    assert sorted(r.split("/")[4] for r in runs) == [f"date={d}" for d in days[:2]], runs
    assert all(o.evidence["predictions"].path.split("?")[0].endswith(r) for o, r in zip((first, second), sorted(runs)))
    outputs += runs
    assert s3_server.keys("batch/") == sorted(inputs + outputs)  # final names only: no temporary object, no folder marker
    assert s3_server.uploads_in_progress("batch/") == []
    preds = read_partition(first.output).to_pandas()
    assert first.output == s3_server.uri(outputs[0]) and len(preds) == first.scored
    assert preds["model_version"].unique().tolist() == ["2"] and preds["score"].between(0, 1).all()
    assert set(preds.columns) >= {"application_id", "score", "predicted_defaulted", "model_name", "artifact_sha256",
                                  "contract_version", "flow_run_id", "scored_at"}

    def rows(action, day):
        return [e for e in ledger_for(settings).entries(model_name=MODEL)
                if e.action == action and f"partition date={day}:" in e.reason]

    (scored,) = rows("partition.scored", days[0])
    assert scored.evidence["predictions"] == sha256_of(first.output)
    assert len(rows("partition.missing", days[2])) == 1

    # a re-run, by date and by the partition's own URI (its query is not part of its name), is a no-op
    etags = {k: s3_server.client().head_object(Bucket=s3_server.bucket, Key=k)["ETag"] for k in outputs}
    again = run_batch(settings, dates=[d.isoformat() for d in days[:2]]).outcomes
    by_uri = run_batch(settings, partitions=[s3_server.uri(f"batch/stream/date={days[0]}")]).outcomes
    assert [o.status for o in again + by_uri] == ["skipped"] * 3 and by_uri[0].partition == f"date={days[0]}"
    assert {k: s3_server.client().head_object(Bucket=s3_server.bucket, Key=k)["ETag"] for k in outputs} == etags
    assert len(rows("partition.scored", days[0])) == 1 and s3_server.keys("batch/") == sorted(inputs + outputs)

    # plain s3:// URIs with the endpoint from AWS_ENDPOINT_URL; --force replaces the object whole
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{s3_server.endpoint}")
    monkeypatch.setenv("LOCKGATE_INPUT_ROOT", f"s3://{s3_server.bucket}/batch/stream")
    monkeypatch.setenv("LOCKGATE_OUTPUT_ROOT", f"s3://{s3_server.bucket}/batch/predictions")
    (forced,) = run_batch(Settings(), dates=[days[1].isoformat()], force=True).outcomes
    assert forced.status == "scored" and forced.output == f"s3://{s3_server.bucket}/{outputs[1]}"
    assert s3_server.client().head_object(Bucket=s3_server.bucket, Key=outputs[1])["ETag"] != etags[outputs[1]]
    assert read_partition(forced.output).num_rows == forced.scored
    forced_run = forced.evidence["predictions"].path.split(f"{s3_server.bucket}/", 1)[1]  # a new file of its own
    assert forced_run not in outputs and "/_runs/" in forced_run
    assert {k: s3_server.client().head_object(Bucket=s3_server.bucket, Key=k)["ETag"] for k in runs} == {
        k: etags[k] for k in runs}  # the earlier scorings' files, which their rows name, are untouched
    assert s3_server.keys("batch/") == sorted(inputs + outputs + [forced_run])
    assert s3_server.uploads_in_progress("batch/") == []
