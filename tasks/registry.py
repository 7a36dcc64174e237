"""The model registry interface, backed by MLflow (SQLite by default, a tracking server in production).

Only this module talks to MLflow. Aliases (``champion``, ``challenger``,
``previous-champion``) replace the deprecated stages. Model files are stored as plain
run artifacts and versions are created with ``create_model_version(source=...)``
(``register_model("runs:/...")`` fails for plain artifacts in MLflow 3).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tasks.errors import LockgateError
from tasks.evidence import GateResult
from tasks.settings import Settings

CHAMPION, CHALLENGER, PREVIOUS_CHAMPION = "champion", "challenger", "previous-champion"
EXPERIMENT = "lockgate"
MODEL_DIR = "model"
LEDGER_HEAD_TAG = "lockgate.ledger_head"  # registered-model tag: the signed ledger head at its last row


class ModelVersionRecord(BaseModel):
    """What lockgate needs to know about one registered model version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int
    run_id: str
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...]
    created_at_ms: int


class MlflowRegistry:
    """Registry and tracking operations over one MLflow tracking URI."""

    def __init__(self, settings: Settings):
        from mlflow import MlflowClient

        from tasks.registry_template import quiet_mlflow_migrations

        quiet_mlflow_migrations()
        self.settings = settings
        self.client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
        self._experiment_id: str | None = None
        self._artifact_repos: dict[str, object] = {}
        self._checked_models: set[str] = set()  # names MLflow checked are models, not prompts (_tag_writer)

    # -- experiment / runs ---------------------------------------------------------
    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is None:
                location = None
                if self.settings.mlflow_tracking_uri is None:
                    self.settings.artifact_root.mkdir(parents=True, exist_ok=True)
                    location = self.settings.artifact_root.as_uri()
                self._experiment_id = self.client.create_experiment(EXPERIMENT, artifact_location=location)
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    def register(
        self,
        name: str,
        *,
        files: list[Path],
        params: dict[str, str | int | float],
        tags: dict[str, str],
        run_name: str,
        folders: dict[str, Path] | None = None,
    ) -> ModelVersionRecord:
        """Log ``files`` under ``model/`` of a new run (and each of ``folders`` under ``model/<key>/``, e.g. the
        model's code) and create a model version from them.

        Nothing is left half-written: if any step fails the run is marked FAILED and no
        version exists.
        """
        from mlflow.exceptions import MlflowException

        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        run_id = run.info.run_id
        try:
            for key, value in params.items():
                self.client.log_param(run_id, key, value)
            for path in files:
                self.client.log_artifact(run_id, str(path), MODEL_DIR)
            for key, folder in (folders or {}).items():
                self.client.log_artifacts(run_id, str(folder), f"{MODEL_DIR}/{key}")
            try:
                self.client.get_registered_model(name)
            except MlflowException:
                self.client.create_registered_model(name, description="Managed by lockgate.")
            mv = self.client.create_model_version(
                name, source=f"{run.info.artifact_uri}/{MODEL_DIR}", run_id=run_id, tags=tags
            )
        except Exception:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        self.client.set_terminated(run_id)
        return self.get(name, int(mv.version))

    def _record(self, mv) -> ModelVersionRecord:
        return ModelVersionRecord(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            tags=dict(mv.tags or {}),
            aliases=tuple(mv.aliases or ()),
            created_at_ms=int(mv.creation_timestamp or 0),
        )

    def get(self, name: str, version: int) -> ModelVersionRecord:
        from mlflow.exceptions import MlflowException

        try:
            return self._record(self.client.get_model_version(name, str(version)))
        except MlflowException:
            raise LockgateError(
                f"model version {name} v{version} not found in the registry at {self.settings.tracking_uri}; "
                "run `lockgate status` to list versions"
            ) from None

    def by_alias(self, name: str, alias: str) -> ModelVersionRecord | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._record(self.client.get_model_version_by_alias(name, alias))
        except MlflowException:
            return None

    def require_alias(self, name: str, alias: str) -> ModelVersionRecord:
        record = self.by_alias(name, alias)
        if record is None:
            raise LockgateError(
                f"model {name} has no '{alias}' alias yet; run `lockgate run lifecycle` to promote a version first"
            )
        return record

    def aliases(self, name: str) -> dict[str, int]:
        from mlflow.exceptions import MlflowException

        try:
            # alias values are int over SQLite but str over REST: normalise.
            return {k: int(v) for k, v in self.client.get_registered_model(name).aliases.items()}
        except MlflowException:
            return {}

    def versions(self, name: str) -> list[ModelVersionRecord]:
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted((self._record(mv) for mv in found), key=lambda r: r.version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self._tag_writer(name).set_registered_model_tag(name, key, value)

    def model_tags(self, name: str) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(name).tags)
        except MlflowException:
            return {}

    def set_version_tags(self, name: str, version: int, tags: dict[str, str]) -> None:
        writer = self._tag_writer(name)
        for key, value in tags.items():
            writer.set_model_version_tag(name, str(version), key, value)

    def _tag_writer(self, name: str):
        """MLflow's registry client for tag writes to ``name``, after MLflow's own check that ``name`` is a model and
        not a prompt, made once per name on this registry instead of before every tag: ``MlflowClient.set_*_tag``
        reads the whole registered model for it each time (3.6 of its 5 ms a tag, measured on SQLite; a lifecycle
        writes about a hundred tags). The check, and its skip for Unity Catalog, are MlflowClient's
        (``set_model_version_tag``, ``set_registered_model_tag``); so is the write that follows."""
        if name not in self._checked_models:
            from mlflow.utils.uri import is_databricks_unity_catalog_uri

            if not is_databricks_unity_catalog_uri(self.client._registry_uri):
                self.client._raise_if_prompt(name)
            self._checked_models.add(name)
        return self.client._get_registry_client()

    # -- artifacts -----------------------------------------------------------------
    def fetch(self, record: ModelVersionRecord, filename: str, dst: Path) -> Path:
        """Download one file of the version's model folder into ``dst`` and return its path.

        The file is downloaded beside its place and renamed into it, so processes sharing a cache
        (Dask workers scoring partitions of one version) never read a half-copied file: MLflow's
        own download truncates and rewrites the destination in place.
        """
        import os
        import shutil

        relpath = f"{MODEL_DIR}/{filename}"
        dst.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dst))
        try:
            repo = self._local_artifact_repo(record.run_id)
            got = Path(repo.download_artifacts(relpath, str(staging)) if repo is not None
                       else self.client.download_artifacts(record.run_id, relpath, str(staging)))
            final = dst / relpath
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, final)
            return final
        except Exception as e:  # MLflow raises several types for a missing artifact
            raise LockgateError(
                f"artifact {relpath} of {record.name} v{record.version} could not be read: {str(e).splitlines()[0]}"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _local_artifact_repo(self, run_id: str):
        """A run's artifact folder on this file system, resolved once per run (a run's artifact URI never changes;
        each fetch still reads the stored bytes, without the run lookup and ``runs:/`` resolution MLflow repeats
        per download); None for a remote store, which MLflow's client resolves against this registry's server."""
        if run_id not in self._artifact_repos:
            from urllib.parse import urlparse

            from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

            uri = self.client.get_run(run_id).info.artifact_uri
            local = urlparse(uri).scheme in ("", "file")
            self._artifact_repos[run_id] = LocalArtifactRepository(uri) if local else None
        return self._artifact_repos[run_id]

    def run_name(self, record: ModelVersionRecord) -> str:
        """The version's run name: the description given at registration."""
        return self.client.get_run(record.run_id).info.run_name or ""

    def artifact_file(self, record: ModelVersionRecord, relpath: str, cache: Path) -> Path | None:
        """A file of the version's run (e.g. ``model/params.msgpack``) as a local path, or None when it is absent.

        A local artifact store is read in place (so a changed file shows as changed); a remote one is downloaded
        into ``cache``."""
        from urllib.parse import unquote, urlparse

        uri = self.client.get_run(record.run_id).info.artifact_uri
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            path = Path(unquote(parsed.path)) / relpath
            return path if path.is_file() else None
        try:
            return Path(self.client.download_artifacts(record.run_id, relpath, str(cache)))
        except Exception:  # MLflow raises several types for a missing artifact
            return None

    def log_files(self, record: ModelVersionRecord, files: list[Path], artifact_path: str) -> None:
        """Log ``files`` on the version's run under ``artifact_path`` (e.g. the model card)."""
        for path in files:
            self.client.log_artifact(record.run_id, str(path), artifact_path)

    def fetch_json(self, record: ModelVersionRecord, filename: str) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            return json.loads(self.fetch(record, filename, Path(tmp)).read_text())

    def log_gate(self, record: ModelVersionRecord, result: GateResult, *, prefix: str | None = None) -> None:
        """Log a gate result on the version's run: numeric checks as metrics, decision as tags, files as artifacts."""
        run_id = record.run_id
        gate = prefix or result.gate
        metrics = {
            f"{gate}.{_metric_key(c.name)}": float(c.value)
            for c in result.checks
            if isinstance(c.value, (int, float)) and not isinstance(c.value, bool)
        }
        if metrics:
            import time

            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        tags = {f"lockgate.{gate}.decision": result.decision, f"lockgate.{gate}.passed": str(result.passed)}
        self.set_version_tags(record.name, record.version, tags)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{Path(gate).name}.json"  # a role may be a folder path (rollbacks/<run>/approval)
            path.write_text(result.model_dump_json(indent=2))
            self.client.log_artifact(run_id, str(path), f"evidence/{gate}")
        for ev in result.evidence.values():
            if Path(ev.path).is_file():
                self.client.log_artifact(run_id, ev.path, f"evidence/{gate}")


def _metric_key(name: str) -> str:
    # MLflow metric names allow alphanumerics, _ - . space / ; lockgate check names may hold ':'.
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in name)

