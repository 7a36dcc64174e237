"""Dataset provenance and licence in a data contract: where the data comes from, under what licence, who owns it,
and what personal data it holds.

ODCS (v3.0-v3.2) has fields for some of it, and lockgate reads those where they exist:

- **owner**: ``team`` (a member with role ``owner``, else the team name), as ``Contract.owner`` reads it;
- **per-column classification**: each property's ``classification`` (free text in ODCS: ``public``, ``internal``,
  ``confidential``, ``identifier``, ``pii``, ...);
- **links** (the data's catalogue page, its licence text, the generator): top-level ``authoritativeDefinitions``
  (``{url, type, description}``), shown as they are.

ODCS has no field for a dataset's source, licence or personal-data category, so these are top-level
``customProperties`` (one ``{property, value}`` each), next to lockgate's other settings:

- ``dataSource``: where the data comes from, in words (system of record, vendor and delivery, URL, generator);
- ``license``: an SPDX license expression (``CC-BY-4.0``, ``MIT OR Apache-2.0``, ``LicenseRef-<name>`` for terms
  without an SPDX id, e.g. ``LicenseRef-Proprietary``), checked against the SPDX license list that ships with the
  ``packaging`` library; ``unknown`` (or SPDX's ``NOASSERTION``) is a placeholder: no licence recorded yet;
- ``personalData``: one of :data:`PERSONAL_DATA` for the dataset as a whole.

A malformed value is refused when the contract loads, naming the key (``customProperties[7](license).value``);
a missing one is a ``lockgate contract lint`` warning; a policy with ``governance.require_dataset_licence`` refuses
to register a reference dataset whose contract has no licence (:func:`licence_refusal`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE_KEY, LICENSE_KEY, PERSONAL_DATA_KEY = "dataSource", "license", "personalData"
PROVENANCE_KEYS = (SOURCE_KEY, LICENSE_KEY, PERSONAL_DATA_KEY)
UNKNOWN = "unknown"
_PLACEHOLDERS = {"unknown", "noassertion"}  # no licence recorded (yet); SPDX's NOASSERTION says the same
PersonalData = Literal["none", "anonymised", "pseudonymised", "personal", "special_category", "unknown"]
PERSONAL_DATA: tuple[str, ...] = PersonalData.__args__
# column classifications that say a column holds personal data (for the dataset-level consistency warning)
PERSONAL_CLASSIFICATIONS = {"pii", "personal", "sensitive", "special_category", "restricted"}


class Provenance(BaseModel):
    """A contract's provenance, licence, owner and personal-data classification, as the model card shows them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(None, description="customProperties dataSource: where the data comes from.")
    license: str | None = Field(None, description="customProperties license: the SPDX expression in its canonical "
                                "form; None when absent or a placeholder (unknown, NOASSERTION).")
    license_given: str | None = Field(None, description="The license value as written (e.g. 'unknown').")
    owner: str | None = Field(None, description="ODCS team: the member with role owner, else the team name.")
    personal_data: str | None = Field(None, description="customProperties personalData (dataset level).")
    column_classification: dict[str, str | None] = Field(
        default_factory=dict, description="ODCS property classification per column (None: not classified).")
    links: list[dict[str, str]] = Field(default_factory=list, description="ODCS top-level authoritativeDefinitions.")

    @property
    def has_license(self) -> bool:
        return self.license is not None

    def classification_summary(self) -> str:
        """``confidential: 9, internal: 4, identifier: 1`` (unclassified columns counted as such)."""
        counts: dict[str, int] = {}
        for value in self.column_classification.values():
            counts[value or "unclassified"] = counts.get(value or "unclassified", 0) + 1
        return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


def license_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable ``license`` value (an SPDX expression or a placeholder), else None."""
    if not isinstance(value, str) or not value.strip():
        return "must be an SPDX license expression (e.g. CC-BY-4.0), LicenseRef-<name>, or unknown"
    if value.strip().lower() in _PLACEHOLDERS:
        return None
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    try:
        canonicalize_license_expression(value)
    except InvalidLicenseExpression as exc:
        return (f"{value!r} is not an SPDX license expression ({exc}); use an SPDX id such as CC-BY-4.0, an "
                "expression such as MIT OR Apache-2.0, LicenseRef-<name> for other terms, or unknown")
    return None


def canonical_license(value: str | None) -> str | None:
    """The SPDX expression in canonical form (``cc-by-4.0`` -> ``CC-BY-4.0``); None for absent or placeholder."""
    if value is None or value.strip().lower() in _PLACEHOLDERS:
        return None
    from packaging.licenses import canonicalize_license_expression

    return str(canonicalize_license_expression(value))


def value_problem(key: str, value: Any) -> str | None:
    """Why a provenance custom property's value is malformed, else None (``key`` is one of PROVENANCE_KEYS)."""
    if key == LICENSE_KEY:
        return license_problem(value)
    if key == SOURCE_KEY:
        return None if isinstance(value, str) and value.strip() else "must be a non-empty string (where the data " \
            "comes from), or unknown"
    if key == PERSONAL_DATA_KEY:
        return None if value in PERSONAL_DATA else f"must be one of {', '.join(PERSONAL_DATA)}, got {value!r}"
    raise KeyError(key)


def provenance_of(contract) -> Provenance:
    """The provenance of a loaded :class:`~data_contracts.contract.Contract` (its values were checked at load)."""
    values = {cp.property: cp.value for cp in contract.customProperties or [] if cp.property in PROVENANCE_KEYS}
    given = values.get(LICENSE_KEY)
    return Provenance(
        source=values.get(SOURCE_KEY), license=canonical_license(given), license_given=given,
        owner=contract.owner, personal_data=values.get(PERSONAL_DATA_KEY),
        column_classification={p.name: p.classification for p in contract.table.properties},
        links=[{"type": d.type, "url": d.url, **({"description": d.description} if d.description else {})}
               for d in contract.authoritativeDefinitions or []])


def provenance_warnings(contract) -> list[tuple[str, str]]:
    """(key path, message) for each missing provenance field: what ``lockgate contract lint`` warns about."""
    p = provenance_of(contract)
    out = []
    if p.license is None:
        out.append((f"customProperties: {LICENSE_KEY}",
                    f"no dataset licence{f' ({p.license_given})' if p.license_given else ''}: record the data's SPDX "
                    "license id (LicenseRef-<name> for your own terms); a policy with "
                    "governance.require_dataset_licence refuses to register without one"))
    if p.source is None or p.source.strip().lower() == UNKNOWN:
        out.append((f"customProperties: {SOURCE_KEY}", "no data source: say where the data comes from"))
    if p.personal_data is None or p.personal_data == UNKNOWN:
        out.append((f"customProperties: {PERSONAL_DATA_KEY}",
                    f"personal data not classified: one of {', '.join(PERSONAL_DATA[:-1])}"))
    unclassified = [c for c, v in p.column_classification.items() if not v or v.strip().lower() == UNKNOWN]
    if unclassified:
        out.append((f"schema[0]({contract.table.name}).properties",
                    f"no classification on {len(unclassified)} column(s): {', '.join(unclassified[:8])}"
                    + (", ..." if len(unclassified) > 8 else "")))
    personal = sorted(c for c, v in p.column_classification.items() if (v or "").lower() in PERSONAL_CLASSIFICATIONS)
    if personal and p.personal_data in ("none", "anonymised"):
        out.append((f"customProperties: {PERSONAL_DATA_KEY}",
                    f"personalData is {p.personal_data} but column(s) {', '.join(personal)} are classified personal"))
    return out


def licence_refusal(contract, *, policy_name: str) -> str | None:
    """The one-line refusal to register a reference dataset whose contract has no licence, else None."""
    p = provenance_of(contract)
    if p.license is not None:
        return None
    found = f"its {LICENSE_KEY} is {p.license_given!r}" if p.license_given else \
        f"it has no customProperties `{LICENSE_KEY}`"
    return (f"contract {contract.name} ({contract.source or 'not from a file'}) records no dataset licence: {found}; "
            f"policy {policy_name} requires one (governance.require_dataset_licence): add an SPDX id "
            "(LicenseRef-<name> for your own terms); nothing registered")
