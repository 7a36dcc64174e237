"""Ed25519 keys and signatures (the ``cryptography`` package): who approved, and who wrote the ledger's head.

Why Ed25519 from ``cryptography`` and SSH key files: approvers already hold an Ed25519
SSH key (``ssh-keygen -t ed25519``, the key git signs commits with), the policy lists
their public keys as the one-line ``ssh-ed25519 AAAA... comment`` they already publish,
and signing and checking need no binary, no agent and no network, so ``lockgate audit
verify`` re-checks a signature offline, years later, from the ledger row and the policy.
No cryptography is written here: keys are parsed and signatures made and checked by
``cryptography``; what is signed is decided by the callers (tasks/governance/approval.py
for approvals).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from tasks.errors import LockgateError


def _public_key(line: str):
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        key = load_ssh_public_key(line.strip().encode())
    except (ValueError, TypeError, IndexError, UnsupportedAlgorithm) as e:
        raise ValueError(f"not an OpenSSH public key line ('ssh-ed25519 AAAA... comment'): {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"only ssh-ed25519 keys are accepted, got {line.split()[0] if line.split() else line!r}")
    return key


def check_public_key(line: str) -> str:
    """``line`` if it is an ssh-ed25519 public key line, else ValueError (policy validation)."""
    _public_key(line)
    return line


def key_fingerprint(line: str) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it for the public key ``line``."""
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def sign(private_key_file: str | Path, payload: str) -> str:
    """Base64 Ed25519 signature of ``payload`` with an unencrypted OpenSSH or PEM Ed25519 private key file."""
    return sign_with(load_private_key(private_key_file), payload)


def verified_key(public_keys: tuple[str, ...] | list[str], payload: str, signature: str) -> str | None:
    """The fingerprint of the key among ``public_keys`` that signed ``payload``, or None when none did."""
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, TypeError):
        return None
    for line in public_keys:
        try:
            _public_key(line).verify(raw, payload.encode())
        except (InvalidSignature, ValueError):
            continue
        return key_fingerprint(line)
    return None


def public_key_line(private_key) -> str:
    """The ``ssh-ed25519 AAAA...`` line of an Ed25519 private key object."""
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode()


def ensure_private_key(path: str | Path):
    """The Ed25519 private key at ``path`` (OpenSSH format), created there (0600, folder 0700) when missing: written
    whole under a temporary name, then linked into place, so a process that loses the race reads a complete key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path).expanduser()
    if path.exists():
        return load_private_key(path)
    key = Ed25519PrivateKey.generate()
    publish_new_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                             serialization.NoEncryption()), what="signing key")
    return load_private_key(path)


def publish_new_file(path: Path, data: bytes, *, what: str, mode: int = 0o600) -> None:
    """Create ``path`` with ``data`` atomically and only if it does not exist (another process's file wins)."""
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    except OSError as e:
        raise LockgateError(f"{what} {path} cannot be created: {e.strerror}; point its LOCKGATE_* setting at a "
                            "writable path outside LOCKGATE_HOME") from None


def public_key_setting(value: str) -> str:
    """A public key given as its ``ssh-ed25519 AAAA...`` line or as a file holding that line; one-line error else."""
    text = value.strip()
    if not text.startswith("ssh-"):
        path = Path(text).expanduser()
        try:
            text = path.read_text().strip()
        except OSError as e:
            raise LockgateError(f"public key {value!r} is neither an 'ssh-ed25519 AAAA...' line nor a readable file: "
                                f"{e.strerror}") from None
    try:
        return check_public_key(text)
    except ValueError as e:
        raise LockgateError(f"public key {value!r}: {e}") from None


def load_private_key(path: str | Path):
    """An unencrypted Ed25519 private key (OpenSSH or PEM file); one-line LockgateError otherwise."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LockgateError(f"signing key {path} cannot be read: {e.strerror}") from None
    try:
        loader = load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else load_pem_private_key
        key = loader(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise LockgateError(f"signing key {path} is not an unencrypted Ed25519 private key: "
                            f"{' '.join(str(e).split())[:200]}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LockgateError(f"signing key {path} is not an Ed25519 key (create one with `ssh-keygen -t ed25519`)")
    return key


def sign_with(private_key, payload: str) -> str:
    """Base64 Ed25519 signature of ``payload`` with a loaded private key."""
    return base64.b64encode(private_key.sign(payload.encode())).decode()
