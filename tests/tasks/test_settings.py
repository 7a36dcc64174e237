"""The settings object: LOCKGATE_HOME checks."""

from __future__ import annotations

import pytest


def test_home_check_is_safe_from_many_threads_at_once(tmp_path, monkeypatch):
    """Partitions scored in parallel threads each check LOCKGATE_HOME; one shared probe file made them fail."""
    from concurrent.futures import ThreadPoolExecutor

    from tasks.settings import Settings

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    settings = Settings()
    with ThreadPoolExecutor(8) as pool:
        homes = list(pool.map(lambda _: settings.ensure_home(), range(400)))
    assert set(homes) == {tmp_path / "home"} and list((tmp_path / "home").iterdir()) == []


@pytest.mark.parametrize("env,limit", [
    ({}, 120.0),
    ({"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"}, 300.0),
    ({"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300", "LOCKGATE_SERVER_READY_TIMEOUT_SECONDS": "7.5"}, 7.5),
])
def test_the_server_ready_limit_is_lockgates_else_prefects_else_120(tmp_path, monkeypatch, env, limit):
    from tasks.settings import Settings

    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    monkeypatch.delenv("LOCKGATE_SERVER_READY_TIMEOUT_SECONDS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings().server_ready_timeout_seconds == limit
