"""One Prefect test server for a whole xdist run, shared by its workers (not a test module).

The controller starts it when the run has workers (``pytest_configure``: it does not wait, the workers' first flow
test does, with a readiness check) and stops it at the end (``pytest_unconfigure``); each worker's
``prefect_harness`` fixture points Prefect at it. One server instead of one per worker: its start (~5-11 CPU-s)
and its idle services (~0.8 CPU-s a minute) are paid once. Its database starts from the run's empty Prefect
database when there is one (tasks/prefect_db_template.py), else becomes it. Without workers (``-n 0``) the fixture
starts Prefect's own test harness as before.

What the tests read back from it must name its own runs: an artifact by its flow run, an event by its incident.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

URL_VARIABLE = "LOCKGATE_TEST_PREFECT_API_URL"
DB_VARIABLE = "LOCKGATE_TEST_PREFECT_DB"
_SERVER: dict = {}


def _has_workers(config) -> bool:
    try:
        workers = config.getoption("numprocesses")
    except ValueError:  # xdist not loaded (-p no:xdist)
        return False
    return bool(workers) and workers != 0


def start_for_workers(config) -> None:
    """In the controller of a run with workers: start the server in the background and export its URL (the workers
    inherit it). The server's process group is its own, stopped by :func:`stop`."""
    if hasattr(config, "workerinput") or not _has_workers(config) or os.environ.get(URL_VARIABLE):
        return
    from pipelines.temporary_api import SERVER_ENV, free_port, server_args, server_tuning
    from tasks.prefect_db_template import seed_prefect_db

    folder = Path(tempfile.mkdtemp(prefix="lockgate-test-prefect-"))
    db = folder / "prefect.db"
    seed_prefect_db(db, Path(os.environ["LOCKGATE_TEMPLATE_DIR"]))
    port = free_port()
    env = {**os.environ, **server_tuning(os.environ), **SERVER_ENV, "PREFECT_HOME": str(folder / "home"),
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}",
           # events written within 1 s instead of Prefect's 5 s: test_incidents polls for its incidents' events (it
           # waited 7 of its 16 s); a user's server keeps Prefect's default
           "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1"}
    env.pop("PREFECT_API_URL", None)
    with open(folder / "server.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", *server_args(port)], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    os.environ[URL_VARIABLE] = f"http://127.0.0.1:{port}/api"
    os.environ[DB_VARIABLE] = str(db)
    _SERVER.update(proc=proc, folder=folder)


def wait_ready(url: str, limit: float = 300.0) -> None:
    """The shared server answers /health within ``limit`` seconds (a readiness limit on a busy host), else a one-line
    error naming its log."""
    from tasks.readiness import seconds, wait_until_answers

    log = Path(os.environ[DB_VARIABLE]).with_name("server.log")
    wait_until_answers(f"{url}/health", limit=limit,
                       failure=lambda: f"the session's Prefect test server {url} did not answer within "
                                       f"{seconds(limit)}; see {log}")


def server_cpu_s() -> float:
    """CPU seconds the shared server (and the children it waited for) used so far, 0.0 without one: the run's figures
    count it as they counted each worker's own harness (tests/suite_run.py)."""
    proc = _SERVER.get("proc")
    if proc is None:
        return 0.0
    from tests.cpu_share import stat_fields

    fields = stat_fields(proc.pid)
    if fields is None:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def stop(config) -> None:
    proc = _SERVER.pop("proc", None)
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, PermissionError):
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    shutil.rmtree(_SERVER.pop("folder"), ignore_errors=True)
