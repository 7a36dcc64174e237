"""A model's status as one typed value: what `lockgate status` prints and `lockgate.status()` returns.

Aliases (after recovering an interrupted promotion or rollback, as every reader does), the monitoring state, the
versions, the last ledger entries, the ledger's hash-chain check and whether the registry agrees with the ledger.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.batch.monitoring import MonitoringState
from tasks.settings import Settings


class VersionStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    status: str = Field(description="lockgate.status tag: registered, champion, rejected, ... ('-' if unset).")
    contract: str = Field(description="contract@version the version was registered with.")
    artifact_sha256: str = Field(description="sha256 of its exported artifact ('-' before compilation).")
    registered_by: str = Field(description="Who registered it.")


class LedgerLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    recorded_at: str
    actor: str
    action: str
    version: int | None
    alias: str | None
    reason: str


class ModelStatus(BaseModel):
    """Everything `lockgate status` shows for one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str
    tracking_uri: str
    ledger_uri: str
    aliases: dict[str, int] = Field(description="champion, challenger, previous-champion -> version.")
    recovered: str | None = Field(None, description="An interrupted move recovered first: '<action> (row N): why'.")
    monitoring: MonitoringState
    versions: list[VersionStatus]
    entries: list[LedgerLine] = Field(description="The last ledger entries of the model, oldest first.")
    ledger_entries: int = Field(description="Rows in the whole ledger.")
    ledger_ok: bool = Field(description="The hash chain verifies.")
    ledger_problem: str | None = Field(None, description="The first tampered row and what is wrong with it.")
    aliases_agree: bool = Field(description="The registry's aliases are the ledger's.")
    aliases_problem: str | None = None

    @property
    def champion(self) -> int | None:
        return self.aliases.get("champion")


def model_status(settings: Settings, *, limit: int = 10) -> ModelStatus:
    """The status of ``settings.model_name``; recovers an interrupted promotion or rollback first."""
    from tasks.batch.monitoring import monitoring_state
    from tasks.governance.promotion_state import agreement, recover_if_idle
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(settings), ledger_for(settings)
    name = settings.model_name
    recovered = recover_if_idle(registry, ledger, name=name, actor=settings.actor)
    versions = [VersionStatus(version=r.version, status=r.tags.get("lockgate.status", "-"),
                              contract=f"{r.tags.get('lockgate.contract', '-')}@"
                                       f"{r.tags.get('lockgate.contract_version', '-')}",
                              artifact_sha256=r.tags.get("lockgate.artifact_sha256", "-"),
                              registered_by=r.tags.get("lockgate.registered_by", "-"))
                for r in registry.versions(name)]
    entries = [LedgerLine(seq=e.seq, recorded_at=e.recorded_at, actor=e.actor, action=e.action, version=e.version,
                          alias=e.alias, reason=e.reason) for e in ledger.entries(model_name=name, limit=limit)]
    check = ledger.verify()
    agree = agreement(registry, ledger, name)
    return ModelStatus(
        model_name=name, tracking_uri=settings.tracking_uri, ledger_uri=settings.ledger_uri,
        aliases=dict(sorted(registry.aliases(name).items())),
        recovered=None if recovered is None else f"{recovered.action} (row {recovered.seq}): {recovered.reason}",
        monitoring=monitoring_state(ledger.entries(model_name=name)), versions=versions, entries=entries,
        ledger_entries=check.entries, ledger_ok=check.ok,
        ledger_problem=None if check.ok else f"entry {check.first_bad_seq}: {check.problem}",
        aliases_agree=agree.ok, aliases_problem=None if agree.ok else agree.problem)
