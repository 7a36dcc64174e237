"""Human approvals on a real Prefect server started by `lockgate server start` (its Python function): the lifecycle
runs in a background thread and pauses; the test answers with the functions the CLI uses, and with the CLI itself."""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

# Prefect's logging set-up on first import closes absl's (JAX's) log stream unless that stream is sys.stderr; under
# capsys it is not, and the stream is pytest's capture file. Import Prefect's flow machinery here, outside capsys.
from pipelines.lifecycle import lifecycle
from tasks.registry import CHAMPION

pytestmark = [pytest.mark.flow, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def signing_keys(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """name -> (OpenSSH private key file, public key line): carol's and mallory's Ed25519 keys, made for this run."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder, keys = tmp_path_factory.mktemp("keys"), {}
    for name in ("carol", "mallory"):
        key = Ed25519PrivateKey.generate()
        path = folder / f"{name}_ed25519"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
        keys[name] = (path, key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                          serialization.PublicFormat.OpenSSH).decode())
    return keys


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory, signing_keys):
    """Overrides the conftest fixture: this module's policy (plus a signed environment with this run's keys), fast
    polling, the tester registers and requests."""
    import yaml

    from tasks.settings import Settings

    home = tmp_path_factory.mktemp("home")
    policy = yaml.safe_load(Path(__file__).with_name("approval_policy.yaml").read_text())
    policy["approval"]["public_keys"] = {"carol": [signing_keys["carol"][1]]}
    policy["approval"]["environments"]["signed"] = {"transitions": ["promote"], "identity": "signed", "expiry": "5m",
                                                    "approvers": {"users": ["carol"]}}
    policy_file = home.parent / "signed_approval_policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCKGATE_HOME", str(home))
        mp.setenv("LOCKGATE_POLICY_FILE", str(policy_file))
        mp.setenv("LOCKGATE_ACTOR", "tester")
        mp.setenv("LOCKGATE_APPROVAL_POLL_SECONDS", "0.5")
        yield Settings()


@pytest.fixture(scope="module")
def server(module_settings, request):
    """`lockgate server start` for this module's home; stopped at the end, also when a test failed. The shared
    candidate trains while the server starts."""
    from concurrent.futures import ThreadPoolExecutor

    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from pipelines.prefect_server import describe, live_server_url, read_state, start_server, stop_server

    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(start_server, module_settings, port=_free_port())
        try:
            request.getfixturevalue("candidate_files")
        finally:
            state, started = starting.result()
    try:
        assert started and live_server_url(module_settings) == state.url
        assert describe(module_settings).startswith(f"running: {state.url} (pid {state.pid}")
        import httpx  # lockgate's server tuning reached `lockgate server start`'s server (pipelines/temporary_api.py)

        recorder = httpx.get(f"{state.url}/admin/settings").json()["server"]["services"]["task_run_recorder"]
        assert (recorder["batch_size"], recorder["flush_interval"]) == (100, 1.0)
        with temporary_settings({PREFECT_API_URL: state.url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), \
                pytest.MonkeyPatch.context() as mp:
            mp.setenv("PREFECT_API_URL", state.url)  # as prepare_runtime sets it for CLI commands
            yield state
            _drain_prefect_workers()  # logs and events reach the server before it stops
    finally:
        stop_server(module_settings)
    assert read_state(module_settings) is None and live_server_url(module_settings) is None


def _drain_prefect_workers() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain():
        for result in (APILogWorker.drain_all(), EventsWorker.drain_all()):
            if hasattr(result, "__await__"):
                await result

    run_coro_as_sync(drain())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LifecycleThread:
    """The lifecycle flow in a background thread (it blocks while paused), with this test's Prefect settings."""

    def __init__(self, version: int, golden: str):
        self.outcome, self.error = None, None

        def run():
            try:
                self.outcome = lifecycle(version=version, golden=golden)
            except BaseException as e:  # surfaced by join()
                self.error = e

        self.thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
        self.thread.start()

    def join(self, timeout: float = 120):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "lifecycle did not finish"
        if self.error:
            raise self.error
        return self.outcome


def _wait_paused(settings, version: int, flow: LifecycleThread, responses: int, timeout: float = 150):
    """The pending entry of ``version`` once its run is paused again after ``responses`` recorded responses."""
    from tasks.governance.approval_prefect import pending_approvals

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert flow.thread.is_alive(), f"lifecycle ended before pausing: {flow.error or flow.outcome}"
        mine = [p for p in pending_approvals(settings)[0] if p.version == version]
        if mine and len(_responses(settings, mine[0].flow_run_id)) == responses:
            return mine[0]
        time.sleep(0.3)
    raise AssertionError(f"v{version} never paused with {responses} response(s) recorded")


def _responses(settings, run_id: str):
    from tasks.stores import ledger_for

    return [e for e in ledger_for(settings).entries()
            if e.flow_run_id == run_id and e.action in ("approval.granted", "approval.rejected", "approval.refused")]


def _cli(settings, *argv: str, environment: str = "dev"):
    env = {**os.environ, "LOCKGATE_HOME": str(settings.home_dir), "LOCKGATE_POLICY_FILE": str(settings.policy_file),
           "LOCKGATE_ACTOR": "tester", "LOCKGATE_ENVIRONMENT": environment}
    env.pop("PREFECT_API_URL", None)  # the CLI finds the server through LOCKGATE_HOME's state file
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def golden(candidate_files):
    return str(candidate_files.golden)


def test_two_distinct_approvers_promote_and_every_refusal_is_recorded(server, module_settings, register,
                                                                      candidate_files, golden, monkeypatch, capsys):
    from argparse import Namespace

    from pipelines.commands.approval import respond_command
    from pipelines.exit_codes import EXIT_NOT_PROMOTED
    from tasks.governance.approval_prefect import respond
    from tasks.stores import ledger_for, registry_for

    monkeypatch.setenv("LOCKGATE_ENVIRONMENT", "two-approvers")
    version = register(candidate_files).version
    flow = LifecycleThread(version, golden)
    pending = _wait_paused(module_settings, version, flow, 0)
    run = pending.flow_run_id
    assert (pending.model_name, pending.transition, pending.environment) == (module_settings.model_name, "promote",
                                                                             "two-approvers")
    assert pending.requested_by == "tester" and pending.approvals == 0 and pending.min_approvals == 2
    assert "canary pass" in pending.gates and "drift" in pending.gates

    # the lead's own answers, from the same functions `lockgate approve/reject` use; each is recorded, none counts
    answers = [("tester", "approve", None), ("mallory", "approve", None), ("carol", "approve", None),
               ("carol", "approve", None), ("erin", "approve", "0" * 32)]
    for i, (who, decision, request_id) in enumerate(answers):
        if who == "mallory":  # what `lockgate approve RUN --as mallory` does: the run's verdict, exit 3
            args = Namespace(run=run, reason=f"answer {i}", approver=who, wait=60.0)
            assert respond_command(module_settings, args, decision) == EXIT_NOT_PROMOTED
            assert "approval.refused: mallory approved ('answer 1'): 'mallory' is not an approver" in capsys.readouterr().out
        else:
            respond(module_settings, run, decision=decision, reason=f"answer {i}", approver=who, request_id=request_id)
        assert _wait_paused(module_settings, version, flow, i + 1).approvals == (0 if i < 2 else 1)
    # the second approval through the CLI itself, in another process
    cli = _cli(module_settings, "approve", run, "--reason", "slices fine", "--as", "dave", environment="two-approvers")
    assert cli.returncode == 0, cli.stderr
    assert "approval.granted" in cli.stdout and "approval 2 of 2" in cli.stdout

    outcome = flow.join()
    assert outcome.decision == CHAMPION
    assert registry_for(module_settings).aliases(module_settings.model_name)[CHAMPION] == version
    rows = [e for e in ledger_for(module_settings).entries() if e.flow_run_id == run]
    approvals = [(e.action, e.actor) for e in rows if e.action.startswith("approval.")]
    assert approvals == [("approval.requested", "tester"), ("approval.refused", "tester"),
                         ("approval.refused", "mallory"), ("approval.granted", "carol"), ("approval.refused", "carol"),
                         ("approval.refused", "erin"), ("approval.granted", "dave")]
    refused = [e.reason for e in rows if e.action == "approval.refused"]
    assert "separation_of_duties=true forbids" in refused[0] and "tester requested this transition" in refused[0]
    assert "'mallory' is not an approver in two-approvers" in refused[1]
    assert "carol already approved this request" in refused[2]
    assert f"response is for request '{'0' * 32}', not this request" in refused[3]
    request_row = rows[[e.action for e in rows].index("approval.requested")]
    for e in rows:
        if e.action in ("approval.granted", "approval.refused"):  # each response: the request and its input hashes
            assert e.evidence["approval-request"] == request_row.evidence["approval-request"]
            assert len(e.evidence["approval-input"]) == 64
    assert {"canary", "drift", "compilation"} <= set(request_row.evidence)
    promotion = next(e for e in rows if e.alias == CHAMPION)
    assert "approval approved by carol, dave" in promotion.reason and "approval" in promotion.evidence
    assert promotion.seq > max(e.seq for e in rows if e.action == "approval.granted")
    assert ledger_for(module_settings).verify().ok


def test_rejected_by_an_approver_is_not_promoted(server, module_settings, register, candidate_files, golden,
                                                 monkeypatch, capsys):
    from pipelines.commands.approval import pending_command
    from tasks.stores import ledger_for, registry_for

    monkeypatch.setenv("LOCKGATE_ENVIRONMENT", "one-approver")
    champion_before = registry_for(module_settings).aliases(module_settings.model_name).get(CHAMPION)
    version = register(candidate_files).version
    flow = LifecycleThread(version, golden)
    pending = _wait_paused(module_settings, version, flow, 0)
    assert pending_command(module_settings) == 0  # what `lockgate pending` prints
    listed = capsys.readouterr().out
    assert pending.flow_run_id in listed and "0/1" in listed and "canary pass" in listed

    cli = _cli(module_settings, "reject", pending.flow_run_id, "--reason", "wait for the Q4 data", "--as", "erin")
    assert cli.returncode == 0, cli.stderr
    outcome = flow.join()
    assert outcome.decision == "rejected"
    assert registry_for(module_settings).aliases(module_settings.model_name).get(CHAMPION) == champion_before
    rows = [e for e in ledger_for(module_settings).entries() if e.flow_run_id == pending.flow_run_id]
    assert [e.action for e in rows if e.action.startswith(("approval.", "candidate."))] == [
        "approval.requested", "approval.rejected", "candidate.rejected"]
    rejected = next(e for e in rows if e.action == "candidate.rejected").reason  # incident rows follow it
    assert rejected.startswith("approval gate: rejected: rejected by erin") and "wait for the Q4 data" in rejected


def test_expired_request_is_recorded_and_a_late_approval_is_a_one_line_error(server, module_settings, register,
                                                                             candidate_files, golden, monkeypatch):
    from tasks.stores import ledger_for, registry_for

    monkeypatch.setenv("LOCKGATE_ENVIRONMENT", "short-expiry")
    champion_before = registry_for(module_settings).aliases(module_settings.model_name).get(CHAMPION)
    version = register(candidate_files).version
    flow = LifecycleThread(version, golden)
    outcome = flow.join()  # nobody answers within the environment's 4 s (the run id: from the ledger, below)
    (run,) = {e.flow_run_id for e in ledger_for(module_settings).entries()
              if e.action == "approval.requested" and e.version == version}
    assert outcome.decision == "rejected"
    assert registry_for(module_settings).aliases(module_settings.model_name).get(CHAMPION) == champion_before
    rows = [e for e in ledger_for(module_settings).entries() if e.flow_run_id == run]
    assert [e.action for e in rows if e.action.startswith(("approval.", "candidate."))] == [
        "approval.requested", "approval.expired", "candidate.rejected"]
    expired = next(e for e in rows if e.action == "approval.expired")
    assert "expired at" in expired.reason and "with 0 of 1 approval(s)" in expired.reason

    late = _cli(module_settings, "approve", run, "--reason", "sorry, late", "--as", "carol")
    assert late.returncode == 2
    assert late.stderr.strip() == f"lockgate: error: flow run {run} is not awaiting approval (state Completed)"
    assert [e.action for e in ledger_for(module_settings).entries()
            if e.flow_run_id == run and not e.action.startswith("incident.")][-1] == "candidate.rejected"


def test_a_signed_environment_refuses_a_name_alone_and_a_wrong_key_and_audit_re_checks_the_signature(
        server, module_settings, register, candidate_files, golden, monkeypatch, signing_keys):
    from tasks.stores import ledger_for, registry_for

    monkeypatch.setenv("LOCKGATE_ENVIRONMENT", "signed")
    version = register(candidate_files).version
    flow = LifecycleThread(version, golden)
    run = _wait_paused(module_settings, version, flow, 0).flow_run_id
    alone = _cli(module_settings, "approve", run, "--reason", "trust me", "--as", "carol", environment="signed")
    assert alone.returncode == 3 and "approval.refused" in alone.stdout and "requires signed approvals" in alone.stdout
    _wait_paused(module_settings, version, flow, 1)
    stolen = _cli(module_settings, "approve", run, "--reason", "mine now", "--as", "carol", "--key",
                  str(signing_keys["mallory"][0]), environment="signed")
    assert stolen.returncode == 3 and "no key approval.public_keys lists for carol signed this response" in stolen.stdout
    _wait_paused(module_settings, version, flow, 2)
    signed = _cli(module_settings, "approve", run, "--reason", "evidence reviewed", "--as", "carol", "--key",
                  str(signing_keys["carol"][0]), environment="signed")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert "approve from carol (signed) delivered" in signed.stdout and "signed (key SHA256:" in signed.stdout
    assert flow.join().decision == CHAMPION
    assert registry_for(module_settings).aliases(module_settings.model_name)[CHAMPION] == version
    rows = [e for e in ledger_for(module_settings).entries() if e.flow_run_id == run]
    assert [(e.action, e.proof is not None) for e in rows if e.action.startswith("approval.")] == [
        ("approval.requested", False), ("approval.refused", False), ("approval.refused", False),
        ("approval.granted", True)]
    verify = _cli(module_settings, "audit", "verify", environment="signed")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "approvals: 1 signature(s) verify against the policy's keys" in verify.stdout
    name = module_settings.model_name
    assert f"{name}: the registry's witness agrees" in verify.stdout
    assert f"{name}: the Prefect witness agrees (artifact ledger-head-{name}" in verify.stdout
    assert f"{name}: model signature verified (4 files" in verify.stdout


def test_a_rollback_needing_approval_waits_for_an_authorised_approver(server, module_settings, candidate_files,
                                                                      exported_artifact, compiled_versions):
    """`lockgate rollback` in an environment where rollbacks need a human: the command waits as a paused `rollback`
    flow, `lockgate pending` lists it, the requester's own approval is refused, an approver's rolls back."""
    from tasks.governance.promotion import promote
    from tasks.registry import PREVIOUS_CHAMPION
    from tasks.stores import ledger_for, registry_for

    name = "rollback-approved"
    compiled_versions(module_settings, candidate_files, exported_artifact, 2, name)
    registry, ledger = registry_for(module_settings), ledger_for(module_settings)
    for version, expected in ((1, None), (2, 1)):
        promote(registry, ledger, name=name, version=version, actor="tester", reason="test champion", policy=None,
                evidence={}, flow_run_id=None, expected_champion=expected)
    env = {**os.environ, "LOCKGATE_HOME": str(module_settings.home_dir), "LOCKGATE_ACTOR": "tester",
           "LOCKGATE_POLICY_FILE": str(module_settings.policy_file), "LOCKGATE_ENVIRONMENT": "rollback-approval"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "rollback", name, "--reason", "drift on day 5"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pending = _wait_pending(module_settings, name, proc)
        assert (pending.version, pending.transition, pending.environment) == (1, "rollback", "rollback-approval")
        assert pending.requested_by == "tester" and pending.gates == "rollback v2->v1 requested: drift on day 5"
        own = _cli(module_settings, "approve", pending.flow_run_id, "--reason", "mine", environment="rollback-approval")
        assert own.returncode == 3 and "separation_of_duties=true forbids" in own.stdout
        cli = _cli(module_settings, "approve", pending.flow_run_id, "--reason", "drift confirmed", "--as", "erin",
                   environment="rollback-approval")
        assert cli.returncode == 0, cli.stderr
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"{name}: champion v1 (was v2)" in out and "approval: approved: approved by erin" in out
    assert registry.aliases(name) == {CHAMPION: 1}
    rows = [e for e in ledger.entries(model_name=name) if e.flow_run_id == pending.flow_run_id]
    assert [(e.action, e.actor) for e in rows] == [
        ("approval.requested", "tester"), ("approval.refused", "tester"), ("approval.granted", "erin"),
        ("rollback.started", "tester"), ("rollback.committed", "tester")]
    assert "approved by erin" in rows[-1].reason and rows[-1].evidence["approval"]
    assert PREVIOUS_CHAMPION not in registry.aliases(name) and ledger.verify().ok


def _wait_pending(settings, name: str, proc, timeout: float = 150):
    from tasks.governance.approval_prefect import pending_approvals

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"rollback ended before pausing: {proc.communicate()}"
        mine = [p for p in pending_approvals(settings)[0] if p.model_name == name]
        if mine:
            return mine[0]
        time.sleep(0.5)
    raise AssertionError(f"the rollback of {name} never paused for approval")
