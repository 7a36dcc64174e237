"""One TLS context per process for Prefect's API clients.

Prefect 3 builds a new ``ssl.SSLContext`` for every ``PrefectClient`` and ``SyncPrefectClient`` it creates, unless
the caller passes one in ``httpx_settings["verify"]``: by default a verified context over certifi's bundle (or
``PREFECT_API_SSL_CERT_FILE``), parsed again each time by OpenSSL, and an unverified one under
``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``. It does so for an ``http://`` API too, and it creates clients often: one
per flow run outside a client context, per ``get_client()``, per forked process. Each context costs 20-30 ms of CPU
(measured here: a ``SyncPrefectClient`` 28.8 ms with its own context, 0.3 ms with a shared one); the lifecycle
tests' module made 17 of them in one process (5 with this), and py-spy counted about 27 samples-s of them in a
whole test run, most in forked lifecycles and in loops polling the API.

:func:`share_tls_context` makes both client classes take the context Prefect would have built, built once per
process for each combination of the two settings (and of the bundle file's size and mtime, so a replaced bundle is
read again), whenever the caller passed no ``verify`` of its own. Prefect's own logic is unchanged: the same
settings pick the same kind of context; only the copy is shared, as httpx recommends for its clients and as
Prefect's ``httpx_settings`` allows. Flow modules call it at import, before any flow runs.
"""

from __future__ import annotations

import os
import ssl
from functools import lru_cache, wraps

MARK = "lockgate_shared_tls"


@lru_cache(maxsize=8)
def _context(skip_verify: bool, cafile: str, stamp: tuple[int, int]) -> ssl.SSLContext:
    """The context Prefect's client builds for these settings (prefect/client/orchestration/__init__.py)."""
    if skip_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=cafile)


def tls_context() -> ssl.SSLContext:
    """This process's shared context for the current Prefect settings."""
    import certifi
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    skip = bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value())
    cafile = "" if skip else (PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    try:
        st = os.stat(cafile) if cafile else None
    except OSError:
        st = None  # a missing bundle: ssl raises for it below, as it would in Prefect's own client
    return _context(skip, cafile, (st.st_mtime_ns, st.st_size) if st else (0, 0))


def _sharing(init):
    @wraps(init)
    def __init__(self, api, *args, httpx_settings=None, **kwargs):
        if not httpx_settings or "verify" not in httpx_settings:  # a caller's own verify is kept, as Prefect does
            httpx_settings = {**(httpx_settings or {}), "verify": tls_context()}
        init(self, api, *args, httpx_settings=httpx_settings, **kwargs)

    setattr(__init__, MARK, True)
    return __init__


@lru_cache(maxsize=1)
def share_tls_context() -> bool:
    """Make Prefect's API clients in this process share one TLS context; True once they do."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    for cls in (PrefectClient, SyncPrefectClient):
        if not getattr(cls.__init__, MARK, False):
            cls.__init__ = _sharing(cls.__init__)
    return True
