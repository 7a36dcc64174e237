"""The one place where settings choose the backends (registry, ledger) for this process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.ledger.store import Ledger
from tasks.paths import path_under
from tasks.policy import Policy, load_policy
from tasks.registry import LEDGER_HEAD_TAG, MlflowRegistry
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.registry_sql import SqliteRegistryView


@lru_cache(maxsize=8)
def registry_for(settings: Settings) -> MlflowRegistry | SqliteRegistryView:
    """This process's registry: over a local SQLite store (the embedded default), reads go to the file with sqlite3
    (tasks/registry_sql.py: the same records MLflow's SQL store gives, tested against it) and everything else, every
    write included, to MLflow (:func:`mlflow_registry_for`, made on first use); over any other store, MLflow.

    A lifecycle reads the registry a few hundred times (aliases, versions, tags, artifacts): each read through
    MLflow's client is a SQLAlchemy session and a query per object, and a process that only reads (a Dask worker
    loading the champion, `lockgate status`) never imports MLflow."""
    from tasks.registry_sql import SqliteRegistryView, readable, sqlite_path

    path = sqlite_path(settings.tracking_uri)
    if path is None:  # a tracking server (or another store): MLflow, which waits for it to answer
        return mlflow_registry_for(settings)
    _prepared(settings)
    if not readable(path):  # a schema this view does not know: MLflow's own
        return mlflow_registry_for(settings)
    return SqliteRegistryView(settings, path, lambda: mlflow_registry_for(settings))


@lru_cache(maxsize=8)
def mlflow_registry_for(settings: Settings) -> MlflowRegistry:
    """MLflow's own client over the settings' store, for every call (the reads included)."""
    return MlflowRegistry(_prepared(settings))


def _prepared(settings: Settings) -> Settings:
    """The home made, an http(s) tracking server answering, a new SQLite store seeded from the empty template."""
    from tasks.registry_sql import sqlite_path

    settings.ensure_home()
    wait_for_tracking_server(settings)
    db = sqlite_path(settings.tracking_uri)
    if db is not None and not db.exists():  # a new home: a copy of the empty store, not MLflow's migrations again
        from tasks.registry_template import seed_registry

        seed_registry(db, settings.template_path)
    return settings


def wait_for_tracking_server(settings: Settings) -> None:
    """An http(s) MLflow tracking server answers ``/health`` before its first use, within
    LOCKGATE_SERVER_READY_TIMEOUT_SECONDS; otherwise a one-line LockgateError. A SQLite store has nothing to wait for."""
    from tasks.readiness import seconds, wait_until_answers

    uri = settings.tracking_uri.rstrip("/")
    if not uri.startswith(("http://", "https://")):
        return
    limit = settings.server_ready_timeout_seconds
    wait_until_answers(
        f"{uri}/health", limit=limit,
        note=f"waiting up to {seconds(limit)} for the MLflow tracking server at {uri} to answer /health",
        failure=lambda: (f"the MLflow tracking server at {uri} did not answer {uri}/health within {seconds(limit)}; "
                         "start it (`mlflow server`), check LOCKGATE_MLFLOW_TRACKING_URI, or raise "
                         "LOCKGATE_SERVER_READY_TIMEOUT_SECONDS"))


@lru_cache(maxsize=8)
def ledger_for(settings: Settings) -> Ledger:
    settings.ensure_home()
    public = settings.ledger_public_key
    if public is not None:
        from tasks.signatures import public_key_setting

        public = public_key_setting(public)
    return Ledger(settings.ledger_uri, anchor=settings.ledger_anchor_path,
                  lock_timeout=settings.ledger_lock_timeout_seconds, head_key=settings.ledger_key_path,
                  head_public_key=public, witness=lambda mark, entry: _witness(settings, mark, entry))


def _witness(settings: Settings, mark: dict, entry) -> None:
    """The signed head after ``entry``, as a tag of its registered model (a second store): a ledger truncated or
    rewritten behind it no longer agrees (`lockgate audit verify`). A row of an unregistered name has no witness."""
    import json

    if settings.mlflow_tracking_uri is None and not (settings.home_dir / "mlflow.db").exists():
        return  # no registry here yet, so no registered model to witness (and none is created for it)
    # a name that is not a registered model raises, and the ledger notes no witness for it
    registry_for(settings).set_model_tag(entry.model_name, LEDGER_HEAD_TAG, json.dumps(mark, sort_keys=True))


def policy_for(settings: Settings) -> Policy:
    return load_policy(settings.policy_file)


def version_evidence_dir(settings: Settings, name: str, version: int) -> Path:
    return path_under(settings.evidence_dir, name, f"v{version}", what="model name")


LIFECYCLE_RUN = "lifecycle-"


def new_lifecycle_dir(settings: Settings, name: str, version: int) -> Path:
    """A new folder for one lifecycle run's evidence, ``v<version>/lifecycle-<n>`` (n one more than the last),
    created exclusively so two runs never share one: a re-run never replaces a file an earlier run's rows name."""
    base = version_evidence_dir(settings, name, version)
    base.mkdir(parents=True, exist_ok=True)
    n = len(lifecycle_dirs(settings, name, version)) + 1
    while True:
        try:
            (base / f"{LIFECYCLE_RUN}{n}").mkdir()
            return base / f"{LIFECYCLE_RUN}{n}"
        except FileExistsError:  # another run took it
            n += 1


def lifecycle_dirs(settings: Settings, name: str, version: int) -> list[Path]:
    """The version's lifecycle evidence folders, oldest first."""
    base = version_evidence_dir(settings, name, version)
    found = [p for p in base.glob(f"{LIFECYCLE_RUN}*") if p.is_dir() and p.name[len(LIFECYCLE_RUN):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(LIFECYCLE_RUN):]))


def latest_evidence_dir(settings: Settings, name: str, version: int) -> Path:
    """The folder of the version's last lifecycle run (its gate results), or the version's folder itself when its
    evidence was written before lifecycle runs had folders of their own."""
    runs = lifecycle_dirs(settings, name, version)
    return runs[-1] if runs else version_evidence_dir(settings, name, version)


def new_attempt_name(version: int) -> str:
    """A name for one scoring of a partition (its predictions, quarantine and evidence folders), unique without
    coordination between processes: ``v<version>-<UTC time>-<random>``, sorting by time."""
    import secrets
    from datetime import datetime, timezone

    return f"v{version}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def cache_dir(settings: Settings) -> Path:
    return settings.home_dir / "cache"


def use_jax_compilation_cache(settings: Settings) -> None:
    """Point JAX's persistent compilation cache at settings.jax_cache_path (default home/jax_cache; off with
    settings.jax_compilation_cache=False), every compile
    kept however short (an MLP's bucket compiles take well under JAX's default 1 s threshold)."""
    if not settings.jax_compilation_cache:
        return
    import jax

    path = settings.jax_cache_path
    if jax.config.jax_compilation_cache_dir == str(path):
        return
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    try:  # a process that compiled before (or used another home) initialised the cache with the old folder
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):
        pass
