"""Incident response on a real ledger: opened by each trigger kind through the gates' helpers, notified to a webhook
on 127.0.0.1, repeats attached, resolved (with the approval rules' actor and signatures), and the chain intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.errors import LockgateError
from tasks.evidence import Check, GateResult, write_json
from tests.webhook_receiver import Hook


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def _settings(tmp_path, monkeypatch, url: str | None, policy: Path | None = None, **env):
    from tasks.settings import Settings

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCKGATE_ACTOR", "tester")
    monkeypatch.setenv("LOCKGATE_INCIDENT_WEBHOOK_RETRIES", "1")
    monkeypatch.setenv("LOCKGATE_INCIDENT_WEBHOOK_TIMEOUT_SECONDS", "5")
    if url:
        monkeypatch.setenv("LOCKGATE_INCIDENT_WEBHOOK_URL", url)
    if policy is not None:
        monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(policy))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Settings()


def _partition(tmp_path, name: str) -> Path:
    folder = tmp_path / "stream" / name
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"rows")
    return folder


def _outcome(tmp_path, name: str, *, monitor: str = "alert", triggers=("drift breach",)):
    from tasks.batch.partition import PartitionOutcome

    drift = write_json(tmp_path / "evidence" / name / "drift.json", {"drifted_share": 0.6})
    return PartitionOutcome(partition=name, status="scored", model_version=2, monitor=monitor,
                            monitor_triggers=list(triggers), source=str(_partition(tmp_path, name)),
                            monitor_reasons=["drifted_share:breach: value 0.6 >= limit 0.30: FAILED -> "
                                             f"monitoring.on_drift_breach={monitor}"],
                            evidence={"drift.result": drift})


def _champion():
    from tasks.gates import ChampionRef

    return ChampionRef(name="credit-default", version=2, artifact_sha256="0" * 64)


def _rows(settings):
    from tasks.stores import ledger_for

    return ledger_for(settings).entries()


def _incidents(settings):
    from tasks.governance.incidents import incidents_from

    return incidents_from(_rows(settings))


def test_a_monitoring_alert_opens_an_incident_notifies_the_webhook_and_keeps_the_url_secret(tmp_path, monkeypatch,
                                                                                           hook):
    from tasks import gates
    from tasks.governance.incidents import seconds_between
    from tasks.policy import Policy

    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = _settings(tmp_path, monkeypatch, hook.url)
    outcome = _outcome(tmp_path, "date=2026-11-05")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # no Prefect API here, whatever ran before in this session
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        incident = gates.open_incident(settings, gates.monitor_trigger(Policy(), _champion(), outcome,
                                                                       kind="monitoring-alert"))
    assert incident is not None and incident.kind == "monitoring-alert" and incident.version == 2
    rows = _rows(settings)
    assert [r.action for r in rows] == ["incident.opened", "incident.notified"]
    opened = rows[0]
    assert opened.reason.startswith(f"incident {incident.incident_id} opened (monitoring-alert, key "
                                    "credit-default:v2:monitoring-alert:drift-breach): partition date=2026-11-05")
    assert opened.evidence_files["drift.result"] == outcome.evidence["drift.result"].path
    doc = json.loads(Path(opened.evidence_files["incident"]).read_text())
    assert doc["trigger"]["reasons"] == outcome.monitor_reasons and doc["trigger"]["data_at"]
    assert "landed" in doc["trigger"]["data_what"]
    assert seconds_between(doc["trigger"]["data_at"], opened.recorded_at) >= 0  # data before detection

    (body,) = hook.bodies
    assert body["text"].startswith(f"lockgate incident {incident.incident_id} OPENED (monitoring-alert, "
                                   "credit-default v2)")
    assert body["lockgate"]["event"] == "lockgate.incident.opened" and body["lockgate"]["version"] == 2
    assert body["lockgate"]["evidence"]["drift.result"] == outcome.evidence["drift.result"].path
    notified = rows[1].reason
    assert "webhook delivered to http://127.0.0.1:" in notified and "(HTTP 200, attempt 1)" in notified
    assert "lockgate.incident.opened not sent: no Prefect run or API" in notified
    assert not any("very-secret-token" in r.reason for r in rows)
    assert not any("very-secret-token" in p.read_text(errors="ignore")
                   for p in (settings.evidence_dir).rglob("*") if p.is_file())


def test_the_same_condition_again_attaches_to_the_open_incident(tmp_path, monkeypatch, hook):
    from tasks import gates
    from tasks.policy import Policy

    settings = _settings(tmp_path, monkeypatch, hook.url)
    first = gates.open_incident(settings, gates.monitor_trigger(
        Policy(), _champion(), _outcome(tmp_path, "date=2026-11-04"), kind="monitoring-alert"))
    again = gates.open_incident(settings, gates.monitor_trigger(
        Policy(), _champion(), _outcome(tmp_path, "date=2026-11-05"), kind="monitoring-alert"))
    other = gates.open_incident(settings, gates.monitor_trigger(
        Policy(), _champion(), _outcome(tmp_path, "date=2026-11-06", triggers=("quality breach",)),
        kind="monitoring-alert"))
    assert again.incident_id == first.incident_id and again.occurrences == 2
    assert other.incident_id != first.incident_id
    assert len(hook.bodies) == 2  # a repeat is recorded on the incident, not announced again
    attached = [r for r in _rows(settings) if r.action == "incident.attached"]
    assert len(attached) == 1 and "the same condition again" in attached[0].reason
    assert "attached to the open incident instead of opening another" in attached[0].reason
    listed = {i.incident_id: i for i in _incidents(settings)}
    assert listed[first.incident_id].occurrences == 2
    assert set(listed[first.incident_id].evidence) == {"drift.result", "drift.result#2"}


def test_each_trigger_kind_opens_its_incident(tmp_path, monkeypatch, hook):
    from tasks import gates
    from tasks.policy import Policy
    from tasks.registry import ModelVersionRecord

    settings = _settings(tmp_path, monkeypatch, hook.url)
    policy, champion = Policy(), _champion()
    gates.open_incident(settings, gates.monitor_trigger(policy, champion, _outcome(tmp_path, "date=2026-11-01",
                                                                                   monitor="block"),
                                                        kind="scoring-block"))
    breached = [_outcome(tmp_path, "date=2026-11-02", monitor="rollback")]
    gates.open_incident(settings, gates._rollback_trigger(policy, champion, breached, {
        f"{o.partition}.{k}": v for o in breached for k, v in o.evidence.items()}, "rollback",
        "v2 rolled back to v1 after: partition date=2026-11-02: drift breach"))
    run_dir = tmp_path / "lifecycle-1"
    write_json(run_dir / "contract.json", GateResult(gate="contract", passed=True, decision="compatible"))
    failed = GateResult(gate="canary", passed=False, decision="rejected", reasons=["auc CI below margin"],
                        checks=[Check(name="auc_delta", value=-0.02, threshold=-0.005, comparison=">=", passed=False)])
    write_json(run_dir / "canary.json", failed)
    record = ModelVersionRecord(name="credit-default", version=3, run_id="r", source="s", tags={}, aliases=(),
                                created_at_ms=0)
    gates.open_incident(settings, gates.rejection_trigger(policy, record, failed, run_dir, condition="canary gate",
                                                          summary="v3 rejected: canary gate: rejected"))
    found = _incidents(settings)
    assert [(i.kind, i.version) for i in found] == [("scoring-block", 2), ("rollback", 2), ("promotion-rejected", 3)]
    assert set(found[1].evidence) == {"date=2026-11-02.drift.result"}
    assert set(found[2].evidence) == {"contract", "canary"}
    from tasks.governance.incidents import opened_document

    doc = opened_document(found[2])
    assert doc.trigger.measurements[0].name == "auc_delta" and doc.trigger.measurements[0].threshold == -0.005
    assert "gate result" in doc.trigger.data_what
    assert [b["lockgate"]["kind"] for b in hook.bodies] == ["scoring-block", "rollback", "promotion-rejected"]


def test_a_failing_webhook_is_retried_bounded_recorded_and_never_stops_the_gate(tmp_path, monkeypatch):
    from tasks import gates
    from tasks.policy import Policy

    failing = Hook(fail_first=10)
    try:
        settings = _settings(tmp_path, monkeypatch, failing.url)
        incident = gates.open_incident(settings, gates.monitor_trigger(
            Policy(), _champion(), _outcome(tmp_path, "date=2026-11-05"), kind="monitoring-alert"))
    finally:
        failing.close()
    assert incident is not None and failing.fail_first == 8  # 1 attempt + 1 retry (LOCKGATE_INCIDENT_WEBHOOK_RETRIES)
    (note,) = [r.reason for r in _rows(settings) if r.action == "incident.notified"]
    assert "webhook NOT delivered to http://127.0.0.1:" in note and "after 2 attempt(s): HTTP 500" in note
    assert "very-secret-token" not in note
    assert _incidents(settings)[0].notifications[0].startswith("opened: webhook NOT delivered")


def test_an_unreachable_webhook_is_recorded(tmp_path, monkeypatch):
    from tasks.governance.incident_notify import post_webhook

    closed = Hook()
    url = closed.url
    closed.close()  # nothing listens on that port any more
    delivery = post_webhook(url, {"text": "x"}, timeout=2, retries=1, sleep=lambda s: None)
    assert not delivery.delivered and delivery.attempts == 2
    assert "very-secret-token" not in delivery.detail and "NOT delivered to http://127.0.0.1:" in delivery.detail
    assert post_webhook(None, {"text": "x"}).detail.startswith("not sent: no webhook configured")


def test_resolve_records_who_and_why_and_refuses_unknown_or_resolved_ids(tmp_path, monkeypatch, hook):
    from tasks import gates
    from tasks.governance.incidents import resolve_incident
    from tasks.policy import Policy
    from tasks.stores import ledger_for

    settings = _settings(tmp_path, monkeypatch, hook.url)
    incident = gates.open_incident(settings, gates.monitor_trigger(
        Policy(), _champion(), _outcome(tmp_path, "date=2026-11-05"), kind="monitoring-alert"))
    ledger = ledger_for(settings)
    done = resolve_incident(ledger, Policy(), environment="dev", incident_id=incident.incident_id,
                            reason="reference refreshed", resolver="ops-1")
    assert done.status == "resolved" and done.resolved_by == "ops-1" and done.resolution == "reference refreshed"
    with pytest.raises(LockgateError, match=f"incident {incident.incident_id} was already resolved at .* by ops-1"):
        resolve_incident(ledger, Policy(), environment="dev", incident_id=incident.incident_id, reason="again",
                         resolver="ops-1")
    with pytest.raises(LockgateError, match="no incident INC-20260101-abcdef in this ledger"):
        resolve_incident(ledger, Policy(), environment="dev", incident_id="INC-20260101-abcdef", reason="x",
                         resolver="ops-1")
    with pytest.raises(LockgateError, match="is not an incident id"):
        resolve_incident(ledger, Policy(), environment="dev", incident_id="../../etc", reason="x", resolver="ops-1")
    with pytest.raises(LockgateError, match="--reason must not be empty"):
        resolve_incident(ledger, Policy(), environment="dev", incident_id=incident.incident_id, reason=" ",
                         resolver="ops-1")
    assert [r.action for r in ledger.entries()].count("incident.resolved") == 1
    assert ledger.verify().ok


def _signed_policy(tmp_path, public_line: str) -> Path:
    path = tmp_path / "signed.yaml"
    path.write_text(json.dumps({"name": "signed", "approval": {
        "public_keys": {"ml-lead": [public_line]},
        "environments": {"prod": {"transitions": ["promote", "rollback"], "identity": "signed",
                                  "approvers": {"users": ["ml-lead"]}}}}}))
    return path


def _key(tmp_path, name: str):
    from tasks.signatures import ensure_private_key, public_key_line

    path = tmp_path / "keys" / name
    return path, public_key_line(ensure_private_key(path))


def test_resolving_follows_the_approval_rules_and_signatures_of_the_environment(tmp_path, monkeypatch, hook):
    from tasks import gates
    from tasks.governance.incidents import resolution_proof_problems, resolve_incident
    from tasks.policy import load_policy
    from tasks.stores import ledger_for

    lead_key, lead_public = _key(tmp_path, "lead")
    other_key, _ = _key(tmp_path, "other")
    policy_path = _signed_policy(tmp_path, lead_public)
    settings = _settings(tmp_path, monkeypatch, hook.url, policy=policy_path, LOCKGATE_ENVIRONMENT="prod")
    policy = load_policy(policy_path)
    incident = gates.open_incident(settings, gates.monitor_trigger(
        policy, _champion(), _outcome(tmp_path, "date=2026-11-05"), kind="monitoring-alert"))
    ledger = ledger_for(settings)
    common = dict(environment="prod", incident_id=incident.incident_id, reason="rolled back by hand")
    with pytest.raises(LockgateError, match="'tester' may not resolve incidents in prod"):
        resolve_incident(ledger, policy, resolver="tester", key_file=lead_key, **common)
    with pytest.raises(LockgateError, match="needs --key too"):
        resolve_incident(ledger, policy, resolver="ml-lead", **common)
    with pytest.raises(LockgateError, match="none of the keys approval.public_keys lists for ml-lead"):
        resolve_incident(ledger, policy, resolver="ml-lead", key_file=other_key, **common)
    assert "incident.resolved" not in [r.action for r in ledger.entries()]
    done = resolve_incident(ledger, policy, resolver="ml-lead", key_file=lead_key, **common)
    assert done.resolved_by == "ml-lead" and done.resolution_signed_by_key.startswith("SHA256:")
    assert resolution_proof_problems(ledger.entries(), policy) == []
    other_policy = load_policy(_signed_policy(tmp_path, _key(tmp_path, "rotated")[1]))
    assert resolution_proof_problems(ledger.entries(), other_policy)[0].endswith(
        "does not verify against the keys policy 'signed' lists for ml-lead")


def test_cli_lists_and_resolves_and_a_bad_id_is_one_line_exit_2(tmp_path, monkeypatch, hook, capsys):
    from pipelines.cli import main
    from tasks import gates
    from tasks.policy import Policy

    settings = _settings(tmp_path, monkeypatch, hook.url)
    incident = gates.open_incident(settings, gates.monitor_trigger(
        Policy(), _champion(), _outcome(tmp_path, "date=2026-11-05"), kind="monitoring-alert"))
    capsys.readouterr()
    assert main(["incidents"]) == 0
    out = capsys.readouterr().out
    assert incident.incident_id in out and "monitoring-alert" in out and "drift.result" in out
    assert main(["incidents", "resolve", incident.incident_id, "--reason", "known synthetic drift"]) == 0
    out = capsys.readouterr().out
    assert f"incident {incident.incident_id} resolved by tester" in out
    assert hook.bodies[-1]["text"].startswith(f"lockgate incident {incident.incident_id} RESOLVED by tester")
    assert main(["incidents"]) == 0 and "no open incidents" in capsys.readouterr().out
    assert main(["incidents", "--all"]) == 0 and "resolved" in capsys.readouterr().out
    for bad in (incident.incident_id, "INC-20260101-abcdef", "nope"):
        assert main(["incidents", "resolve", bad, "--reason", "x"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("lockgate: error: ") and err.count("\n") == 1
    from tasks.stores import ledger_for

    assert ledger_for(settings).verify().ok  # `lockgate audit verify` on a whole home: tests/pipelines/test_incidents.py


def test_the_audit_section_shows_time_to_detect_and_time_to_resolve(tmp_path, monkeypatch, hook):
    import os
    from datetime import datetime, timedelta, timezone

    from tasks import gates
    from tasks.governance.audit_evidence import EvidenceLocator
    from tasks.governance.audit_html import evidence_links
    from tasks.governance.audit_incidents import incident_reports, incidents_html
    from tasks.governance.incidents import resolve_incident
    from tasks.policy import Policy
    from tasks.stores import ledger_for

    settings = _settings(tmp_path, monkeypatch, hook.url)
    outcome = _outcome(tmp_path, "date=2026-11-05")
    landed = datetime(2026, 11, 5, 6, 0, tzinfo=timezone.utc)  # the partition's data landed at 06:00 UTC
    for f in Path(outcome.source).iterdir():
        os.utime(f, (landed.timestamp(), landed.timestamp()))
    first = gates.open_incident(settings, gates.monitor_trigger(Policy(), _champion(), outcome, kind="monitoring-alert"))
    second = gates.open_incident(settings, gates.monitor_trigger(
        Policy(), _champion(), _outcome(tmp_path, "date=2026-11-06", triggers=("quality breach",)),
        kind="monitoring-alert"))
    ledger = ledger_for(settings)
    resolve_incident(ledger, Policy(), environment="dev", incident_id=first.incident_id, reason="ok", resolver="ops")
    rows = {(r.action, r.reason.split()[1]): r for r in ledger.entries()}
    opened_at = datetime.fromisoformat(rows[("incident.opened", first.incident_id)].recorded_at)
    resolved_at = datetime.fromisoformat(rows[("incident.resolved", first.incident_id)].recorded_at)

    reports = incident_reports(EvidenceLocator(settings, None, tmp_path / "report"), ledger.entries(), since=None,
                               until=None, now=datetime.now(timezone.utc).isoformat())
    by_id = {r.incident_id: r for r in reports}
    done, still = by_id[first.incident_id], by_id[second.incident_id]
    assert done.detected_from == landed.isoformat(timespec="microseconds")
    assert done.time_to_detect_seconds == round((opened_at - landed).total_seconds(), 3)
    assert done.time_to_resolve_seconds == round((resolved_at - opened_at).total_seconds(), 3)
    assert done.status == "resolved" and done.resolved_by == "ops" and still.status == "open"
    assert still.time_to_resolve_seconds is None and still.open_for_seconds >= 0
    assert {c.role for c in done.evidence} == {"incident", "drift.result"}
    assert all(c.status == "ok" and c.link and not c.link.startswith("file:") for c in done.evidence)
    html = incidents_html(reports, evidence_links)
    assert f'id="incident-{first.incident_id}"' in html and "open</span>" in html and "drift.result" in html
    # a window that ends before the second was opened leaves it out; one after the first was resolved, the first
    later = datetime.fromisoformat(rows[("incident.opened", second.incident_id)].recorded_at)
    assert [r.incident_id for r in incident_reports(EvidenceLocator(settings, None, None), ledger.entries(),
                                                    since=None, until=opened_at, now=later.isoformat())] == [
        first.incident_id]
    assert [r.incident_id for r in incident_reports(EvidenceLocator(settings, None, None), ledger.entries(),
                                                    since=resolved_at + timedelta(seconds=1), until=None,
                                                    now=later.isoformat())] == [second.incident_id]


@pytest.mark.parametrize("argv", [["incidents", "--help"], ["incidents", "resolve", "--help"]])
def test_help(argv, capsys):
    from pipelines.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0 and "usage: lockgate incidents" in capsys.readouterr().out


def test_a_webhook_url_setting_that_is_not_http_is_not_posted_and_says_so():
    from tasks.governance.incident_notify import post_webhook, redacted

    assert redacted("https://hooks.slack.com/services/T/B/secret?x=1") == "https://hooks.slack.com/…"
    delivery = post_webhook("file:///etc/passwd", {"text": "x"})
    assert not delivery.delivered and delivery.attempts == 0 and "not an http(s) URL" in delivery.detail
    assert "passwd" not in delivery.detail
