"""A model version's files signed in the OpenSSF Model Signing format, and verified before they are promoted or score.

The compile gate, once it has exported and hashed the artifact, calls :func:`sign_version`:
it signs the four files a batch loads - the exported artifact, params, model config and
feature spec, each fetched with its recorded sha256 checked - plus an ``identity.json``
naming the model, version and those hashes, with the ``model-signing`` package's
elliptic-key method (offline: no Sigstore, no network). The signature (a Sigstore bundle,
``model.sig``) is logged beside the files and its sha256 tagged on the version.
:func:`verify_version` rebuilds the same folder from the registry and verifies it: before
the alias move of a promotion or rollback is committed, before a batch run loads the
champion, and in ``lockgate audit verify``. A changed byte, a file added or removed, a
removed or changed signature, another version's files and signature, or a signature by
another key is refused with one line.

The key (``LOCKGATE_ARTIFACT_KEY``, an EC P-256 PEM, default
~/.config/lockgate/artifact_signing_key.pem, created on first use) lives outside
LOCKGATE_HOME; an auditor without it verifies with its public key
(``LOCKGATE_ARTIFACT_PUBLIC_KEY``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from tasks.errors import LockgateError
from tasks.evidence import sha256_file
from tasks.registration.inference import ARTIFACT_FILE, ARTIFACT_SHA_TAG, PARAMS_SHA_TAG, verified_file
from tasks.registration.register import CONFIG_FILE, FEATURES_FILE, PARAMS_FILE
from tasks.registry import MODEL_DIR, MlflowRegistry, ModelVersionRecord
from tasks.settings import Settings

SIGNATURE_FILE = "model.sig"
SIGNATURE_DIR = "model_signature"
SIGNATURE_SHA_TAG = "lockgate.model_signature_sha256"
SIGNED_FILES = (ARTIFACT_FILE, PARAMS_FILE, CONFIG_FILE, FEATURES_FILE)
IDENTITY_FILE = "identity.json"


def ensure_signing_key(path: Path) -> Path:
    """The EC P-256 private key at ``path`` (PEM), created there (0600, folder 0700) when missing; its public key
    written beside it (``.pub.pem``). Both are published whole (tasks.signatures.publish_new_file): a process that
    loses the race to create them reads complete files."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from tasks.signatures import publish_new_file

    path = Path(path).expanduser()
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        publish_new_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), what="artifact signing key")
    public = public_key_path(path)
    if not public.exists():
        key = load_pem_private_key(path.read_bytes(), password=None)
        publish_new_file(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo),
                         what="artifact public key", mode=0o644)
    return path


def public_key_path(private_key: Path) -> Path:
    return private_key.with_name(private_key.name.removesuffix(".pem") + ".pub.pem")


def _bundle(registry: MlflowRegistry, record: ModelVersionRecord, folder: Path) -> Path:
    """The signed files of ``record`` copied into ``folder`` (each fetched with its recorded sha256 checked where one
    is recorded): exactly what a batch loads."""
    cache = folder.parent / f".fetch-{folder.name}"
    expected = {ARTIFACT_FILE: record.tags.get(ARTIFACT_SHA_TAG), PARAMS_FILE: record.tags.get(PARAMS_SHA_TAG)}
    folder.mkdir(parents=True, exist_ok=True)
    for name in SIGNED_FILES:
        shutil.copyfile(verified_file(registry, record, name, cache, expected.get(name)), folder / name)
    shutil.rmtree(cache, ignore_errors=True)
    # binds the signature to this model and version: another version's files and signature do not verify here
    (folder / IDENTITY_FILE).write_text(json.dumps({"model_name": record.name, "version": record.version,
                                                    "artifact_sha256": expected[ARTIFACT_FILE],
                                                    "params_sha256": expected[PARAMS_FILE]}, sort_keys=True))
    return folder


def sign_version(settings: Settings, registry: MlflowRegistry, record: ModelVersionRecord) -> str:
    """Sign ``record``'s deployed files with the artifact key; log the signature and tag its sha256. Returns it."""
    from model_signing import signing

    key = settings.artifact_key_path
    if key is None:
        raise LockgateError("no artifact signing key (LOCKGATE_ARTIFACT_KEY=none): the promoted files cannot be signed")
    ensure_signing_key(key)
    with tempfile.TemporaryDirectory(prefix="lockgate-sign-") as tmp:
        model = _bundle(registry, record, Path(tmp) / "model")
        out = Path(tmp) / SIGNATURE_DIR
        out.mkdir()
        signature = out / SIGNATURE_FILE
        try:
            signing.Config().use_elliptic_key_signer(private_key=key).sign(model, signature)
        except Exception as e:  # the package raises plain ValueErrors and cryptography errors
            raise LockgateError(f"signing {record.name} v{record.version} failed: {' '.join(str(e).split())[:300]}") from None
        sha = sha256_file(signature)
        registry.log_files(record, [signature], f"{MODEL_DIR}/{SIGNATURE_DIR}")  # beside the files it signs
    registry.set_version_tags(record.name, record.version, {SIGNATURE_SHA_TAG: sha})
    return sha


def verify_version(settings: Settings, registry: MlflowRegistry, record: ModelVersionRecord) -> str:
    """Verify ``record``'s deployed files against their signature; a one-line LockgateError unless they verify.
    Returns a line saying what was verified."""
    from model_signing import verifying

    key = settings.artifact_key_path
    if settings.artifact_public_key is None and key is not None and key.exists():
        ensure_signing_key(key)  # its public half beside it
    public = settings.artifact_public_key_path
    expected = record.tags.get(SIGNATURE_SHA_TAG)
    if expected is None:
        raise LockgateError(f"{record.name} v{record.version} carries no model signature (tag {SIGNATURE_SHA_TAG}; "
                            "the compile gate makes it): run its lifecycle again")
    if public is None or not public.exists():
        raise LockgateError(f"no public key to verify {record.name} v{record.version}'s signature with: set "
                            "LOCKGATE_ARTIFACT_PUBLIC_KEY (or LOCKGATE_ARTIFACT_KEY to the key that signed it)")
    with tempfile.TemporaryDirectory(prefix="lockgate-verify-") as tmp:
        try:
            signature = verified_file(registry, record, f"{SIGNATURE_DIR}/{SIGNATURE_FILE}", Path(tmp) / "sig", expected)
        except LockgateError:
            raise
        except Exception:
            raise LockgateError(f"{record.name} v{record.version}'s model signature is missing from its run; refusing "
                                "to load it") from None
        model = _bundle(registry, record, Path(tmp) / "model")
        try:
            verifying.Config().use_elliptic_key_verifier(public_key=public).verify(model, signature)
        except Exception as e:
            raise LockgateError(f"{record.name} v{record.version}'s files do not verify against their model signature "
                                f"({' '.join(str(e).split())[:200]}); refusing to load them") from None
    return f"{record.name} v{record.version}: model signature verified ({len(SIGNED_FILES)} files, key {public.name})"
