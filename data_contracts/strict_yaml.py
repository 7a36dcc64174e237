"""The YAML loader for every file a user writes (contracts, policies): safe, and strict.

A SafeLoader that refuses a key given twice in one mapping (YAML keeps the last one,
so `max_quarantine_share: 0.05` then `1.0` would silently turn a gate off), keeps dates
and timestamps as the strings they were written as, refuses nesting deeper than
``MAX_DEPTH`` levels (PyYAML composes recursively: a deeply nested file would end in a
RecursionError instead of a message), and refuses aliases (``*name``): an alias can make
a list that contains itself, or expand exponentially, and no contract or policy needs one.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Generic, TypeVar

import yaml

MAX_DEPTH = 64


class StrictLoader(yaml.SafeLoader):
    """SafeLoader: duplicate keys and nesting deeper than MAX_DEPTH are errors; timestamps stay strings."""

    _depth = 0

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML's hook
        if self.check_event(yaml.events.AliasEvent):  # *name: a node that may contain itself, or expand without bound
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed: write the value out",
                                              self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})", key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_strict(text: str) -> Any:
    """Parse YAML text with :class:`StrictLoader`; raises ``yaml.YAMLError`` (see :func:`yaml_problem`)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what is wrong and where (line, column)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


T = TypeVar("T")


class KeptByText(Generic[T]):
    """The last ``limit`` results of checking a file's text, by the text's sha256: what a process reads again and
    again (every gate of a lifecycle reads the policy and the version's contract) is parsed and checked once. Only
    a valid result is kept; the caller hands out a copy of it. Safe to share between threads (a batch run's
    partitions load the policy at once)."""

    def __init__(self, limit: int = 16):
        self._limit, self._kept, self._lock = limit, {}, threading.Lock()

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, text: str) -> T | None:
        key = self._key(text)
        with self._lock:
            return self._kept.get(key)

    def keep(self, text: str, value: T) -> None:
        key = self._key(text)
        with self._lock:
            if key not in self._kept and len(self._kept) >= self._limit:
                self._kept.pop(next(iter(self._kept)))  # the oldest
            self._kept[key] = value
