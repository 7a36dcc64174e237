"""A command's temporary Prefect API: ready before use, gone with its command even after kill -9, orphans reaped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.temporary_api import SERVER_APP, TemporaryAPI, reap_orphans, running_leases
from tasks.errors import LockgateError

ROOT = Path(__file__).resolve().parents[2]
OWNER = """
import json, os, sys, time
from pipelines.runtime import prepare_runtime
from tasks.settings import Settings
settings = Settings()
prepare_runtime(settings)
from prefect import flow, get_client  # Prefect imported (its settings read) before the temporary API exists
from pipelines.temporary_api import start_temporary_api
api = start_temporary_api(settings)
api.wait_ready()

@flow
def hello():
    return 1

hello()
with get_client(sync_client=True) as client:
    runs = [r.name for r in client.read_flow_runs()]
    recorder = client._client.get("/admin/settings").json()["server"]["services"]["task_run_recorder"]
print(api.pid, api.url, json.dumps({"client": str(client.api_url), "runs": runs, "recorder": recorder,
                                    "prefect_server_started": "prefect.server.api.server" in sys.modules}), flush=True)
time.sleep(600)
"""


def _gone(pid: int, limit: float = 60.0) -> bool:
    """Whether ``pid`` ends within ``limit`` seconds (a bound on a poll, not a timing under test)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z":
            return True  # a zombie: dead, waiting for its parent (ours) to reap it
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_killed_command_leaves_no_server_and_status_clears_its_lease(settings, capsys):
    """Also: its flows ran on it although Prefect was imported (its settings read) before it started, and no server
    of Prefect's own started beside it (the demo imported its flows first, and ran them on Prefect's unmanaged
    server, left behind when killed)."""
    env = {**os.environ, "LOCKGATE_HOME": str(settings.home_dir),
           "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "2"}
    env.pop("PREFECT_API_URL", None)
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline()  # printed once /health answers and a flow ran
        assert line, owner.stderr.read()
        pid, url, ran = line.split(maxsplit=2)
        pid, ran = int(pid), json.loads(ran)
        assert ran["client"].rstrip("/") == url.rstrip("/") and len(ran["runs"]) == 1
        assert ran["prefect_server_started"] is False
        # lockgate's server tuning (pipelines/temporary_api.py), and the environment's own value where it sets one
        assert (ran["recorder"]["batch_size"], ran["recorder"]["flush_interval"]) == (100, 2.0)
        assert [lease["pid"] for lease in running_leases(settings)] == [pid]
        assert reap_orphans(settings) == []  # its command is alive: left alone
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert _gone(pid), f"temporary API pid {pid} outlived its killed command"
    finally:
        owner.kill()
    from pipelines.cli import main

    assert main(["server", "status"]) == 0
    out = capsys.readouterr().out
    assert f"orphaned temporary API {url} (pid {pid}, its command pid {owner.pid} is gone)" in out
    assert running_leases(settings) == []


def _lease(settings, pid: int, owner: int, owner_start: str | None = "1") -> Path:
    folder = settings.prefect_home / "leases"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pid}.json"
    path.write_text(json.dumps({"pid": pid, "owner": owner, "owner_start": owner_start, "url": "http://x/api"}))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_reaper_stops_an_orphaned_server_and_nothing_else(settings):
    # an orphan (no parent-death signal, as on a host without prctl) and an unrelated process under a stale lease
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "uvicorn", SERVER_APP],
                              start_new_session=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        dead = _dead_pid()
        _lease(settings, orphan.pid, dead)
        _lease(settings, stranger.pid, dead)
        reaped = {lease["pid"]: lease.get("stopped", False) for lease in reap_orphans(settings)}
        assert reaped == {orphan.pid: True, stranger.pid: False}
        assert orphan.wait(timeout=60) is not None  # stopped by the reaper
        assert stranger.poll() is None  # not a temporary API: never signalled
        assert running_leases(settings) == []
    finally:
        orphan.kill()
        stranger.kill()


def test_a_lease_of_a_running_command_or_of_another_machine_is_kept(settings):
    from pipelines.temporary_api import _start_time

    path = _lease(settings, _dead_pid(), os.getpid(), _start_time(os.getpid()))
    assert reap_orphans(settings) == [] and path.exists()
    other = _lease(settings, 999_999, _dead_pid())  # a dead owner, but on another machine sharing this home
    other.write_text(json.dumps({**json.loads(other.read_text()), "host": "elsewhere/boot"}))
    assert reap_orphans(settings) == [] and other.exists()


def test_readiness_is_a_one_line_error_when_the_server_exits_or_never_answers(tmp_path):
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    api = TemporaryAPI(pid=exited.pid, url="http://127.0.0.1:9/api", log=tmp_path / "log", lease=tmp_path / "l",
                       startup_timeout=60)
    with pytest.raises(LockgateError, match="exited while starting"):
        api.wait_ready()
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        api = TemporaryAPI(pid=silent.pid, url="http://127.0.0.1:9/api", log=tmp_path / "log", lease=tmp_path / "l",
                           startup_timeout=0.5)
        with pytest.raises(LockgateError, match=r"did not answer http://127.0.0.1:9/api/health within 0.5 s.*"
                           "raise LOCKGATE_SERVER_READY_TIMEOUT_SECONDS"):
            api.wait_ready()
    finally:
        silent.kill()

