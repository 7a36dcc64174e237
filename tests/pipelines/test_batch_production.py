"""Batch inference as the production job: dated partitions and the schedule, bad input, transient reads, a crash
mid-partition, monitoring (block, rollback and re-score), the Dask runner, and `lockgate serve`.

The champions come from the ``home`` fixture (tests/pipelines/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.flow
POLICY = Path(__file__).with_name("batch_policy.yaml")


@pytest.fixture
def stream(home, tmp_path, monkeypatch):
    """A fresh input root and output root for one test; returns (settings factory, input root, output root)."""
    from tasks.settings import Settings

    inputs, outputs = tmp_path / "stream", tmp_path / "out"
    monkeypatch.setenv("LOCKGATE_INPUT_ROOT", str(inputs))
    monkeypatch.setenv("LOCKGATE_OUTPUT_ROOT", outputs.as_uri())  # through pyarrow's filesystem layer (file://)
    return Settings, inputs, outputs


def write_day(root: Path, day: date, n: int = 300, seed: int = 0, **knobs) -> Path:
    from data_contracts.synthetic_credit import generate_frame

    folder = root / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    frame = generate_frame(n, seed=seed, day=day, id_offset=day.toordinal() * 10_000, **knobs).drop(columns=["defaulted"])
    frame.to_parquet(folder / "part-0.parquet", index=False)
    return folder


def predictions(outputs: Path, day: date, model="credit-default") -> Path:
    return outputs / model / f"date={day.isoformat()}" / "predictions.parquet"


def ledger_rows(settings, action=None, partition=None):
    from tasks.stores import ledger_for

    return [e for e in ledger_for(settings).entries(model_name=settings.model_name)
            if (action is None or e.action == action) and (partition is None or partition in e.reason)]


def cli(capsys, *argv) -> tuple[int, str]:
    """``lockgate ARGV`` in this process (the session's Prefect API): its exit code and its summary line."""
    from unittest import mock

    from pipelines.cli import main

    capsys.readouterr()
    with mock.patch.dict(os.environ):  # main's process defaults stay with this call
        code = main([str(a) for a in argv])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("exit ")]
    assert len(lines) == 1, lines
    return code, lines[0]


def use_policy(monkeypatch, tmp_path, drift: dict | None = None, validation: dict | None = None, **monitoring) -> None:
    doc = yaml.safe_load(POLICY.read_text())
    doc["monitoring"].update(monitoring)
    doc["drift"].update(drift or {})
    doc.setdefault("validation", {}).update(validation or {})
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(path))


def test_dates_with_bad_input_and_transient_reads(stream, monkeypatch):
    from pipelines.batch_inference import run_batch

    make_settings, inputs, outputs = stream
    monkeypatch.setenv("LOCKGATE_INJECT_READ_FAILURES", "1.0")  # every partition's first read fails, transiently
    days = [date(2026, 12, d) for d in (1, 2, 3, 4)]
    write_day(inputs, days[0])
    write_day(inputs, days[1], n=0)
    drifted_schema = write_day(inputs, days[2])
    frame = pd.read_parquet(drifted_schema / "part-0.parquet")
    frame.assign(annual_income=frame["annual_income"].astype(str),  # a numeric column turned text, and a
                 region=frame["region"].astype("category").cat.codes,  # categorical turned codes (read as is)
                 ).to_parquet(drifted_schema / "part-0.parquet")
    drifted_bytes = (drifted_schema / "part-0.parquet").read_bytes()
    # days[3]: never written (missing)
    settings = make_settings()
    outcomes = {o.partition: o for o in run_batch(settings, dates=[d.isoformat() for d in days]).outcomes}
    clean, empty, schema, missing = (outcomes[f"date={d}"] for d in days)

    assert clean.status == "scored" and clean.scored + clean.quarantined == 300 and clean.read_attempts == 2
    assert clean.model_version == 2 and clean.monitor == "none"
    assert empty.status == "empty" and empty.read_attempts == 2
    assert schema.status == "failed" and "validation failed" in schema.message and "annual_income" in schema.message
    assert "region" in schema.message and (drifted_schema / "part-0.parquet").read_bytes() == drifted_bytes
    assert missing.status == "missing" and "not found" in missing.message
    preds = pd.read_parquet(predictions(outputs, days[0]))
    assert preds["model_version"].unique().tolist() == ["2"] and len(preds) == clean.scored
    assert set(preds.columns) >= {"application_id", "score", "model_name", "artifact_sha256", "contract_version",
                                  "flow_run_id", "scored_at"}
    for d in days[1:]:
        assert not predictions(outputs, d).parent.exists()
    (scored,) = ledger_rows(settings, "partition.scored", f"date={days[0]}")
    assert scored.reason.startswith(f"version 2 scored partition date={days[0]}: 300 rows, {clean.quarantined} "
                                    "quarantined") and scored.evidence["predictions"]
    assert [len(ledger_rows(settings, f"partition.{s}", f"date={d}")) for s, d in
            (("empty", days[1]), ("failed", days[2]), ("missing", days[3]))] == [1, 1, 1]

    before = predictions(outputs, days[0]).read_bytes()
    again = {o.partition: o for o in run_batch(settings, dates=[d.isoformat() for d in days]).outcomes}
    assert again[f"date={days[0]}"].status == "skipped" and predictions(outputs, days[0]).read_bytes() == before
    assert len(ledger_rows(settings, "partition.scored", f"date={days[0]}")) == 1  # scored exactly once
    assert [again[f"date={d}"].status for d in days[1:]] == ["empty", "failed", "missing"]


def test_scheduled_run_and_backfill(stream, capsys):
    from pipelines.batch_inference import run_batch
    from pipelines.exit_codes import EXIT_PARTITIONS_FAILED

    make_settings, inputs, outputs = stream
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    write_day(inputs, yesterday, seed=5)
    (outcome,) = run_batch(make_settings()).outcomes  # no partitions, no dates: the scheduled date minus one day
    assert outcome.partition == f"date={yesterday}" and outcome.status == "scored"
    write_day(inputs, yesterday - timedelta(days=2), seed=6)
    # backfill over three days: one new, one missing, one already scored
    code, line = cli(capsys, "backfill", "--from", yesterday - timedelta(days=2), "--to", yesterday)
    assert code == EXIT_PARTITIONS_FAILED == 4
    assert line == f"exit 4: 1 partition(s) failed or missing (1 missing): date={yesterday - timedelta(days=1)}"
    assert predictions(outputs, yesterday - timedelta(days=2)).exists()
    assert ledger_rows(make_settings(), "partition.missing", f"date={yesterday - timedelta(days=1)}")


def test_crash_mid_partition_leaves_no_output_and_the_next_run_scores_it(stream, home):
    from prefect.settings import PREFECT_API_URL

    from pipelines.batch_inference import run_batch

    make_settings, inputs, outputs = stream
    day = date(2026, 12, 10)
    part = write_day(inputs, day, n=20_000, seed=7)
    final = predictions(outputs, day)
    env = {**os.environ, **home, "LOCKGATE_INPUT_ROOT": str(inputs), "LOCKGATE_OUTPUT_ROOT": outputs.as_uri(),
           "LOCKGATE_SCORE_BATCH_ROWS": "16", "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "batch-inference", str(part)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        attempts = final.parent.parent / "_runs" / final.parent.name  # each scoring writes its own file first
        while not list(attempts.glob("*/.predictions.parquet.*.tmp")):  # writing has started
            assert proc.poll() is None and time.monotonic() < deadline, "scoring never started writing"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # a crash mid-partition, not a clean shutdown
        proc.wait(30)
    finally:
        proc.kill()
    assert not final.exists()  # no partial output under the final name
    assert not ledger_rows(make_settings(), "partition.scored", f"date={day}")
    (outcome,) = run_batch(make_settings(), partitions=[str(part)]).outcomes
    assert outcome.status == "scored" and outcome.scored + outcome.quarantined == 20_000
    assert len(pd.read_parquet(final)) == outcome.scored
    assert [p.name for p in final.parent.iterdir()] == ["predictions.parquet"]
    assert not list(attempts.glob("*/.*.tmp"))  # the crashed temporary is gone
    (row,) = ledger_rows(make_settings(), "partition.scored", f"date={day}")
    assert Path(urlparse(row.evidence_files["predictions"]).path).parent.parent == attempts  # a file:// URI here


def test_crash_after_the_output_before_its_ledger_row_is_recorded_by_the_next_run(stream, home):
    """Killed between moving the predictions into place and writing their ledger row: the next run skips the
    partition (it is scored) and writes the missing row, once."""
    from prefect.settings import PREFECT_API_URL

    from pipelines.batch_inference import run_batch
    from tasks.evidence import sha256_file

    make_settings, inputs, outputs = stream
    day = date(2026, 12, 11)
    part = write_day(inputs, day, n=500, seed=8)
    final = predictions(outputs, day)
    env = {**os.environ, **home, "LOCKGATE_INPUT_ROOT": str(inputs), "LOCKGATE_OUTPUT_ROOT": outputs.as_uri(),
           "PREFECT_API_URL": PREFECT_API_URL.value(), "LOCKGATE_FAILPOINT": "partition-scored"}
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "batch-inference", str(part)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == -signal.SIGKILL and final.exists()
    assert not ledger_rows(make_settings(), "partition.scored", f"date={day}")
    for _ in range(2):  # the second re-run finds the row and adds nothing
        (outcome,) = run_batch(make_settings(), partitions=[str(part)]).outcomes
        assert outcome.status == "skipped"
    (row,) = ledger_rows(make_settings(), "partition.scored", f"date={day}")
    assert "recorded by a later run" in row.reason and row.evidence == {"predictions": sha256_file(final)}
    named = Path(urlparse(row.evidence_files["predictions"]).path)  # the scoring's own file, holding the same bytes
    assert named != final and named.parent.parent.name == f"date={day}" and sha256_file(named) == sha256_file(final)


def test_quality_breach_blocks_scoring_until_unblocked(stream, monkeypatch, tmp_path, capsys):
    from pipelines.batch_inference import run_batch
    from pipelines.commands.runs import unblock
    from pipelines.commands.versions import show_status
    from pipelines.exit_codes import EXIT_SCORING_BLOCKED

    make_settings, inputs, outputs = stream
    use_policy(monkeypatch, tmp_path, on_drift_breach="block", on_quality_breach="block")
    bad, good = date(2026, 12, 20), date(2026, 12, 21)
    write_day(inputs, bad, n=600, seed=8, covariate_drift=1.0)
    write_day(inputs, good, seed=9)
    settings = make_settings()
    (breached,) = run_batch(settings, dates=[bad.isoformat()]).outcomes
    assert breached.status == "scored" and breached.monitor == "block"  # this partition's predictions stand
    assert predictions(outputs, bad).exists() and ledger_rows(settings, "monitor.block", f"date={bad}")
    code, line = cli(capsys, "run", "batch-inference", inputs / f"date={good}")  # the block is in force
    assert code == EXIT_SCORING_BLOCKED == 6 and not predictions(outputs, good).exists()
    (block,) = ledger_rows(settings, "monitor.block", f"date={bad}")
    assert line.startswith(f"exit 6: scoring blocked by monitoring (ledger #{block.seq}: partition date={bad} (v2): ")
    assert line.endswith(f"1 partition(s) not scored: date={good}; nothing more is scored until "
                         "`lockgate unblock --reason ...` or a new champion")
    (refused,) = ledger_rows(settings, "partition.blocked", f"date={good}")
    assert f"scoring blocked by monitoring (ledger #{block.seq})" in refused.reason
    show_status(settings, limit=3)
    assert "monitoring: BLOCKED" in capsys.readouterr().out
    assert unblock(settings, reason="looked at the incident") == 0
    (scored,) = run_batch(settings, dates=[good.isoformat()]).outcomes
    assert scored.status == "scored"


def test_a_block_raised_mid_run_stops_the_partitions_not_yet_writing(stream, monkeypatch, tmp_path, capsys):
    """Four days, three threads: day 1 breaches and raises the block while day 2 is writing its predictions and day 3
    is still reading; day 4 starts after the block. Day 2 finishes (scored, in flight); days 3 and 4 are not scored.
    The ordering is forced by events around the real steps (no timing): day 1 records its block only once day 2
    writes and day 3 reads, and they go on only once the block is in the ledger."""
    import threading

    from pipelines.commands.runs import unblock
    from pipelines.exit_codes import EXIT_SCORING_BLOCKED
    from tasks import gates
    from tasks.batch import partition

    make_settings, inputs, outputs = stream
    use_policy(monkeypatch, tmp_path, on_drift_breach="block", on_quality_breach="block")
    monkeypatch.setenv("LOCKGATE_MAX_WORKERS", "3")  # days 1-3 start together, day 4 when a thread is free
    days = [date(2026, 12, 14) + timedelta(days=i) for i in range(4)]
    write_day(inputs, days[0], n=600, seed=8, covariate_drift=1.0)
    for i, d in enumerate(days[1:]):
        write_day(inputs, d, seed=50 + i)
    writing, reading, blocked = threading.Event(), threading.Event(), threading.Event()
    real_write, real_read, real_record = partition.score_to_parquet, partition.read_with_retries, gates.record_partition

    def write(batches, output, **kw):
        if f"date={days[1]}" in str(output):
            writing.set()
            assert blocked.wait(120), "day 1 never raised its block"
        return real_write(batches, output, **kw)

    def read(target, *a, **kw):
        if target.name == f"date={days[2]}":
            reading.set()
            assert blocked.wait(120), "day 1 never raised its block"
        return real_read(target, *a, **kw)

    def record(settings, policy, champion, outcome):
        if outcome.monitor == "block":
            assert writing.wait(120) and reading.wait(120), "days 2 and 3 never started"
        real_record(settings, policy, champion, outcome)
        if outcome.monitor == "block":
            blocked.set()

    monkeypatch.setattr(partition, "score_to_parquet", write)
    monkeypatch.setattr(partition, "read_with_retries", read)
    monkeypatch.setattr(gates, "record_partition", record)
    code, line = cli(capsys, "backfill", "--from", days[0], "--to", days[-1])

    settings = make_settings()
    (block,) = ledger_rows(settings, "monitor.block", f"date={days[0]}")
    assert code == EXIT_SCORING_BLOCKED
    assert line.startswith(f"exit 6: scoring blocked by monitoring (ledger #{block.seq}: partition date={days[0]} ")
    assert (f"2 partition(s) not scored: date={days[2]}, date={days[3]}; 1 partition(s) in flight when it was raised "
            f"finished and are recorded scored: date={days[1]}") in line
    (in_flight,) = ledger_rows(settings, "partition.scored", f"date={days[1]}")
    assert in_flight.seq > block.seq and f"in flight when monitoring block ledger #{block.seq} was raised" in in_flight.reason
    assert [len(ledger_rows(settings, "partition.blocked", f"date={d}")) for d in days[2:]] == [1, 1]
    assert [predictions(outputs, d).exists() for d in days] == [True, True, False, False]
    assert unblock(settings, reason="the next test needs scoring") == 0


def test_report_pages_only_where_drift_warns_or_breaches(stream, monkeypatch, tmp_path):
    """``evidently_report: warn_or_breach`` and ``data_docs: on_failures``: a clean partition keeps lockgate's
    measurements (drift.json) and GE's result, named in the ledger and found by the audit, and neither page, not even
    an earlier run's; a drifted one gets Evidently's report."""
    from pipelines.batch_inference import run_batch
    from tasks.governance.audit_evidence import EvidenceLocator
    from tasks.stores import registry_for

    make_settings, inputs, outputs = stream
    from tasks.policy import MonitoringPolicy, ValidationPolicy

    # lockgate's defaults (this module's policy file turns both pages off); 300 clean rows: a chance drift stays ok
    defaults = {"evidently_report": MonitoringPolicy().evidently_report}
    assert defaults == {"evidently_report": "every_partition"} and ValidationPolicy().data_docs == "always"
    use_policy(monkeypatch, tmp_path, drift={"warn_drifted_share": 0.2}, validation={"data_docs": "always"}, **defaults)
    clean, drifted = date(2026, 12, 27), date(2026, 12, 28)
    write_day(inputs, clean, seed=30)
    write_day(inputs, drifted, n=600, seed=31, covariate_drift=1.0)
    settings = make_settings()
    (first,) = run_batch(settings, dates=[clean.isoformat()]).outcomes  # by default a report for every partition
    first_drift = Path(first.evidence["drift.result"].path).parent  # this scoring's own folder
    assert first.drift == "ok" and (first_drift / "drift_report.html").exists()
    assert (first_drift.parent / "data_docs.html").exists()

    use_policy(monkeypatch, tmp_path, drift={"warn_drifted_share": 0.2}, validation={"data_docs": "on_failures"},
               evidently_report="warn_or_breach")
    settings = make_settings()
    ok, breach = run_batch(settings, dates=[clean.isoformat(), drifted.isoformat()], force=True).outcomes
    assert (ok.drift, breach.drift) == ("ok", "breach") and breach.monitor == "alert"
    again = Path(ok.evidence["drift.result"].path).parent
    assert again != first_drift and sorted(p.name for p in again.iterdir()) == ["drift.json"]  # no report this time
    assert not (again.parent / "data_docs.html").exists() and ok.quarantined == 0
    assert (first_drift / "drift_report.html").exists()  # the earlier scoring's evidence is never replaced
    folder = {clean: again, drifted: Path(breach.evidence["drift.result"].path).parent}
    assert (folder[clean].parent / "ge_validation_result.json").exists()
    assert {"drift_report.html", "drift_snapshot.json", "drift.json"} <= {p.name for p in folder[drifted].iterdir()}
    measured = json.loads((folder[clean] / "drift.json").read_text())
    assert measured["decision"] == "ok" and measured["evidence"] == {}  # no report this time
    assert {c["column"] for c in measured["columns"]} >= {"annual_income", "region", "score"}
    assert all({"score", "threshold", "method", "drifted"} <= c.keys() for c in measured["columns"])

    locator = EvidenceLocator(settings, registry_for(settings), None)
    for day, roles in ((clean, {"drift.result"}), (drifted, {"drift.result", "drift.html", "drift.json"})):
        (row,) = ledger_rows(settings, "partition.scored", f"date={day}")[-1:]
        assert {r for r in row.evidence if r.startswith("drift.")} == roles
        docs = day == drifted and breach.quarantined > 0  # a page only where rows failed
        assert "validation.ge_result" in row.evidence and ("validation.data_docs" in row.evidence) == docs
        checks = locator.check_entry(settings.model_name, row.version, row.evidence, row.reason, row.evidence_files)
        names = {"drift.result": "drift.json", "drift.html": "drift_report.html", "drift.json": "drift_snapshot.json"}
        assert {c.role: c.path for c in checks if c.role.startswith("drift.")} == {  # the row names its exact files
            r: str(folder[day] / names[r]) for r in roles}
        assert {c.role: c.status for c in checks if c.role.startswith("drift.")} == dict.fromkeys(roles, "ok")


def test_serve_runs_the_deployment_and_sigterm_keeps_the_schedule(stream, home):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    make_settings, inputs, outputs = stream
    day = date(2026, 12, 30)  # not written: the served run records it missing (scoring itself is tested above)
    env = {**os.environ, **home, "LOCKGATE_INPUT_ROOT": str(inputs), "LOCKGATE_OUTPUT_ROOT": outputs.as_uri(),
           "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--name", "test-serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.read_deployment_by_name("batch-inference/test-serve")
                    break
                except Exception:
                    assert proc.poll() is None and time.monotonic() < deadline, "serve did not register the deployment"
                    time.sleep(0.5)
            run = run_deployment("batch-inference/test-serve", parameters={"dates": [day.isoformat()]}, timeout=240,
                                 poll_interval=0.5)  # Prefect polls every 5 s by default: idle seconds
            assert run.state.is_completed(), run.state
            (missing,) = ledger_rows(make_settings(), "partition.missing", f"date={day}")
            assert missing.flow_run_id == str(run.id) and missing.version == 2
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
            deployment = client.read_deployment_by_name("batch-inference/test-serve")
            assert not deployment.paused and all(s.active for s in deployment.schedules)
            assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
    finally:
        proc.kill()


def test_breach_blocks_instead_when_rollbacks_need_approval_and_names_the_command(stream, monkeypatch, tmp_path,
                                                                                     capsys):
    from pipelines.commands.runs import unblock
    from pipelines.exit_codes import EXIT_SCORING_BLOCKED
    from tasks.batch.monitoring import monitoring_state
    from tasks.stores import ledger_for, registry_for

    make_settings, inputs, outputs = stream
    use_policy(monkeypatch, tmp_path, on_drift_breach="rollback", on_quality_breach="rollback")
    doc = yaml.safe_load((tmp_path / "policy.yaml").read_text())
    doc["approval"] = {"environments": {"prod": {"transitions": ["rollback"], "approvers": {"users": ["carol"]}}}}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("LOCKGATE_ENVIRONMENT", "prod")
    day = date(2027, 1, 4)
    write_day(inputs, day, n=600, seed=40, covariate_drift=1.0)
    settings = make_settings()
    code, line = cli(capsys, "run", "batch-inference", inputs / f"date={day}")
    (scored,) = ledger_rows(settings, "partition.scored", f"date={day}")
    assert scored.version == 2 and "monitor: rollback on " in scored.reason
    assert registry_for(settings).aliases(settings.model_name) == {"champion": 2, "previous-champion": 1}
    assert not ledger_rows(settings, "rollback.started")
    state = monitoring_state(ledger_for(settings).entries(model_name=settings.model_name))
    assert state.blocked and code == EXIT_SCORING_BLOCKED  # the block was raised by this run: later runs score nothing
    assert line.startswith(f"exit 6: a monitoring block was raised during this run (ledger #{state.block_seq}: "
                           "rollback asked by monitoring but not made (")
    assert f"rollback of {settings.model_name} from v2 to v1 needs human approval in prod" in state.block_reason
    assert f"`lockgate rollback {settings.model_name} --reason ...`" in state.block_reason
    assert unblock(settings, reason="the next test needs scoring") == 0  # this module's champion stays v2


def test_breach_rolls_back_to_the_previous_champion_and_rescores(stream, monkeypatch, tmp_path, capsys):
    from pipelines.exit_codes import EXIT_ROLLED_BACK
    from tasks.batch.monitoring import monitoring_state
    from tasks.stores import ledger_for, registry_for

    make_settings, inputs, outputs = stream
    use_policy(monkeypatch, tmp_path, on_drift_breach="rollback", on_quality_breach="rollback")
    day = date(2027, 1, 5)
    write_day(inputs, day, n=600, seed=40, covariate_drift=1.0)
    settings = make_settings()
    code, line = cli(capsys, "backfill", "--from", day, "--to", day)
    assert code == EXIT_ROLLED_BACK and line == (f"exit 5: the champion was rolled back v2 -> v1 during this run "
                                                 f"(monitoring breach in date={day}); re-scored with v1")
    registry = registry_for(settings)
    assert registry.aliases(settings.model_name) == {"champion": 1}
    assert registry.get(settings.model_name, 2).tags["lockgate.status"] == "rolled_back"
    # re-scored by the restored champion; its own breach is only an alert (no second rollback)
    assert [e.version for e in ledger_rows(settings, "monitor.alert", f"partition date={day} (v1): ")] == [1]
    assert pd.read_parquet(predictions(outputs, day))["model_version"].unique().tolist() == ["1"]
    moves = ledger_rows(settings, "rollback.committed")  # the governance rollback path (tasks.governance.promotion.rollback)
    assert [(e.version, e.previous_version) for e in moves] == [(1, 2)]
    assert "monitoring breach" in moves[0].reason and moves[0].evidence and moves[0].aliases == {"champion": 1}
    assert [e.version for e in ledger_rows(settings, "partition.scored", f"date={day}")] == [2, 1]
    state = monitoring_state(ledger_for(settings).entries(model_name=settings.model_name))
    assert not state.blocked and any("rolled back to v1" in a for a in state.alerts)
