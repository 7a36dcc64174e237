"""Kill points for the fault tests: LOCKGATE_FAILPOINT=<point> SIGKILLs the process when it reaches that point.

Points: the promotion and rollback steps (tasks/governance/promotion.py FAILPOINTS), ``approved`` (lifecycle, after
the approval row), ``partition-<status>`` (batch, output in place, no ledger row yet), ``version-created``
(registration: the version is in the registry, its ``version.registered`` row not yet written).
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    """SIGKILL this process here when LOCKGATE_FAILPOINT names the point: how the fault tests crash each step."""
    if os.environ.get("LOCKGATE_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
