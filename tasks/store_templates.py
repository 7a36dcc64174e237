"""New homes' SQLite databases start as copies of empty ones made before, not built by migrations again.

Two stores a home creates on first use are SQLite files whose creation is nearly all schema migrations: MLflow's
registry (~60 alembic migrations, ~1 CPU-s; tasks/registry_template.py) and the Prefect API's database (~6.7
CPU-s; tasks/prefect_db_template.py). The template folder (``LOCKGATE_TEMPLATE_DIR``, default
``$XDG_CACHE_HOME/lockgate``, else ``~/.cache/lockgate``) keeps one empty copy of each per version of its library.

What every template shares, here: a file is copied only if this user owns it and no one else may write it (in a
folder several users share, someone else's file could carry SQLite triggers into every new home), only if it is
still empty, and only where no database exists yet (linked into place, so a store that appeared meanwhile stays).
Templates are written atomically and mode 0600. Nothing here ever fails a command: without a copy the library
builds its store as it always did.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def is_own_file(path: Path) -> bool:
    """``path`` is owned by this user and writable by no one else."""
    st = path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def seed_from(db: Path, template: Path, *, is_empty: Callable[[Path], bool],
              build: Callable[[Path], None] | None = None) -> bool:
    """When ``db`` does not exist yet, make it a copy of ``template`` (built first with ``build`` when it is missing
    or no longer empty, if given); True when it did. Never replaces a file and never raises."""
    if db.exists():
        return False
    tmp = db.with_name(f".{db.name}.{os.getpid()}.seed")
    try:
        if template.exists() and not is_own_file(template):
            log.debug("template %s is not this user's own file: not used", template)
            return False
        if not is_empty(template):
            if build is None:
                return False
            build(template)
        shutil.copyfile(template, tmp)
        if not is_empty(tmp):
            return False
        os.link(tmp, db)  # fails if a store appeared meanwhile: that one stays
        return True
    except Exception as e:  # an optimisation only: the library builds the store as before
        log.debug("template %s not used for %s: %s", template, db, e)
        return False
    finally:
        tmp.unlink(missing_ok=True)


def install(tmp: Path, template: Path) -> None:
    """Move a finished template into place: mode 0600, atomically (a reader never sees half of one)."""
    os.chmod(tmp, 0o600)
    os.replace(tmp, template)
