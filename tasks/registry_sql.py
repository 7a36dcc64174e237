"""MLflow's SQLite model registry read with the standard library's sqlite3: every process's registry reads over the
embedded store (``tasks.stores.registry_for``), 3.3x less CPU a read than MLflow's client (``benchmarks.run
registry``), and `lockgate status` and `audit verify` without importing MLflow (its import alone takes ~5 s on a
small machine).

:class:`SqliteRegistryView` answers :class:`~tasks.registry.MlflowRegistry`'s reads (``versions``, ``get``,
``by_alias``, ``require_alias``, ``aliases``, ``model_tags``, ``artifact_file``, ``fetch`` from a local artifact
store) with the same records MLflow's SQL store gives (``search_model_versions`` and friends, the default
workspace, deleted versions left out); every other call (writes, remote artifacts) goes to the full registry,
built on first use. A store it cannot read (no file yet, a schema it does not know) is left to MLflow entirely.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlparse

from tasks.errors import LockgateError
from tasks.registry import MODEL_DIR, MlflowRegistry, ModelVersionRecord

SQLITE_PREFIX = "sqlite:///"
WORKSPACE = "default"  # MLflow's single-tenant workspace
DELETED_STAGE = "Deleted_Internal"  # MLflow's mark of a deleted version (its store filters it out)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` tracking URI, else None."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    rest = tracking_uri[len(SQLITE_PREFIX):].split("?", 1)[0]
    return Path(unquote(rest)) if rest and rest != ":memory:" else None


def readable(path: Path) -> bool:
    """True when ``path`` is an MLflow store whose registry tables this module reads (the columns it selects)."""
    try:
        with _connect(path) as conn:
            conn.execute("SELECT name, version, run_id, source, creation_time, current_stage, workspace "
                         "FROM model_versions LIMIT 0")
            conn.execute("SELECT key, value, name, version, workspace FROM model_version_tags LIMIT 0")
            conn.execute("SELECT key, value, name, workspace FROM registered_model_tags LIMIT 0")
            conn.execute("SELECT alias, version, name, workspace FROM registered_model_aliases LIMIT 0")
            conn.execute("SELECT run_uuid, artifact_uri FROM runs LIMIT 0")
        return True
    except sqlite3.Error:
        return False


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection, closed after the block."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


class SqliteRegistryView:
    """Registry reads from the SQLite file; anything else from ``full()`` (an :class:`MlflowRegistry`)."""

    def __init__(self, settings, path: Path, full: Callable[[], MlflowRegistry]):
        self.settings = settings
        self.path = path
        self._full = full

    def __getattr__(self, attr: str):  # writes, run names, logging, remote artifacts: MLflow itself
        return getattr(self._full(), attr)

    def _rows(self, sql: str, args: tuple) -> list[tuple]:
        with _connect(self.path) as conn:
            return conn.execute(sql, args).fetchall()

    def _records(self, name: str, version: int | None = None, *, with_aliases: bool = True
                 ) -> list[ModelVersionRecord]:
        where = "workspace = ? AND name = ? AND current_stage != ?" + ("" if version is None else " AND version = ?")
        args = (WORKSPACE, name, DELETED_STAGE) + (() if version is None else (int(version),))
        with _connect(self.path) as conn:
            found = conn.execute(f"SELECT name, version, run_id, source, creation_time FROM model_versions "
                                 f"WHERE {where}", args).fetchall()
            if not found:
                return []
            aliases = conn.execute("SELECT alias, version FROM registered_model_aliases WHERE workspace = ? AND "
                                   "name = ?", (WORKSPACE, name)).fetchall() if with_aliases else []
            tags = conn.execute("SELECT version, key, value FROM model_version_tags WHERE workspace = ? AND "
                                "name = ?", (WORKSPACE, name)).fetchall()
        return [ModelVersionRecord(
            name=n, version=int(v), run_id=run_id, source=source,
            tags={k: val for tv, k, val in tags if int(tv) == int(v)},
            aliases=tuple(a for a, av in aliases if int(av) == int(v)), created_at_ms=int(created or 0))
            for n, v, run_id, source, created in found]

    def versions(self, name: str) -> list[ModelVersionRecord]:
        # as MLflow's search_model_versions: records without their aliases (get and by_alias carry them)
        return sorted(self._records(name, with_aliases=False), key=lambda r: r.version)

    def get(self, name: str, version: int) -> ModelVersionRecord:
        found = self._records(name, version)
        if not found:
            raise LockgateError(
                f"model version {name} v{version} not found in the registry at {self.settings.tracking_uri}; "
                "run `lockgate status` to list versions"
            )
        return found[0]

    def by_alias(self, name: str, alias: str) -> ModelVersionRecord | None:
        row = self._rows("SELECT version FROM registered_model_aliases WHERE workspace = ? AND name = ? AND alias = ?",
                         (WORKSPACE, name, alias))
        if not row:
            return None
        found = self._records(name, int(row[0][0]))
        return found[0] if found else None

    def require_alias(self, name: str, alias: str) -> ModelVersionRecord:
        return MlflowRegistry.require_alias(self, name, alias)  # the same message, over this view's by_alias

    def aliases(self, name: str) -> dict[str, int]:
        return {a: int(v) for a, v in self._rows("SELECT alias, version FROM registered_model_aliases WHERE "
                                                 "workspace = ? AND name = ?", (WORKSPACE, name))}

    def model_tags(self, name: str) -> dict[str, str]:
        return dict(self._rows("SELECT key, value FROM registered_model_tags WHERE workspace = ? AND name = ?",
                               (WORKSPACE, name)))

    def _local_artifacts(self, record: ModelVersionRecord) -> Path | None:
        """The run's artifact folder when the artifact store is local (``file://`` or a path), else None."""
        row = self._rows("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (record.run_id,))
        if not row or row[0][0] is None:
            return None
        parsed = urlparse(row[0][0])
        return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None

    def artifact_file(self, record: ModelVersionRecord, relpath: str, cache: Path) -> Path | None:
        root = self._local_artifacts(record)
        if root is None:
            return self._full().artifact_file(record, relpath, cache)
        path = root / relpath
        return path if path.is_file() else None

    def fetch(self, record: ModelVersionRecord, filename: str, dst: Path) -> Path:
        """As :meth:`MlflowRegistry.fetch`: the file copied beside its place in ``dst`` and renamed into it."""
        root = self._local_artifacts(record)
        if root is None:
            return self._full().fetch(record, filename, dst)
        relpath = f"{MODEL_DIR}/{filename}"
        source = root / relpath
        if not source.is_file():
            raise LockgateError(f"artifact {relpath} of {record.name} v{record.version} could not be read: "
                                f"no file {source}")
        dst.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dst))
        try:
            got = Path(shutil.copyfile(source, staging / source.name))
            final = dst / relpath
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, final)
            return final
        finally:
            shutil.rmtree(staging, ignore_errors=True)
