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


def test_another_versions_files_and_signature_do_not_verify(shared_home, candidate_files, exported_artifact,
                                                            compiled_versions, stored_artifact_path):
    """Two versions with byte-identical files: v2's signature copied over v1's (tag updated) still does not verify,
    because the signed folder names the model and version."""
    from tasks.evidence import sha256_file
    from tasks.stores import registry_for

    v1, v2 = compiled_versions(shared_home, candidate_files, exported_artifact, 2, "signed-swap")
    registry = registry_for(shared_home)
    sig1 = stored_artifact_path(registry, v1, f"{SIGNATURE_DIR}/{SIGNATURE_FILE}")
    sig1.write_bytes(stored_artifact_path(registry, v2, f"{SIGNATURE_DIR}/{SIGNATURE_FILE}").read_bytes())
    registry.set_version_tags("signed-swap", 1, {SIGNATURE_SHA_TAG: sha256_file(sig1)})
    with pytest.raises(LockgateError, match="do not verify against their model signature"):
        verify_version(shared_home, registry, registry.get("signed-swap", 1))
    assert verify_version(shared_home, registry, v2)  # v2 itself is untouched


def test_promotion_never_blesses_an_unsigned_version(shared_home, candidate_files, exported_artifact):
    """A version whose files were never signed (or whose signature tag was removed) is not made champion: the
    promotion verifies, it does not sign."""
    from tasks.evidence import sha256_file
    from tasks.registration.inference import ARTIFACT_SHA_TAG
    from tasks.registration.register import register_candidate
    from tasks.registry import MODEL_DIR
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(shared_home), ledger_for(shared_home)
    record = register_candidate(registry, ledger, name="unsigned", arch="mlp", config_path=candidate_files.config,
                                params_path=candidate_files.params, reference_path=candidate_files.reference,
                                contract_name="credit_default", actor="tester")
    registry.client.log_artifact(record.run_id, str(exported_artifact), MODEL_DIR)
    registry.set_version_tags("unsigned", record.version, {ARTIFACT_SHA_TAG: sha256_file(exported_artifact)})
    result = promote(registry, ledger, name="unsigned", version=record.version, actor="tester", reason="try",
                     policy=None, evidence={}, flow_run_id=None, expected_champion=None)
    assert result.status == "reverted" and "carries no model signature" in result.reason
    assert registry.aliases("unsigned") == {}
