"""A new home's SQLite registry starts as a copy of an empty one MLflow built before.

MLflow builds a new SQLite store by creating its first schema and running every alembic migration since (about 60
in MLflow 3.17): ~1 CPU-s, paid again by every new home (a project, a CI job, each test of a suite). The first home
on a machine keeps the result, emptied, in the template folder (``LOCKGATE_TEMPLATE_DIR``, default
``~/.cache/lockgate``; one file per MLflow version); the next homes copy it (tasks/store_templates.py). MLflow opens
the copy as any store it made: it checks the schema is at its head revision and adds the Default experiment with
the home's own artifact root. A template that is missing, unreadable or not empty (experiments, runs, models or
versions in it) is never copied: it is built again, and where that fails MLflow builds the home's store itself, as
without a template. Nor is one another user owns or may write (group- or world-writable): in a folder several users
share, someone else's file could carry SQLite triggers into every new registry; it is left alone and MLflow builds
the store.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from tasks.store_templates import install, seed_from

# Rows of any of these make a file something else than an empty store.
CONTENT_TABLES = ("experiments", "runs", "registered_models", "model_versions", "model_version_tags",
                  "registered_model_aliases")


def template_file(folder: Path, mlflow_version: str) -> Path:
    return folder / f"mlflow-{mlflow_version}-empty.db"


def is_empty_store(path: Path) -> bool:
    """``path`` is an MLflow SQLite store with a schema revision and no content rows."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            if conn.execute("SELECT version_num FROM alembic_version").fetchone() is None:
                return False
            return all(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0 for t in CONTENT_TABLES)
    except (sqlite3.Error, OSError):
        return False


def quiet_mlflow_migrations() -> None:
    """MLflow and alembic log a fresh SQLite store's migrations at INFO to stderr: noise at the CLI, where an error is
    one line. Warnings and errors still show. Call it after importing MLflow: MLflow's import sets its logger to INFO
    (so it is called where a store is made, not once before the registry is opened)."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def build_template(template: Path) -> None:
    """MLflow's own store creation in a temporary file, its Default experiment removed (each home's store adds its
    own), then moved into place atomically: a process reading the template never sees half of one."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    quiet_mlflow_migrations()
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        store = SqlAlchemyStore(f"sqlite:///{tmp}", tmp.parent.as_uri())
        store.engine.dispose()
        with closing(sqlite3.connect(tmp)) as conn, conn:
            conn.execute("DELETE FROM experiment_tags")
            conn.execute("DELETE FROM experiments")
        install(tmp, template)
    finally:
        tmp.unlink(missing_ok=True)


def seed_registry(db: Path, folder: Path) -> bool:
    """When ``db`` does not exist yet, make it a copy of the empty store for this MLflow version (built first if the
    folder has none); True when it did. Never replaces a file, never raises: without a copy MLflow builds the store."""
    if db.exists():
        return False
    import mlflow

    return seed_from(db, template_file(folder, mlflow.__version__), is_empty=is_empty_store, build=build_template)
