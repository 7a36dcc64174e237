"""The one rule for a name a user types that becomes part of a path (contract, model, partition, data stem).

Letters, digits, '.', '_', '-' and '=' (hive partitions: date=2026-11-05); starting with a letter or digit; at most 128
characters; never '..'. No separator, no drive, no leading dot: such a name stays one
path component under the folder it is joined to. Both the contract loader and the
gates (tasks/paths.py) hold names to it.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 128
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]*")


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a safe name, or None when it is."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
    if ".." in value:
        return "must not contain '..'"
    if not _SAFE.fullmatch(value):
        return ("may hold only letters, digits, '.', '_', '-' and '=', and must start with a letter or digit "
                "(no '/', '\\', spaces or other characters)")
    return None
