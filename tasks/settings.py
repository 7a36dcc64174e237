"""The one settings object (pydantic-settings, ``LOCKGATE_`` prefix).

Everything lockgate stores lives under ``LOCKGATE_HOME`` unless a URI setting points
at a production backend instead (an MLflow tracking server, a Postgres ledger).

Where a value comes from, first found wins: an argument given to ``Settings(...)``, a ``LOCKGATE_*`` variable,
the project's ``lockgate.yaml`` (tasks/project.py: the folder ``LOCKGATE_PROJECT`` names, else the current
folder's), the defaults below. A command's explicit flag (``--contract``, ``--golden``, ...) beats them all.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from data_contracts.names import name_problem
from tasks.errors import LockgateError
from tasks.project import PROJECT_FILE, find_project

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEMO_POLICY = PACKAGE_ROOT / "pipelines" / "policies" / "demo.yaml"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class ProjectSettingsSource(PydanticBaseSettingsSource):
    """The values of the project's lockgate.yaml: the project ``Settings(project=...)`` or LOCKGATE_PROJECT names,
    else the current folder's; nothing without one."""

    def __init__(self, settings_cls: type[BaseSettings], init_kwargs: dict[str, Any]):
        super().__init__(settings_cls)
        self._given = init_kwargs.get("project") or os.environ.get("LOCKGATE_PROJECT")

    def get_field_value(self, field, field_name):  # noqa: D102 - whole-file source: see __call__
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        project = find_project(self._given)
        return {} if project is None else project.settings_values()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKGATE_", extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, env_settings, ProjectSettingsSource(settings_cls, init_settings.init_kwargs),
                dotenv_settings, file_secret_settings)

    project: Path | None = Field(
        None, description=f"Project folder holding {PROJECT_FILE} (or that file); its model name, contract, policy, "
        "data paths and home (DIR/.lockgate) apply below LOCKGATE_* variables. Default: the current folder's "
        f"{PROJECT_FILE}, if any.")
    contract: str | None = Field(
        None, description="Data contract used when a command names none (register, validate, drift): a name in "
        "data_contracts/ or a YAML path. Default: the project's.")
    golden: Path | None = Field(None, description="Labeled golden set `run lifecycle` uses without --golden. "
                                "Default: the project's.")
    reference: Path | None = Field(None, description="Reference (training) data `register` uses without "
                                   "--reference. Default: the project's.")
    model: str | None = Field(None, description="The model's entry point MODULE:ATTR `register` uses without "
                              "--arch/--model. Default: the project's.")

    home: Path = Field(Path(".lockgate"), description="Folder for the embedded stores, data, evidence and reports.")
    model_name: str = Field("credit-default", description="Registered model name in MLflow.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking/registry URI; default: SQLite under home (mlflow.db)."
    )
    ledger_url: str | None = Field(None, description="SQLAlchemy URL of the ledger; default: SQLite under home (ledger.db).")
    ledger_key: str | None = Field(
        None, description="The ledger key: an Ed25519 private key (OpenSSH file) that signs the ledger's head at every "
        "append, kept outside LOCKGATE_HOME so that whoever can write the ledger's folder cannot re-sign a rewritten "
        "chain. Default ~/.config/lockgate/ledger_ed25519 (created on first use, mode 0600); 'none' turns signing off.",
    )
    ledger_public_key: str | None = Field(
        None, description="The ledger key's public line ('ssh-ed25519 AAAA...'), for an auditor without the private "
        "key: `audit verify` then checks the head's signature with it. Default: derived from the ledger key.",
    )
    artifact_key: str | None = Field(
        None, description="The artifact signing key: an EC P-256 private key (PEM) that signs a promoted model's files "
        "in the OpenSSF Model Signing format, kept outside LOCKGATE_HOME. Default "
        "~/.config/lockgate/artifact_signing_key.pem (created on first use, mode 0600).",
    )
    artifact_public_key: str | None = Field(
        None, description="Its public key (PEM file), which verifies a champion's files before they score. Default: "
        "the .pub.pem beside the artifact key.",
    )
    ledger_anchor: str | None = Field(
        None, description="File holding the ledger's last row (seq, hash) so rows deleted from its end are detected; "
        "default: beside a SQLite ledger, none for other URLs (set it to storage every writer shares); 'none' disables it.")
    ledger_lock_timeout_seconds: float = Field(
        120.0, gt=0, description="How long a promotion or rollback waits for the model's lock before giving up.")
    server_ready_timeout_seconds: float = Field(
        120.0, gt=0, validation_alias=AliasChoices("LOCKGATE_SERVER_READY_TIMEOUT_SECONDS",
                                                   "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"),
        description="How long a command waits for a server it needs to answer its health check before it fails in "
        "one line: the Prefect API (the command's temporary one, `lockgate server`'s or PREFECT_API_URL's) and an "
        "http(s) MLflow tracking server. Read from LOCKGATE_SERVER_READY_TIMEOUT_SECONDS, else from Prefect's "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (which then follows it for Prefect's own waits), else 120.")
    policy_file: Path = Field(DEMO_POLICY, description="Governance policy YAML (gate thresholds, approval rules).")
    actor: str = Field(
        default_factory=lambda: _login_name(),
        description="Who is acting, recorded in the ledger (defaults to the login name).",
    )
    environment: str = Field(
        "dev", min_length=1, description="Deployment environment (dev, staging, prod, ...): picks the policy's "
        "approval.environments rules."
    )
    approval_poll_seconds: float = Field(
        10.0, gt=0, le=300, description="How often a run paused for approval checks whether it was resumed."
    )

    # -- batch inference --------------------------------------------------------------
    input_root: str | None = Field(
        None, description="Root of the partitioned input stream (date=YYYY-MM-DD folders of parquet): a local folder "
        "or a pyarrow filesystem URI (s3://bucket/stream, gs://..., file:///...); default: home/data/stream.")
    output_root: str | None = Field(
        None, description="Root the predictions are written under (<model>/<partition>/predictions.parquet): a local "
        "folder or a pyarrow filesystem URI; default: home/predictions.")
    schedule_offset_days: int = Field(
        1, ge=0, description="A scheduled batch-inference run scores the partition of its scheduled date minus this "
        "many days (1: the run at 02:00 scores yesterday's complete partition).")
    task_runner: Literal["threads", "dask"] = Field(
        "threads", description="How partitions fan out: 'threads' (one process) or 'dask' (prefect-dask: a local "
        "multi-process cluster, or the cluster at dask_address).")
    max_workers: int = Field(4, ge=1, description="Partitions scored at once by the threads runner.")
    jax_compilation_cache: bool = Field(
        True, description="JAX's persistent compilation cache (home/jax_cache) for the lifecycle gates' in-process "
        "compiles (bucket checks, canary and drift scoring, the promotion smoke test): an executable XLA built "
        "before for the same program, shapes, JAX and backend is read back instead of compiled again. False: "
        "every process compiles again.")
    compile_cache_dir: Path | None = Field(
        None, description="Where compile-report rows (target x bucket x variant verdicts) are cached, keyed by the "
        "architecture, shapes, target and JAX/libtpu versions; default: home/compile_cache. Content-addressed and "
        "written atomically, so several homes on one machine (projects, CI jobs) may share one folder.")
    template_dir: Path | None = Field(
        None, validation_alias=AliasChoices("LOCKGATE_TEMPLATE_DIR", "LOCKGATE_REGISTRY_TEMPLATE_DIR"),
        description="Where the empty databases new homes start as copies of are kept, one per library version: "
        "MLflow's SQLite registry (instead of its ~60 schema migrations, ~1 CPU-s) and the Prefect API's (instead of "
        "Prefect's migrations, ~6 CPU-s, at a home's first server start); default: $XDG_CACHE_HOME/lockgate, else "
        "~/.cache/lockgate. Copied only if this user's own file, writable by no one else, and empty. "
        "LOCKGATE_REGISTRY_TEMPLATE_DIR is read too.")
    jax_cache_dir: Path | None = Field(
        None, description="JAX's persistent compilation cache folder (jax_compilation_cache); default: "
        "home/jax_cache. JAX keys it by program, shapes, JAX and backend, so homes may share one.")
    dask_address: str | None = Field(
        None, description="Scheduler address of an existing Dask cluster (tcp://host:8786); default: start a local one.")
    dask_workers: int = Field(2, ge=1, description="Worker processes of the local Dask cluster.")
    dask_threads_per_worker: int = Field(1, ge=1, description="Threads per worker process of the local Dask cluster.")
    score_batch_rows: int = Field(
        65_536, ge=1, description="Rows per scoring batch (features of the next batch are built while the artifact "
        "scores this one, and the previous one is written).")
    io_retries: int = Field(3, ge=0, description="Retries of a transient read or write error (OSError) per partition.")
    io_retry_delay_seconds: float = Field(
        0.5, ge=0, description="Backoff before the first IO retry; doubled for each further retry.")
    inject_read_failures: float = Field(
        0.0, ge=0, le=1, description="Testing hook: this share of partitions (chosen by inject_seed) fails its first "
        "read with a transient OSError; the first attempt is remembered under home/faults, across processes.")
    inject_seed: int = Field(0, description="Seed choosing the partitions of inject_read_failures.")

    # -- incident response (tasks/governance/incidents.py) ------------------------------------------------------
    incident_webhook_url: SecretStr | None = Field(
        None, description="Webhook every opened and resolved incident is POSTed to (Slack-compatible JSON: 'text' "
        "plus the incident's fields). A secret: only its scheme and host are ever written to the ledger, evidence or "
        "logs. Unset: incidents are recorded without a notification (the ledger says so).")
    incident_webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Timeout of one webhook POST.")
    incident_webhook_retries: int = Field(
        2, ge=0, le=5, description="Retries of a webhook POST that failed (connection error, timeout, HTTP 5xx or 429), "
        "after 0.5 s, then doubled; a failure is recorded on the incident, never stops the gate.")

    @field_validator("project")
    @classmethod
    def _project_folder(cls, v: Path | None) -> Path | None:
        if v is None:
            return None
        v = Path(v).expanduser().resolve()
        return v.parent if v.name == PROJECT_FILE and not v.is_dir() else v

    @field_validator("model_name")
    @classmethod
    def _safe_model_name(cls, v: str) -> str:
        problem = name_problem(v)
        if problem:  # it becomes a folder under LOCKGATE_HOME (evidence, predictions, quarantine)
            raise ValueError(f"{v!r} is not a safe name: it {problem}")
        return v

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def compile_cache_path(self) -> Path:
        return (self.compile_cache_dir or self.home_dir / "compile_cache").expanduser().resolve()

    @property
    def template_path(self) -> Path:
        default = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "lockgate"
        return (self.template_dir or default).expanduser().resolve()

    @property
    def jax_cache_path(self) -> Path:
        return (self.jax_cache_dir or self.home_dir / "jax_cache").expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.home_dir / "mlartifacts"

    @property
    def ledger_uri(self) -> str:
        return self.ledger_url or f"sqlite:///{self.home_dir / 'ledger.db'}"

    @property
    def ledger_anchor_path(self) -> Path | None:
        if self.ledger_anchor is not None:
            return None if self.ledger_anchor.lower() == "none" else Path(self.ledger_anchor).expanduser().resolve()
        if self.ledger_url is None:
            return self.home_dir / "ledger.db.anchor.json"
        if self.ledger_url.startswith("sqlite:///"):
            return Path(self.ledger_url.removeprefix("sqlite:///") + ".anchor.json").resolve()
        return None

    @property
    def artifact_key_path(self) -> Path | None:
        """The artifact signing key's file, refused inside LOCKGATE_HOME."""
        if self.artifact_key is not None and self.artifact_key.lower() == "none":
            return None
        return self._outside_home(self.artifact_key or "~/.config/lockgate/artifact_signing_key.pem",
                                  "LOCKGATE_ARTIFACT_KEY")

    @property
    def artifact_public_key_path(self) -> Path | None:
        if self.artifact_public_key is not None:
            return Path(self.artifact_public_key).expanduser().resolve()
        key = self.artifact_key_path
        return None if key is None else key.with_name(key.name.removesuffix(".pem") + ".pub.pem")

    def _outside_home(self, value: str, variable: str) -> Path:
        path = Path(value).expanduser().resolve()
        if path == self.home_dir or self.home_dir in path.parents:
            raise LockgateError(f"{variable} {path} is inside LOCKGATE_HOME {self.home_dir}: keep the key apart from "
                                "what it proves (e.g. under ~/.config/lockgate/)")
        return path

    @property
    def ledger_key_path(self) -> Path | None:
        """The ledger key's file, refused inside LOCKGATE_HOME (a key beside what it proves proves nothing)."""
        if self.ledger_key is not None and self.ledger_key.lower() == "none":
            return None
        return self._outside_home(self.ledger_key or "~/.config/lockgate/ledger_ed25519", "LOCKGATE_LEDGER_KEY")

    @property
    def data_dir(self) -> Path:
        return self.home_dir / "data"

    @property
    def evidence_dir(self) -> Path:
        return self.home_dir / "evidence"

    @property
    def predictions_dir(self) -> Path:
        return self.home_dir / "predictions"

    @property
    def input_uri(self) -> str:
        return (self.input_root or str(self.data_dir / "stream")).rstrip("/")

    @property
    def predictions_root(self) -> str:
        return (self.output_root or str(self.predictions_dir)).rstrip("/")

    @property
    def quarantine_dir(self) -> Path:
        return self.home_dir / "quarantine"

    @property
    def prefect_home(self) -> Path:
        return self.home_dir / "prefect"

    @property
    def prefect_server_dir(self) -> Path:
        """PREFECT_HOME of the local server `lockgate server start` runs (its SQLite database, log and state file)."""
        return self.home_dir / "prefect-server"

    def ensure_home(self) -> Path:
        """Create the home folder and check it is writable; one-line error otherwise."""
        home = self.home_dir
        try:
            home.mkdir(parents=True, exist_ok=True)
            # a probe of its own: threads scoring partitions at once shared one name, and one deleted another's
            with tempfile.NamedTemporaryFile(dir=home, prefix=".write-probe-"):
                pass
        except OSError as e:
            raise LockgateError(
                f"LOCKGATE_HOME {home} is not writable ({e.strerror}); set LOCKGATE_HOME to a writable folder"
            ) from None
        return home
