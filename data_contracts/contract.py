"""Data contracts in the Open Data Contract Standard (ODCS v3) structure.

A contract is one YAML file per dataset (``data_contracts/<name>.yaml``). It is parsed
into pydantic models that keep ODCS's field names; every level refuses unknown keys, so
a typo (``requried: true``) is an error naming its path instead of a silently missing
check. lockgate's own settings live in ODCS ``customProperties``:

Top level (one ``{property, value}`` entry each):
  ``labelColumn``, ``idColumn``, ``timestampColumn``, ``sliceColumns``,
  ``numericFeatures``, ``categoricalFeatures``, ``driftDefaults``
  (``{numeric: {method, threshold}, categorical: {method, threshold}}``).
  Provenance (:mod:`data_contracts.provenance`): ``dataSource``, ``license`` (SPDX), ``personalData``.
Per property:
  ``drift`` (``{method, threshold}``), overriding ``driftDefaults`` for that column.

Checks that need the whole contract (referenced columns exist, min <= max, regexes
compile, the id column is unique, ...) run at load time. Whether every rule can be
turned into a Great Expectations expectation is decided in :mod:`data_contracts.ge_suite`.

Every document must first be valid ODCS as the ``open-data-contract-standard`` package
defines it (its pydantic model and the standard's JSON schema, :mod:`data_contracts.odcs`);
these models then add lockgate's stricter reading. ODCS v3.0.x and v3.1.0 documents are
accepted (``rule`` is read as the deprecated spelling of ``metric``; ``team`` may be the
v3.0 member list or the v3.1 object), but ``exclusiveMinimum``/``exclusiveMaximum`` take
the v3.1 number form only (the bound itself, exclusive): the package's schema refuses
v3.0's boolean form.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from data_contracts.names import name_problem
from data_contracts.odcs import OdcsViolation, odcs_document
from data_contracts.provenance import PROVENANCE_KEYS
from data_contracts.provenance import value_problem as provenance_value_problem
from data_contracts.strict_yaml import KeptByText, load_strict, yaml_problem

CONTRACTS_DIR = Path(__file__).resolve().parent

SUPPORTED_API_VERSIONS = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0")
LogicalType = Literal["string", "date", "timestamp", "time", "number", "integer", "object", "array", "boolean", "map"]
LIBRARY_METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
PROPERTY_METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues")
SCHEMA_METRICS = ("rowCount", "duplicateValues")
_METRIC_ARGUMENTS = {
    "nullValues": set(),
    "missingValues": {"missingValues"},
    "invalidValues": {"validValues", "pattern"},
    "duplicateValues": set(),  # property level; schema level takes "properties"
    "rowCount": set(),
}
DriftMethod = Literal[
    "anderson", "chisquare", "cramer_von_mises", "ed", "empirical_mmd", "es", "fisher_exact", "g_test",
    "hellinger", "jensenshannon", "kl_div", "ks", "mannw", "psi", "t_test", "TVD", "wasserstein", "z",
]  # fmt: skip


class ContractError(ValueError):
    """A contract that cannot be read or used; the message (one line) names the file and the key path.

    A user error: show the message, not a traceback. (``data_contracts`` stays
    independent of the gates package, so this is not a ``LockgateError``.)
    """


# --------------------------------------------------------------------------- ODCS


class _Odcs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class CustomProperty(_Odcs):
    """ODCS custom property: a key/value pair outside the standard."""

    property: str = Field(description="Key, camelCase.")
    value: Any = Field(None, description="Value of any YAML type.")
    id: str | None = Field(None, description="Optional stable id.")
    description: str | None = Field(None, description="What the property means.")


class AuthoritativeDefinition(_Odcs):
    """ODCS link to an external definition."""

    url: str = Field(description="Where the definition lives.")
    type: str = Field(description="Kind, e.g. businessDefinition, implementation.")
    id: str | None = Field(None, description="Optional stable id.")
    description: str | None = Field(None, description="What the link is.")


class DataQuality(_Odcs):
    """ODCS data quality rule (``type: library`` metrics are what lockgate executes)."""

    id: str | None = Field(None, description="Optional stable id.")
    name: str | None = Field(None, description="Short rule name.")
    description: str | None = Field(None, description="What the rule checks.")
    type: Literal["library", "text", "sql", "custom"] | None = Field(
        None, description="Rule kind; library is the default when metric is set."
    )
    metric: str | None = Field(None, description="Library metric: nullValues, missingValues, invalidValues, ...")
    rule: str | None = Field(None, description="Deprecated (v3.0) spelling of metric.")
    arguments: dict[str, Any] | None = Field(None, description="Metric arguments, e.g. validValues, pattern.")
    mustBe: Any = Field(None, description="Metric must equal this value.")
    mustNotBe: Any = Field(None, description="Metric must differ from this value.")
    mustBeGreaterThan: float | None = Field(None, description="Metric > value.")
    mustBeGreaterOrEqualTo: float | None = Field(None, description="Metric >= value.")
    mustBeLessThan: float | None = Field(None, description="Metric < value.")
    mustBeLessOrEqualTo: float | None = Field(None, description="Metric <= value.")
    mustBeBetween: list[float] | None = Field(None, min_length=2, max_length=2, description="[low, high].")
    mustNotBeBetween: list[float] | None = Field(None, min_length=2, max_length=2, description="[low, high].")
    unit: str | None = Field(None, description="rows (default) or percent.")
    dimension: str | None = Field(None, description="accuracy, completeness, conformity, consistency, ...")
    method: str | None = Field(None, description="E.g. reconciliation.")
    severity: str | None = Field(None, description="info, warning, error.")
    businessImpact: str | None = Field(None, description="Consequence of a failure.")
    schedule: str | None = Field(None, description="Scheduler configuration, e.g. a cron expression.")
    scheduler: str | None = Field(None, description="Scheduler name, e.g. cron.")
    tags: list[str] | None = Field(None, description="Tags.")
    customProperties: list[CustomProperty] | None = Field(None, description="Custom properties.")
    authoritativeDefinitions: list[AuthoritativeDefinition] | None = Field(None, description="Links.")
    query: str | None = Field(None, description="SQL of a type: sql rule.")
    engine: str | None = Field(None, description="Engine of a type: custom rule.")
    implementation: str | dict[str, Any] | None = Field(None, description="Body of a type: custom rule.")

    @property
    def metric_name(self) -> str | None:
        return self.metric or self.rule

    @property
    def kind(self) -> str:
        return self.type or "library"


class LogicalTypeOptions(_Odcs):
    """ODCS logicalTypeOptions; which keys apply depends on the logicalType."""

    minimum: float | str | None = Field(None, description="Smallest allowed value (numbers; dates as strings).")
    maximum: float | str | None = Field(None, description="Largest allowed value (numbers; dates as strings).")
    exclusiveMinimum: float | str | None = Field(None, description="Values are > this (ODCS v3.1+: a number).")
    exclusiveMaximum: float | str | None = Field(None, description="Values are < this (ODCS v3.1+: a number).")
    multipleOf: float | None = Field(None, description="Values are multiples of this number.")
    format: str | None = Field(None, description="Storage or string format, e.g. i64, f64, email, yyyy-MM-dd.")
    pattern: str | None = Field(None, description="Regex a string value must match.")
    minLength: int | None = Field(None, ge=0, description="Minimum string length.")
    maxLength: int | None = Field(None, ge=0, description="Maximum string length.")
    timezone: bool | None = Field(None, description="Whether timestamp values carry a time zone.")
    defaultTimezone: str | None = Field(None, description="Time zone of the values, e.g. UTC.")
    maxProperties: int | None = Field(None, ge=0, description="object: maximum number of properties.")
    minProperties: int | None = Field(None, ge=0, description="object: minimum number of properties.")
    required: list[str] | None = Field(None, description="object: property names that must exist.")
    maxItems: int | None = Field(None, ge=0, description="array: maximum number of items.")
    minItems: int | None = Field(None, ge=0, description="array: minimum number of items.")
    uniqueItems: bool | None = Field(None, description="array: items are unique.")

    def lower_bound(self) -> tuple[float | str, bool] | None:
        """(value, exclusive) of the lower bound: ``exclusiveMinimum`` if set, else ``minimum``; None: unbounded."""
        return _bound(self.minimum, self.exclusiveMinimum)

    def upper_bound(self) -> tuple[float | str, bool] | None:
        """(value, exclusive) of the upper bound: ``exclusiveMaximum`` if set, else ``maximum``; None: unbounded."""
        return _bound(self.maximum, self.exclusiveMaximum)


def _bound(inclusive: float | str | None, exclusive: float | str | None) -> tuple[float | str, bool] | None:
    if exclusive is not None:
        return exclusive, True
    return None if inclusive is None else (inclusive, False)


_NUMERIC_OPTIONS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "format"}
_OPTIONS_BY_TYPE: dict[str, set[str]] = {
    "integer": _NUMERIC_OPTIONS,
    "number": _NUMERIC_OPTIONS,
    "string": {"minLength", "maxLength", "pattern", "format"},
    "date": {"format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "timestamp": {
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "timezone",
        "defaultTimezone",
    },
    "time": {"format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "timezone", "defaultTimezone"},
    "object": {"maxProperties", "minProperties", "required"},
    "array": {"maxItems", "minItems", "uniqueItems"},
    "boolean": set(),
    "map": set(),
}


class SchemaProperty(_Odcs):
    """ODCS property: a column of the table."""

    name: str = Field(description="Column name.")
    id: str | None = Field(None, description="Optional stable id.")
    physicalName: str | None = Field(None, description="Physical column name.")
    physicalType: str | None = Field(None, description="Physical type in the source, e.g. int64, double, string.")
    logicalType: LogicalType | None = Field(None, description="Logical type; drives the dtype check.")
    logicalTypeOptions: LogicalTypeOptions | None = Field(None, description="Ranges, patterns, time zone, ...")
    description: str | None = Field(None, description="What the column holds.")
    businessName: str | None = Field(None, description="Business name.")
    required: bool = Field(False, description="Values must not be null.")
    unique: bool = Field(False, description="Values are unique within a batch.")
    primaryKey: bool = Field(False, description="Part of the primary key (implies required and unique).")
    primaryKeyPosition: int = Field(-1, description="Position in the primary key, from 1.")
    partitioned: bool = Field(False, description="Used to partition the data.")
    partitionKeyPosition: int = Field(-1, description="Position in the partition key, from 1.")
    classification: str | None = Field(None, description="E.g. public, internal, confidential, identifier, pii.")
    encryptedName: str | None = Field(None, description="Column holding the encrypted value.")
    transformSourceObjects: list[str] | None = Field(None, description="Sources of a derived column.")
    transformLogic: str | None = Field(None, description="Transformation logic.")
    transformDescription: str | None = Field(None, description="Transformation in plain words.")
    examples: list[Any] | None = Field(None, description="Sample values.")
    criticalDataElement: bool = Field(False, description="Critical data element.")
    tags: list[str] | None = Field(None, description="Tags.")
    customProperties: list[CustomProperty] | None = Field(None, description="lockgate: drift.")
    authoritativeDefinitions: list[AuthoritativeDefinition] | None = Field(None, description="Links.")
    quality: list[DataQuality] | None = Field(None, description="Property-level quality rules.")
    relationships: list[dict[str, Any]] | None = Field(None, description="Foreign keys (v3.1).")
    properties: list[dict[str, Any]] | None = Field(None, description="Nested properties (not supported by lockgate).")
    items: dict[str, Any] | None = Field(None, description="Array items (not supported by lockgate).")

    def options(self) -> LogicalTypeOptions:
        return self.logicalTypeOptions or LogicalTypeOptions()

    def quality_rules(self) -> list[DataQuality]:
        return list(self.quality or [])


class SchemaObject(_Odcs):
    """ODCS object: the table."""

    name: str = Field(description="Object name.")
    id: str | None = Field(None, description="Optional stable id.")
    physicalName: str | None = Field(None, description="Physical table name.")
    physicalType: str | None = Field(None, description="table, view, topic, file.")
    logicalType: Literal["object"] | None = Field(None, description="Always object for a table.")
    description: str | None = Field(None, description="What a row is.")
    businessName: str | None = Field(None, description="Business name.")
    dataGranularityDescription: str | None = Field(None, description="Granularity of a row.")
    tags: list[str] | None = Field(None, description="Tags.")
    customProperties: list[CustomProperty] | None = Field(None, description="Custom properties (none used).")
    authoritativeDefinitions: list[AuthoritativeDefinition] | None = Field(None, description="Links.")
    quality: list[DataQuality] | None = Field(None, description="Object-level rules, e.g. rowCount.")
    properties: list[SchemaProperty] = Field(default_factory=list, description="Columns.")
    relationships: list[dict[str, Any]] | None = Field(None, description="Foreign keys (v3.1).")


class TeamMember(_Odcs):
    """ODCS team member."""

    username: str | None = Field(None, description="User name or email.")
    name: str | None = Field(None, description="Display name.")
    role: str | None = Field(None, description="E.g. owner, data steward.")
    description: str | None = Field(None, description="Free text.")
    dateIn: str | None = Field(None, description="Joined (date).")
    dateOut: str | None = Field(None, description="Left (date).")
    replacedByUsername: str | None = Field(None, description="Successor.")
    id: str | None = Field(None, description="Optional stable id.")
    tags: list[str] | None = Field(None, description="Tags.")
    customProperties: list[CustomProperty] | None = Field(None, description="Custom properties.")
    authoritativeDefinitions: list[AuthoritativeDefinition] | None = Field(None, description="Links.")


class Team(_Odcs):
    """ODCS v3.1 team object."""

    name: str | None = Field(None, description="Team name.")
    id: str | None = Field(None, description="Optional stable id.")
    description: str | None = Field(None, description="What the team does.")
    members: list[TeamMember] = Field(default_factory=list, description="Members.")
    tags: list[str] | None = Field(None, description="Tags.")
    customProperties: list[CustomProperty] | None = Field(None, description="Custom properties.")
    authoritativeDefinitions: list[AuthoritativeDefinition] | None = Field(None, description="Links.")


class Description(_Odcs):
    """ODCS dataset description."""

    purpose: str | None = Field(None, description="Why the data exists.")
    usage: str | None = Field(None, description="Intended usage.")
    limitations: str | None = Field(None, description="Known limitations.")
    authoritativeDefinitions: list[AuthoritativeDefinition] | None = Field(None, description="Links.")
    customProperties: list[CustomProperty] | None = Field(None, description="Custom properties.")


# ----------------------------------------------------------------------- lockgate


class _Lockgate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class DriftSetting(_Lockgate):
    """How drift is measured for a column (Evidently stat test name and threshold)."""

    method: DriftMethod = Field(description="Evidently stat test, e.g. psi, wasserstein, jensenshannon.")
    threshold: float = Field(gt=0, description="Drift is detected when the test's statistic crosses this.")


class DriftDefaults(_Lockgate):
    """Drift settings for feature columns without their own ``drift`` custom property."""

    numeric: DriftSetting | None = Field(
        None, description="For numeric features; absent: Evidently's own choice, made on the full data."
    )
    categorical: DriftSetting | None = Field(
        None, description="For categorical features; absent: Evidently's own choice, made on the full data."
    )


class LockgateSettings(_Lockgate):
    """lockgate's settings, read from the contract's top-level customProperties."""

    label_column: str | None = Field(None, alias="labelColumn", description="Label column (absent when scoring).")
    id_column: str = Field(alias="idColumn", description="Unique row id; joins labels and quarantine records.")
    timestamp_column: str | None = Field(None, alias="timestampColumn", description="Event time column.")
    slice_columns: list[str] = Field(default_factory=list, alias="sliceColumns", description="Per-slice metrics.")
    numeric_features: list[str] = Field(default_factory=list, alias="numericFeatures", description="Numeric inputs.")
    categorical_features: list[str] = Field(
        default_factory=list, alias="categoricalFeatures", description="Categorical inputs."
    )
    drift_defaults: DriftDefaults = Field(
        default_factory=DriftDefaults, alias="driftDefaults", description="Default drift settings."
    )


_SETTINGS_KEYS = tuple(f.alias for f in LockgateSettings.model_fields.values() if f.alias)
_PROPERTY_CUSTOM_KEYS = ("drift",)


# -------------------------------------------------------------------- the contract


class Contract(_Odcs):
    """A parsed ODCS data contract with lockgate's accessors.

    Load with :func:`load_contract`; the ODCS fields keep their standard names
    (``apiVersion``, ``schema``, ``customProperties``, ...).
    """

    apiVersion: Literal[SUPPORTED_API_VERSIONS] = Field(description="ODCS version of the document.")  # type: ignore[valid-type]
    kind: Literal["DataContract"] = Field(description="Always DataContract.")
    id: str = Field(description="Contract id.")
    name: str = Field(description="Contract name.")
    version: str = Field(description="Contract version (semver), recorded wherever the contract was applied.")
    status: str = Field(description="proposed, draft, active, deprecated, retired.")
    tenant: str | None = Field(None, description="Owning tenant.")
    domain: str | None = Field(None, description="Data domain.")
    dataProduct: str | None = Field(None, description="Data product name.")
    description: Description | None = Field(None, description="Purpose, usage, limitations.")
    tags: list[str] | None = Field(None, description="Tags.")
    schema_: list[SchemaObject] = Field(alias="schema", description="Exactly one object (the table).")
    team: Team | list[TeamMember] | None = Field(None, description="Owner and stewards (v3.1 object or v3.0 list).")
    support: list[dict[str, Any]] | None = Field(None, description="Support channels.")
    servers: list[dict[str, Any]] | None = Field(None, description="Where the data lives.")
    roles: list[dict[str, Any]] | None = Field(None, description="Access roles.")
    price: dict[str, Any] | None = Field(None, description="Pricing.")
    slaDefaultElement: str | None = Field(None, description="Default element of SLA properties.")
    slaProperties: list[dict[str, Any]] | None = Field(None, description="Service-level agreements.")
    authoritativeDefinitions: list[AuthoritativeDefinition] | None = Field(None, description="Links.")
    customProperties: list[CustomProperty] | None = Field(None, description="lockgate settings, see module doc.")
    contractCreatedTs: str | None = Field(None, description="Creation time (ISO 8601).")

    _settings: LockgateSettings | None = PrivateAttr(None)
    _fingerprint: str | None = PrivateAttr(None)
    _source: Path | None = PrivateAttr(None)
    _odcs: OpenDataContractStandard | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        problem = name_problem(v)
        if problem:  # the name becomes a folder of validation results and evidence
            raise ValueError(f"{v!r} is not a safe name: it {problem}")
        return v

    # -- identity
    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON of the parsed contract; formatting and comments don't count."""
        if self._fingerprint is None:
            canonical = json.dumps(
                self.model_dump(mode="json", by_alias=True),
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
            self._fingerprint = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return self._fingerprint

    @property
    def source(self) -> Path | None:
        """The file the contract was loaded from."""
        return self._source

    @property
    def odcs(self) -> OpenDataContractStandard | None:
        """The document as parsed by the ``open-data-contract-standard`` package (None if built without loading)."""
        return self._odcs

    @property
    def settings(self) -> LockgateSettings:
        if self._settings is None:
            self._settings = _lockgate_settings(self, _where(self._source))
        return self._settings

    @property
    def owner(self) -> str | None:
        """Username of the team member with role owner, else the team name."""
        members = self.team.members if isinstance(self.team, Team) else (self.team or [])
        for member in members:
            if (member.role or "").lower() == "owner":
                return member.username or member.name
        return self.team.name if isinstance(self.team, Team) else None

    @property
    def provenance(self):
        """Source, licence, owner and personal-data classification (:class:`data_contracts.provenance.Provenance`)."""
        from data_contracts.provenance import provenance_of

        return provenance_of(self)

    # -- schema
    @property
    def table(self) -> SchemaObject:
        return self.schema_[0]

    @property
    def columns(self) -> list[str]:
        """Every column in contract order (including the label)."""
        return [p.name for p in self.table.properties]

    @property
    def required_columns(self) -> list[str]:
        """Columns whose values must not be null."""
        return [p.name for p in self.table.properties if _is_required(p)]

    def column_spec(self, column: str) -> SchemaProperty:
        for p in self.table.properties:
            if p.name == column:
                return p
        raise KeyError(f"contract {self.name!r} has no column {column!r}")

    def allowed_values(self, column: str) -> list[Any] | None:
        """Allowed values of a column (``invalidValues`` rule's ``validValues``), or None if unrestricted."""
        for rule in self.column_spec(column).quality_rules():
            if rule.kind == "library" and rule.metric_name == "invalidValues" and rule.arguments:
                if "validValues" in rule.arguments:
                    return list(rule.arguments["validValues"])
        return None

    # -- lockgate roles
    @property
    def label_column(self) -> str | None:
        return self.settings.label_column

    @property
    def id_column(self) -> str:
        return self.settings.id_column

    @property
    def timestamp_column(self) -> str | None:
        return self.settings.timestamp_column

    @property
    def slice_columns(self) -> list[str]:
        return list(self.settings.slice_columns)

    @property
    def numeric_features(self) -> list[str]:
        return list(self.settings.numeric_features)

    @property
    def categorical_features(self) -> list[str]:
        return list(self.settings.categorical_features)

    @property
    def feature_columns(self) -> list[str]:
        """Model inputs: numeric then categorical features."""
        return self.numeric_features + self.categorical_features

    def scoring_columns(self) -> list[str]:
        """Columns of a production partition: every column but the label."""
        return [c for c in self.columns if c != self.label_column]

    def drift_setting(self, column: str) -> DriftSetting | None:
        """Drift method and threshold of a feature column (its own ``drift`` property, else the default;
        None: Evidently's own choice)."""
        for cp in self.column_spec(column).customProperties or []:
            if cp.property == "drift":
                return DriftSetting.model_validate(cp.value)
        if column in self.settings.numeric_features:
            return self.settings.drift_defaults.numeric
        if column in self.settings.categorical_features:
            return self.settings.drift_defaults.categorical
        raise KeyError(f"{column!r} is not a feature column of contract {self.name!r}")


def _is_required(p: SchemaProperty) -> bool:
    return p.required or p.primaryKey


def _is_unique(p: SchemaProperty) -> bool:
    return p.unique or (p.primaryKey and p.primaryKeyPosition in (-1, 1))


# ---------------------------------------------------------------------- loading


def load_contract(name_or_path: str | Path) -> Contract:
    """Load and check a contract.

    Args:
      name_or_path: a bare name such as ``"credit_default"`` (the YAML beside this
        module) or a path to a YAML file.

    Raises:
      ContractError: one line naming the file and the key path of the first problem.
    """
    path = resolve_contract_path(name_or_path)
    where = _where(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ContractError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_contract(text, source=path)


def resolve_contract_path(name_or_path: str | Path) -> Path:
    """A bare name resolves to ``data_contracts/<name>.yaml``; anything else is a path."""
    text = str(name_or_path)
    if (
        isinstance(name_or_path, str)
        and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", text)
        and not text.endswith((".yaml", ".yml"))
    ):
        path = CONTRACTS_DIR / f"{text}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml"))) or "none"
            raise ContractError(f"contract {text!r}: no {path.name} in {CONTRACTS_DIR} (known: {known})")
        return path
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ContractError(f"{path}: no such contract file")
    return path


_PARSED: KeptByText[Contract] = KeptByText()


def parse_contract(text: str, *, source: Path | None = None) -> Contract:
    """Parse contract YAML text (see :func:`load_contract`); ``source`` only names the file in errors.

    A text parsed before in this process (a lifecycle loads its version's contract in every gate; every version keeps
    its own copy of the same file) is not parsed and checked again: each call gets its own deep copy of the first
    result (a caller may change its copy), with its own ``source``. A text that fails is never kept, so it fails
    every time, naming its own file."""
    kept = _PARSED.get(text)
    if kept is None:
        kept = _parse_contract(text, source)
        _PARSED.keep(text, kept)
    contract = kept.model_copy(deep=True)
    contract._source = source
    return contract


def _parse_contract(text: str, source: Path | None) -> Contract:
    where = _where(source)
    try:
        raw = load_strict(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{where}: invalid YAML: {yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    bad = _non_finite(raw)
    if bad is not None:
        raise ContractError(f"{where}: {_key_path(bad[0], raw)}: {bad[1]} is not a finite number (a bound or value "
                            "must be finite; leave the bound out for no limit)")
    try:
        document = odcs_document(raw)
    except OdcsViolation as exc:
        more = f" (and {exc.more} more)" if exc.more else ""
        raise ContractError(f"{where}: {_key_path(exc.loc, raw)}: {exc.message}{more} (not valid ODCS)") from None
    try:
        contract = Contract.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(_pydantic_message(where, exc, raw)) from None
    contract._source, contract._odcs = source, document
    _check_contract(contract, where)
    contract._settings = _lockgate_settings(contract, where)
    _check_roles(contract, where)
    return contract


# ------------------------------------------------------------------ YAML loading


def _non_finite(raw: Any) -> tuple[tuple[Any, ...], float] | None:
    """(key path, value) of the first NaN or infinite number anywhere in the parsed YAML, else None."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), raw)]
    while stack:
        loc, node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return loc, node
        if isinstance(node, dict):
            stack.extend((loc + (k,), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((loc + (i,), v) for i, v in reversed(list(enumerate(node))))
    return None


# -------------------------------------------------------------------- error paths


def _where(source: Path | None) -> str:
    return str(source) if source is not None else "<contract>"


def _key_path(loc: tuple[Any, ...] | list[Any], raw: Any) -> str:
    """``('schema', 0, 'properties', 3, 'x')`` -> ``schema[0].properties[3](annual_income).x``."""
    out, node = "", raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            label = (node.get("name") or node.get("property")) if isinstance(node, dict) else None
            if isinstance(label, str):
                out += f"({label})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "<top level>"


def _pydantic_message(where: str, exc: ValidationError, raw: Any) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS))]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required key missing"
    return f"{where}: {_key_path(loc, raw)}: {msg}{more}"


_UNION_TAGS = {"Team", "list", "str", "float", "bool", "int", "dict"}


class _Problems:
    def __init__(self, where: str):
        self.where = where

    def fail(self, path: str, message: str) -> None:
        raise ContractError(f"{self.where}: {path}: {message}")


# ------------------------------------------------------------------ cross checks


def _check_contract(contract: Contract, where: str) -> None:
    problems = _Problems(where)
    if len(contract.schema_) != 1:
        problems.fail("schema", f"expected exactly one object (the table), found {len(contract.schema_)}")
    table = contract.schema_[0]
    tpath = f"schema[0]({table.name})"
    if not table.properties:
        problems.fail(f"{tpath}.properties", "no properties (columns)")
    seen: dict[str, int] = {}
    for i, prop in enumerate(table.properties):
        ppath = f"{tpath}.properties[{i}]({prop.name})"
        if not prop.name.strip():
            problems.fail(f"{tpath}.properties[{i}].name", "empty column name")
        if prop.name in seen:
            problems.fail(ppath, f"duplicate column name (also properties[{seen[prop.name]}])")
        seen[prop.name] = i
        _check_property(prop, ppath, problems)
    for j, rule in enumerate(table.quality or []):
        _check_rule(rule, f"{tpath}.quality[{j}]", problems, level="schema", columns=set(seen))
    for i, prop in enumerate(table.properties):
        for k, cp in enumerate(prop.customProperties or []):
            cpath = f"{tpath}.properties[{i}]({prop.name}).customProperties[{k}]({cp.property})"
            if cp.property not in _PROPERTY_CUSTOM_KEYS:
                problems.fail(
                    f"{cpath}.property", f"unknown lockgate property (known: {', '.join(_PROPERTY_CUSTOM_KEYS)})"
                )
            try:
                DriftSetting.model_validate(cp.value)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                sub = ".".join(str(p) for p in err["loc"])
                problems.fail(f"{cpath}.value{'.' + sub if sub else ''}", err["msg"])


def _check_property(prop: SchemaProperty, ppath: str, problems: _Problems) -> None:
    if prop.logicalType is None:
        problems.fail(f"{ppath}.logicalType", "required key missing (lockgate checks dtypes from it)")
    if prop.properties or prop.items:
        problems.fail(ppath, "nested properties/items are not supported: lockgate contracts describe flat tables")
    opts = prop.logicalTypeOptions
    if opts is not None:
        allowed = _OPTIONS_BY_TYPE[prop.logicalType]
        for key in opts.model_fields_set:
            if key not in allowed:
                problems.fail(f"{ppath}.logicalTypeOptions.{key}", f"not an option of logicalType {prop.logicalType}")
        opath = f"{ppath}.logicalTypeOptions"
        if prop.logicalType in ("integer", "number"):
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(getattr(opts, key), str):
                    problems.fail(f"{opath}.{key}", f"must be a number for logicalType {prop.logicalType}")
            for inclusive, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
                if getattr(opts, inclusive) is not None and getattr(opts, exclusive) is not None:
                    problems.fail(f"{opath}.{exclusive}", f"give {inclusive} or {exclusive}, not both")
            low, high = opts.lower_bound(), opts.upper_bound()
            if low is not None and high is not None and (low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1]))):
                names = f"{'exclusiveMinimum' if low[1] else 'minimum'} {low[0]:g}", f"{'exclusiveMaximum' if high[1] else 'maximum'} {high[0]:g}"
                problems.fail(opath, f"{names[0]} > {names[1]}" if low[0] > high[0] else f"no value fits {names[0]}, {names[1]}")
        if opts.minLength is not None and opts.maxLength is not None and opts.minLength > opts.maxLength:
            problems.fail(opath, f"minLength {opts.minLength} > maxLength {opts.maxLength}")
        if opts.pattern is not None:
            _check_regex(opts.pattern, f"{opath}.pattern", problems)
    for j, rule in enumerate(prop.quality_rules()):
        _check_rule(rule, f"{ppath}.quality[{j}]", problems, level="property", columns=set())
        for key in ("validValues", "missingValues"):
            values = (rule.arguments or {}).get(key) if rule.kind == "library" else None
            if isinstance(values, list):
                _check_value_types(values, prop.logicalType, f"{ppath}.quality[{j}].arguments.{key}", problems)
    valid_rules = [
        r for r in prop.quality_rules() if r.metric_name == "invalidValues" and "validValues" in (r.arguments or {})
    ]
    if len(valid_rules) > 1:
        problems.fail(f"{ppath}.quality", "more than one invalidValues rule with validValues; merge them")


def _check_rule(rule: DataQuality, rpath: str, problems: _Problems, *, level: str, columns: set[str]) -> None:
    if rule.metric and rule.rule and rule.metric != rule.rule:
        problems.fail(rpath, f"metric {rule.metric!r} and deprecated rule {rule.rule!r} disagree")
    if rule.kind != "library":
        return  # text is documentation; sql/custom are refused by the GE suite builder with this path
    metric = rule.metric_name
    if metric is None:
        problems.fail(f"{rpath}.metric", "required key missing for a library rule")
    known = PROPERTY_METRICS if level == "property" else SCHEMA_METRICS
    if metric not in known:
        problems.fail(f"{rpath}.metric", f"unknown {level}-level metric {metric!r} (known: {', '.join(known)})")
    args = rule.arguments or {}
    allowed_args = {"properties"} if (level == "schema" and metric == "duplicateValues") else _METRIC_ARGUMENTS[metric]
    for key in args:
        if key not in allowed_args:
            known_args = ", ".join(sorted(allowed_args)) or "none"
            problems.fail(f"{rpath}.arguments.{key}", f"not an argument of {metric} (known: {known_args})")
    if metric == "invalidValues":
        if not args:
            problems.fail(f"{rpath}.arguments", "invalidValues needs validValues or pattern")
        if "validValues" in args:
            values = args["validValues"]
            if not isinstance(values, list) or not values:
                problems.fail(f"{rpath}.arguments.validValues", "must be a non-empty list")
            if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
                problems.fail(f"{rpath}.arguments.validValues", "duplicate values")
        if "pattern" in args:
            if not isinstance(args["pattern"], str):
                problems.fail(f"{rpath}.arguments.pattern", "must be a string")
            _check_regex(args["pattern"], f"{rpath}.arguments.pattern", problems)
    if metric == "missingValues":
        values = args.get("missingValues")
        if not isinstance(values, list) or not values:
            problems.fail(f"{rpath}.arguments.missingValues", "must be a non-empty list")
    if level == "schema" and metric == "duplicateValues":
        props = args.get("properties")
        if not isinstance(props, list) or len(props) < 2:
            problems.fail(f"{rpath}.arguments.properties", "list at least two columns (one column: use unique: true)")
        for name in props:
            if name not in columns:
                problems.fail(f"{rpath}.arguments.properties", f"unknown column {name!r}")
    for key in ("mustBeBetween", "mustNotBeBetween"):
        bounds = getattr(rule, key)
        if bounds is not None and bounds[0] > bounds[1]:
            problems.fail(f"{rpath}.{key}", f"low {bounds[0]:g} > high {bounds[1]:g}")


_VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _check_value_types(values: list[Any], logical_type: str | None, path: str, problems: _Problems) -> None:
    """Listed values must have the column's type: a mismatch never matches, or breaks the check on some engines."""
    types = _VALUE_TYPES.get(logical_type or "")
    if types is None:
        problems.fail(path, f"value lists are not supported for logicalType {logical_type}")
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool) != (bool in types) or not isinstance(v, types):
            problems.fail(path, f"{v!r} is not a {logical_type} value")


def _check_regex(pattern: str, path: str, problems: _Problems) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        problems.fail(path, f"invalid regex {pattern!r}: {exc}")


def _lockgate_settings(contract: Contract, where: str) -> LockgateSettings:
    problems = _Problems(where)
    values: dict[str, Any] = {}
    index: dict[str, int] = {}
    seen: dict[str, int] = {}
    for i, cp in enumerate(contract.customProperties or []):
        path = f"customProperties[{i}]({cp.property})"
        if cp.property not in _SETTINGS_KEYS + PROVENANCE_KEYS:
            known = ", ".join(_SETTINGS_KEYS + PROVENANCE_KEYS)
            problems.fail(f"{path}.property", f"unknown lockgate property (known: {known})")
        if cp.property in seen:
            problems.fail(path, f"duplicate property (also customProperties[{seen[cp.property]}])")
        seen[cp.property] = i
        if cp.property in PROVENANCE_KEYS:  # provenance and licence: data_contracts/provenance.py
            problem = provenance_value_problem(cp.property, cp.value)
            if problem:
                problems.fail(f"{path}.value", problem)
            continue
        values[cp.property], index[cp.property] = cp.value, i
    try:
        return LockgateSettings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key, *rest = err["loc"] if err["loc"] else ("idColumn",)
        if key in index:
            path = f"customProperties[{index[key]}]({key}).value" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest
            )
        else:
            path = f"customProperties: {key}"
        msg = "required property missing" if err["type"] == "missing" else err["msg"]
        problems.fail(path, msg)
        raise AssertionError("unreachable") from None


def _check_roles(contract: Contract, where: str) -> None:
    problems = _Problems(where)
    s = contract.settings
    props = {p.name: p for p in contract.table.properties}
    index = {cp.property: i for i, cp in enumerate(contract.customProperties or [])}

    def path(key: str) -> str:
        return f"customProperties[{index[key]}]({key}).value" if key in index else f"customProperties: {key}"

    def known(key: str, column: str) -> SchemaProperty:
        if column not in props:
            problems.fail(path(key), f"unknown column {column!r}")
        return props[column]

    idp = known("idColumn", s.id_column)
    if not (_is_required(idp) and _is_unique(idp)):
        problems.fail(path("idColumn"), f"id column {s.id_column!r} must be required and unique")
    if s.label_column is not None:
        known("labelColumn", s.label_column)
    if s.timestamp_column is not None:
        tp = known("timestampColumn", s.timestamp_column)
        if tp.logicalType not in ("timestamp", "date"):
            problems.fail(path("timestampColumn"), f"{s.timestamp_column!r} has logicalType {tp.logicalType}")
    roles = {s.id_column: "idColumn", s.label_column: "labelColumn", s.timestamp_column: "timestampColumn"}
    for key, features, types in (
        ("numericFeatures", s.numeric_features, ("integer", "number")),
        ("categoricalFeatures", s.categorical_features, ("string", "integer", "boolean")),
    ):
        if len(set(features)) != len(features):
            problems.fail(path(key), "duplicate column")
        for column in features:
            prop = known(key, column)
            if column in roles:
                problems.fail(path(key), f"{column!r} is the {roles[column]}, not a feature")
            if prop.logicalType not in types:
                problems.fail(path(key), f"{column!r} has logicalType {prop.logicalType}, expected one of {types}")
    both = set(s.numeric_features) & set(s.categorical_features)
    if both:
        problems.fail(path("categoricalFeatures"), f"{sorted(both)} also listed as numericFeatures")
    for column in s.slice_columns:
        known("sliceColumns", column)
        if column not in s.categorical_features:
            problems.fail(path("sliceColumns"), f"slice column {column!r} is not a categorical feature")
    features = set(contract.feature_columns)
    for i, prop in enumerate(contract.table.properties):
        for k, cp in enumerate(prop.customProperties or []):
            if cp.property == "drift" and prop.name not in features:
                problems.fail(
                    f"schema[0]({contract.table.name}).properties[{i}]({prop.name}).customProperties[{k}](drift)",
                    "drift settings apply to feature columns only",
                )
