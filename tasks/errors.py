"""Errors users see as one line at the CLI (no traceback)."""


class LockgateError(Exception):
    """A user-facing error: the message names the thing and what to do about it."""


class GateFailed(LockgateError):
    """A gate decided against the candidate; carries the gate's typed result."""

    def __init__(self, result):
        self.result = result
        super().__init__(result.summary_line())
