"""`lockgate server` bookkeeping without starting a server: a busy port, a stale state file, a recycled pid."""

from __future__ import annotations

import os
import socket

import pytest

from pipelines.prefect_server import ServerState, describe, live_server_url, read_state, start_server, stop_server
from tasks.errors import LockgateError


def _write_state(settings, pid: int, port: int = 1) -> None:
    settings.prefect_server_dir.mkdir(parents=True, exist_ok=True)
    state = ServerState(pid=pid, url=f"http://127.0.0.1:{port}/api", port=port, started_at="2026-11-01T00:00:00+00:00",
                        log=str(settings.prefect_server_dir / "server.log"))
    (settings.prefect_server_dir / "server.json").write_text(state.model_dump_json())


def test_busy_port_is_a_one_line_error_before_anything_starts(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LockgateError, match=f"port {port} on 127.0.0.1 is in use; pick another with --port"):
            start_server(settings, port=port)
    assert read_state(settings) is None


def test_stale_state_is_not_running_and_stop_signals_nobody(settings):
    _write_state(settings, pid=os.getpid())  # a live pid that is not a prefect server (this test process)
    assert live_server_url(settings) is None
    assert describe(settings).startswith("not running: the server recorded at http://127.0.0.1:1/api")
    assert stop_server(settings).pid == os.getpid()  # we are still here: it was not signalled
    assert read_state(settings) is None and stop_server(settings) is None


def test_runtime_uses_a_live_server_only(settings, monkeypatch):
    from pipelines.runtime import prepare_runtime

    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"})  # no leaks
    _write_state(settings, pid=os.getpid())
    prepare_runtime(settings)
    assert "PREFECT_API_URL" not in os.environ  # not alive: Prefect's temporary API as before
