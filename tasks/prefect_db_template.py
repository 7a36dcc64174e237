"""A new home's Prefect database starts as a copy of an empty one Prefect migrated before.

The first start of a Prefect API in a new home (the temporary API of a command, `lockgate server start`) creates
its SQLite database by running every Prefect migration: ~6.7 of its ~11 CPU-s to answer, paid again by each new
home and project, and twice the wait on a busy host. Lockgate never builds the template itself: once a server of a
new home answers, its database (the schema Prefect migrated) is copied with SQLite's backup API, every row but
the schema revision deleted, and kept in the template folder (``LOCKGATE_TEMPLATE_DIR``, one file per
Prefect version). The next new homes start from a copy; Prefect checks the revision at start (migrating forward if
it is behind) and registers its block types in it as in any database.

Only the default database is seeded, ``$PREFECT_HOME/prefect.db``: none where a connection URL is set. The rules of
tasks/store_templates.py apply: this user's own file, writable by no one else, still empty, never replacing a
database, never failing a command. No Prefect import (the CLI's commands stay light): the version comes from the
package metadata.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from importlib import metadata
from pathlib import Path

from tasks.store_templates import install, is_own_file, seed_from

log = logging.getLogger(__name__)

REVISION_TABLE = "alembic_version"
# Where a Prefect connection URL may be set: then the database is not the home's default SQLite file.
URL_VARIABLES = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")


def template_file(folder: Path, prefect_version: str) -> Path:
    return folder / f"prefect-{prefect_version}-empty.db"


def _template(folder: Path) -> Path | None:
    try:
        return template_file(folder, metadata.version("prefect"))
    except metadata.PackageNotFoundError:
        return None


def default_db(prefect_home: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The SQLite file a Prefect server started with this PREFECT_HOME and environment uses; None when a connection
    URL is set (Postgres, another file: not lockgate's to seed)."""
    if any(environ.get(k) for k in URL_VARIABLES):
        return None
    return prefect_home / "prefect.db"


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%'")]


def is_empty_db(path: Path) -> bool:
    """``path`` is a Prefect SQLite database with a schema revision and no row in any other table."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            if conn.execute(f"SELECT version_num FROM {REVISION_TABLE}").fetchone() is None:
                return False
            tables = _tables(conn)
            return len(tables) > 1 and all(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0
                                           for t in tables if t != REVISION_TABLE)
    except (sqlite3.Error, OSError):
        return False


def seed_prefect_db(db: Path | None, folder: Path) -> bool:
    """Before a server's first start in a new home: ``db`` becomes a copy of this Prefect version's empty database,
    if the folder has a usable one; True when it did. Never replaces a file, never raises."""
    template = _template(folder) if db is not None else None
    if template is None or db.exists():
        return False
    return seed_from(db, template, is_empty=is_empty_db)


def new_home_db(prefect_home: Path, environ: Mapping[str, str], folder: Path) -> Path | None:
    """Before a server starts with this PREFECT_HOME and environment: its database, when this is the home's first start
    and no template could seed it (to be kept with :func:`keep_template` once the server answers); else None."""
    db = default_db(prefect_home, environ)
    if db is None or db.exists() or seed_prefect_db(db, folder):
        return None
    return db


def keep_template(db: Path | None, folder: Path) -> bool:
    """After a server answered on ``db`` (migrated by Prefect itself): unless the folder has a usable template, make
    one of it, emptied; True when it did. Reads the live database with SQLite's backup API (a consistent copy while
    the server writes), never changes it, never raises."""
    template = _template(folder) if db is not None else None
    if template is None or not db.is_file():
        return False
    tmp = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    try:
        if template.exists() and (not is_own_file(template) or is_empty_db(template)):
            return False  # someone else's file is left alone; a usable one stays
        folder.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as live, \
                closing(sqlite3.connect(tmp)) as copy:
            live.backup(copy)
        with closing(sqlite3.connect(tmp)) as copy:
            with copy:
                for table in _tables(copy):
                    if table != REVISION_TABLE:
                        copy.execute(f'DELETE FROM "{table}"')
            copy.execute("VACUUM")
            # a rollback journal, not the live database's WAL: a file alone, which readers leave no -wal/-shm
            # beside (Prefect turns WAL on again in each home's copy when it connects)
            copy.execute("PRAGMA journal_mode = DELETE")
        if not is_empty_db(tmp):
            return False
        install(tmp, template)
        return True
    except Exception as e:  # an optimisation only: the next new home migrates its own database
        log.debug("no Prefect database template from %s: %s", db, e)
        return False
    finally:
        tmp.unlink(missing_ok=True)
