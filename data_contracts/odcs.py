"""Conformance to the Open Data Contract Standard, judged by the standard's own package.

``open-data-contract-standard`` (bitol-io) ships ODCS as a pydantic model
(:class:`OpenDataContractStandard`) and as the standard's JSON schema (``schema.json``,
ODCS v3.0.0-v3.2.0 documents). A contract document must pass both before lockgate's own,
stricter checks run (:mod:`data_contracts.contract`):

- the pydantic model parses the document (types of known keys; unknown top-level keys);
- the JSON schema adds what the model leaves optional or untyped: required keys
  (``apiVersion``, ``kind``, ``id``, ``version``), enumerations (``apiVersion``,
  ``logicalType``, ...) and unknown keys at every level.

The first problem is raised as :class:`OdcsViolation` with its key path, which the
contract loader turns into its one-line error.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import metadata, resources
from typing import Any

from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import ValidationError

ODCS_PACKAGE = "open-data-contract-standard"
ODCS_PACKAGE_VERSION = metadata.version(ODCS_PACKAGE)


class OdcsViolation(ValueError):
    """A document that is not valid ODCS: ``loc`` is the key path of the first problem."""

    def __init__(self, loc: tuple[Any, ...], message: str, more: int = 0):
        super().__init__(message)
        self.loc, self.message, self.more = loc, message, more


def odcs_document(raw: dict[str, Any]) -> OpenDataContractStandard:
    """Parse ``raw`` (the YAML mapping) with the ODCS package after checking it against the standard's schema.

    Raises:
      OdcsViolation: the first problem, with its key path.
    """
    try:
        document = OpenDataContractStandard.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS)))
        message = {"extra_forbidden": "unknown key", "missing": "required key missing"}.get(first["type"], first["msg"])
        raise OdcsViolation(loc, f"{message}", len(errors) - 1) from None
    # "Unevaluated properties" errors echo another error in the same object (a failed oneOf branch leaves its
    # keys unevaluated), so any other error comes first, the most specific (deepest) first.
    errors = sorted(_schema_validator().iter_errors(raw), key=lambda e: (e.validator in _ECHO, -len(e.absolute_path)))
    if errors:
        echoes = sum(e.validator in _ECHO for e in errors)
        raise OdcsViolation(*_schema_problem(errors[0]), len(errors) - 1 - (echoes if echoes < len(errors) else 0))
    return document


_ECHO = ("unevaluatedProperties", "additionalProperties")
_UNION_TAGS = {"Team", "list", "str", "float", "int", "bool", "dict"}


@cache
def _schema_validator():
    import jsonschema

    schema = json.loads(resources.files("open_data_contract_standard").joinpath("schema.json").read_text("utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def _schema_problem(error) -> tuple[tuple[Any, ...], str]:
    """Key path and message of a JSON-schema error, with a oneOf/anyOf failure narrowed to its best branch."""
    import jsonschema

    if error.context:
        error = jsonschema.exceptions.best_match(error.context)
    loc = tuple(error.absolute_path)
    extra = re.search(r"\((.+) (?:was|were) unexpected\)", error.message)
    if error.validator in ("additionalProperties", "unevaluatedProperties") and extra:
        keys = re.findall(r"'([^']+)'", extra.group(1))
        return loc + (keys[0],), "unknown key"
    if error.validator == "required":
        key = re.match(r"'([^']+)'", error.message)
        return (loc + (key.group(1),), "required key missing") if key else (loc, f"{error.message}")
    if error.validator == "oneOf":  # valid under more than one alternative
        if "quality" in loc:
            return loc, "more than one comparison operator; ODCS allows one per rule (mustBe, mustBeBetween, ...)"
        return loc, "matches more than one alternative of the ODCS schema"
    return loc, error.message[:300]
