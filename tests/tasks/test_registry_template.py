"""A new home's SQLite registry starts as a copy of the empty store in the template folder, and works as one MLflow
built: a model version is registered in it; a template with content in it is never copied, an existing store is
never replaced, and an unusable folder leaves MLflow to build the store itself."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tasks.registry_template import is_empty_store, seed_registry, template_file


def _settings(tmp_path: Path, home: str, templates: Path, monkeypatch):
    from tasks.settings import Settings

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / home))
    monkeypatch.setenv("LOCKGATE_TEMPLATE_DIR", str(templates))
    return Settings()


def _experiments(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM experiments ORDER BY experiment_id")]


def test_a_second_home_is_seeded_from_the_template_and_registers_a_version(tmp_path, monkeypatch, candidate_files):
    import mlflow

    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    templates = tmp_path / "templates"
    first = _settings(tmp_path, "one", templates, monkeypatch)
    registry_for(first).client.search_experiments()
    template = template_file(templates, mlflow.__version__)
    assert is_empty_store(template)  # built by the first home, emptied of its Default experiment
    assert _experiments(template) == []

    second = _settings(tmp_path, "two", templates, monkeypatch)
    before = template.stat().st_mtime_ns
    registry = registry_for(second)
    db = second.home_dir / "mlflow.db"
    assert template.stat().st_mtime_ns == before  # copied, not built again
    record = register_candidate(registry, ledger_for(second), name="seeded", arch="mlp",
                                config_path=candidate_files.config, params_path=candidate_files.params,
                                reference_path=candidate_files.reference, contract_name="credit_default",
                                actor="tester")
    assert record.version == 1 and [v.version for v in registry.versions("seeded")] == [1]
    assert "Default" in _experiments(db)  # MLflow added the home's own Default experiment on open
    assert is_empty_store(template)  # the home's rows went to its own copy


def test_a_template_with_content_is_built_again_never_copied(tmp_path):
    import mlflow

    templates = tmp_path / "templates"
    template = template_file(templates, mlflow.__version__)
    assert seed_registry(tmp_path / "a" / "mlflow.db", templates) is False  # no folder "a": nothing to copy into
    (tmp_path / "a").mkdir()
    assert seed_registry(tmp_path / "a" / "mlflow.db", templates) is True
    with closing(sqlite3.connect(template)) as conn, conn:  # someone's rows slipped into the template
        conn.execute("INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (7, 'planted', 'active')")
    assert not is_empty_store(template)
    (tmp_path / "b").mkdir()
    assert seed_registry(tmp_path / "b" / "mlflow.db", templates) is True
    assert _experiments(tmp_path / "b" / "mlflow.db") == [] and is_empty_store(template)


def test_an_existing_store_is_never_replaced(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"not a store, but someone's file")
    assert seed_registry(db, tmp_path / "templates") is False
    assert db.read_bytes() == b"not a store, but someone's file"


def test_an_unusable_template_folder_leaves_mlflow_to_build_the_store(tmp_path, monkeypatch):
    from tasks.stores import registry_for

    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("x")
    settings = _settings(tmp_path, "home", blocked, monkeypatch)
    assert seed_registry(tmp_path / "elsewhere.db", blocked) is False
    assert not (tmp_path / "elsewhere.db").exists()
    registry_for(settings).client.search_experiments()  # MLflow's own migrations, as without a template
    assert _experiments(settings.home_dir / "mlflow.db") == ["Default"]


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00 truncated"])
def test_a_damaged_template_is_not_an_empty_store(tmp_path, content):
    path = tmp_path / "t.db"
    path.write_bytes(content)
    assert not is_empty_store(path)


def test_a_template_others_may_write_is_never_copied(tmp_path):
    """In a folder several users share, a file another user could have written may carry SQLite triggers."""
    import mlflow

    templates = tmp_path / "templates"
    (tmp_path / "a").mkdir()
    assert seed_registry(tmp_path / "a" / "mlflow.db", templates) is True
    template = template_file(templates, mlflow.__version__)
    assert template.stat().st_mode & 0o777 == 0o600  # built readable by its owner only
    with closing(sqlite3.connect(template)) as conn, conn:  # what a trigger planted by someone else could do
        conn.execute("CREATE TRIGGER planted AFTER INSERT ON registered_models BEGIN "
                     "UPDATE registered_models SET description = 'tampered'; END")
    template.chmod(0o664)
    (tmp_path / "b").mkdir()
    assert seed_registry(tmp_path / "b" / "mlflow.db", templates) is False
    assert not (tmp_path / "b" / "mlflow.db").exists()  # MLflow builds this home's store itself
    assert template.stat().st_mode & 0o777 == 0o664  # and the file is left as it was


@pytest.fixture
def loggers_as_a_new_process():
    """MLflow's and alembic's loggers as a fresh process has them (MLflow sets its own to INFO at import), restored
    after: an earlier test in this worker may have quietened them."""
    import logging

    names = ("mlflow", "alembic")
    before = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.INFO)
    yield
    for n, level in before.items():
        logging.getLogger(n).setLevel(level)


def test_a_first_command_on_a_new_machine_prints_its_error_on_one_line(tmp_path, monkeypatch, capsys,
                                                                        loggers_as_a_new_process):
    """No template yet (a new machine): building it runs MLflow's migrations, which log at INFO to stderr; the
    command's one-line error stays one line."""
    from pipelines.cli import main
    from pipelines.exit_codes import EXIT_USAGE

    _settings(tmp_path, "home", tmp_path / "templates", monkeypatch)
    monkeypatch.chdir(tmp_path)
    code = main(["register", "--arch", "mlp", "--config", "c.json", "--params", "p.msgpack", "--reference",
                 "r.parquet", "--contract", "credit_default"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and err.strip().splitlines() == ["lockgate: error: model config file not found: c.json"]
    assert list((tmp_path / "templates").rglob("*.db"))  # the template was built by this command
