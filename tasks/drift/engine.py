"""Drift at any size: per-partition summaries in parallel, merged, then Evidently's statistics.

Pass 1 reads the declared columns of each side once (reference first, so the current
side knows the reference's value range and which columns need exact counts). Pass 2
reads again only the continuous numeric columns that need histograms, and the
columns whose method has no mergeable form (their rows, or a seeded sample of
``sample_rows`` per side, go to Evidently's own stattest function). Memory is bounded
by one batch per worker plus the summaries, whatever the row count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.drift.results import METHODS, ColumnDrift, ColumnQuality, DriftSpec, check_method
from tasks.drift.source import DriftInputError, Source, check_schemas, open_source
from tasks.drift.stats import (
    MERGEABLE,
    binned_score,
    chisquare_p,
    default_method,
    drifted,
    keyed_percents,
    needs_bins,
    numeric_percents,
    sturges_edges,
    wasserstein_norm,
    z_p,
)
from tasks.drift.summary import (
    Bins,
    CategoricalSummary,
    NumericSummary,
    ScanPlan,
    SideSummary,
    histogram_batches,
    summarise_batches,
)

Progress = Callable[[str, int, int, int], None]  # (phase, partitions done, partitions total, rows done)


@dataclass
class Measurement:
    columns: list[ColumnDrift]
    quality: list[ColumnQuality]
    report_reference: pd.DataFrame
    report_current: pd.DataFrame
    n_reference: int
    n_current: int
    seconds: float


def _parallel(source: Source, work, fold, phase: str, progress: Progress | None, workers: int):
    """``work(i, partition)`` over every partition, at most ``workers + 1`` in flight, folded in partition order
    (so the result does not depend on scheduling and finished partitions are not kept)."""
    acc, rows, pending = None, 0, {}
    total = len(source.partitions)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(total):
            pending[i] = pool.submit(work, i, source.partitions[i])
            while pending and (len(pending) > workers or i == total - 1):
                first = min(pending)
                result = pending.pop(first).result()
                acc = result if acc is None else fold(acc, result)
                rows += source.partition_rows[first]
                if progress:
                    progress(phase, first + 1, total, rows)
    return acc


def _pass1(source: Source, plan: ScanPlan, seed: int, progress, workers: int) -> SideSummary:
    columns = list(plan.numeric) + list(plan.categorical)
    side = _parallel(source, lambda i, part: summarise_batches(part(columns), plan, seed=seed * 100_003 + i),
                     SideSummary.merge, f"{source.what}: summaries", progress, workers)
    for s in side.columns.values():
        if isinstance(s, CategoricalSummary):
            s.finish()
    return side


def _sample(summary, rows: int, seed: int) -> pd.Series:
    parts = [p for p in summary.sample if len(p)]
    values = np.concatenate(parts) if parts else np.empty(0)
    if len(values) > rows:  # trim the Bernoulli sample to at most `rows`, reproducibly
        values = values[np.sort(np.random.default_rng(seed).choice(len(values), rows, replace=False))]
    return pd.Series(values)


def _evidently_stattest(spec: DriftSpec, method: str, threshold: float, ref: pd.Series, cur: pd.Series) -> float:
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Numerical if spec.kind == "numeric" else ColumnType.Categorical
    test = get_stattest(ref, cur, kind, method)
    return float(test(ref, cur, kind, threshold).drift_score)


def _counts(s) -> dict:
    return s.value_counts() if isinstance(s, CategoricalSummary) else dict(zip(s.counts[0].tolist(), s.counts[1].tolist()))


def _score(spec: DriftSpec, method: str, ref, cur) -> tuple[float, float, str]:
    """(score, error bound, basis) of a mergeable method from the two summaries."""
    if method == "wasserstein":
        score, bound = wasserstein_norm(ref, cur)
        return score, bound, "value counts" if bound == 0 else "histogram grid"
    if method in ("chisquare", "z"):
        fn = chisquare_p if method == "chisquare" else z_p
        return fn(_counts(ref), _counts(cur), ref.n, cur.n), 0.0, "value counts"
    if spec.kind == "categorical":
        ref_p, cur_p = keyed_percents(_counts(ref), _counts(cur), ref.n, cur.n)
    else:
        ref_p, cur_p = numeric_percents(ref, cur)
    return binned_score(method, ref_p, cur_p), 0.0, "binned counts"


def _quality(spec: DriftSpec, ref, cur) -> ColumnQuality:
    ref_null = (ref.rows - ref.n) / ref.rows if ref.rows else 0.0
    cur_null = (cur.rows - cur.n) / cur.rows if cur.rows else 0.0
    unseen, out_of_range, examples = None, None, []
    if isinstance(cur, CategoricalSummary):
        ref_keys = set(_counts(ref))
        new = {k: v for k, v in _counts(cur).items() if k not in ref_keys}
        unseen = sum(new.values()) / cur.rows if cur.rows else 0.0
        examples = [str(k) for k, _ in sorted(new.items(), key=lambda kv: -kv[1])[:5]]
    elif ref.n:
        out_of_range = cur.out_of_range / cur.rows if cur.rows else 0.0
    return ColumnQuality(column=spec.name, null_share_reference=ref_null, null_share_current=cur_null,
                         unseen_share=unseen, unseen_examples=examples, out_of_range_share=out_of_range,
                         reference_range=(ref.lo, ref.hi) if isinstance(ref, NumericSummary) and ref.n else None)


def measure(
    reference: pd.DataFrame | str | Path,
    current: pd.DataFrame | str | Path,
    specs: list[DriftSpec],
    *,
    report_rows: int = 20_000,
    sample_rows: int = 1_000_000,
    seed: int = 0,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Measurement:
    """Measure drift per column over two sources of any size (see the module doc).

    Raises:
      DriftInputError: a side is missing, unreadable, empty, lacks a declared column, or
        the two sides' types differ; or a method does not apply to its column's kind.
    """
    start = time.perf_counter()
    workers = workers or os.cpu_count() or 2
    names = [s.name for s in specs]
    numeric = tuple(s.name for s in specs if s.kind == "numeric")
    categorical = tuple(s.name for s in specs if s.kind == "categorical")
    for s in specs:
        if s.method:
            check_method(s.method, s.kind, s.name)
    ref_src, cur_src = open_source(reference, names, "reference"), open_source(current, names, "current")
    check_schemas(ref_src, cur_src, list(numeric), list(categorical))

    ref = _pass1(ref_src, ScanPlan(numeric, categorical, min(1.0, report_rows / ref_src.rows), {}), seed, progress,
                 workers)
    keyed_binned = frozenset(
        s.name for s in specs if s.kind == "numeric" and s.method in ("jensenshannon", "psi", "kl_div")
        and ref.columns[s.name].counts is not None and len(ref.columns[s.name].counts[0]) <= 20)
    ranges = {c: (ref.columns[c].lo, ref.columns[c].hi) for c in numeric if ref.columns[c].n}
    # Current-side counts only help where the reference kept its own (exact Wasserstein, keyed bins).
    capped = {c for c in numeric if ref.columns[c].counts is None}
    cur = _pass1(cur_src, ScanPlan(numeric, categorical, min(1.0, report_rows / cur_src.rows), {}, keyed_binned,
                                   ranges, capped), seed + 1, progress, workers)

    # Resolve methods, then see what pass 2 must read.
    resolved: dict[str, tuple[str, float]] = {}
    bins: dict[str, Bins] = {}
    sampled: list[str] = []
    for s in specs:
        r, c = ref.columns[s.name], cur.columns[s.name]
        if r.n == 0 or c.n == 0:
            continue
        method = s.method or default_method(s.kind, r.n, _combined_distinct(r, c))
        resolved[s.name] = (method, s.threshold if s.threshold is not None else METHODS[method].default_threshold)
        if method not in MERGEABLE:
            sampled.append(s.name)
        elif s.kind == "numeric":
            sturges, grid = needs_bins(method, r, c)
            if sturges or grid:
                lo, hi = min(r.lo, c.lo), max(r.hi, c.hi)
                edges = sturges_edges(lo, hi, r.n + c.n, r.integer and c.integer) if sturges else None
                bins[s.name] = Bins(edges, lo if grid else None, hi if grid else None)
    if bins or sampled:
        for src, side, offset in ((ref_src, ref, 2), (cur_src, cur, 3)):
            _pass2(src, side, bins, sampled, sample_rows, seed + offset, progress, workers)

    columns = []
    for s in specs:
        r, c = ref.columns[s.name], cur.columns[s.name]
        if s.name not in resolved:
            empty = "reference" if r.n == 0 else "current"
            columns.append(ColumnDrift(column=s.name, kind=s.kind, role=s.role, method=s.method or "none",
                                       score=float("nan"), threshold=float("nan"), drifted=False, status="no data",
                                       basis=f"no non-null finite values in {empty} data"))
            continue
        method, threshold = resolved[s.name]
        if s.name in sampled:
            rs, cs = _sample(r, sample_rows, seed + 4), _sample(c, sample_rows, seed + 5)
            score, bound = _evidently_stattest(s, method, threshold, rs, cs), 0.0
            exact = len(rs) == r.n and len(cs) == c.n
            basis = "all rows (Evidently)" if exact else f"seeded sample {len(rs):,}/{len(cs):,} rows (Evidently)"
        else:
            score, bound, basis = _score(s, method, r, c)
            exact = bound == 0
        columns.append(ColumnDrift(
            column=s.name, kind=s.kind, role=s.role, method=method, method_label=METHODS[method].label, score=score,
            threshold=threshold, drifted=drifted(METHODS[method].drift_when, score, threshold), exact=exact,
            error_bound=bound, basis=basis, n_reference=r.n, n_current=c.n))
    quality = [_quality(s, ref.columns[s.name], cur.columns[s.name]) for s in specs]
    return Measurement(columns=columns, quality=quality, report_reference=_report_frame(ref, names),
                       report_current=_report_frame(cur, names), n_reference=ref_src.rows, n_current=cur_src.rows,
                       seconds=time.perf_counter() - start)


def _combined_distinct(r, c) -> int | None:
    if isinstance(r, CategoricalSummary):
        return len(set(r.value_counts()) | set(c.value_counts()))
    if r.counts is None or c.counts is None:
        return None
    return len(np.union1d(r.counts[0], c.counts[0]))


def _pass2(src: Source, side: SideSummary, bins: dict[str, Bins], sampled: list[str], sample_rows: int, seed: int,
           progress, workers: int) -> None:
    rates = {c: min(1.0, sample_rows / max(side.columns[c].n, 1)) for c in sampled}
    plan = ScanPlan(tuple(c for c in sampled if isinstance(side.columns[c], NumericSummary)),
                    tuple(c for c in sampled if isinstance(side.columns[c], CategoricalSummary)), 0.0, rates)

    def work(i, part):
        hist = histogram_batches(part(list(bins)), bins) if bins else {}
        samples = summarise_batches(part(sampled), plan, seed=seed * 100_003 + i) if sampled else SideSummary()
        return hist, samples

    def fold(a, b):
        hist = {name: a[0][name].merge(b[0][name]) for name in a[0]}
        return hist, a[1].merge(b[1]) if sampled else a[1]

    hist, samples = _parallel(src, work, fold, f"{src.what}: histograms", progress, workers)
    for name in bins:
        side.columns[name].sturges, side.columns[name].grid = hist[name].sturges, hist[name].grid
    for name in sampled:
        side.columns[name].sample = samples.columns[name].sample


def _report_frame(side: SideSummary, names: list[str]) -> pd.DataFrame:
    tables = [t for t in side.report_sample if t.num_rows]
    if not tables:
        return pd.DataFrame(columns=names)
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.to_pandas()


def error_bound_note(columns: list[ColumnDrift]) -> str:
    """One line on how exact the scores are."""
    approx = [c for c in columns if not c.exact]
    if not approx:
        return f"all {len(columns)} scores exact (complete counts or every row)"
    by_basis: dict[str, list[str]] = {}
    for c in approx:
        by_basis.setdefault(c.basis, []).append(c.column)
    worst = max((c.error_bound for c in approx), default=0.0)
    parts = [f"{len(cols)} by {basis} ({', '.join(cols[:4])}{', ...' if len(cols) > 4 else ''})"
             for basis, cols in by_basis.items()]
    bound = f"; largest error bound {worst:.2g}" if worst else ""
    return f"{len(columns) - len(approx)} of {len(columns)} scores exact; {'; '.join(parts)}{bound}"


__all__ = ["DriftInputError", "Measurement", "measure", "error_bound_note"]
