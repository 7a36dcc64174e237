"""The demo end to end at small size, on the real embedded components, the way the README runs it: after an
interrupted first try, `lockgate demo` in a process of its own (its own temporary Prefect API, no test harness) on a
busy host resumes with the versions the first try made, not repeated beside them.

The busy host: the second demo's whole process tree gets half the CPU time (stopped half of every 0.2 s,
tests/cpu_share.py), as two CPU hogs on two cores would leave it, from its start until its temporary Prefect API has
answered: the wall-clock wait that failed on busy hosts (Prefect's 20 s startup timeout) meets twice the work, without
hogs taking the cores from the other xdist worker. The rest runs freely: held all along, the test took 183-197 s in
whole runs (104-114 s now) and left half a core idle all that time (lock waits under load: test_lifecycle_faults)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.cpu_share import CpuShare

pytestmark = [pytest.mark.slow, pytest.mark.flow]  # held to half the CPU: beside any other test
ROOT = Path(__file__).resolve().parents[3]


def _demo_held_until_its_api_answers(settings) -> subprocess.CompletedProcess:
    """The second demo, its whole process tree held to half the CPU from its start until its temporary Prefect API
    has answered (the step that printed "wait until Prefect's API answers"), then free."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env["LOCKGATE_HOME"] = str(settings.home_dir)
    args = [sys.executable, "-m", "pipelines.cli", "demo", "--size", "small", "--days", "2"]
    # a session of its own: a stopped process in pytest's process group is sent SIGHUP by the kernel when that group
    # is orphaned meanwhile (a run started in the background by a shell that then exits), as the demo once was
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    out: list[str] = []
    err: list[str] = []
    answered = threading.Event()

    def read_stdout():
        for line in proc.stdout:
            out.append(line)
            if "wait until Prefect's API answers" in line:
                answered.set()
        answered.set()  # it ended without: the assertions below say so

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)]
    for t in readers:
        t.start()
    with CpuShare(proc.pid, share=0.5) as held:
        answered.wait(timeout=1800)  # a hang guard only
    try:
        proc.wait(timeout=1800)  # a hang guard only
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for t in readers:
        t.join(timeout=60)
    stdout, stderr = "".join(out), "".join(err)
    assert proc.returncode == 0, (stdout[-3000:], stderr[-3000:])
    assert held.stops > 10  # it was held back all along its start, not once
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def test_demo_end_to_end_after_a_first_try_killed_once_v1_was_registered(prefect_harness, settings):
    from prefect.settings import PREFECT_API_URL

    from pipelines.temporary_api import running_leases
    from tasks.governance.promotion_state import agreement, decision_row
    from tasks.registry import CHAMPION
    from tasks.stores import ledger_for, registry_for, version_evidence_dir

    # the first try is SIGKILLed with v1 in the registry and no ledger row for it yet (the worst moment to die)
    env = {**os.environ, "LOCKGATE_HOME": str(settings.home_dir), "LOCKGATE_FAILPOINT": "version-created",
           "PREFECT_API_URL": PREFECT_API_URL.value()}
    first = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--size", "small", "--days", "2"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=1200)  # a hang guard only
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    registry, ledger = registry_for(settings), ledger_for(settings)
    assert [v.version for v in registry.versions(settings.model_name)] == [1]
    assert "version.registered" not in [e.action for e in ledger.entries()]

    demo = _demo_held_until_its_api_answers(settings)  # the next demo reuses v1 instead of making v2 beside it
    assert "wait until Prefect's API answers" in demo.stdout
    assert list((settings.prefect_home).glob("temporary-api-*.log"))  # its own temporary API, not the harness's
    assert running_leases(settings) == []  # and stopped with it

    versions = registry.versions(settings.model_name)
    assert [v.version for v in versions] == [1, 2]
    assert (version_evidence_dir(settings, settings.model_name, 2) / "lifecycle-1" / "canary.json").is_file()  # the README's path
    # the demo's training data carry a known poison (DemoPoison): the trigger rows are a far_cluster finding (warn)
    screen = json.loads((version_evidence_dir(settings, settings.model_name, 2) / "lifecycle-1" / "poisoning.json")
                        .read_text())
    injected = json.loads((settings.data_dir / "poison.json").read_text())
    assert screen["decision"] == "warn" and [f["check"] for f in screen["findings"]] == ["far_cluster"]
    assert len(set(screen["findings"][0]["row_ids"]) & set(injected["trigger_ids"])) >= 0.8 * len(injected["trigger_ids"])
    assert all(decision_row(ledger.entries(model_name=settings.model_name), v.version) for v in versions)
    champion = registry.aliases(settings.model_name)[CHAMPION]
    statuses = {v.version: v.tags["lockgate.status"] for v in versions}
    # v1 became champion first (held to the absolute thresholds only, on the busy host); v2 was either promoted or
    # rejected, with a reason recorded. The demo's own lines name the gates' values if not.
    outcomes = "\n".join(line for line in demo.stdout.splitlines() if line.startswith("    "))
    assert statuses[1] in ("champion", "previous-champion"), (statuses, versions[0].tags, outcomes)
    assert statuses[champion] == "champion"
    if champion == 2:
        assert registry.aliases(settings.model_name).get("previous-champion") == 1
    else:
        assert statuses[2] == "rejected" and versions[1].tags["lockgate.rejected_reason"]

    entries = ledger.entries()
    actions = [e.action for e in entries]
    assert actions.count("version.registered") == 2 and actions.count("approval.auto") >= 1
    promotions = [e for e in entries if e.action == "promotion.committed"]
    assert promotions[-1].version == champion and promotions[-1].aliases[CHAMPION] == champion
    assert {"canary", "compilation", "drift", "approval"} <= set(promotions[-1].evidence)
    assert "auto-approved by policy 'demo'" in next(e.reason for e in entries if e.action == "approval.auto")
    assert ledger.verify().ok
    assert agreement(registry, ledger, settings.model_name).ok
    from tasks.governance.incidents import incidents_from

    drift = [i for i in incidents_from(entries) if i.kind == "monitoring-alert"]  # the last day's drift
    assert drift and all(i.status == "resolved" and i.resolution.startswith("demo response: ") for i in drift)

    scored = [e for e in entries if e.action == "partition.scored"]
    assert len(scored) == 2
    for e in scored:
        assert e.version == champion and e.evidence["predictions"]
    preds = pd.read_parquet(settings.predictions_dir / settings.model_name / "date=2026-11-01" / "predictions.parquet")
    assert set(preds["model_version"]) == {str(champion)} and preds["score"].between(0, 1).all()
    assert preds["artifact_sha256"].iloc[0] == registry.get(settings.model_name, champion).tags["lockgate.artifact_sha256"]
