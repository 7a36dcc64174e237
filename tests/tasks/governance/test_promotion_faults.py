"""Fault tests on real processes: SIGKILL the promotion (and rollback) path at every step from the approval row to the
last ledger write, then re-run: registry and ledger agree and the chain verifies. Eight processes promoting on one
model at once: serialised, a linear champion history, no ledger row lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tasks.governance.promotion import FAILPOINTS, move_alias, promote, rollback
from tasks.governance.promotion_state import agreement, recover, recover_if_idle
from tasks.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION

CHILD = Path(__file__).with_name("promotion_child.py")
COMMON = dict(actor="tester", policy="test", evidence={"canary": "c" * 64}, flow_run_id=None)


class Children:
    """Runs promotion_child.py commands as forked children of one preloaded `serve` process."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(CHILD), "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert json.loads(self.proc.stdout.readline()) == "ready"

    def run(self, *commands: tuple[list[str], dict[str, str]]) -> list[dict]:
        """Run ``(args, env)`` commands at the same time; per command its returncode, stdout and stderr."""
        batch = [{"args": args, "env": env} for args, env in commands]
        self.proc.stdin.write(json.dumps(batch) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def children(shared_home):
    runner = Children()  # started after shared_home set LOCKGATE_HOME: the children inherit it
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def faults(children, shared_home, candidate_files, exported_artifact, compiled_versions):
    from tasks.stores import ledger_for, registry_for

    name = "faults"
    compiled_versions(shared_home, candidate_files, exported_artifact, 2, name)
    registry, ledger = registry_for(shared_home), ledger_for(shared_home)
    promote(registry, ledger, name=name, version=1, reason="first", expected_champion=None, **COMMON)
    return registry, ledger, name


def _from(registry, ledger, name, aliases: dict[str, int]):
    """Bring the model to ``aliases`` through lockgate (recover, roll back to v1, promote v2, mark challenger)."""
    with ledger.lock(name):
        recover(registry, ledger, name=name, actor="tester")
    if registry.aliases(name).get(CHAMPION) != 1:
        rollback(registry, ledger, name=name, actor="tester", reason="reset", to_version=1)
    if aliases.get(CHAMPION) == 2:
        promote(registry, ledger, name=name, version=2, reason="reset", expected_champion=1, **COMMON)
    if CHALLENGER in aliases:
        move_alias(registry, ledger, name=name, alias=CHALLENGER, version=aliases[CHALLENGER], reason="in lifecycle",
                   **COMMON)
    assert registry.aliases(name) == aliases


def _after_crash(registry, ledger, name):
    """Right after the kill: the chain (and its anchor) verifies, and the registry differs from the ledger only
    while a started promotion is open, which the next holder of the lock recovers."""
    check, agree = ledger.verify(), agreement(registry, ledger, name)
    assert check.ok, check
    assert agree.ok or agree.interrupted_seq is not None, agree
    return agree


def _consistent(registry, ledger, name):
    check, agree = ledger.verify(), agreement(registry, ledger, name)
    assert check.ok, check
    assert agree.ok, agree


def _start_when_ready(folder: Path, start: Path, count: int) -> None:
    """Touch ``start`` once ``count`` processes are connected and waiting, so they contend from the same moment."""
    deadline = time.monotonic() + 120
    while len(list(folder.glob("start.*.ready"))) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    start.touch()


def _new_actions(ledger, name, after_seq):
    return [e.action for e in ledger.entries(model_name=name) if e.seq > after_seq]


@pytest.mark.parametrize("point", ["approved", *[p for p in FAILPOINTS if p != "restored"]])
def test_promotion_killed_at_each_step_then_rerun(children, faults, point):
    registry, ledger, name = faults
    _from(registry, ledger, name, {CHAMPION: 1, CHALLENGER: 2})
    last = ledger.entries()[-1].seq
    (proc,) = children.run((["promote", name, "2", "1"], {"LOCKGATE_FAILPOINT": point}))
    assert proc["returncode"] == -signal.SIGKILL, proc["stderr"]
    agree = _after_crash(registry, ledger, name)
    opened = point not in ("approved", "locked", "committed")
    assert (agree.interrupted_seq is not None) == opened
    rerun = promote(registry, ledger, name=name, version=2, reason="v2 passed (re-run)", expected_champion=1, **COMMON)
    assert rerun.status == "committed"
    assert registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}
    _consistent(registry, ledger, name)
    actions = _new_actions(ledger, name, last)
    assert actions[0] == "approval.auto" and ("promotion.recovered" in actions) == opened
    assert actions.count("promotion.committed") == 1


def test_promotion_killed_while_reverting_a_failed_smoke_test(children, faults, stored_artifact_path):
    registry, ledger, name = faults
    _from(registry, ledger, name, {CHAMPION: 1, CHALLENGER: 2})
    last = ledger.entries()[-1].seq
    path = stored_artifact_path(registry, registry.get(name, 2))
    good = path.read_bytes()
    path.write_bytes(good + b"tampered")
    try:
        (proc,) = children.run((["promote", name, "2", "1"], {"LOCKGATE_FAILPOINT": "restored"}))
    finally:
        path.write_bytes(good)
    assert proc["returncode"] == -signal.SIGKILL, proc["stderr"]
    assert _after_crash(registry, ledger, name).interrupted_seq is not None
    assert registry.aliases(name) == {CHAMPION: 1, CHALLENGER: 2}  # restored before the kill
    rerun = promote(registry, ledger, name=name, version=2, reason="v2 passed (re-run)", expected_champion=1, **COMMON)
    assert rerun.status == "committed"
    _consistent(registry, ledger, name)
    recovered = [e for e in ledger.entries(model_name=name) if e.seq > last and e.action == "promotion.recovered"]
    assert len(recovered) == 1 and "no alias had moved" in recovered[0].reason


@pytest.mark.parametrize("point", ["started", f"moved-{PREVIOUS_CHAMPION}", f"moved-{CHAMPION}", "smoke-tested",
                                   "committed"])
def test_rollback_killed_at_each_step_then_recovered_by_status(children, faults, point):
    registry, ledger, name = faults
    _from(registry, ledger, name, {CHAMPION: 2, PREVIOUS_CHAMPION: 1})
    (proc,) = children.run((["rollback", name], {"LOCKGATE_FAILPOINT": point}))
    assert proc["returncode"] == -signal.SIGKILL, proc["stderr"]
    _after_crash(registry, ledger, name)
    row = recover_if_idle(registry, ledger, name=name, actor="tester")  # what `lockgate status` runs
    _consistent(registry, ledger, name)
    if point == "committed":
        assert row is None and registry.aliases(name) == {CHAMPION: 1}
    else:
        assert row.action == "rollback.recovered" and registry.aliases(name) == {CHAMPION: 2, PREVIOUS_CHAMPION: 1}


def test_eight_concurrent_promotions_are_serialised_and_lose_no_row(children, shared_home, candidate_files,
                                                                    exported_artifact, compiled_versions, tmp_path):
    from tasks.stores import ledger_for, registry_for

    name = "race"
    compiled_versions(shared_home, candidate_files, exported_artifact, 8, name)
    registry, ledger = registry_for(shared_home), ledger_for(shared_home)
    last = ledger.entries()[-1].seq
    start = tmp_path / "start"
    toucher = threading.Thread(target=_start_when_ready, args=(tmp_path, start, 8))
    toucher.start()
    patient = {"LOCKGATE_LEDGER_LOCK_TIMEOUT_SECONDS": "900"}  # 8 waiters on a busy 2-core machine
    results = children.run(*[(["race", name, str(v), str(start)], patient) for v in range(1, 9)])
    toucher.join()
    for r in results:
        assert r["returncode"] == 0, r["stderr"]
    outcomes = [json.loads(r["stdout"].strip().splitlines()[-1]) for r in results]
    assert sorted(o["version"] for o in outcomes) == list(range(1, 9))

    rows = [e for e in ledger.entries(model_name=name) if e.seq > last]
    committed = [e for e in rows if e.action == "promotion.committed"]
    assert len(committed) == 8 and sorted(e.version for e in committed) == list(range(1, 9))
    # a linear history: every promotion replaced the one committed just before it
    assert [e.previous_version for e in committed] == [None] + [e.version for e in committed[:-1]]
    refused = [e for e in rows if e.action == "promotion.refused"]
    assert len(refused) == sum(o["refusals"] for o in outcomes)
    assert len(rows) == 2 * 8 + len(refused)  # started + committed per version, one row per refusal: none lost
    moves = [e for e in rows if e.action in ("promotion.started", "promotion.committed", "promotion.reverted")]
    for started, end in zip(moves[::2], moves[1::2]):  # serialised: each started row is followed by its own end
        assert started.action == "promotion.started" and end.action == "promotion.committed"
        assert started.version == end.version
    assert registry.aliases(name) == {CHAMPION: committed[-1].version, PREVIOUS_CHAMPION: committed[-2].version}
    _consistent(registry, ledger, name)
