"""Names that become paths, checked at the edge, and paths that stay under their root.

Every user-given name (contract, model, partition, data stem, run label) passes
:func:`checked_name` before it is joined to a folder, and :func:`path_under` re-checks the
resolved result, so a symlink or a name that slipped past cannot lead a write outside
LOCKGATE_HOME (or the folder the caller names).
"""

from __future__ import annotations

from pathlib import Path

from data_contracts.names import name_problem
from tasks.errors import LockgateError


def checked_name(value: object, what: str) -> str:
    """``value`` if it is a safe path component (data_contracts/names.py), else a one-line LockgateError."""
    problem = name_problem(value)
    if problem is not None:
        raise LockgateError(f"{what} {value!r} is not a safe name: it {problem}")
    return value  # type: ignore[return-value]


def path_under(root: Path, *names: str, what: str = "name") -> Path:
    """``root / names...`` after checking each name, refused unless it resolves inside ``root``."""
    path = Path(root).joinpath(*(checked_name(n, what) for n in names))
    base = Path(root).resolve()
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise LockgateError(f"{what} {'/'.join(names)!r} leads outside {base} (to {resolved}); refused")
    return path


def new_folder(parent: Path, stamp: str) -> Path:
    """``parent/stamp`` made now (``stamp-2``, ... when taken): evidence written there never replaces earlier
    evidence (reports, model cards)."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"no free folder under {parent} for {stamp}")
