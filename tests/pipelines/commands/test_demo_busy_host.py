"""The README's first command on a busy host: `lockgate demo` as a user runs it (its own process, its own temporary
Prefect API, no test harness) while two CPU hogs compete for the cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("whole_machine")]  # its hogs beside no other such test
ROOT = Path(__file__).resolve().parents[3]


def test_the_demo_passes_beside_two_cpu_hogs(settings):
    from pipelines.temporary_api import running_leases
    from tasks.stores import ledger_for, registry_for, version_evidence_dir

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env["LOCKGATE_HOME"] = str(settings.home_dir)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        demo = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--size", "small", "--days", "2"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)  # a hang guard only
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert demo.returncode == 0, (demo.stdout[-3000:], demo.stderr[-3000:])
    assert "wait until Prefect's API answers" in demo.stdout
    assert list((settings.prefect_home).glob("temporary-api-*.log"))  # its own temporary API, not a harness's
    assert running_leases(settings) == []  # and stopped with it

    registry, ledger = registry_for(settings), ledger_for(settings)
    assert [v.version for v in registry.versions(settings.model_name)] == [1, 2]
    assert (version_evidence_dir(settings, settings.model_name, 2) / "lifecycle-1" / "canary.json").is_file()  # the README's path
    assert [e.action for e in ledger.entries()].count("version.registered") == 2 and ledger.verify().ok
