"""A local Prefect server for approvals and schedules on one machine (`lockgate server start|stop|status`).

``prefect server start`` on 127.0.0.1 in the background, its PREFECT_HOME (SQLite
database, log) under LOCKGATE_HOME/prefect-server, and a state file there with its
pid and URL. While it is alive, every lockgate command that has no PREFECT_API_URL
uses it (pipelines/runtime.py), so a run paused for approval in one terminal can be
approved from another. Production points PREFECT_API_URL at a shared server instead.

No Prefect import: runtime set-up reads the state file before Prefect is imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tasks.errors import LockgateError
from tasks.settings import Settings

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
STATE_FILE = "server.json"
LOG_FILE = "server.log"


class ServerState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pid: int
    url: str
    port: int
    started_at: str
    log: str


def _state_path(settings: Settings) -> Path:
    return settings.prefect_server_dir / STATE_FILE


def read_state(settings: Settings) -> ServerState | None:
    try:
        return ServerState.model_validate_json(_state_path(settings).read_text())
    except (OSError, ValueError):
        return None


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return r.status == 200
    except (OSError, ValueError):
        return False


def _is_our_server(pid: int) -> bool:
    """The pid is alive and still runs `prefect server start` (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():  # no procfs (macOS): trust the pid and the health check
        return True
    args = cmdline.read_bytes().split(b"\0")
    return b"prefect" in args and b"server" in args


def live_server_url(settings: Settings) -> str | None:
    """The API URL of this home's server when it is running and answers its health check."""
    state = read_state(settings)
    if state is None or not _is_our_server(state.pid) or not _healthy(state.url):
        return None
    return state.url


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def start_server(settings: Settings, *, port: int = DEFAULT_PORT, timeout: float = 120.0) -> tuple[ServerState, bool]:
    """Start the server in the background and wait until it is healthy; (state, started) - started is False when
    it was already running."""
    state = read_state(settings)
    if state is not None and live_server_url(settings):
        return state, False
    if not _port_free(port):
        raise LockgateError(f"port {port} on {HOST} is in use; pick another with --port")
    folder = settings.prefect_server_dir
    folder.mkdir(parents=True, exist_ok=True)
    from pipelines.temporary_api import server_tuning

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(folder), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_API_HOST=HOST, PREFECT_SERVER_API_PORT=str(port), **server_tuning(os.environ))
    log = folder / LOG_FILE
    from tasks.prefect_db_template import keep_template, new_home_db

    new_db = new_home_db(folder, env, settings.template_path)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # its own process group: stop signals it and its children
    url = f"http://{HOST}:{port}/api"
    deadline = time.monotonic() + timeout
    while not _healthy(url, timeout=1.0):
        if proc.poll() is not None:
            raise LockgateError(f"prefect server exited with code {proc.returncode} while starting; see {log}")
        if time.monotonic() > deadline:
            _terminate(proc.pid)
            raise LockgateError(f"prefect server did not answer {url}/health within {timeout:.0f} s; see {log}")
        time.sleep(0.5)
    if new_db is not None:  # Prefect migrated it: the next new home's server starts from an empty copy
        keep_template(new_db, settings.template_path)
    state = ServerState(pid=proc.pid, url=url, port=port, log=str(log),
                        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    tmp = _state_path(settings).with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(_state_path(settings))
    return state, True


def stop_server(settings: Settings, *, timeout: float = 30.0) -> ServerState | None:
    """Stop this home's server (SIGTERM to its process group, SIGKILL after ``timeout``); the state it had."""
    state = read_state(settings)
    if state is None:
        return None
    if _is_our_server(state.pid):
        _terminate(state.pid, timeout=timeout)
    _state_path(settings).unlink(missing_ok=True)
    return state


def _terminate(pid: int, *, timeout: float = 30.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # our child (started in this process): reap it
            if done:
                return
        except ChildProcessError:  # started by another lockgate process
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def describe(settings: Settings) -> str:
    """One line for `lockgate server status`."""
    state = read_state(settings)
    if state is None:
        return f"no lockgate Prefect server for {settings.home_dir} (start one with `lockgate server start`)"
    if live_server_url(settings):
        return f"running: {state.url} (pid {state.pid}, since {state.started_at}, log {state.log})"
    return (f"not running: the server recorded at {state.url} (pid {state.pid}) does not answer; "
            "`lockgate server start` starts a new one")

