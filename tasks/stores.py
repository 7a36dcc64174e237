"""The one place where settings choose the backends (registry, ledger) for this process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tasks.ledger.store import Ledger
from tasks.paths import path_under
from tasks.policy import Policy, load_policy
from tasks.registry import MlflowRegistry
from tasks.settings import Settings


@lru_cache(maxsize=8)
def registry_for(settings: Settings) -> MlflowRegistry:
    settings.ensure_home()
    return MlflowRegistry(settings)


@lru_cache(maxsize=8)
def ledger_for(settings: Settings) -> Ledger:
    settings.ensure_home()
    key_path, public = settings.ledger_key_path, settings.ledger_public_key
    head_key = None
    if key_path is not None and (public is None or key_path.exists()):
        from tasks.signatures import ensure_private_key

        head_key = ensure_private_key(key_path)
    return Ledger(settings.ledger_uri, anchor=settings.ledger_anchor_path,
                  lock_timeout=settings.ledger_lock_timeout_seconds, head_key=head_key, head_public_key=public)


def policy_for(settings: Settings) -> Policy:
    return load_policy(settings.policy_file)


def version_evidence_dir(settings: Settings, name: str, version: int) -> Path:
    return path_under(settings.evidence_dir, name, f"v{version}", what="model name")


def cache_dir(settings: Settings) -> Path:
    return settings.home_dir / "cache"
