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


def test_the_compile_and_jax_caches_are_the_homes_unless_set_and_homes_may_share_them(tmp_path, monkeypatch):
    """LOCKGATE_COMPILE_CACHE_DIR / LOCKGATE_JAX_CACHE_DIR: a second home reads the compile rows the first one wrote."""
    import jax

    from tasks.compilation.report import compile_report
    from tasks.gates import compile_cache_dir
    from tasks.settings import Settings
    from tasks.stores import use_jax_compilation_cache

    for key in ("LOCKGATE_COMPILE_CACHE_DIR", "LOCKGATE_JAX_CACHE_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "a"))
    alone = Settings()
    assert compile_cache_dir(alone) == tmp_path / "a" / "compile_cache" and alone.jax_cache_path == tmp_path / "a" / "jax_cache"

    monkeypatch.setenv("LOCKGATE_COMPILE_CACHE_DIR", str(tmp_path / "shared" / "compile"))
    monkeypatch.setenv("LOCKGATE_JAX_CACHE_DIR", str(tmp_path / "shared" / "jax"))
    kwargs = dict(targets=["cpu"], buckets=[8], variants=["f32"], timeout=120, headroom=0.9, workers=1)
    rows = []
    for home in ("a", "b"):
        monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / home))
        settings = Settings()
        assert compile_cache_dir(settings) == tmp_path / "shared" / "compile"
        rows.append(compile_report("mlp", {"num_features": 3, "hidden_sizes": [4]}, **kwargs,
                                   cache_dir=compile_cache_dir(settings)).rows)
    assert [r.cached for r in rows[0]] == [False] and [r.cached for r in rows[1]] == [True]
    before = jax.config.jax_compilation_cache_dir
    try:
        use_jax_compilation_cache(settings)
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "shared" / "jax")
    finally:
        from jax._src import compilation_cache

        jax.config.update("jax_compilation_cache_dir", before)
        compilation_cache.reset_cache()  # the next compile opens the session's cache again
    assert not (tmp_path / "b" / "compile_cache").exists() and not (tmp_path / "b" / "jax_cache").exists()
