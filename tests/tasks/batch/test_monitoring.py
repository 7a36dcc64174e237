"""The monitor step: the policy's action per breach (pure), and the state folded from the ledger."""

from __future__ import annotations

import pytest


def _drift(*, share_breach=False, warn=False, quality=False):
    from tasks.drift.results import DriftResult
    from tasks.evidence import held_to

    checks = [held_to("drifted_share:breach", 0.4 if share_breach else 0.0, "<", 0.3),
              held_to("drifted_share:warn", 0.15 if warn or share_breach else 0.0, "<", 0.1),
              held_to("quality:income:null_share_increase", 0.2 if quality else 0.0, "<", 0.05)]
    decision = "breach" if share_breach or quality else ("warn" if warn else "ok")
    return DriftResult(passed=decision != "breach", decision=decision, reasons=[], checks=checks, columns=[],
                       drifted_columns=[], drifted_count=0, drifted_share=0.0, n_reference=1, n_current=1)


@pytest.mark.parametrize("drift,policy,action,triggers", [
    (dict(), {}, "none", []),
    (dict(warn=True), {}, "none", []),
    (dict(warn=True), {"alert_on_warn": True}, "alert", ["drift warn"]),
    (dict(share_breach=True), {}, "alert", ["drift breach"]),
    (dict(share_breach=True), {"on_drift_breach": "rollback"}, "rollback", ["drift breach"]),
    (dict(quality=True), {"on_drift_breach": "rollback", "on_quality_breach": "block"}, "block", ["quality breach"]),
    (dict(share_breach=True, quality=True), {"on_drift_breach": "block", "on_quality_breach": "alert"}, "block",
     ["drift breach", "quality breach"]),
    (dict(share_breach=True, quality=True), {"on_drift_breach": "alert", "on_quality_breach": "rollback"},
     "rollback", ["drift breach", "quality breach"]),
])
def test_monitor_decision_takes_the_most_severe_action(drift, policy, action, triggers):
    from tasks.batch.monitoring import monitor_decision
    from tasks.policy import MonitoringPolicy

    d = monitor_decision(_drift(**drift), MonitoringPolicy(**policy))
    assert d.action == action and d.triggers == triggers
    if action != "none":  # every reason names the measured value, the threshold and the policy key
        assert all("->" in r and "monitoring." in r for r in d.reasons)
    if "quality breach" in triggers:
        assert any("quality:income:null_share_increase: value 0.2 >= limit 0.05: FAILED" in r for r in d.reasons)


def test_monitoring_state_from_the_ledger(tmp_path):
    from tasks.ledger.entry import LedgerEntry
    from tasks.ledger.store import Ledger
    from tasks.batch.monitoring import ALERT, BLOCK, CLEAR, monitoring_state

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")

    def add(action, reason, **kw):
        ledger.append(LedgerEntry(actor="t", action=action, model_name="m", reason=reason, **kw))
        return monitoring_state(ledger.entries(model_name="m"))

    assert add("partition.scored", "fine").line() == "ok (no open alerts)"
    state = add(ALERT, "drift on p1")
    assert not state.blocked and state.alerts == ["drift on p1"] and state.line().startswith("ALERT: 1 open")
    state = add(BLOCK, "quality on p2")
    assert state.blocked and state.block_reason == "quality on p2" and state.line().startswith("BLOCKED")
    assert not add(CLEAR, "checked").blocked
    add(BLOCK, "again")
    state = add("alias.set", "promoted v3", alias="champion", version=3)
    assert not state.blocked and state.alerts == []  # a new champion starts clean
    add(BLOCK, "again")
    assert add("alias.set", "challenger", alias="challenger", version=4).blocked  # other aliases do not clear
    # the promotion path records the aliases after each move: started/reverted rows leave the champion as it was
    assert add("promotion.started", "v5", version=5, aliases=None).blocked
    assert add("promotion.reverted", "smoke test failed", version=5, aliases={"champion": 3}).blocked
    state = add("promotion.committed", "v5 promoted", version=5, aliases={"champion": 5, "previous-champion": 3})
    assert not state.blocked and state.alerts == []


def test_policy_monitoring_section_is_strict(tmp_path):
    from tasks.errors import LockgateError
    from tasks.policy import Policy, load_policy

    good = tmp_path / "p.yaml"
    good.write_text("monitoring: {on_drift_breach: rollback, on_quality_breach: block, rescore_after_rollback: false,"
                    " evidently_report: warn_or_breach}\n")
    m = load_policy(good).monitoring
    assert (m.on_drift_breach, m.on_quality_breach, m.rescore_after_rollback) == ("rollback", "block", False)
    assert m.evidently_report == "warn_or_breach" and Policy().monitoring.evidently_report == "every_partition"
    bad = tmp_path / "bad.yaml"
    bad.write_text("monitoring: {on_drift_breach: page-someone, on_breach: alert, evidently_report: never}\n")
    with pytest.raises(LockgateError, match=r"monitoring.on_drift_breach: .*monitoring.evidently_report: .*monitoring.on_breach: unknown key"):
        load_policy(bad)


def test_ledger_appends_from_many_threads_keep_one_chain(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from tasks.ledger.entry import LedgerEntry
    from tasks.ledger.store import Ledger

    url = f"sqlite:///{tmp_path / 'l.db'}"

    def append(i):  # one Ledger (engine) per worker, as separate processes would have
        Ledger(url).append(LedgerEntry(actor="t", action="partition.scored", model_name="m", reason=f"p{i}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(append, range(40)))
    check = Ledger(url).verify()
    assert check.ok and check.entries == 40
