"""Signed approvals (identity: signed): real Ed25519 keys in OpenSSH files, real signatures, the pure authorisation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tasks.errors import LockgateError
from tasks.governance.approval import (
    ApprovalRequest,
    ApprovalResponse,
    approval_payload,
    approval_rules,
    authorise_response,
    proof_check,
)
from tasks.ledger.entry import LedgerEntry
from tasks.policy import ApprovalPolicy, Approvers, EnvironmentApproval, Policy
from tasks.signatures import key_fingerprint, sign

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def _keypair(folder, name):
    key = Ed25519PrivateKey.generate()
    path = folder / f"{name}_ed25519"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return path, f"{public} {name}@example"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    return {name: _keypair(folder, name) for name in ("carol", "dave", "mallory")}


def _policy(keys, **prod) -> Policy:
    rules = dict(transitions=("promote",), approvers=Approvers(users=("carol", "dave")), min_approvals=2,
                 expiry=timedelta(hours=1), identity="signed")
    return Policy(name="gov", approval=ApprovalPolicy(
        public_keys={"carol": (keys["carol"][1],), "dave": (keys["dave"][1],)},
        environments={"dev": EnvironmentApproval(), "prod": EnvironmentApproval(**{**rules, **prod})}))


def _request(policy, **kw) -> ApprovalRequest:
    fields = dict(request_id="req-a", flow_run_id="run-1", model_name="m", version=3,
                  rules=approval_rules(policy, "prod", "promote"), requester="alice", registrant="bob",
                  requested_at=T0, expires_at=T0 + timedelta(hours=1), evidence={"canary": "c" * 64},
                  artifact_sha256="a" * 64)
    return ApprovalRequest(**{**fields, **kw})


def _signed(keys, request, approver="carol", *, key_of=None, decision="approve", reason="ok", **response):
    signature = sign(keys[key_of or approver][0], approval_payload(request, decision=decision, approver=approver,
                                                                     reason=reason))
    return ApprovalResponse(decision=decision, approver=approver, reason=reason, request_id=request.request_id,
                            signature=signature, **response)


def test_a_signed_approval_counts_and_names_its_key(keys):
    request = _request(_policy(keys))
    verdict = authorise_response(request, [], _signed(keys, request), T0)
    assert verdict.outcome == "granted" and verdict.key == key_fingerprint(keys["carol"][1])
    assert f"signed (key {verdict.key}); approval 1 of 2" in verdict.reason
    assert json.loads(verdict.signed_payload)["artifact_sha256"] == "a" * 64


def test_a_name_alone_is_refused(keys):
    request = _request(_policy(keys))
    verdict = authorise_response(request, [], ApprovalResponse(decision="approve", approver="carol", reason="ok",
                                                               request_id="req-a"), T0)
    assert (verdict.outcome, verdict.refusal) == ("refused", "unsigned") and "--key" in verdict.reason


def test_another_persons_key_is_refused(keys):
    request = _request(_policy(keys))
    for signer in ("mallory", "dave"):  # a stranger's key, and another approver's key used under carol's name
        verdict = authorise_response(request, [], _signed(keys, request, key_of=signer), T0)
        assert (verdict.outcome, verdict.refusal) == ("refused", "bad-signature")


@pytest.mark.parametrize("change", [
    dict(request_id="req-b"), dict(flow_run_id="run-2"), dict(version=4), dict(artifact_sha256="b" * 64),
    dict(evidence={"canary": "d" * 64}), dict(expires_at=T0 + timedelta(hours=2)),
])
def test_a_signature_made_for_another_request_version_or_artifact_is_refused(keys, change):
    policy = _policy(keys)
    signed_for = _request(policy, **change)
    shown = _request(policy)
    response = _signed(keys, signed_for).model_copy(update={"request_id": shown.request_id})
    verdict = authorise_response(shown, [], response, T0)
    assert (verdict.outcome, verdict.refusal) == ("refused", "bad-signature")


def test_a_changed_decision_or_reason_breaks_the_signature(keys):
    request = _request(_policy(keys))
    response = _signed(keys, request, decision="reject", reason="no")
    for forged in (response.model_copy(update={"decision": "approve"}), response.model_copy(update={"reason": "yes"})):
        assert authorise_response(request, [], forged, T0).refusal == "bad-signature"


def test_a_replayed_signed_approval_is_refused(keys):
    request = _request(_policy(keys))
    response = _signed(keys, request)
    first = authorise_response(request, [], response, T0)
    again = authorise_response(request, [first], response, T0 + timedelta(minutes=1))
    assert first.outcome == "granted" and (again.outcome, again.refusal) == ("refused", "replayed")


def test_a_signed_approval_after_expiry_is_refused(keys):
    request = _request(_policy(keys))
    verdict = authorise_response(request, [], _signed(keys, request), T0 + timedelta(hours=2))
    assert (verdict.outcome, verdict.refusal) == ("refused", "expired")


def test_signed_rejection_ends_it(keys):
    request = _request(_policy(keys))
    verdict = authorise_response(request, [], _signed(keys, request, "dave", decision="reject", reason="no"), T0)
    assert verdict.outcome == "rejected" and verdict.signature and verdict.key


def test_the_policy_needs_a_key_for_every_signing_approver(keys):
    with pytest.raises(ValueError, match="identity signed but approval.public_keys lists no public key for dave"):
        Policy(name="gov", approval=ApprovalPolicy(
            public_keys={"carol": (keys["carol"][1],)},
            environments={"prod": EnvironmentApproval(transitions=("promote",), identity="signed",
                                                      approvers=Approvers(users=("carol", "dave")))}))


@pytest.mark.parametrize("line,fragment", [
    ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ x", "not an OpenSSH public key line"),
    ("not a key", "not an OpenSSH public key line"),
])
def test_the_policy_refuses_a_key_that_is_not_ed25519(line, fragment):
    with pytest.raises(ValueError, match=fragment):
        ApprovalPolicy(public_keys={"carol": (line,)})


def test_signing_with_a_missing_or_wrong_key_file_is_one_line(tmp_path):
    with pytest.raises(LockgateError, match="cannot be read"):
        sign(tmp_path / "nope", "x")
    (tmp_path / "junk").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
    with pytest.raises(LockgateError, match="not an unencrypted Ed25519 private key"):
        sign(tmp_path / "junk", "x")


def _row(seq, verdict, action="approval.granted", **kw):
    proof = {"signed_payload": verdict.signed_payload, "signature": verdict.signature, "key": verdict.key}
    return LedgerEntry(**{**dict(seq=seq, actor=verdict.approver, action=action, model_name="m", version=3,
                                 reason=verdict.reason, proof=proof), **kw})


def test_audit_re_checks_every_signed_row_from_the_ledger_and_the_policy(keys):
    policy = _policy(keys)
    request = _request(policy)
    good = authorise_response(request, [], _signed(keys, request), T0)
    rows = [_row(1, good), LedgerEntry(seq=2, actor="erin", action="approval.granted", model_name="m", reason="x")]
    assert proof_check(rows, policy).model_dump() == {"signed": 1, "asserted": 1, "problems": []}
    # a row rewritten to another approver or version, or a policy that no longer lists the key: named
    forged = [_row(3, good, actor="dave"), _row(4, good, version=9)]
    problems = proof_check(forged, policy).problems
    assert problems[0].startswith("row 3: what was signed (carol, approve, m, 3) is not what the row records (dave")
    assert problems[1].startswith("row 4: what was signed")
    rotated = _policy(keys).model_copy(update={"approval": policy.approval.model_copy(
        update={"public_keys": {"carol": (keys["mallory"][1],), "dave": (keys["dave"][1],)}})})
    assert proof_check([_row(5, good)], rotated).problems == [
        "row 5: the signature of carol's approve does not verify against the keys policy 'gov' lists for carol"]


def test_a_signed_row_is_hashed_with_its_proof(keys):
    request = _request(_policy(keys))
    row = _row(1, authorise_response(request, [], _signed(keys, request), T0))
    tampered = row.model_copy(update={"proof": {**row.proof, "key": "SHA256:other"}})
    assert row.content_hash() != tampered.content_hash()
    unsigned = LedgerEntry(seq=1, actor="a", action="x", model_name="m", reason="r")
    assert "proof" not in json.dumps(unsigned.model_dump(exclude={"entry_hash", "proof"}))  # old rows hash as before
