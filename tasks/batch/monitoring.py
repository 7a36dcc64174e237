"""Monitor step of batch inference: what a drift or quality breach does, and the monitoring state.

:func:`monitor_decision` is pure: the partition's drift result (drift gate, tasks/drift/gate.py)
held to the policy's ``monitoring`` section gives one action, ``none`` < ``alert`` <
``block`` < ``rollback``, the most severe one any breach asks for. The state (blocked? open
alerts?) is derived from the ledger, the one record every process shares:
``monitor.alert`` and ``monitor.block`` rows raise it; a ``monitor.clear`` row
(`lockgate unblock`) or a new champion (a ledger row whose ``aliases`` move ``champion``) clears it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from tasks.drift.results import DriftResult
from tasks.policy import MonitoringPolicy

Action = Literal["none", "alert", "block", "rollback"]
SEVERITY: dict[str, int] = {"none": 0, "alert": 1, "block": 2, "rollback": 3}
ALERT, BLOCK, CLEAR = "monitor.alert", "monitor.block", "monitor.clear"


class MonitorDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    triggers: list[str] = []  # "drift breach", "quality breach", "drift warn"
    reasons: list[str] = []

    def line(self) -> str:
        if self.action == "none":
            return "monitor: no breach"
        return f"monitor: {self.action} on {' and '.join(self.triggers)}: {'; '.join(self.reasons)}"


def monitor_decision(drift: DriftResult, policy: MonitoringPolicy) -> MonitorDecision:
    """The action the policy takes for ``drift``, naming each breached value and threshold and the policy key."""
    drift_breach = [c for c in drift.checks if c.name == "drifted_share:breach" and not c.passed]
    warn = [c for c in drift.checks if c.name == "drifted_share:warn" and not c.passed]
    quality = [c for c in drift.checks if c.name.startswith("quality:") and not c.passed]
    asked: list[tuple[str, str, str]] = []  # (trigger, action, why)
    if drift_breach:
        asked.append(("drift breach", policy.on_drift_breach,
                      f"{drift_breach[0].describe()} -> monitoring.on_drift_breach={policy.on_drift_breach}"))
    if quality:
        asked.append(("quality breach", policy.on_quality_breach,
                      f"{'; '.join(c.describe() for c in quality)} -> monitoring.on_quality_breach="
                      f"{policy.on_quality_breach}"))
    if warn and not drift_breach and policy.alert_on_warn:
        asked.append(("drift warn", "alert", f"{warn[0].describe()} -> monitoring.alert_on_warn=true"))
    if not asked:
        return MonitorDecision(action="none")
    action = max((a for _, a, _ in asked), key=SEVERITY.__getitem__)
    return MonitorDecision(action=action, triggers=[t for t, _, _ in asked], reasons=[w for _, _, w in asked])


class MonitoringState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    blocked: bool = False
    block_reason: str | None = None
    block_seq: int | None = None
    alerts: list[str] = []  # reasons of the open alerts, oldest first

    def line(self) -> str:
        if self.blocked:
            return f"BLOCKED (ledger #{self.block_seq}): {self.block_reason}"
        if self.alerts:
            return f"ALERT: {len(self.alerts)} open alert(s); last: {self.alerts[-1]}"
        return "ok (no open alerts)"


def monitoring_state(entries) -> MonitoringState:
    """Fold the ledger ``entries`` of one model (oldest first) into its monitoring state."""
    state, champion = MonitoringState(), None
    for e in entries:
        # rows carry the model's aliases after each move: a promotion or rollback changes champion when committed
        now = e.aliases.get("champion") if e.aliases is not None else (
            e.version if e.action == "alias.set" and e.alias == "champion" else champion)
        moved, champion = now != champion, now
        if e.action == CLEAR or moved:
            state = MonitoringState()
        elif e.action == BLOCK:
            state.blocked, state.block_reason, state.block_seq = True, e.reason, e.seq
            state.alerts.append(e.reason)
        elif e.action == ALERT:
            state.alerts.append(e.reason)
    return state
