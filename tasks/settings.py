"""The one settings object (pydantic-settings, ``LOCKGATE_`` prefix).

Everything lockgate stores lives under ``LOCKGATE_HOME`` unless a URI setting points
at a production backend instead (an MLflow tracking server, a Postgres ledger).
"""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.errors import LockgateError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEMO_POLICY = PACKAGE_ROOT / "pipelines" / "policies" / "demo.yaml"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKGATE_", extra="forbid", frozen=True)

    home: Path = Field(Path(".lockgate"), description="Folder for the embedded stores, data, evidence and reports.")
    model_name: str = Field("credit-default", description="Registered model name in MLflow.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking/registry URI; default: SQLite under home (mlflow.db)."
    )
    ledger_url: str | None = Field(None, description="SQLAlchemy URL of the ledger; default: SQLite under home (ledger.db).")
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

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

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
    def data_dir(self) -> Path:
        return self.home_dir / "data"

    @property
    def evidence_dir(self) -> Path:
        return self.home_dir / "evidence"

    @property
    def predictions_dir(self) -> Path:
        return self.home_dir / "predictions"

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
            probe = home / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise LockgateError(
                f"LOCKGATE_HOME {home} is not writable ({e.strerror}); set LOCKGATE_HOME to a writable folder"
            ) from None
        return home
