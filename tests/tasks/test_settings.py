"""The settings object: LOCKGATE_HOME checks."""

from __future__ import annotations


def test_home_check_is_safe_from_many_threads_at_once(tmp_path, monkeypatch):
    """Partitions scored in parallel threads each check LOCKGATE_HOME; one shared probe file made them fail."""
    from concurrent.futures import ThreadPoolExecutor

    from tasks.settings import Settings

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    settings = Settings()
    with ThreadPoolExecutor(8) as pool:
        homes = list(pool.map(lambda _: settings.ensure_home(), range(400)))
    assert set(homes) == {tmp_path / "home"} and list((tmp_path / "home").iterdir()) == []
