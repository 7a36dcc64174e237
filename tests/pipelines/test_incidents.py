"""Incident response through the batch-inference flow: a drift breach answered by an automatic rollback opens
incidents that reach the webhook and Prefect's event API, are listed and resolved by the CLI, and show in the audit
report with their time to detect and to resolve; the ledger still verifies.

The champions come from the ``home`` fixture (tests/pipelines/conftest.py).
"""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path
from unittest import mock

import pytest
import yaml

from tests.webhook_receiver import Hook

pytestmark = pytest.mark.flow
POLICY = Path(__file__).with_name("batch_policy.yaml")


def _write_day(root: Path, day: date) -> Path:
    from data_contracts.synthetic_credit import generate_frame

    folder = root / f"date={day.isoformat()}"
    folder.mkdir(parents=True)
    frame = generate_frame(600, seed=40, day=day, id_offset=day.toordinal() * 10_000, covariate_drift=1.0)
    frame.drop(columns=["defaulted"]).to_parquet(folder / "part-0.parquet", index=False)
    return folder


def _cli(capsys, *argv) -> tuple[int, str, str]:
    from pipelines.cli import main

    capsys.readouterr()
    with mock.patch.dict(os.environ):  # main's process defaults stay with this call
        code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _events(name: str, incident_ids: set[str], timeout: float = 60.0) -> list:
    """Events named ``name`` on the session's Prefect API, polled until one for each of ``incident_ids`` arrived
    (they are sent in the background; other tests of the session send some too) or ``timeout``."""
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            found = client.read_events(EventFilter(event=EventNameFilter(name=[name])), limit=50).events  # newest first
        if incident_ids <= {e.payload.get("incident_id") for e in found} or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_breach_opens_incidents_that_are_announced_resolved_and_audited(home, tmp_path, monkeypatch, capsys):
    from pipelines.batch_inference import run_batch
    from tasks.governance.incidents import incidents_from
    from tasks.settings import Settings
    from tasks.stores import ledger_for

    hook = Hook()
    try:
        doc = yaml.safe_load(POLICY.read_text())
        doc["monitoring"].update(on_drift_breach="rollback", on_quality_breach="rollback")
        (tmp_path / "policy.yaml").write_text(yaml.safe_dump(doc))
        days = [date(2027, 2, 1), date(2027, 2, 2)]
        for day in days:
            _write_day(tmp_path / "stream", day)
        for key, value in {"LOCKGATE_POLICY_FILE": tmp_path / "policy.yaml", "LOCKGATE_INPUT_ROOT": tmp_path / "stream",
                           "LOCKGATE_OUTPUT_ROOT": tmp_path / "out", "LOCKGATE_INCIDENT_WEBHOOK_URL": hook.url}.items():
            monkeypatch.setenv(key, str(value))
        settings = Settings()
        run = run_batch(settings, dates=[d.isoformat() for d in days])
        assert run.rollback is not None and (run.rollback.from_version, run.rollback.to_version) == (2, 1)

        ledger = ledger_for(settings)
        found = incidents_from(ledger.entries(model_name=settings.model_name))
        rollback = [i for i in found if i.kind == "rollback"]
        alerts = [i for i in found if i.kind == "monitoring-alert"]
        # one incident for the rollback, whose evidence names both breached partitions' files
        assert len(rollback) == 1 and rollback[0].version == 2
        assert {role.split(".")[0] for role in rollback[0].evidence} == {f"date={d}" for d in days}
        # v1's re-scores of both partitions alert: one incident per distinct condition, each repeat attached
        assert alerts and all(i.version == 1 for i in alerts) and sum(i.occurrences for i in alerts) == 2
        assert [b["lockgate"]["incident_id"] for b in hook.bodies] == [i.incident_id for i in found]
        assert all(b["text"].startswith("lockgate incident INC-") for b in hook.bodies)

        opened = _events("lockgate.incident.opened", {i.incident_id for i in found})
        assert {e.resource.id for e in opened} >= {"lockgate.model.credit-default.v2", "lockgate.model.credit-default.v1"}
        assert {e.payload["incident_id"] for e in opened} >= {i.incident_id for i in found}
        notes = [r.reason for r in ledger.entries(model_name=settings.model_name) if r.action == "incident.notified"]
        assert len(notes) == len(found) and all("lockgate.incident.opened emitted (id " in n for n in notes)
        assert not any("very-secret-token" in r.reason for r in ledger.entries())

        code, out, _ = _cli(capsys, "incidents")
        assert code == 0 and all(i.incident_id in out for i in found) and "rollback" in out
        for i in found:
            code, out, err = _cli(capsys, "incidents", "resolve", i.incident_id, "--reason", "upstream feed fixed")
            assert code == 0, err
            assert f"incident {i.incident_id} resolved by tester" in out
        code, _, err = _cli(capsys, "incidents", "resolve", found[0].incident_id, "--reason", "again")
        assert code == 2 and err.startswith(f"lockgate: error: incident {found[0].incident_id} was already resolved")
        resolved = _events("lockgate.incident.resolved", {i.incident_id for i in found})
        assert {e.payload["incident_id"] for e in resolved} >= {i.incident_id for i in found}
        assert hook.bodies[-1]["text"].startswith(f"lockgate incident {found[-1].incident_id} RESOLVED by tester")
    finally:
        hook.close()

    code, out, _ = _cli(capsys, "audit", "verify")
    assert code == 0, out
    code, out, _ = _cli(capsys, "audit", "report", "--out", tmp_path / "report")
    assert code == 0, out
    assert f"{len(found)} incident(s), 0 open" in out
    report = json.loads((tmp_path / "report" / "audit_report.json").read_text())
    by_id = {i["incident_id"]: i for i in report["incidents"]}
    assert set(by_id) == {i.incident_id for i in found}
    for i in by_id.values():
        assert i["status"] == "resolved" and i["resolution"] == "upstream feed fixed"
        assert i["time_to_detect_seconds"] > 0 and i["time_to_resolve_seconds"] > 0
        assert "landed" in i["detected_from_what"] and all(c["status"] == "ok" for c in i["evidence"])
    html = (tmp_path / "report" / "audit_report.html").read_text()
    assert '<section id="incidents">' in html and all(f'id="incident-{k}"' in html for k in by_id)
