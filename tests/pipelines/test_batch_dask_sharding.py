"""Batch inference on the Dask task runner (the local cluster it starts: 2 worker processes), in one run:

- every partition exactly once: a day already scored (by the threads runner) is skipped in the Dask worker; a
  transient read failure injected into another day's first read is retried there; one flow run, one ledger row per
  partition, and a day scored by no one is scored;
- JAX sharding inside the workers: they see 4 XLA CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``
  in their environment); the scoring engine there splits every batch over the 4 devices, says so in the partition's
  outcome and ledger row, and its predictions equal this (single-device) process's scores of the same rows."""

from __future__ import annotations

import os
import socket
from datetime import date

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.flow


def test_dask_workers_score_each_partition_once_sharded_over_their_devices(home, tmp_path, monkeypatch):
    import jax

    from data_contracts.synthetic_credit import generate_frame
    from pipelines.batch_inference import run_batch
    from tasks import gates
    from tasks.settings import Settings
    from tasks.stores import ledger_for, policy_for

    assert jax.local_device_count() == 1  # this process: the reference scores come from one device
    done, days = date(2026, 10, 31), [date(2026, 11, 1), date(2026, 11, 2)]
    inputs, outputs = tmp_path / "stream", tmp_path / "out"
    frames = {}
    for i, day in enumerate([done, *days]):
        frame = generate_frame(2000, seed=60 + i, day=day, id_offset=day.toordinal() * 10_000).drop(columns=["defaulted"])
        (inputs / f"date={day}").mkdir(parents=True)
        frame.to_parquet(inputs / f"date={day}" / "part-0.parquet", index=False)
        frames[day] = frame
    monkeypatch.setenv("LOCKGATE_INPUT_ROOT", str(inputs))
    monkeypatch.setenv("LOCKGATE_OUTPUT_ROOT", str(outputs))
    (before,) = run_batch(Settings(), dates=[done.isoformat()]).outcomes  # the threads runner, this process
    assert before.status == "scored"
    flags = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=4"]))
    for k, v in {"LOCKGATE_TASK_RUNNER": "dask", "XLA_FLAGS": flags, "LOCKGATE_SCORE_BATCH_ROWS": "700",
                 "LOCKGATE_INJECT_READ_FAILURES": "0.5", "LOCKGATE_INJECT_SEED": "4"}.items():  # seed 4: 11-02's first read fails
        monkeypatch.setenv(k, v)  # the local cluster's worker processes start with this environment
    settings = Settings()
    skipped, *outcomes = run_batch(settings, dates=[d.isoformat() for d in [done, *days]]).outcomes

    assert skipped.status == "skipped" and skipped.scoring is None, skipped
    assert [o.status for o in outcomes] == ["scored"] * 2, [o.message for o in outcomes]
    assert [o.read_attempts for o in outcomes] == [1, 2]  # the injected failure was retried
    scored = [e for e in ledger_for(settings).entries() if e.action == "partition.scored"]
    rows = {day: [e for e in scored if f"partition date={day}:" in e.reason] for day in [done, *days]}
    assert all(len(r) == 1 for r in rows.values()), rows  # exactly once, the skipped day included
    runs = {day: rows[day][0].flow_run_id for day in rows}
    assert runs[days[0]] == runs[days[1]] != runs[done]  # one Dask run scored both; the skipped day kept its own
    champion = gates.load_champion.fn(settings, policy_for(settings), settings.model_name)
    model, _, contract = gates.champion_model(settings, policy_for(settings), champion)
    for day, outcome in zip(days, outcomes):
        stats = outcome.scoring
        assert stats.process != f"{socket.gethostname()}:{os.getpid()}"  # scored in a Dask worker process
        assert stats.platform == "cpu" and stats.local_devices == 4 and stats.devices == [0, 1, 2, 3]
        # 700-row batches in chunks of the largest bucket (1024): each call's output split over the 4 devices
        assert stats.calls == 3 and stats.sharded_calls == 3 and stats.rows_per_device == 1024 // 4
        preds = pd.read_parquet(outputs / settings.model_name / f"date={day}" / "predictions.parquet")
        rows = frames[day].set_index(contract.id_column).loc[preds[contract.id_column]].reset_index()
        single = model.score(rows)  # this process, one device
        assert len(preds) == outcome.scored > 1900
        np.testing.assert_allclose(preds["score"].to_numpy(), single, rtol=0, atol=1e-6)
        (row,) = [e for e in ledger_for(settings).entries()
                  if e.action == "partition.scored" and f"partition date={day}:" in e.reason]
        assert "scored sharded over 4 cpu devices (3 call(s), " in row.reason
