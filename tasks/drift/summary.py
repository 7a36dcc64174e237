"""Mergeable per-column summaries for drift, built by streaming record batches.

A summary per column and side holds what Evidently's stattests need, in a form that
adds up exactly over partitions and row groups:

- numeric: finite count, null and non-finite counts, min, max, mean and M2 (Chan's
  parallel variance), the exact value counts while the column has at most
  ``DISTINCT_CAP`` distinct values, and, for columns with more, histograms filled in
  a second pass once the combined min/max is known (Evidently's Sturges bins, and a
  ``GRID_BINS`` fine grid for the Wasserstein distance);
- categorical: exact value counts and the null count.

Row samples are drawn beside the summaries with a seeded Bernoulli mask per
partition, so the sample does not depend on thread scheduling: one for Evidently's
HTML report and, per column, one for stattests that have no mergeable form (KS,
Anderson-Darling, ...). Nothing here imports Evidently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DISTINCT_CAP = 100_000
GRID_BINS = 1 << 18


def merge_counts(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sum two (sorted unique values, counts) pairs into one."""
    values = np.concatenate([a[0], b[0]])
    if len(values) == 0:
        return a
    u, inv = np.unique(values, return_inverse=True)
    return u, np.bincount(inv, weights=np.concatenate([a[1], b[1]]), minlength=len(u)).astype(np.int64)


def value_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, counts) of a float64 array without NaN; hashed by Arrow, not sorted whole."""
    vc = pc.value_counts(pa.array(x))
    values = vc.field("values").to_numpy(zero_copy_only=False)
    order = np.argsort(values)
    return values[order], vc.field("counts").to_numpy(zero_copy_only=False)[order].astype(np.int64)


@dataclass
class NumericSummary:
    """One numeric column on one side (reference or current)."""

    rows: int = 0
    n: int = 0  # finite values: what Evidently keeps after replacing inf with NaN and dropping NaN
    nulls: int = 0  # null or NaN
    non_finite: int = 0  # +-inf
    lo: float = math.inf
    hi: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    integer: bool = True  # every batch had an integer arrow type
    counts: tuple[np.ndarray, np.ndarray] | None = field(default_factory=lambda: (np.empty(0), np.empty(0, np.int64)))
    uncapped: bool = False  # keep exact counts whatever the number of distinct values
    out_of_range: int = 0  # current side: finite values outside the reference's [min, max]
    sample: list[np.ndarray] = field(default_factory=list)
    grid: np.ndarray | None = None  # pass 2; int32 counts (a bin holds < 2**31 rows)
    sturges: np.ndarray | None = None  # pass 2

    @property
    def std(self) -> float:
        """Population standard deviation (``np.std``, ddof=0) of the finite values."""
        return math.sqrt(self.m2 / self.n) if self.n else float("nan")

    @property
    def distinct(self) -> int | None:
        """Number of distinct finite values, or None when above ``DISTINCT_CAP``."""
        return None if self.counts is None else len(self.counts[0])

    def add(self, values: np.ndarray, *, integer: bool, reference_range: tuple[float, float] | None) -> None:
        self.rows += len(values)
        self.integer &= integer
        finite_mask = np.isfinite(values)
        x = values[finite_mask] if not finite_mask.all() else values
        nan = int(np.isnan(values).sum()) if len(x) != len(values) else 0
        self.nulls += nan
        self.non_finite += len(values) - len(x) - nan
        if len(x) == 0:
            return
        n_b, mean_b = len(x), float(x.mean())
        m2_b = float(np.square(x - mean_b).sum())
        delta, n = mean_b - self.mean, self.n + n_b
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        if reference_range is not None:
            self.out_of_range += int(((x < reference_range[0]) | (x > reference_range[1])).sum())
        if self.counts is not None:
            self.counts = merge_counts(self.counts, value_counts(x))
            if not self.uncapped and len(self.counts[0]) > DISTINCT_CAP:
                self.counts = None

    def merge(self, other: NumericSummary) -> NumericSummary:
        out = NumericSummary(rows=self.rows + other.rows, nulls=self.nulls + other.nulls,
                             non_finite=self.non_finite + other.non_finite, integer=self.integer and other.integer,
                             uncapped=self.uncapped, out_of_range=self.out_of_range + other.out_of_range,
                             sample=self.sample + other.sample)
        out.n = self.n + other.n
        if out.n:
            delta = other.mean - self.mean
            out.mean = self.mean + delta * other.n / out.n
            out.m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / out.n
        out.lo, out.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        if self.counts is not None and other.counts is not None:
            out.counts = merge_counts(self.counts, other.counts)
            if not self.uncapped and len(out.counts[0]) > DISTINCT_CAP:
                out.counts = None
        else:
            out.counts = None
        out.grid = self.grid if other.grid is None else other.grid if self.grid is None else np.add(
            self.grid, other.grid, out=self.grid)  # in place: merges fold into a fresh accumulator
        out.sturges = _add(self.sturges, other.sturges)
        return out


def _add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return a if b is None else b
    return a + b


@dataclass
class CategoricalSummary:
    """One categorical column on one side: exact value counts."""

    rows: int = 0
    n: int = 0
    nulls: int = 0
    parts: list[pa.Table] = field(default_factory=list)
    sample: list[np.ndarray] = field(default_factory=list)

    def add(self, values: pa.Array) -> None:
        self.rows += len(values)
        if pa.types.is_floating(values.type):  # Evidently drops NaN and inf like nulls
            values = values.filter(pc.is_finite(values))
        else:
            values = values.drop_null()
        self.n += len(values)
        vc = pc.value_counts(values)
        self.parts.append(pa.table({"value": vc.field("values"), "count": vc.field("counts").cast(pa.int64())}))
        if len(self.parts) > 8:
            self.parts = [self._compact()]

    def _compact(self) -> pa.Table:
        if not self.parts:
            return pa.table({"value": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
        table = pa.concat_tables(self.parts, promote_options="permissive")
        grouped = table.group_by("value").aggregate([("count", "sum")])
        return grouped.rename_columns(["value", "count"])

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        return CategoricalSummary(rows=self.rows + other.rows, n=self.n + other.n, nulls=self.nulls + other.nulls,
                                  parts=self.parts + other.parts, sample=self.sample + other.sample)

    def finish(self) -> None:
        self.nulls = self.rows - self.n
        self.parts = [self._compact()]

    def value_counts(self) -> dict:
        """{value: count} over the non-null values (after :meth:`finish`)."""
        table = self.parts[0] if len(self.parts) == 1 else self._compact()
        return dict(zip(table.column("value").to_pylist(), table.column("count").to_pylist()))


Summary = NumericSummary | CategoricalSummary


@dataclass
class SideSummary:
    """Every declared column of one side, and the row sample for Evidently's report."""

    rows: int = 0
    columns: dict[str, Summary] = field(default_factory=dict)
    report_sample: list[pa.Table] = field(default_factory=list)

    def merge(self, other: SideSummary) -> SideSummary:
        cols = {k: v.merge(other.columns[k]) for k, v in self.columns.items()}
        return SideSummary(rows=self.rows + other.rows, columns=cols,
                           report_sample=self.report_sample + other.report_sample)


@dataclass(frozen=True)
class ScanPlan:
    """What pass 1 collects for one side."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    report_rate: float  # Bernoulli rate for the Evidently report sample
    sample_rates: dict[str, float]  # per column, for stattests without a mergeable form
    uncapped: frozenset[str] = frozenset()  # numeric columns whose exact counts are kept whatever their size
    reference_ranges: dict[str, tuple[float, float]] | None = None  # current side: for out-of-range shares
    capped: set[str] = field(default_factory=set)  # shared by a side's partitions: columns found over the cap


def numeric_values(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, bool]:
    """float64 values with NaN for nulls, and whether the arrow type is an integer type."""
    integer = pa.types.is_integer(array.type)
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.int8())
        integer = True
    values = array.to_numpy(zero_copy_only=False) if array.null_count else np.asarray(array)
    return np.asarray(values, dtype=np.float64), integer


def summarise_batches(batches: Iterable[pa.RecordBatch], plan: ScanPlan, seed: int) -> SideSummary:
    """Pass 1 over one partition's batches (in order): summaries and seeded samples."""
    rng = np.random.default_rng(seed)
    side = SideSummary(columns={c: NumericSummary(uncapped=c in plan.uncapped,
                                                  counts=None if c in plan.capped else (np.empty(0), np.empty(0, np.int64)))
                                for c in plan.numeric} | {c: CategoricalSummary() for c in plan.categorical})
    ranges = plan.reference_ranges or {}
    for batch in batches:
        n = batch.num_rows
        side.rows += n
        if plan.report_rate >= 1:
            side.report_sample.append(pa.Table.from_batches([batch]))
        elif plan.report_rate > 0:
            side.report_sample.append(pa.Table.from_batches([batch.filter(pa.array(rng.random(n) < plan.report_rate))]))
        for name in plan.numeric:
            values, integer = numeric_values(batch.column(name))
            summary = side.columns[name]
            summary.add(values, integer=integer, reference_range=ranges.get(name))
            if summary.counts is None:
                plan.capped.add(name)  # other partitions stop counting distinct values of this column
            rate = plan.sample_rates.get(name, 0.0)
            if rate > 0:
                kept = values if rate >= 1 else values[rng.random(n) < rate]
                summary.sample.append(kept[np.isfinite(kept)])
        for name in plan.categorical:
            column = batch.column(name)
            summary = side.columns[name]
            summary.add(column)
            rate = plan.sample_rates.get(name, 0.0)
            if rate > 0:
                kept = column if rate >= 1 else column.filter(pa.array(rng.random(n) < rate))
                summary.sample.append(kept.drop_null().to_numpy(zero_copy_only=False))
    for s in side.columns.values():
        if isinstance(s, CategoricalSummary):
            s.finish()
    return side


@dataclass(frozen=True)
class Bins:
    """Pass-2 bins of one continuous numeric column, shared by both sides."""

    sturges_edges: np.ndarray | None  # Evidently's np.histogram_bin_edges(combined, "sturges")
    grid_lo: float | None  # fine grid for the Wasserstein distance: GRID_BINS bins over [grid_lo, grid_hi]
    grid_hi: float | None


def grid_index(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Bin index of each value on the ``GRID_BINS`` grid over [lo, hi] (the last bin closed)."""
    scale = GRID_BINS / (hi - lo)
    idx = ((x - lo) * scale).astype(np.int64)
    np.clip(idx, 0, GRID_BINS - 1, out=idx)
    return idx


def histogram_batches(batches: Iterable[pa.RecordBatch], bins: dict[str, Bins]) -> dict[str, NumericSummary]:
    """Pass 2 over one partition: the Sturges and grid histograms of each continuous column."""
    out = {name: NumericSummary(counts=None) for name in bins}
    for batch in batches:
        for name, b in bins.items():
            values, _ = numeric_values(batch.column(name))
            x = values[np.isfinite(values)]
            summary = out[name]
            if b.sturges_edges is not None:
                h = np.histogram(x, bins=len(b.sturges_edges) - 1, range=(b.sturges_edges[0], b.sturges_edges[-1]))[0]
                summary.sturges = _add(summary.sturges, h.astype(np.int64))  # small: Sturges has ~30 bins
            if b.grid_lo is not None:
                g = np.bincount(grid_index(x, b.grid_lo, b.grid_hi), minlength=GRID_BINS).astype(np.int32)
                summary.grid = g if summary.grid is None else np.add(summary.grid, g, out=summary.grid)
    return out

