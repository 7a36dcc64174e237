"""SqliteRegistryView reads MLflow's SQLite registry with sqlite3 and gives what MlflowRegistry gives, on a real
store (versions with tags and aliases, a deleted version, model tags, artifacts); what it cannot read goes to MLflow."""

from __future__ import annotations

import pytest

from tasks.errors import LockgateError
from tasks.registry import CHAMPION, MlflowRegistry
from tasks.registry_sql import SqliteRegistryView, sqlite_path


@pytest.fixture(scope="module")
def store(shared_home, candidate_files, exported_artifact, compiled_versions):
    from tasks.governance.promotion import promote
    from tasks.stores import ledger_for, mlflow_registry_for

    name = "sql-view"
    compiled_versions(shared_home, candidate_files, exported_artifact, 3, name)
    registry, ledger = mlflow_registry_for(shared_home), ledger_for(shared_home)  # MLflow for reads too
    common = dict(actor="tester", policy="test", evidence={}, flow_run_id=None)
    promote(registry, ledger, name=name, version=1, reason="first", expected_champion=None, **common)
    promote(registry, ledger, name=name, version=2, reason="better", expected_champion=1, **common)
    registry.set_alias(name, "challenger", 2)  # two aliases on one version
    registry.client.delete_model_version(name, "3")  # MLflow marks it deleted; neither store may list it
    registry.set_model_tag(name, "team", "risk")
    return name, registry


def test_view_reads_what_mlflow_reads(shared_home, store, tmp_path):
    from tasks.stores import registry_for

    name, registry = store
    view = registry_for(shared_home)  # every process's registry over a SQLite store
    assert isinstance(view, SqliteRegistryView) and isinstance(registry, MlflowRegistry)
    assert view.versions(name) == registry.versions(name) and [r.version for r in view.versions(name)] == [1, 2]
    assert view.aliases(name) == registry.aliases(name) == {CHAMPION: 2, "previous-champion": 1, "challenger": 2}
    assert view.model_tags(name) == registry.model_tags(name) and view.model_tags(name)["team"] == "risk"
    for alias in ("champion", "challenger", "previous-champion", "nope"):
        assert view.by_alias(name, alias) == registry.by_alias(name, alias)
    assert view.get(name, 2) == registry.get(name, 2)
    for v in (3, 9):  # deleted, never made
        with pytest.raises(LockgateError) as mine:
            view.get(name, v)
        with pytest.raises(LockgateError) as theirs:
            registry.get(name, v)
        assert str(mine.value) == str(theirs.value)
    assert view.versions("no-such-model") == [] and view.aliases("no-such-model") == {} == view.model_tags("x")
    record = view.get(name, 2)
    assert view.artifact_file(record, "model/inference.jaxexport", tmp_path) == registry.artifact_file(
        record, "model/inference.jaxexport", tmp_path)
    assert view.artifact_file(record, "model/nope", tmp_path) is None
    got, want = view.fetch(record, "inference.jaxexport", tmp_path / "a"), registry.fetch(record, "inference.jaxexport",
                                                                                          tmp_path / "b")
    assert got.read_bytes() == want.read_bytes() and got.relative_to(tmp_path / "a").as_posix() == "model/inference.jaxexport"
    with pytest.raises(LockgateError, match="could not be read"):
        view.fetch(record, "nope", tmp_path / "c")
    assert view.run_name(record) == registry.run_name(record)  # not read here: MLflow's own answer


def test_writes_go_to_mlflow_and_reads_see_them(shared_home, store):
    from tasks.stores import registry_for

    name, registry = store
    view = registry_for(shared_home)
    view.set_model_tag(name, "note", "written through the view")
    assert view.model_tags(name)["note"] == registry.model_tags(name)["note"] == "written through the view"


def test_what_it_cannot_read_is_mlflow_s(shared_home, tmp_path, monkeypatch):
    from tasks.registry_sql import readable
    from tasks.settings import Settings
    from tasks.stores import mlflow_registry_for, registry_for

    assert sqlite_path("sqlite:////a/b/mlflow.db").as_posix() == "/a/b/mlflow.db"
    assert sqlite_path("http://127.0.0.1:5000") is None and sqlite_path("sqlite:///:memory:") is None
    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "fresh"))  # no mlflow.db yet: seeded from the empty store
    fresh = registry_for(Settings())
    assert isinstance(fresh, SqliteRegistryView) and fresh.versions("any") == [] and readable(fresh.path)
    (tmp_path / "odd.db").write_bytes(b"")  # a database without MLflow's tables: MLflow's to make
    assert not readable(tmp_path / "odd.db")
    monkeypatch.setenv("LOCKGATE_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'odd.db'}")
    odd = Settings()
    assert registry_for(odd) is mlflow_registry_for(odd) and isinstance(registry_for(odd), MlflowRegistry)
