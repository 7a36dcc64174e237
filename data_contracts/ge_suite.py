"""Compile a contract into a Great Expectations 1.x ExpectationSuite.

Two steps, so the mapping can be read and tested without importing GE (~9 s):

1. :func:`expectation_specs` turns the contract into a list of
   :class:`ExpectationSpec` (GE expectation class name + kwargs, a human name such as
   ``"annual_income not null"``, whether a failure is row-level or dataset-level, and
   the contract key path it came from). Anything it cannot map is refused with a
   :class:`~data_contracts.contract.ContractError` naming that path.
2. :func:`build_suite` instantiates them in a suite and checks that the suite holds
   every one (GE drops expectations it does not know with only a log line).

Row-level (a failing row can be quarantined): not null, value range, allowed set,
regex, string length, missing values. Dataset-level (the batch fails): column exists,
column dtype, uniqueness, compound uniqueness, row count.

dtypes: GE's ``expect_column_values_to_be_in_type_list`` compares pandas dtypes with
numpy dtype objects and reports pyarrow-backed columns by their Python scalar type
(``int``, ``str``, ``Timestamp``) — no type name passes for an ``int64[pyarrow]``
column — and checks ``object`` columns value by value in Python. lockgate therefore
registers one small expectation, ``expect_column_dtype_to_be_in_list``, that compares
``str(dtype)`` with dtype names per logical type covering numpy, pandas nullable and
pyarrow dtypes; an ``object`` column passes a string contract when
``pandas.api.types.infer_dtype`` says its values are strings.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from data_contracts.contract import Contract, ContractError, DataQuality, SchemaProperty
from data_contracts.ge_json import use_fast_json_values

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

DTYPE_EXPECTATION = "ExpectColumnDtypeToBeInList"
DTYPE_EXPECTATION_TYPE = "expect_column_dtype_to_be_in_list"
META_KEY = "lockgate"

_UNITS = ("s", "ms", "us", "ns")
_INT_DTYPES = (
    [f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)]
    + [f"{u}Int{b}" for u in ("", "U") for b in (8, 16, 32, 64)]
    + [f"{u}int{b}[pyarrow]" for u in ("", "u") for b in (8, 16, 32, 64)]
)
_FLOAT_DTYPES = ["float16", "float32", "float64", "Float32", "Float64"] + [
    "halffloat[pyarrow]",
    "float[pyarrow]",
    "double[pyarrow]",
]
# "str": an object column whose non-null values are all Python str (pandas' default
# for strings; also the name of pandas 3's default string dtype); "string": pandas
# StringDtype with python or pyarrow storage.
# Spark's simpleString() of each type, prefixed so pandas and Spark names never collide.
SPARK_PREFIX = "spark:"
_SPARK = {
    "integer": ["tinyint", "smallint", "int", "bigint"],
    "number": ["float", "double", "decimal"],  # decimal(p,s): matched on the name before "("
    "string": ["string"],
    "boolean": ["boolean"],
    "date": ["date", "timestamp_ntz"],
    "timestamp": ["timestamp_ntz"],
    "timestamp_tz": ["timestamp"],
}
_STRING_DTYPES = ["str", "string", "string[pyarrow]", "large_string[pyarrow]", "string_view[pyarrow]"]
_BOOL_DTYPES = ["bool", "boolean", "bool[pyarrow]"]
_NAIVE_TIMESTAMP_DTYPES = [f"datetime64[{u}]" for u in _UNITS] + [f"timestamp[{u}][pyarrow]" for u in _UNITS]
_DATE_DTYPES = ["date32[day][pyarrow]", "date64[ms][pyarrow]"] + _NAIVE_TIMESTAMP_DTYPES


class SuiteBuildError(RuntimeError):
    """GE did not keep an expectation lockgate built (a GE/lockgate mismatch, not a contract problem)."""


class ExpectationSpec(BaseModel):
    """One expectation to build, with where it came from in the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ge_type: str = Field(description="Class name in great_expectations.expectations, or ExpectColumnDtypeToBeInList.")
    kwargs: dict[str, Any] = Field(description="Expectation keyword arguments.")
    name: str = Field(description="Human name used in failure lists, e.g. 'annual_income not null'.")
    level: Literal["row", "dataset"] = Field(
        description="row: failing rows can be quarantined; dataset: the batch fails."
    )
    column: str | None = Field(description="Column the expectation is about (None for table-level).")
    path: str = Field(description="Contract key path the expectation was compiled from.")
    logical_type: str | None = Field(None, description="Contract logicalType of the column, for messages.")

    @property
    def expectation_type(self) -> str:
        return DTYPE_EXPECTATION_TYPE if self.ge_type == DTYPE_EXPECTATION else _snake(self.ge_type)

    def meta(self) -> dict[str, Any]:
        return {
            META_KEY: {
                "name": self.name,
                "level": self.level,
                "column": self.column,
                "path": self.path,
                "logical_type": self.logical_type,
            }
        }


def expectation_specs(contract: Contract, *, include_label: bool) -> list[ExpectationSpec]:
    """Compile ``contract`` into expectation specs (no GE import).

    Args:
      contract: a loaded contract.
      include_label: also expect the label column (training/golden data); production
        partitions have no label.

    Raises:
      ContractError: a rule that cannot be mapped, naming its key path.
    """
    where = str(contract.source) if contract.source else "<contract>"
    table = contract.table
    tpath = f"schema[0]({table.name})"
    specs: list[ExpectationSpec] = []
    seen: set[tuple[str, str]] = set()

    def add(ge_type: str, kwargs: dict[str, Any], name: str, level: str, column: str | None, path: str, lt=None):
        key = (ge_type, repr(sorted(kwargs.items())))
        if key in seen:  # e.g. required: true and a nullValues rule on the same column
            return
        seen.add(key)
        taken = {s.name for s in specs}
        if name in taken:  # e.g. two different patterns on one column
            name = next(f"{name} #{k}" for k in range(2, len(specs) + 3) if f"{name} #{k}" not in taken)
        specs.append(
            ExpectationSpec(
                ge_type=ge_type, kwargs=kwargs, name=name, level=level, column=column, path=path, logical_type=lt
            )
        )

    def refuse(path: str, message: str) -> None:
        raise ContractError(f"{where}: {path}: cannot map to a Great Expectations expectation: {message}")

    skipped = set() if include_label or contract.label_column is None else {contract.label_column}
    for i, prop in enumerate(table.properties):
        if prop.name in skipped:
            continue
        col, lt = prop.name, prop.logicalType
        ppath = f"{tpath}.properties[{i}]({col})"
        add("ExpectColumnToExist", {"column": col}, f"{col} exists", "dataset", col, f"{ppath}.name", lt)
        add(
            DTYPE_EXPECTATION,
            {"column": col, "type_list": _dtype_names(prop, ppath, refuse)},
            f"{col} dtype",
            "dataset",
            col,
            f"{ppath}.logicalType",
            lt,
        )
        if prop.required or prop.primaryKey:
            key = "required" if prop.required else "primaryKey"
            add("ExpectColumnValuesToNotBeNull", {"column": col}, f"{col} not null", "row", col, f"{ppath}.{key}", lt)
        if prop.unique or (prop.primaryKey and prop.primaryKeyPosition in (-1, 1)):
            key = "unique" if prop.unique else "primaryKey"
            add("ExpectColumnValuesToBeUnique", {"column": col}, f"{col} unique", "dataset", col, f"{ppath}.{key}", lt)
        _option_specs(prop, ppath, add, refuse)
        for j, rule in enumerate(prop.quality_rules()):
            _property_rule_specs(prop, rule, f"{ppath}.quality[{j}]", add, refuse)
    for j, rule in enumerate(table.quality or []):
        rpath = f"{tpath}.quality[{j}]"
        if rule.kind == "text":
            continue
        if rule.kind != "library":
            refuse(rpath, f"quality type {rule.kind!r} is not supported (use library metrics)")
        if rule.metric_name == "rowCount":
            lo, hi = _count_bounds(rule, rpath, refuse)
            add(
                "ExpectTableRowCountToBeBetween",
                {"min_value": lo, "max_value": hi},
                "row count in range",
                "dataset",
                None,
                rpath,
            )
        elif rule.metric_name == "duplicateValues":
            _require_zero(rule, rpath, refuse)
            columns = list((rule.arguments or {})["properties"])
            if skipped & set(columns):
                continue
            add(
                "ExpectCompoundColumnsToBeUnique",
                {"column_list": columns},
                f"({', '.join(columns)}) unique",
                "dataset",
                None,
                rpath,
            )
        else:  # pragma: no cover - load-time checks only let the two metrics above through
            refuse(f"{rpath}.metric", f"unsupported schema-level metric {rule.metric_name!r}")
    return specs


def build_suite(contract: Contract, *, include_label: bool, exclude: tuple[str, ...] = ()) -> ExpectationSuite:
    """Build the GE ExpectationSuite of ``contract``.

    The suite is named ``<name>@<version>#<fingerprint[:12]>`` (``+label`` when
    ``include_label``); each expectation's ``meta["lockgate"]`` carries its name,
    level, column and contract path. ``exclude``: GE class names left out (the
    whole-batch checks that chunked validation computes over all chunks itself).

    Raises:
      ContractError: a rule that cannot be mapped (see :func:`expectation_specs`).
      SuiteBuildError: GE did not keep an expectation that was built.
    """
    specs = [s for s in expectation_specs(contract, include_label=include_label) if s.ge_type not in exclude]
    ge_runtime()  # GE suites need an active data context, even to add an expectation
    import great_expectations as gx

    dtype_class = dtype_expectation_class()
    suite_name = (f"{contract.name}@{contract.version}#{contract.fingerprint[:12]}" + ("+label" if include_label else "")
                  + ("+chunk" if exclude else ""))
    built, seen = [], set()
    for spec in specs:
        cls = dtype_class if spec.ge_type == DTYPE_EXPECTATION else getattr(gx.expectations, spec.ge_type, None)
        if cls is None:
            raise SuiteBuildError(f"great_expectations.expectations has no {spec.ge_type} (needed for {spec.name})")
        # GE's add_expectation drops an expectation equal but for its meta to one already added, comparing it with
        # every one (quadratic, seconds for a suite of ~50); the same rule by key, then the suite built at once
        key = (spec.ge_type, json.dumps(spec.kwargs, sort_keys=True, default=str))
        if key not in seen:
            seen.add(key)
            built.append(cls(**spec.kwargs, meta=spec.meta()))
    suite = gx.ExpectationSuite(name=suite_name, expectations=built)
    kept = [(e.expectation_type, (e.meta or {}).get(META_KEY, {}).get("name")) for e in suite.expectations]
    wanted = [(s.expectation_type, s.name) for s in specs]
    if kept != wanted:
        missing = [name for t, name in wanted if (t, name) not in kept]
        raise SuiteBuildError(
            f"suite {suite_name}: GE kept {len(kept)} of {len(wanted)} expectations; "
            f"missing: {', '.join(missing) or '?'}"
        )
    return suite


_BUILT = threading.local()  # .cache: {(build, id(obj)): (obj, built)} inside the block, else None


@contextlib.contextmanager
def configurations_built_once(suite: Any) -> Iterator[None]:
    """Within the block, on this thread, each expectation's ``configuration`` is built once.

    GE 1.x builds an expectation's ExpectationConfiguration afresh (a pydantic v1 ``dict()``
    and a camel-to-snake regex) every time its ``configuration`` property is read, about 80
    times per expectation while a batch is validated: 45% of validating a 2,000-row batch
    (~230 ms, ~130 ms with this). GE does not change an expectation while it validates a
    batch, so one validation may reuse the first build. Use it around ``batch.validate``.
    Likewise each ExpectationConfiguration's ``to_domain_obj()`` (a new pydantic Expectation,
    whose ``configuration`` was then built afresh again, on every metric of every expectation):
    GE turns each configuration of the validation into its expectation once. Both together:
    a 2,000-row batch of the credit contract ~0.25 -> ~0.10 s (``benchmarks.run validation``).

    The property is wrapped once per process (:func:`_wrap_configuration`); the wrapper
    reads a thread-local cache that only this block sets, so other threads, nested blocks
    and forked processes see GE's behaviour outside it. Suites with suite parameters or a
    per-expectation ``result_format`` (GE changes those configurations in place while it
    validates) are left as GE runs them; lockgate's contract suites have neither. The
    results are equal with and without it
    (tests/data_contracts/test_contract_validation.py).
    """
    if getattr(_BUILT, "cache", None) is not None or not _wrap_configuration():
        yield
        return
    _BUILT.cache = {}  # set before the check: the builds it reads are the ones the validation reuses
    try:
        if _changed_while_validating(suite):
            _BUILT.cache = None
        yield
    finally:
        _BUILT.cache = None


def _changed_while_validating(suite: Any) -> bool:
    from great_expectations.core.result_format import ResultFormat

    return bool(suite.suite_parameter_options) or any(
        getattr(e, "result_format", ResultFormat.BASIC) != ResultFormat.BASIC for e in suite.expectations)


@lru_cache(maxsize=1)
def _wrap_configuration() -> bool:
    """Wrap GE's ``Expectation.configuration`` and ``ExpectationConfiguration.to_domain_obj`` once: inside
    :func:`configurations_built_once` each is built once per object; outside, as GE does. False (nothing wrapped) if
    the first is no longer a property."""
    from great_expectations.expectations.expectation import Expectation

    built = Expectation.__dict__.get("configuration")
    if not isinstance(built, property) or built.fget is None:
        return False

    def built_once(build):
        """``build(obj)``, or inside the block the first result for ``obj`` (one cache per build function)."""

        @wraps(build)
        def wrapper(self):
            cache = getattr(_BUILT, "cache", None)
            if cache is None:
                return build(self)
            key = (build, id(self))
            hit = cache.get(key)
            if hit is None:  # the entry holds the object, so its id is not reused while cached
                hit = cache[key] = (self, build(self))
            return hit[1]

        return wrapper

    Expectation.configuration = property(built_once(built.fget), built.fset, built.fdel, built.__doc__)

    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    ExpectationConfiguration.to_domain_obj = built_once(ExpectationConfiguration.to_domain_obj)
    return True


@dataclass(frozen=True)
class GeRuntime:
    """The process-wide GE objects: an ephemeral context with one pandas dataframe asset."""

    context: Any
    batch_definition: Any
    lock: threading.Lock
    import_seconds: float
    setup_seconds: float


_RUNTIME_LOCK = threading.Lock()


def ge_runtime() -> GeRuntime:
    """The process-wide :class:`GeRuntime`, created on first use (thread-safe)."""
    with _RUNTIME_LOCK:
        return _create_runtime()


@lru_cache(maxsize=1)
def _create_runtime() -> GeRuntime:
    """Create (once per process) the ephemeral GE context, pandas datasource, asset and batch definition.

    Creating them takes a moment and GE keeps per-datasource batch state, so every
    validation in the process goes through this one runtime, serialised by ``lock``.
    Progress bars are off, GE's per-batch md5 of pandas frames is turned off for
    the process (see below), and GE's JSON converter gets a fast path for plain values
    (data_contracts/ge_json.py). GE makes this context its "current project" for the
    process.
    """
    t0 = time.perf_counter()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.execution_engine import pandas_execution_engine

    t1 = time.perf_counter()
    # GE md5-hashes every pandas batch under 1 GB for a "pandas_data_fingerprint" batch
    # marker (~1 s per 1M rows here). lockgate never reads that marker; a threshold of 0
    # turns the hashing off for this process.
    pandas_execution_engine.HASH_THRESHOLD = 0
    use_fast_json_values()  # GE names every metric by its arguments' JSON: plain values skip its ~20 type checks
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas(name="lockgate").add_dataframe_asset(name="frame")
    batch_definition = asset.add_batch_definition_whole_dataframe(name="whole_frame")
    dtype_expectation_class()
    t2 = time.perf_counter()
    return GeRuntime(
        context=context,
        batch_definition=batch_definition,
        lock=threading.Lock(),
        import_seconds=t1 - t0,
        setup_seconds=t2 - t1,
    )


@lru_cache(maxsize=1)
def dtype_expectation_class() -> type:
    """The ``expect_column_dtype_to_be_in_list`` expectation class (defined, and registered with GE, on first use).

    It reads one metric, ``column.lockgate_dtype``: the pandas dtype name and, for an
    object column, ``pandas.api.types.infer_dtype`` of its non-null values (vectorised;
    GE's own per-value type check costs ~0.4 s per object column per 1M rows).
    """
    from typing import ClassVar

    from great_expectations.core.metric_domain_types import MetricDomainTypes
    from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine
    from great_expectations.expectations.expectation import ColumnAggregateExpectation
    from great_expectations.expectations.metrics.metric_provider import metric_value
    from great_expectations.expectations.metrics import ColumnAggregateMetricProvider, column_aggregate_value
    from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
    from great_expectations.render.renderer.renderer import renderer
    from pandas.api.types import infer_dtype

    class ColumnLockgateDtype(ColumnAggregateMetricProvider):
        metric_name = "column.lockgate_dtype"

        @column_aggregate_value(engine=PandasExecutionEngine, filter_column_isnull=False)
        def _pandas(cls, column, **kwargs):
            name = str(column.dtype)
            return {"dtype": name, "inferred": infer_dtype(column, skipna=True) if name == "object" else None}

        @metric_value(engine=SparkDFExecutionEngine)  # used only when pyspark is installed (`--extra spark`)
        def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
            df, _, accessor = execution_engine.get_compute_domain(metric_domain_kwargs,
                                                                  domain_type=MetricDomainTypes.COLUMN)
            column = accessor.get("column") or metric_domain_kwargs["column"]
            return {"dtype": SPARK_PREFIX + df.schema[column].dataType.simpleString(), "inferred": None}

    class ExpectColumnDtypeToBeInList(ColumnAggregateExpectation):
        """Expect a column's pandas dtype name (``str(dtype)``, e.g. ``int64[pyarrow]``) to be in ``type_list``.

        ``"str"`` in the list also admits an ``object`` column whose non-null values are all
        Python ``str`` (pandas' default representation of strings).
        """

        type_list: list[str]

        metric_dependencies: ClassVar[tuple[str, ...]] = ("column.lockgate_dtype",)
        success_keys: ClassVar[tuple[str, ...]] = ("type_list",)
        args_keys: ClassVar[tuple[str, ...]] = ("column", "type_list")

        def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None):
            observed = metrics["column.lockgate_dtype"]
            type_list = list(self.configuration.kwargs.get("type_list") or [])
            name, inferred = observed["dtype"], observed["inferred"]
            if name == "object":
                success = "str" in type_list and inferred in ("string", "empty")
            else:
                success = name in type_list or name.split("(")[0] in type_list  # spark:decimal(10,2)
            return {"success": success, "result": {"observed_value": name, "details": {"inferred_type": inferred}}}

        @classmethod
        @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
        def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
            """The sentence Data Docs shows (without it GE prints ``expect_column_dtype_to_be_in_list(**{...})``)."""
            runtime_configuration = runtime_configuration or {}
            config_kwargs = configuration.kwargs if configuration else {}
            type_list = list(config_kwargs.get("type_list") or [])
            params = {"column": config_kwargs.get("column")} | {f"v__{i}": v for i, v in enumerate(type_list)}
            template = "dtype must be one of " + " ".join(f"$v__{i}" for i in range(len(type_list))) + "."
            if runtime_configuration.get("include_column_name") is not False:
                template = "$column " + template
            return [RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={"template": template, "params": params,
                                 "styling": runtime_configuration.get("styling")},
            )]

    # This module uses postponed annotations; pydantic v1 (GE's models) resolves them here.
    ExpectColumnDtypeToBeInList.update_forward_refs(List=list, ClassVar=ClassVar, Tuple=tuple)
    return ExpectColumnDtypeToBeInList


# ------------------------------------------------------------------------ helpers


def _spark_names(kind: str) -> list[str]:
    return [SPARK_PREFIX + n for n in _SPARK[kind]]


def _dtype_names(prop: SchemaProperty, ppath: str, refuse) -> list[str]:
    """The dtype names a column of this logical type may have: pandas (numpy and pyarrow backed), then Spark's."""
    names = _pandas_dtype_names(prop, ppath, refuse)
    kind = prop.logicalType
    if kind == "timestamp" and prop.options().timezone:
        kind = "timestamp_tz"
    return names + _spark_names(kind) + (_spark_names("integer") if kind == "number" else [])


def _pandas_dtype_names(prop: SchemaProperty, ppath: str, refuse) -> list[str]:
    lt = prop.logicalType
    if lt == "integer":
        return list(_INT_DTYPES)
    if lt == "number":
        return _FLOAT_DTYPES + _INT_DTYPES
    if lt == "string":
        return list(_STRING_DTYPES)
    if lt == "boolean":
        return list(_BOOL_DTYPES)
    if lt == "date":
        return list(_DATE_DTYPES)
    if lt == "timestamp":
        opts = prop.options()
        if not opts.timezone:
            return list(_NAIVE_TIMESTAMP_DTYPES)
        if not opts.defaultTimezone:
            refuse(f"{ppath}.logicalTypeOptions.defaultTimezone", "timezone: true needs the zone, e.g. UTC")
        tz = opts.defaultTimezone
        return [f"datetime64[{u}, {tz}]" for u in _UNITS] + [f"timestamp[{u}, tz={tz}][pyarrow]" for u in _UNITS]
    refuse(f"{ppath}.logicalType", f"logicalType {lt!r} has no dtype mapping")
    raise AssertionError("unreachable")


def _option_specs(prop: SchemaProperty, ppath: str, add, refuse) -> None:
    if prop.logicalTypeOptions is None:
        return
    opts, col, lt = prop.logicalTypeOptions, prop.name, prop.logicalType
    opath = f"{ppath}.logicalTypeOptions"
    for key in ("format", "multipleOf"):
        if getattr(opts, key) is not None:
            refuse(f"{opath}.{key}", f"{key} is not checked by lockgate; remove it or express it as a rule")
    if lt in ("integer", "number"):
        low, high = opts.lower_bound(), opts.upper_bound()
        if low is not None or high is not None:
            add(
                "ExpectColumnValuesToBeBetween",
                {
                    "column": col,
                    "min_value": low[0] if low else None,
                    "max_value": high[0] if high else None,
                    "strict_min": bool(low and low[1]),
                    "strict_max": bool(high and high[1]),
                },
                f"{col} in range",
                "row",
                col,
                opath,
                lt,
            )
    elif opts.lower_bound() is not None or opts.upper_bound() is not None:
        key = next(k for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if getattr(opts, k) is not None)
        refuse(f"{opath}.{key}", f"bounds on logicalType {lt} are not supported")
    if opts.pattern is not None:
        add(
            "ExpectColumnValuesToMatchRegex",
            {"column": col, "regex": opts.pattern},
            f"{col} matches pattern",
            "row",
            col,
            f"{opath}.pattern",
            lt,
        )
    if opts.minLength is not None or opts.maxLength is not None:
        add(
            "ExpectColumnValueLengthsToBeBetween",
            {"column": col, "min_value": opts.minLength, "max_value": opts.maxLength},
            f"{col} length in range",
            "row",
            col,
            opath,
            lt,
        )


def _property_rule_specs(prop: SchemaProperty, rule: DataQuality, rpath: str, add, refuse) -> None:
    col, lt = prop.name, prop.logicalType
    if rule.kind == "text":
        return
    if rule.kind != "library":
        refuse(rpath, f"quality type {rule.kind!r} is not supported (use library metrics)")
    metric, args = rule.metric_name, rule.arguments or {}
    _require_zero(rule, rpath, refuse)
    if metric == "nullValues":
        add("ExpectColumnValuesToNotBeNull", {"column": col}, f"{col} not null", "row", col, rpath, lt)
    elif metric == "duplicateValues":
        add("ExpectColumnValuesToBeUnique", {"column": col}, f"{col} unique", "dataset", col, rpath, lt)
    elif metric == "invalidValues":
        if "validValues" in args:
            add(
                "ExpectColumnValuesToBeInSet",
                {"column": col, "value_set": list(args["validValues"])},
                f"{col} in set",
                "row",
                col,
                rpath,
                lt,
            )
        if "pattern" in args:
            add(
                "ExpectColumnValuesToMatchRegex",
                {"column": col, "regex": args["pattern"]},
                f"{col} matches pattern",
                "row",
                col,
                rpath,
                lt,
            )
    elif metric == "missingValues":
        values = list(args["missingValues"])
        present = [v for v in values if v is not None]
        if len(present) < len(values):
            add("ExpectColumnValuesToNotBeNull", {"column": col}, f"{col} not null", "row", col, rpath, lt)
        if present:
            add(
                "ExpectColumnValuesToNotBeInSet",
                {"column": col, "value_set": present},
                f"{col} not a missing value",
                "row",
                col,
                rpath,
                lt,
            )
    else:  # pragma: no cover - load-time checks only let the metrics above through
        refuse(f"{rpath}.metric", f"unsupported metric {metric!r}")


_OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)


def _set_operators(rule: DataQuality) -> dict[str, Any]:
    return {op: getattr(rule, op) for op in _OPERATORS if op in rule.model_fields_set}


def _require_zero(rule: DataQuality, rpath: str, refuse) -> None:
    """Per-row metrics are checked row by row, so only a zero count can be expressed."""
    ops = _set_operators(rule)
    if rule.unit not in (None, "rows") or ops != {"mustBe": 0}:
        got = ", ".join(f"{k}: {v}" for k, v in ops.items()) or "no operator"
        unit = f" (unit {rule.unit})" if rule.unit not in (None, "rows") else ""
        refuse(rpath, f"only 'mustBe: 0' rows can be checked for {rule.metric_name}, got {got}{unit}")


def _count_bounds(rule: DataQuality, rpath: str, refuse) -> tuple[int | None, int | None]:
    ops = _set_operators(rule)
    if rule.unit not in (None, "rows"):
        refuse(f"{rpath}.unit", f"rowCount is counted in rows, got unit {rule.unit!r}")
    for op in ("mustNotBe", "mustNotBeBetween"):
        if op in ops:
            refuse(f"{rpath}.{op}", f"{op} cannot be expressed as a row count range")
    if not ops:
        refuse(rpath, "rowCount rule without an operator (mustBe, mustBeBetween, mustBeGreaterOrEqualTo, ...)")
    lows: list[int] = []
    highs: list[int] = []
    if "mustBe" in ops:
        if not isinstance(ops["mustBe"], (int, float)) or isinstance(ops["mustBe"], bool):
            refuse(f"{rpath}.mustBe", f"expected a number, got {ops['mustBe']!r}")
        lows.append(math.ceil(ops["mustBe"]))
        highs.append(math.floor(ops["mustBe"]))
    if "mustBeGreaterThan" in ops:
        lows.append(math.floor(ops["mustBeGreaterThan"]) + 1)
    if "mustBeGreaterOrEqualTo" in ops:
        lows.append(math.ceil(ops["mustBeGreaterOrEqualTo"]))
    if "mustBeLessThan" in ops:
        highs.append(math.ceil(ops["mustBeLessThan"]) - 1)
    if "mustBeLessOrEqualTo" in ops:
        highs.append(math.floor(ops["mustBeLessOrEqualTo"]))
    if "mustBeBetween" in ops:  # inclusive, like SQL BETWEEN
        lo, hi = ops["mustBeBetween"]
        lows.append(math.ceil(lo))
        highs.append(math.floor(hi))
    low, high = (max(lows) if lows else None), (min(highs) if highs else None)
    if low is not None and high is not None and low > high:
        refuse(rpath, f"no row count satisfies the rule (>= {low} and <= {high})")
    return low, high


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
