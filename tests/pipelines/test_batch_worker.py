"""The README's work-pool path, end to end on a real Prefect server: `prefect work-pool create`, `prefect deploy
--all` from the repository (prefect.yaml), `prefect worker start`, a run of batch-inference/daily for a chosen date,
and the worker stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.flow, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(home):
    """`lockgate server start` (its Python function) for the module's home; the test process's client uses it."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.prefect_server import start_server, stop_server
    from tasks.settings import Settings

    settings = Settings()  # the home fixture's environment
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state, _ = start_server(settings, port=port)
    try:
        with temporary_settings({PREFECT_API_URL: state.url}):
            yield state
    finally:
        stop_server(settings)


def prefect(args: list[str], env: dict[str, str], log: Path, timeout: float = 180) -> None:
    with open(log, "ab") as out:
        proc = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout)
    assert proc.returncode == 0, f"prefect {' '.join(args)} exited {proc.returncode}: {log.read_text()[-3000:]}"


def test_work_pool_worker_runs_the_daily_deployment_for_a_date(home, server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from data_contracts.synthetic_credit import generate_frame
    from tasks.settings import Settings
    from tasks.stores import ledger_for

    day = date(2026, 11, 1)
    inputs, outputs = tmp_path / "stream", tmp_path / "out"
    (inputs / f"date={day}").mkdir(parents=True)
    frame = generate_frame(300, seed=50, day=day, id_offset=day.toordinal() * 10_000).drop(columns=["defaulted"])
    frame.to_parquet(inputs / f"date={day}" / "part-0.parquet", index=False)
    # The worker's environment is the flow runs' (a process worker starts them with its own): the LOCKGATE_* settings,
    # the server, a PREFECT_HOME of the test's. No JAX compile cache: the run must set up its process itself.
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "JAX_COMPILATION_CACHE_DIR",
                                                     "LOCKGATE_JAX_CACHE_DIR")}
    env.update(home, PREFECT_API_URL=server.url, PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_WORKER_QUERY_SECONDS="1",
               PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="INFO", LOCKGATE_INPUT_ROOT=str(inputs),
               LOCKGATE_OUTPUT_ROOT=str(outputs))
    log = tmp_path / "prefect.log"
    prefect(["work-pool", "create", "lockgate-process", "--type", "process"], env, log)
    prefect(["--no-prompt", "deploy", "--all"], env, log)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("batch-inference/daily")
    assert deployment.work_pool_name == "lockgate-process" and not deployment.paused
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == [("0 2 * * *", "UTC", True)]

    worker_log = tmp_path / "worker.log"
    # The worker stops on SIGTERM by sending itself SIGINT, which does nothing when SIGINT is ignored (as in a
    # background job of a script): handled here, it is at its default in the worker (an ignored one would stay so).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open(worker_log, "wb") as out:
            worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "lockgate-process"],
                                      cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        run = run_deployment("batch-inference/daily", parameters={"dates": [day.isoformat()]}, timeout=300,
                             poll_interval=0.5)  # Prefect polls every 5 s by default: idle seconds
        assert run.state.is_completed(), f"{run.state}: {worker_log.read_text()[-4000:]}"
        preds = pd.read_parquet(outputs / "credit-default" / f"date={day}" / "predictions.parquet")
        assert preds["flow_run_id"].unique().tolist() == [str(run.id)] and preds["model_version"].unique().tolist() == ["2"]
        (scored,) = [e for e in ledger_for(Settings()).entries()
                     if e.action == "partition.scored" and f"partition date={day}:" in e.reason]
        assert scored.flow_run_id == str(run.id) and scored.version == 2
        assert scored.reason.startswith(f"version 2 scored partition date={day}: 300 rows") and len(preds) > 250
        assert any((Path(home["LOCKGATE_HOME"]) / "jax_cache").iterdir())  # the run's process had lockgate's set-up
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, worker_log.read_text()[-3000:]
        assert "stopped!" in worker_log.read_text() and time.monotonic() - started < 60
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
