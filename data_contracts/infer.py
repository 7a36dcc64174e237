"""A draft ODCS contract inferred from a table (``lockgate init``): like TFDV's ``infer_schema``, but a contract the
user then edits.

What is inferred, column by column, from the Arrow table (every rule the data itself passes):

- ``logicalType`` / ``physicalType`` from the Arrow type (integers, floats, strings, booleans, timestamps, dates);
  any other type (lists, structs, binary, decimals) is refused, naming the column.
- ``required: true`` when the column has no null (a NaN counts as null, as it does for GE on pandas).
- numbers: ``minimum`` / ``maximum`` = the seen range widened by ``margin`` (default 10%) of the range on each side,
  rounded outwards (integers to whole numbers); a lower bound never goes below 0 for a column with no negative value.
- strings, booleans, and an integer or string label with at most ``max_categories`` distinct values: the allowed
  set is the seen set (an ``invalidValues`` rule). A string column with more distinct values is described, not a
  feature.
- provenance: ``dataSource``, ``license`` and ``personalData`` (custom properties) and each column's
  ``classification`` (the id column's is ``identifier``) are written as ``unknown``: only the user knows them, and
  ``lockgate contract lint`` warns until they are filled in (data_contracts/provenance.py).
- roles (lockgate's custom properties): the label; the id column (``id_column``, else a unique, non-null column named
  ``id`` or ``*_id``: lockgate names rows by it, and a table without one is refused with what to do); the first
  timestamp column; numeric and categorical features (every other number; strings and booleans with few values);
  slice columns (categorical features with 2 to ``max_slice_values`` values); a drift method per feature, pinned
  the way Evidently itself would choose at this size (so a sample can never switch it): up to 1,000 rows a test
  (``ks`` for numbers, ``chisquare`` for categories, p-value 0.05, whose false alarms do not grow as the data
  shrinks), above that a distance (``wasserstein`` / ``jensenshannon`` 0.1, as in credit_default.yaml).

No pandas and no GE: statistics come from ``pyarrow.compute``. The input is never modified.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.contract import ContractError
from data_contracts.provenance import PROVENANCE_KEYS, UNKNOWN

MAX_CATEGORIES = 50
MAX_SLICE_VALUES = 10
MARGIN = 0.1
SMALL_ROWS = 1000  # Evidently's own rule: tests up to this many reference rows, distances above
DRIFT = {  # (small data?, kind) -> method and threshold
    (True, "numeric"): {"method": "ks", "threshold": 0.05},
    (True, "categorical"): {"method": "chisquare", "threshold": 0.05},
    (False, "numeric"): {"method": "wasserstein", "threshold": 0.1},
    (False, "categorical"): {"method": "jensenshannon", "threshold": 0.1},
}
_ID_NAME = re.compile(r"(?i)^(id|.+_id)$")


@dataclass
class ColumnFacts:
    """What the data says about one column."""

    name: str
    logical_type: str
    physical_type: str
    rows: int
    nulls: int
    distinct: int
    values: list[Any] | None = None  # the sorted distinct non-null values, when at most max_categories
    low: float | None = None  # finite min / max of a numeric column
    high: float | None = None
    non_finite: int = 0
    timezone: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class InferredContract:
    """The contract document (a dict in ODCS field order) and what init tells the user about it."""

    document: dict[str, Any]
    label: str
    id_column: str
    task: str  # "classification" or "regression": what the label looks like
    label_std: float | None  # a numeric label's standard deviation (sizes a regressor's policy margins)
    numeric_features: list[str]
    categorical_features: list[str]
    slice_columns: list[str]
    notes: list[str]


def infer_contract(table: pa.Table, *, name: str, label: str, source: str, id_column: str | None = None,
                   margin: float = MARGIN, max_categories: int = MAX_CATEGORIES,
                   max_slice_values: int = MAX_SLICE_VALUES, owner: str | None = None) -> InferredContract:
    """Infer a draft contract named ``name`` from ``table`` (see the module docstring).

    Args:
      table: the data (reference, and golden rows if any), dictionaries decoded or not.
      name: contract name (a safe name: it becomes a folder of validation results).
      label: the label column.
      source: where the data came from, written into the descriptions.
      id_column: the column naming rows; default: a unique, non-null ``id`` / ``*_id`` column.
      owner: the team member written as owner (lint warns without one).

    Raises:
      ContractError: one line naming the column or option that prevents a usable contract.
    """
    if table.num_rows == 0:
        raise ContractError(f"{source}: no rows to infer a contract from")
    if label not in table.column_names:
        raise ContractError(f"{source}: no label column {label!r} (columns: {', '.join(table.column_names)})")
    facts = {n: column_facts(n, table.column(n), max_categories) for n in table.column_names}
    ident = _id_column(facts, id_column, source, label)
    lab = facts[label]
    task = "classification" if lab.values is not None else "regression"  # few integer/string/boolean values
    if lab.logical_type not in ("integer", "number", "boolean", "string"):
        raise ContractError(f"{source}: label column {label!r} has type {lab.physical_type}; a label is a number, "
                            "a boolean or a string")
    roles = {ident, label}
    numeric = [f.name for f in facts.values() if f.name not in roles and f.logical_type in ("integer", "number")]
    categorical = [f.name for f in facts.values() if f.name not in roles and f.logical_type in ("string", "boolean")
                   and f.values is not None]
    slices = [c for c in categorical if 2 <= len(facts[c].values or []) <= max_slice_values]
    timestamps = [f.name for f in facts.values() if f.logical_type in ("timestamp", "date") and f.name not in roles]
    notes = [n for f in facts.values() for n in f.notes]
    features = set(numeric) | set(categorical)
    small = table.num_rows <= SMALL_ROWS
    drift = {kind: DRIFT[(small, kind)] for kind in ("numeric", "categorical")}
    properties = [_property(facts[n], n == ident, n == label, drift if n in features else None, margin, source, task)
                  for n in table.column_names]
    # provenance placeholders the user fills in (data_contracts/provenance.py); lint warns while they are unknown
    custom = [{"property": key, "value": UNKNOWN} for key in PROVENANCE_KEYS]
    custom += [{"property": "labelColumn", "value": label}, {"property": "idColumn", "value": ident}]
    if timestamps:
        custom.append({"property": "timestampColumn", "value": timestamps[0]})
    if slices:
        custom.append({"property": "sliceColumns", "value": slices})
    if numeric:
        custom.append({"property": "numericFeatures", "value": numeric})
    if categorical:
        custom.append({"property": "categoricalFeatures", "value": categorical})
    custom.append({"property": "driftDefaults", "value": {k: dict(v) for k, v in drift.items()}})
    document = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": f"lockgate-{name}",
        "name": name,
        "version": "0.1.0",
        "status": "draft",
        "description": {
            "purpose": f"Draft inferred by `lockgate init` from {source} ({table.num_rows} rows) on "
                       f"{date.today().isoformat()}: review every range, allowed set and role before relying on it.",
            "usage": f"Input of the {name} model; every batch is validated against it before scoring.",
        },
        "team": {"name": f"{name}-owners", "members": [{"username": owner or "owner", "role": "owner"}]},
        "schema": [{
            "name": name.replace("-", "_").replace(".", "_"),
            "physicalType": "table",
            "logicalType": "object",
            "description": f"One row per {ident}.",
            "quality": [{"name": "row_count", "description": "A batch is never empty.", "metric": "rowCount",
                         "mustBeGreaterOrEqualTo": 1, "dimension": "completeness", "severity": "error"}],
            "properties": properties,
        }],
        "customProperties": custom,
    }
    return InferredContract(document=document, label=label, id_column=ident, task=task,
                            label_std=_std(table.column(label)) if lab.logical_type in ("integer", "number") else None,
                            numeric_features=numeric, categorical_features=categorical, slice_columns=slices,
                            notes=notes)


def column_facts(name: str, column: pa.ChunkedArray, max_categories: int) -> ColumnFacts:
    """Type, nulls, distinct values and finite range of one column."""
    t = column.type
    if pa.types.is_dictionary(t):
        column, t = column.cast(t.value_type), t.value_type
    logical, physical, tz = _types(name, t)
    nulls = column.null_count
    non_finite = 0
    if logical == "number":
        nan = pc.sum(pc.cast(pc.is_nan(column), pa.int64())).as_py() or 0
        finite = column.filter(pc.is_finite(column))
        non_finite, nulls = (column.length() - nulls - nan) - len(finite), nulls + nan
        column = finite
    else:
        column = column.drop_null()
    distinct = pc.count_distinct(column).as_py() if logical not in ("timestamp", "date") else 0
    facts = ColumnFacts(name=name, logical_type=logical, physical_type=physical, rows=len(column) + nulls + non_finite,
                        nulls=nulls, distinct=distinct, non_finite=non_finite, timezone=tz)
    if logical in ("string", "boolean", "integer") and distinct <= max_categories:
        facts.values = sorted(pc.unique(column).to_pylist())
    if logical == "string" and distinct > max_categories:
        facts.notes.append(f"{name}: {distinct} distinct strings (over {max_categories}): described, not a feature")
    if logical in ("integer", "number") and len(column):
        lo_hi = pc.min_max(column).as_py()
        facts.low, facts.high = float(lo_hi["min"]), float(lo_hi["max"])
    if non_finite:
        facts.notes.append(f"{name}: {non_finite} infinite value(s): no range written (a range check would fail them)")
    return facts


def _types(name: str, t: pa.DataType) -> tuple[str, str, str | None]:
    if pa.types.is_boolean(t):
        return "boolean", "bool", None
    if pa.types.is_integer(t):
        return "integer", str(t), None
    if pa.types.is_floating(t):
        return "number", str(t), None
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string", "string", None
    if pa.types.is_timestamp(t):
        return "timestamp", "timestamp", t.tz
    if pa.types.is_date(t):
        return "date", "date", None
    raise ContractError(f"column {name!r} has type {t}: a lockgate contract describes flat columns of numbers, "
                        "strings, booleans, timestamps and dates; drop or convert it")


def _id_column(facts: dict[str, ColumnFacts], given: str | None, source: str, label: str) -> str:
    def usable(f: ColumnFacts) -> bool:
        return f.logical_type in ("integer", "string") and f.nulls == 0 and f.distinct == f.rows

    if given is not None:
        f = facts.get(given)
        if f is None:
            raise ContractError(f"{source}: no id column {given!r}")
        if given == label or not usable(f):
            raise ContractError(f"{source}: id column {given!r} must be a non-null, unique integer or string column "
                                "other than the label")
        return given
    for f in facts.values():
        if f.name != label and _ID_NAME.match(f.name) and usable(f):
            return f.name
    raise ContractError(
        f"{source} has no id column: lockgate names rows by a unique, non-null integer or string column (quarantine, "
        "lineage); add one, e.g. df.insert(0, 'id', range(len(df))), or name yours with --id COLUMN; nothing was "
        "written")


def _property(f: ColumnFacts, is_id: bool, is_label: bool, drift: dict[str, dict] | None, margin: float,
              source: str, task: str) -> dict[str, Any]:
    """One ODCS property; ``drift``: the methods by kind when the column is a feature, else None."""
    prop: dict[str, Any] = {"name": f.name, "description": _describe(f, is_id, is_label, drift is not None, source,
                                                                     task),
                            "logicalType": f.logical_type, "physicalType": f.physical_type}
    options: dict[str, Any] = {}
    allowed = f.values if (f.values is not None and (f.logical_type in ("string", "boolean")
                                                    or (is_label and task == "classification"))) else None
    if f.logical_type in ("integer", "number") and allowed is None and not is_id and f.low is not None \
            and not f.non_finite:
        options["minimum"], options["maximum"] = widened(f.low, f.high, margin, integer=f.logical_type == "integer")
    if f.logical_type == "timestamp":
        options = {"timezone": True, "defaultTimezone": f.timezone} if f.timezone else {"timezone": False}
    if options:
        prop["logicalTypeOptions"] = options
    prop["required"] = f.nulls == 0 and not f.non_finite
    if is_id:
        prop.update(unique=True, primaryKey=True, primaryKeyPosition=1, classification="identifier")
    else:
        prop["classification"] = UNKNOWN  # the user says: public, internal, confidential, pii, ... (lint warns)
    if allowed is not None and not is_id:
        prop["quality"] = [{"name": f"{_rule_name(f.name)}_in_set", "metric": "invalidValues",
                            "arguments": {"validValues": allowed}, "mustBe": 0, "dimension": "conformity"}]
    if drift is not None:
        kind = "numeric" if f.logical_type in ("integer", "number") else "categorical"
        prop["customProperties"] = [{"property": "drift", "value": dict(drift[kind])}]
    return prop


def _describe(f: ColumnFacts, is_id: bool, is_label: bool, is_feature: bool, source: str, task: str) -> str:
    role = ("Row id" if is_id else f"Label ({task})" if is_label else "Feature" if is_feature else "Not a feature")
    seen = [f"{f.rows} rows", "no nulls" if f.nulls == 0 else f"{f.nulls} null(s)"]
    if f.low is not None:
        seen.append(f"range [{f.low:.6g}, {f.high:.6g}]")
    if f.values is not None and f.logical_type != "number":
        seen.append(f"{len(f.values)} distinct value(s)")
    return f"{role}. Inferred from {source}: {', '.join(seen)}."


def _rule_name(column: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", column).strip("_") or "column"


def widened(low: float, high: float, margin: float, *, integer: bool) -> tuple[float | int, float | int]:
    """``[low, high]`` widened by ``margin`` (> 0) of its span on each side (of |value|, or 1, for a constant column),
    rounded to two digits of that pad (integers: outwards to whole numbers); a non-negative ``low`` stays >= 0."""
    span = high - low
    pad = margin * (span if span > 0 else max(abs(low), 1.0))
    lo, hi = low - pad, high + pad
    if low >= 0:
        lo = max(lo, 0.0)
    if integer:
        return int(math.floor(lo)), int(math.ceil(hi))
    quantum = Decimal(1).scaleb(math.floor(math.log10(pad)) - 1)  # rounding moves a bound by at most pad / 20
    return (float(Decimal(repr(lo)).quantize(quantum, rounding=ROUND_HALF_EVEN)),
            float(Decimal(repr(hi)).quantize(quantum, rounding=ROUND_HALF_EVEN)))


def _std(column: pa.ChunkedArray) -> float | None:
    values = column.filter(pc.is_finite(column)) if pa.types.is_floating(column.type) else column.drop_null()
    if len(values) < 2:
        return None
    return float(pc.stddev(values).as_py())
