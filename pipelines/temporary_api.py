"""The temporary Prefect API of one command: started by lockgate, ready before it is used, gone when the command is.

Prefect starts its own temporary server inside the first flow run when no PREFECT_API_URL
is set: counted as running before it listens, and left behind (parent pid 1, holding its
port) when the command is killed. Commands that run flows start it here instead, the same
way Prefect does (``uvicorn prefect.server.api.server:create_app`` on 127.0.0.1, state
under PREFECT_HOME), with three differences:

- it is ready before it is used: :meth:`TemporaryAPI.wait_ready` polls ``/health`` up to
  LOCKGATE_SERVER_READY_TIMEOUT_SECONDS (default 120) and otherwise fails in one line;
- it dies with its command: the child asks the kernel for SIGTERM when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``, set before it execs uvicorn), and runs in its own
  process group, stopped as a whole at exit;
- a lease file (LOCKGATE_HOME/prefect/leases/<pid>.json) names it and its owner, so a
  server whose owner died without the kernel's help (no Linux, a killed process group)
  is reaped by the next command that starts one, and by ``lockgate server status``.

A server of PREFECT_API_URL (`lockgate server`, a shared one) is held to the same limit by :func:`ensure_api`.

No Prefect import: the command imports Prefect after PREFECT_API_URL points here; where Prefect was imported
already, its settings are refreshed to read it (else its first client starts Prefect's own server beside this one).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import LockgateError
from tasks.readiness import seconds, wait_until_answers
from tasks.settings import Settings

HOST = "127.0.0.1"
MARKER = "LOCKGATE_TEMPORARY_API"
SERVER_APP = "prefect.server.api.server:create_app"
# Run in the child before uvicorn: die with the parent (argv[1]), and not at all if it is already gone.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass  # not Linux: the lease file is the only guard\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'uvicorn', *sys.argv[2:]])\n"
)


def _leases(settings: Settings) -> Path:
    return settings.prefect_home / "leases"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None when it is gone: a pid alone can be recycled."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        return "?"  # alive, no procfs


def _host() -> str:
    """This machine and boot: a pid means something only within one."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def _is_temporary_server(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"uvicorn" in b" ".join(args) and SERVER_APP.encode() in args


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# Prefect's own temporary server: no UI, the ephemeral set of services, no telemetry (no internet here).
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
              "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
# Prefect settings every server lockgate starts takes unless the environment sets them: the task-run recorder writes
# the task-run events it receives in batches of up to 100, at least every second, instead of one transaction per
# event (Prefect's default batch of 1): 28.6-32.9 -> 11.9 ms of the server's CPU per task run, measured on a
# trivial flow of 200 task runs. A task run's state reaches the API and UI within a second; a server that stops
# writes what it holds first (Prefect's recorder flushes on stop).
SERVER_TUNING = {"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
                 "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1"}


def server_tuning(environ) -> dict[str, str]:
    """:data:`SERVER_TUNING`, each value the environment's own where it sets one."""
    return {k: environ.get(k, v) for k, v in SERVER_TUNING.items()}


def server_args(port: int) -> list[str]:
    """uvicorn's arguments for Prefect's API app on 127.0.0.1:``port``, as Prefect's own temporary server runs it."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise LockgateError("prefect is not installed in this environment")
    app_dir = str(Path(next(iter(spec.submodule_search_locations))).parent)
    return ["--app-dir", app_dir, "--factory", SERVER_APP, "--host", HOST, "--port", str(port), "--log-level",
            "error", "--lifespan", "on"]


def _stop_group(pid: int, timeout: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:  # not our child (a reaped orphan): wait for it to vanish
            if _start_time(pid) is None:
                return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class TemporaryAPI:
    pid: int
    url: str
    log: Path
    lease: Path
    startup_timeout: float
    db: Path | None = None  # a new home's SQLite database: kept as the next homes' template once it answers
    template_dir: Path = Path()  # where (settings.template_path), set with db

    def wait_ready(self) -> str:
        """Poll the health endpoint until it answers; the URL, or a one-line LockgateError naming what to do."""
        def gone() -> str | None:
            if _start_time(self.pid) is None or _exited(self.pid):
                return (f"Prefect's temporary API exited while starting (log {self.log}); run `lockgate server start` "
                        "or set PREFECT_API_URL to a running server")
            return None

        wait_until_answers(
            f"{self.url}/health", limit=self.startup_timeout, gone=gone,
            failure=lambda: (f"Prefect's temporary API did not answer {self.url}/health within "
                             f"{seconds(self.startup_timeout)} (a busy host? log {self.log}); raise "
                             "LOCKGATE_SERVER_READY_TIMEOUT_SECONDS, or run `lockgate server start` first"))
        if self.db is not None:
            from tasks.prefect_db_template import keep_template

            keep_template(self.db, self.template_dir)
            self.db = None
        return self.url

    def stop(self) -> None:
        _stop_group(self.pid)
        self.lease.unlink(missing_ok=True)


def _exited(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


_running: TemporaryAPI | None = None


def start_temporary_api(settings: Settings) -> TemporaryAPI | None:
    """Start this command's temporary API unless PREFECT_API_URL is set (a server, or one started already); export
    PREFECT_API_URL. Returns at once: call ``wait_ready()`` (or :func:`ensure_api`) before the first flow runs."""
    global _running
    if _running is not None or os.environ.get("PREFECT_API_URL") or _prefect_has_an_api():
        return _running
    reap_orphans(settings)
    port = free_port()
    args = server_args(port)
    url = f"http://{HOST}:{port}/api"
    leases = _leases(settings)
    leases.mkdir(parents=True, exist_ok=True)
    log = leases.parent / f"temporary-api-{port}.log"
    env = {**os.environ, **server_tuning(os.environ), **SERVER_ENV}
    env.pop("PREFECT_API_URL", None)
    from tasks.prefect_db_template import new_home_db

    home = env.get("PREFECT_HOME")
    db = new_home_db(Path(home).expanduser(), env, settings.template_path) if home else None
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    lease = leases / f"{proc.pid}.json"
    lease.write_text(json.dumps({"pid": proc.pid, "url": url, "owner": os.getpid(), "host": _host(),
                                 "owner_start": _start_time(os.getpid()), "log": str(log)}))
    _running = TemporaryAPI(pid=proc.pid, url=url, log=log, lease=lease,
                            startup_timeout=settings.server_ready_timeout_seconds, db=db,
                            template_dir=settings.template_path)
    atexit.register(_running.stop)
    os.environ["PREFECT_API_URL"] = url
    os.environ[MARKER] = url  # no reviewer can reach it: a run that needs approval refuses it (tasks/gates.py)
    if "prefect.context" in sys.modules:
        # Prefect read its settings from the environment when it was imported, without this URL: its first client
        # would start Prefect's own ephemeral server beside this one (never waited for, left behind when killed).
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    return _running


def _prefect_has_an_api() -> bool:
    return bool(_prefect_settings_url())


def _prefect_settings_url() -> str | None:
    """The API URL of Prefect's current settings when Prefect is already imported here (a test harness, a profile)."""
    if "prefect.settings" not in sys.modules:
        return None
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def ensure_api(settings: Settings) -> None:
    """Before a command's first flow: its temporary API started (unless PREFECT_API_URL is set), and whichever API
    it uses answering ``/health`` within LOCKGATE_SERVER_READY_TIMEOUT_SECONDS; otherwise a one-line LockgateError."""
    api = start_temporary_api(settings)
    if api is not None:
        api.wait_ready()
        return
    url = (os.environ.get("PREFECT_API_URL") or _prefect_settings_url() or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        return
    limit = settings.server_ready_timeout_seconds
    wait_until_answers(
        f"{url}/health", limit=limit,
        note=f"waiting up to {seconds(limit)} for the Prefect API at {url} to answer /health",
        failure=lambda: (f"the Prefect API at {url} did not answer {url}/health within {seconds(limit)}; start it "
                         "(`lockgate server start`, or your server for PREFECT_API_URL), check PREFECT_API_URL, or "
                         "raise LOCKGATE_SERVER_READY_TIMEOUT_SECONDS"))


def reap_orphans(settings: Settings) -> list[dict]:
    """Stop every temporary API whose owning command is gone; the leases of those stopped (or already gone)."""
    folder = _leases(settings)
    reaped = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            lease = json.loads(path.read_text())
            pid, owner, owner_start = int(lease["pid"]), int(lease["owner"]), lease.get("owner_start")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if lease.get("host", _host()) != _host():
            continue  # another machine's (a LOCKGATE_HOME on shared storage): its pids are not ours
        if owner_start is not None and _start_time(owner) == owner_start:
            continue  # its command is still running
        if _start_time(pid) is not None and _is_temporary_server(pid):
            _stop_group(pid)
            lease["stopped"] = True
        path.unlink(missing_ok=True)
        reaped.append(lease)
    return reaped


def running_leases(settings: Settings) -> list[dict]:
    """The temporary APIs of commands still running."""
    folder = _leases(settings)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            lease = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if lease.get("host", _host()) == _host():
            out.append(lease)
    return out
