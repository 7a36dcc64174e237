"""The promoted model's files in the OpenSSF Model Signing format: signed at promotion, refused before scoring when a
byte, the signature or the key is not the one promotion used. Real registry, real model-signing package."""

from __future__ import annotations

import pytest

from tasks.errors import LockgateError
from tasks.governance.artifact_signature import SIGNATURE_DIR, SIGNATURE_FILE, SIGNATURE_SHA_TAG, verify_version
from tasks.governance.promotion import promote
from tasks.registry import CHAMPION


@pytest.fixture
def champion(request, shared_home, candidate_files, exported_artifact, compiled_versions):
    """A version of a model of this test's own, promoted by lockgate (so signed); (settings, registry, record)."""
    from tasks.stores import ledger_for, registry_for

    import hashlib

    name = "signed-" + hashlib.sha256(request.node.name.encode()).hexdigest()[:12]  # one model per test case
    compiled_versions(shared_home, candidate_files, exported_artifact, 1, name)
    registry, ledger = registry_for(shared_home), ledger_for(shared_home)
    result = promote(registry, ledger, name=name, version=1, actor="tester", reason="signed", policy=None, evidence={},
                     flow_run_id=None, expected_champion=None)
    assert result.status == "committed", result.reason
    assert "model signature verified (4 files" in result.smoke_test
    return shared_home, registry, registry.require_alias(name, CHAMPION)


def test_promotion_signs_the_champion_and_its_files_verify(champion):
    settings, registry, record = champion
    assert SIGNATURE_SHA_TAG in record.tags
    assert verify_version(settings, registry, record).endswith("model signature verified (4 files, key "
                                                               "artifact_signing_key.pub.pem)")


@pytest.mark.parametrize("filename", ["feature_spec.json", "model_config.json"])
def test_one_changed_byte_is_refused_before_any_row_is_scored(champion, stored_artifact_path, filename):
    from tasks.gates import _load_verified
    from tasks.stores import policy_for

    settings, registry, record = champion
    path = stored_artifact_path(registry, record, filename)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(LockgateError, match="do not verify against their model signature"):
        verify_version(settings, registry, record)
    with pytest.raises(LockgateError, match="do not verify against their model signature"):
        _load_verified(settings, policy_for(settings), record)  # what a batch run does before scoring


def test_a_removed_or_replaced_signature_is_refused(champion, stored_artifact_path):
    settings, registry, record = champion
    signature = stored_artifact_path(registry, record, f"{SIGNATURE_DIR}/{SIGNATURE_FILE}")
    original = signature.read_bytes()
    signature.write_bytes(original.replace(b'"', b"'", 1))
    with pytest.raises(LockgateError, match="refusing to use a changed artifact"):
        verify_version(settings, registry, record)
    signature.unlink()
    with pytest.raises(LockgateError, match="model signature is missing|could not be read"):
        verify_version(settings, registry, record)
    registry.set_version_tags(record.name, record.version, {SIGNATURE_SHA_TAG: ""})
    untagged = registry.get(record.name, record.version).model_copy(update={"tags": {
        k: v for k, v in record.tags.items() if k != SIGNATURE_SHA_TAG}})
    with pytest.raises(LockgateError, match="carries no model signature"):
        verify_version(settings, registry, untagged)


def test_a_signature_by_another_key_is_refused(champion, tmp_path, monkeypatch):
    from tasks.governance.artifact_signature import ensure_signing_key, public_key_path
    from tasks.settings import Settings

    settings, registry, record = champion
    other = ensure_signing_key(tmp_path / "other.pem")
    monkeypatch.setenv("LOCKGATE_ARTIFACT_PUBLIC_KEY", str(public_key_path(other)))
    with pytest.raises(LockgateError, match="do not verify against their model signature"):
        verify_version(Settings(), registry, record)
