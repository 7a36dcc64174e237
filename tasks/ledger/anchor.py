"""The ledger's anchor: the seq and hash of its last row, kept outside the database.

A hash chain shows an edited, inserted, reordered or deleted row, except rows
deleted from the end: what remains is still a valid chain. The anchor file records
the last row (``head``) and, while an append is in flight, the row being committed
(``pending``), so a crash between the database commit and the anchor update is told
apart from a deletion. Every read-modify-write of the file holds an exclusive
``flock`` on a lock file beside it, and the head only ever moves forward.

Default: beside a SQLite ledger (``ledger.db.anchor.json``). A Postgres ledger shared
by several machines needs the anchor on storage every writer shares
(``LOCKGATE_LEDGER_ANCHOR``), or none, in which case tail deletion goes unnoticed.

Signed head: with the ledger key (``LOCKGATE_LEDGER_KEY``, an Ed25519 key kept outside
the ledger's folder) every mark carries a signature of (seq, hash). Whoever can write
the database and the anchor can drop the triggers, rewrite rows and recompute every
hash and the anchor, but cannot sign the new head without the key: the check then
names the unsigned or wrongly signed mark.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path


HEAD_DOMAIN = "lockgate-ledger-head-v1"


def head_payload(seq: int, entry_hash: str) -> str:
    """What the ledger key signs for the row ``seq`` with hash ``entry_hash``."""
    return f"{HEAD_DOMAIN}:{seq}:{entry_hash}"


class Anchor:
    """``signer``: a callable giving the ledger's Ed25519 private key (marks are signed; called on the first write
    only); ``verifier``: its public key line (marks must carry its signature to count)."""

    def __init__(self, path: Path, *, signer=None, verifier: str | None = None):
        self.path = Path(path)
        self.signer, self.verifier = signer, verifier

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None

    def _write(self, state: dict) -> None:
        if self.signer is not None:
            from tasks.signatures import sign_with

            key = self.signer()
            for mark in (state.get("head"), state.get("pending")):
                if mark:
                    mark["sig"] = sign_with(key, head_payload(mark["seq"], mark["hash"]))
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, self.path)

    def before_commit(self, last_seq: int, last_hash: str, seq: int, entry_hash: str) -> None:
        """Inside the append transaction: the committed end is ``last_*``; ``seq`` is about to be committed."""
        with self._locked():
            head = {"seq": last_seq, "hash": last_hash} if last_seq else None
            self._write({"head": head, "pending": {"seq": seq, "hash": entry_hash}})

    def after_commit(self, seq: int, entry_hash: str) -> None:
        with self._locked():
            state = self.read() or {"head": None, "pending": None}
            if (state.get("head") or {"seq": 0})["seq"] >= seq:
                return  # a later append already moved the head past this row
            pending = state.get("pending")
            self._write({"head": {"seq": seq, "hash": entry_hash},
                         "pending": pending if pending and pending["seq"] > seq else None})

    def check(self, last_seq: int, hashes: dict[int, str]) -> tuple[int | None, str | None, str]:
        """(first bad seq, problem, note) for a chain whose last row is ``last_seq`` (``hashes``: seq -> hash)."""
        try:
            with self._locked():
                state = self.read()
        except PermissionError:  # an auditor with read-only access: a read without the lock is still a check
            state = self.read()
        if state is None:
            if last_seq == 0:
                return None, None, f"anchor {self.path}: none yet (empty ledger)"
            return 1, f"anchor file {self.path} is missing: rows deleted from the end cannot be ruled out", ""
        marks = [m for m in (state.get("head"), state.get("pending")) if m]
        for mark in marks:
            if mark["seq"] == last_seq and hashes.get(last_seq) == mark["hash"]:
                if self.verifier is None:
                    unchecked = (" (its signature is not checked: no ledger key here; set LOCKGATE_LEDGER_PUBLIC_KEY)"
                                 if mark.get("sig") else "")
                    return None, None, f"anchor {self.path}: last row {last_seq} matches{unchecked}"
                from tasks.signatures import key_fingerprint, verified_key

                if verified_key([self.verifier], head_payload(mark["seq"], mark["hash"]), mark.get("sig", "")) is None:
                    return last_seq, (f"row {last_seq} matches the anchor, but the anchor's record of it is not signed "
                                      f"by the ledger key {key_fingerprint(self.verifier)}: the anchor was written "
                                      "without the key (rows rewritten and hashes recomputed?)"), ""
                return None, None, (f"anchor {self.path}: last row {last_seq} matches, signed by the ledger key "
                                    f"{key_fingerprint(self.verifier)}")
        head = state.get("head") or {"seq": 0, "hash": None}
        if last_seq < head["seq"]:
            gone = f"row {last_seq + 1}" + (f" to row {head['seq']}" if head["seq"] > last_seq + 1 else "")
            return last_seq + 1, (f"{gone} deleted from the end: the anchor records row {head['seq']} "
                                  f"(hash {head['hash'][:12]}…) but the ledger ends at row {last_seq}"), ""
        if head["seq"] and hashes.get(head["seq"]) != head["hash"]:
            return head["seq"], (f"row {head['seq']} is not the row the anchor recorded (hash "
                                 f"{head['hash'][:12]}…): rows from {head['seq']} on were replaced"), ""
        known = max(m["seq"] for m in marks if hashes.get(m["seq"]) == m["hash"]) if marks else 0
        return known + 1, (f"row {known + 1} was appended outside lockgate: the anchor ends at row {known} "
                           f"but the ledger goes on to row {last_seq}"), ""
