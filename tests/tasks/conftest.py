"""Fixtures for the ledger and promotion tests: a real temporary Postgres server, versions with an exported artifact."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _pg_bin(tool: str) -> str | None:
    found = shutil.which(tool)
    return found or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster of its own in a temp folder on a free 127.0.0.1 port, stopped at the end of the session.

    Needs the server binaries (Debian: `apt-get install postgresql`); as root the cluster runs as `postgres`."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: postgresql) "
                    "to run the ledger tests on Postgres")
    run_as: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="lockgate-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the test cluster as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "-t", "60",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server):
    """URL of a new, empty database on the test cluster."""
    from sqlalchemy import create_engine

    name = f"ledger_{uuid.uuid4().hex[:12]}"
    engine = create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path):
    """Each ledger test runs on SQLite and on a real Postgres (`-k postgres` selects the Postgres runs)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_db")
