"""An incident's notification: one POST of Slack-compatible JSON to the configured webhook, bounded and never fatal.

The body is ``{"text": "<one line>", "lockgate": {<the incident's fields>}}``: Slack (and Mattermost, Teams' and
Discord's Slack-compatible endpoints) show ``text`` and ignore the rest; a receiver of its own routes on the fields.
The URL is a secret (a Slack webhook URL is its own credential): :func:`redacted` keeps only its scheme and host,
and no message written anywhere carries more. Connection errors, timeouts, HTTP 5xx and 429 are retried
(``retries`` times, 0.5 s then doubled); any other answer is final. The outcome is a line for the ledger.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

FIRST_RETRY_DELAY = 0.5


class Delivery(BaseModel):
    """What happened to one notification: delivered or not, after how many attempts, and why (URL redacted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivered: bool
    attempts: int
    status: int | None = None
    detail: str

    def line(self) -> str:
        return self.detail


def redacted(url: str) -> str:
    """``https://hooks.slack.com/…``: scheme and host only (the path and query hold the webhook's secret)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/…"


def _scrubbed(text: str, url: str) -> str:
    """An error message with every copy of the URL (and its path) replaced by its redacted form."""
    path = urlsplit(url).path
    text = text.replace(url, redacted(url))
    return text.replace(path, "/…") if len(path) > 1 else text


def post_webhook(url: str | None, body: dict, *, timeout: float = 5.0, retries: int = 2,
                 sleep=time.sleep) -> Delivery:
    """POST ``body`` as JSON to ``url``; never raises. No URL: not sent, and the outcome says so."""
    if not url:
        return Delivery(delivered=False, attempts=0, detail="not sent: no webhook configured "
                        "(LOCKGATE_INCIDENT_WEBHOOK_URL)")
    where = redacted(url)
    if urlsplit(url).scheme not in ("http", "https"):
        return Delivery(delivered=False, attempts=0, detail=f"not sent: the webhook {where} is not an http(s) URL")
    data = json.dumps(body, default=str).encode()
    problem, status = "", None
    for attempt in range(1, retries + 2):
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "lockgate"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) checked above
                status = answer.status
            return Delivery(delivered=True, attempts=attempt, status=status,
                            detail=f"delivered to {where} (HTTP {status}, attempt {attempt})")
        except urllib.error.HTTPError as e:
            status, problem = e.code, f"HTTP {e.code} {e.reason}"
            if e.code < 500 and e.code != 429:
                break  # the receiver refused this body: sending it again changes nothing
        except (urllib.error.URLError, OSError, ValueError) as e:  # refused, unreachable, timed out, bad URL
            status, problem = None, f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"
        if attempt <= retries:
            sleep(FIRST_RETRY_DELAY * 2 ** (attempt - 1))
    detail = _scrubbed(" ".join(problem.split())[:300], url)
    return Delivery(delivered=False, attempts=attempt, status=status,
                    detail=f"NOT delivered to {where} after {attempt} attempt(s): {detail}")
