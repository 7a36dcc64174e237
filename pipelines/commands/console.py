"""The one rich console every command prints through."""

from __future__ import annotations

import sys

from rich.console import Console

# Rich uses 80 columns when not on a terminal; logs and CI output read better wider.
console = Console(width=None if sys.stdout.isatty() else 140)
