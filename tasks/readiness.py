"""Wait for a server to answer before its first use: the Prefect API, an MLflow tracking server.

A server counted as running before it listens fails the first call made to it (Prefect's
"Failed to reach API at ..."), and on a busy host it can take a minute to listen. So the
commands poll its health endpoint first, up to LOCKGATE_SERVER_READY_TIMEOUT_SECONDS, and
otherwise fail with one line naming the server, the limit and what to do.

No framework import: it runs before Prefect or MLflow is imported.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from typing import Callable
from urllib.parse import urlparse

from tasks.errors import LockgateError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
NOTE_AFTER_SECONDS = 5.0  # a wait longer than a normal start is said once on stderr, so a hang is not silent


def answers(url: str, *, timeout: float = 2.0) -> bool:
    """Whether the server at ``url`` answers HTTP: any reply below 500 (a 401 from a server that wants a key is
    an answer; a proxy's 502/503 while its backend starts is not)."""
    host = urlparse(url).hostname or ""
    # a loopback server is never reached through an HTTP proxy of the environment (http_proxy without no_proxy)
    opener = (urllib.request.build_opener(urllib.request.ProxyHandler({})) if host in LOOPBACK
              else urllib.request.build_opener())
    try:
        with opener.open(url, timeout=timeout) as reply:
            return reply.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (OSError, ValueError):
        return False


def seconds(limit: float) -> str:
    return f"{limit:g} s"


def wait_until_answers(url: str, *, limit: float, failure: Callable[[], str], gone: Callable[[], str | None] = lambda: None,
                       note: str | None = None, poll: float = 0.25) -> None:
    """Poll ``url`` until it answers (:func:`answers`), for at most ``limit`` seconds.

    ``failure()`` is the one-line message when the limit passes; ``gone()`` a message when the server can no longer
    answer (its process exited), checked between polls; ``note`` is printed once on stderr when the wait outlasts
    a normal start. Raises LockgateError."""
    started = time.monotonic()
    noted = False
    while not answers(url):
        problem = gone()
        if problem:
            raise LockgateError(problem)
        waited = time.monotonic() - started
        if waited > limit:
            raise LockgateError(failure())
        if note and not noted and waited > NOTE_AFTER_SECONDS:
            print(f"lockgate: {note}", file=sys.stderr, flush=True)
            noted = True
        time.sleep(poll)
