"""A new home's Prefect database starts as a copy of an empty one Prefect migrated: the template is taken from a
server's live database (emptied, the source untouched), a real server started on a copy answers and runs flows, and
no file is replaced or copied that should not be (someone else's, a damaged one, an existing database)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from importlib import metadata
from pathlib import Path

import pytest

from tasks.prefect_db_template import default_db, is_empty_db, keep_template, seed_prefect_db, template_file

MARK = 4242  # PRAGMA user_version: a stamp Prefect never writes, to tell a copy of the template from a new database


def _template(folder: Path) -> Path:
    return template_file(folder, metadata.version("prefect"))


@pytest.fixture
def migrated(prefect_harness, tmp_path) -> Path:
    """A database Prefect migrated itself (the session server's left the run's template), with rows in it."""
    run_template = _template(Path(os.environ["LOCKGATE_TEMPLATE_DIR"]))
    assert is_empty_db(run_template)  # kept by the session's Prefect test server (tests/conftest.py)
    db = tmp_path / "live" / "prefect.db"
    db.parent.mkdir()
    db.write_bytes(run_template.read_bytes())
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO flow (id, name, created, updated) VALUES ('f1', 'someone-s-flow', "
                     "'2026-12-01', '2026-12-01')")
        conn.execute("INSERT INTO variable (id, name, value, created, updated) VALUES ('v1', 'secret_ish', '\"x\"', "
                     "'2026-12-01', '2026-12-01')")
    return db


def _rows(db: Path, table: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_the_template_is_an_emptied_copy_and_the_live_database_is_untouched(migrated, tmp_path):
    folder = tmp_path / "templates"
    before = migrated.read_bytes()
    assert not is_empty_db(migrated)
    assert keep_template(migrated, folder) is True
    template = _template(folder)
    assert is_empty_db(template) and _rows(template, "flow") == 0 and _rows(template, "variable") == 0
    assert template.stat().st_mode & 0o777 == 0o600
    assert migrated.read_bytes() == before  # read with the backup API, never written
    assert keep_template(migrated, folder) is False  # a usable one stays
    assert [p.name for p in folder.iterdir()] == [template.name]  # no temporary file left behind


def test_a_new_home_s_server_starts_from_the_template_and_runs_a_flow(migrated, tmp_path, monkeypatch):
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.prefect_server import start_server, stop_server
    from pipelines.temporary_api import free_port
    from tasks.settings import Settings

    folder = tmp_path / "templates"
    assert keep_template(migrated, folder)
    with closing(sqlite3.connect(_template(folder))) as conn:
        conn.execute(f"PRAGMA user_version = {MARK}")
    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCKGATE_TEMPLATE_DIR", str(folder))
    settings = Settings()
    state, started = start_server(settings, port=free_port())
    try:
        assert started
        db = settings.prefect_server_dir / "prefect.db"
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == MARK  # a copy of the template

        @flow
        def hello(x: int) -> int:
            return x + 1

        with temporary_settings({PREFECT_API_URL: state.url}):
            assert hello(1) == 2
        assert _rows(db, "flow_run") == 1  # the run was recorded in the seeded database
    finally:
        stop_server(settings)
    assert _rows(_template(folder), "flow_run") == 0  # the home's rows went to its own copy


def test_an_existing_database_is_never_replaced_and_a_set_url_is_not_seeded(migrated, tmp_path):
    folder = tmp_path / "templates"
    assert keep_template(migrated, folder)
    db = tmp_path / "home" / "prefect.db"
    db.parent.mkdir()
    db.write_bytes(b"someone's database")
    assert seed_prefect_db(db, folder) is False and db.read_bytes() == b"someone's database"
    assert default_db(tmp_path, {"PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://x/y"}) is None
    assert default_db(tmp_path, {"PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///elsewhere.db"}) is None
    assert default_db(tmp_path, {}) == tmp_path / "prefect.db"
    assert seed_prefect_db(None, folder) is False
    assert seed_prefect_db(tmp_path / "new.db", tmp_path / "no-templates-here") is False  # never built here
    assert not (tmp_path / "new.db").exists()


def test_a_template_others_may_write_is_never_copied_nor_replaced(migrated, tmp_path):
    folder = tmp_path / "templates"
    assert keep_template(migrated, folder)
    template = _template(folder)
    with closing(sqlite3.connect(template)) as conn, conn:  # what a file planted by someone else could carry
        conn.execute("CREATE TRIGGER planted AFTER INSERT ON flow BEGIN DELETE FROM flow_run; END")
    template.chmod(0o664)
    planted = template.read_bytes()
    assert seed_prefect_db(tmp_path / "new.db", folder) is False and not (tmp_path / "new.db").exists()
    assert keep_template(migrated, folder) is False
    assert template.read_bytes() == planted and template.stat().st_mode & 0o777 == 0o664  # left as it was


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00 truncated", b"plain text"])
def test_a_damaged_template_is_not_copied_and_is_made_again(migrated, tmp_path, content):
    folder = tmp_path / "templates"
    folder.mkdir()
    template = _template(folder)
    template.write_bytes(content)
    template.chmod(0o600)
    assert not is_empty_db(template)
    assert seed_prefect_db(tmp_path / "new.db", folder) is False and not (tmp_path / "new.db").exists()
    assert keep_template(migrated, folder) is True and is_empty_db(template)
    assert seed_prefect_db(tmp_path / "new.db", folder) is True and is_empty_db(tmp_path / "new.db")


def test_a_template_with_rows_is_not_copied(migrated, tmp_path):
    folder = tmp_path / "templates"
    assert keep_template(migrated, folder)
    template = _template(folder)
    with closing(sqlite3.connect(template)) as conn, conn:
        conn.execute("INSERT INTO variable (id, name, value, created, updated) VALUES ('v2', 'slipped_in', '1', "
                     "'2026-12-01', '2026-12-01')")
    assert seed_prefect_db(tmp_path / "new.db", folder) is False and not (tmp_path / "new.db").exists()


def test_the_template_folder_setting_reads_its_former_name_too(tmp_path, monkeypatch):
    from tasks.settings import Settings

    monkeypatch.delenv("LOCKGATE_TEMPLATE_DIR", raising=False)
    monkeypatch.setenv("LOCKGATE_REGISTRY_TEMPLATE_DIR", str(tmp_path / "old"))
    assert Settings().template_path == (tmp_path / "old").resolve()
    monkeypatch.setenv("LOCKGATE_TEMPLATE_DIR", str(tmp_path / "new"))
    assert Settings().template_path == (tmp_path / "new").resolve()  # the current name wins
