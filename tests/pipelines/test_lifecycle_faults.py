"""The whole `lifecycle` flow in processes of its own: SIGKILLed at every step from the approval row to the last
ledger write and re-run, and eight lifecycles of one model at once. Registry and ledger always agree afterwards, the
hash chain verifies, and no ledger row is lost.

The children are forked from one parent that imported Prefect, Great Expectations, Evidently, JAX and MLflow once
(tests/tasks/governance/promotion_child.py), and run against the session's Prefect test server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.governance.promotion import FAILPOINTS
from tasks.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION

pytestmark = [pytest.mark.flow, pytest.mark.slow, pytest.mark.xdist_group("whole_machine")]  # 8 lifecycles at once
CHILD = Path(__file__).parents[1] / "tasks" / "governance" / "promotion_child.py"
POLICY = Path(__file__).with_name("faults_policy.yaml")
# from the approval row to the commit; "restored" is only on a failed smoke test (tests/tasks/governance/test_promotion_faults.py)
POINTS = ["approved", *[p for p in FAILPOINTS if p != "restored"]]


@pytest.fixture(scope="module")
def home(prefect_harness, tmp_path_factory):
    from prefect.settings import PREFECT_API_URL

    from tasks.settings import Settings

    env = {"LOCKGATE_HOME": str(tmp_path_factory.mktemp("faults-home")), "LOCKGATE_POLICY_FILE": str(POLICY),
           "LOCKGATE_ACTOR": "tester", "LOCKGATE_LEDGER_LOCK_TIMEOUT_SECONDS": "900",
           "PREFECT_API_URL": PREFECT_API_URL.value()}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            if k != "PREFECT_API_URL":
                mp.setenv(k, v)
        yield Settings(), env


@pytest.fixture(scope="module")
def lifecycles(home):
    """A preloaded parent forking one lifecycle process per command (see promotion_child.serve)."""
    _, env = home
    proc = subprocess.Popen([sys.executable, str(CHILD), "serve", "lifecycle"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **env})
    assert json.loads(proc.stdout.readline()) == "ready"

    def run(*commands: tuple[list[str], dict[str, str]]) -> list[dict]:
        proc.stdin.write(json.dumps([{"args": a, "env": e} for a, e in commands]) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield run
    proc.stdin.close()
    proc.wait(timeout=120)


def _register(settings, files, name: str, count: int) -> list[int]:
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    return [register_candidate(registry_for(settings), ledger_for(settings), name=name, arch="mlp",
                               config_path=files.config, params_path=files.params, reference_path=files.reference,
                               contract_name="credit_default", actor="tester").version for _ in range(count)]


def _outcome(result: dict) -> dict:
    assert result["returncode"] == 0, result["stderr"]
    return json.loads(result["stdout"].strip().splitlines()[-1])


def _consistent(settings, name: str):
    from tasks.governance.promotion_state import agreement
    from tasks.stores import ledger_for, registry_for

    ledger = ledger_for(settings)
    check = ledger.verify()
    assert check.ok, check
    agree = agreement(registry_for(settings), ledger, name)
    assert agree.ok, agree
    return ledger


def test_lifecycle_killed_at_each_step_from_approval_to_commit_then_rerun(home, lifecycles, candidate_files):
    from tasks.governance.promotion_state import agreement
    from tasks.stores import ledger_for, registry_for, version_evidence_dir

    settings, _ = home
    name, golden = "lifecycle-faults", str(candidate_files.golden)
    v1, v2 = _register(settings, candidate_files, name, 2)
    (first,) = lifecycles(([["lifecycle", name, str(v1), golden], {}]))
    assert _outcome(first)["decision"] == CHAMPION
    registry, ledger = registry_for(settings), ledger_for(settings)
    start = ledger.entries()[-1].seq
    for point in POINTS:  # each run is also the re-run of the one killed before it
        (crashed,) = lifecycles((["lifecycle", name, str(v2), golden], {"LOCKGATE_FAILPOINT": point}))
        assert crashed["returncode"] == -signal.SIGKILL, (point, crashed["stdout"][-2000:], crashed["stderr"])
        assert ledger.verify().ok, point
        agree = agreement(registry, ledger, name)  # agrees, or a started move is open for the next lock holder
        assert agree.ok or agree.interrupted_seq is not None, (point, agree)
        last = [e for e in ledger.entries(model_name=name) if e.seq > start][-1]
        expected_last = {"approved": "approval.auto", "locked": "approval.auto", "committed": "promotion.committed"}
        assert last.action == expected_last.get(point, "promotion.started"), (point, last)
    (rerun,) = lifecycles((["lifecycle", name, str(v2), golden], {}))
    assert _outcome(rerun)["decision"] == CHAMPION
    assert registry.aliases(name) == {CHAMPION: v2, PREVIOUS_CHAMPION: v1}
    _consistent(settings, name)
    rows = [e for e in ledger.entries(model_name=name) if e.seq > start]
    assert [e.action for e in rows].count("promotion.committed") == 1
    # every move a crash left open was recovered by the next run, before it moved anything itself
    opened = [p for p in POINTS if p not in ("approved", "locked", "committed")]
    assert [e.action for e in rows].count("promotion.recovered") == len(opened)
    assert [e.action for e in rows].count("approval.auto") == len(POINTS) + 1
    # the faults policy keeps Evidently's report and Data Docs to gates that warn or fail: drift.json in every run
    evidence = version_evidence_dir(settings, name, v2)
    runs = sorted(evidence.glob("lifecycle-*"))
    assert len(runs) == len(POINTS) + 1 and all((r / "drift.json").is_file() for r in runs)
    # canary.plots: on_failures: a passed canary's report page without its PNGs
    assert all((r / "canary" / "canary_report.html").is_file() and not list((r / "canary").glob("*.png")) for r in runs)
    assert not list(evidence.rglob("drift_report.html")) and not list(evidence.rglob("data_docs.html"))


def test_eight_concurrent_lifecycles_on_one_model_are_serialised_and_lose_no_row(home, lifecycles, candidate_files):
    from tasks.stores import ledger_for, registry_for

    settings, _ = home
    name, golden = "lifecycle-race", str(candidate_files.golden)
    (first,) = _register(settings, candidate_files, name, 1)
    assert _outcome(lifecycles((["lifecycle", name, str(first), golden], {}))[0])["decision"] == CHAMPION
    ledger = ledger_for(settings)
    start = ledger.entries()[-1].seq
    versions = _register(settings, candidate_files, name, 8)
    results = lifecycles(*[(["lifecycle", name, str(v), golden], {}) for v in versions])
    decisions = {v: _outcome(r)["decision"] for v, r in zip(versions, results)}

    rows = [e for e in ledger.entries() if e.seq > start]
    assert [e.seq for e in rows] == list(range(start + 1, start + 1 + len(rows)))  # no gap: no row lost
    assert {e.model_name for e in rows} == {name}
    runs = {}
    for e in rows:
        if e.flow_run_id:
            runs.setdefault(e.flow_run_id, []).append(e)
    assert len(runs) == 8
    for run_rows in runs.values():  # each lifecycle: challenger, the policy's approval, then committed or refused
        run_rows = [e for e in run_rows if not e.action.startswith("incident.")]  # a refusal's incident follows it
        actions = [e.action for e in run_rows]
        version = run_rows[0].version
        assert actions[0] == "alias.set" and run_rows[0].alias == CHALLENGER
        assert actions.count("approval.auto") == 1
        ended = "promotion.committed" if decisions[version] == CHAMPION else "promotion.refused"
        assert actions[-1] == ended, actions
        if ended == "promotion.committed":
            assert actions[-2] == "promotion.started"
        else:
            assert "the decision was made against" in run_rows[-1].reason
    moves = [e for e in rows if e.action in ("promotion.started", "promotion.committed", "promotion.reverted")]
    for started, end in zip(moves[::2], moves[1::2]):  # serialised: each started row is followed by its own end
        assert (started.action, end.action, started.version) == ("promotion.started", "promotion.committed",
                                                                  end.version)
    committed = [e for e in rows if e.action == "promotion.committed"]
    assert committed, decisions
    # a linear history: every promotion replaced the champion committed just before it
    assert [e.previous_version for e in committed] == [first] + [e.version for e in committed[:-1]]
    assert registry_for(settings).aliases(name).get(CHAMPION) == committed[-1].version
    _consistent(settings, name)
