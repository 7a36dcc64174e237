"""Latency and throughput of the compiled candidate and champion, measured interleaved.

Machine noise (another process, frequency scaling, GC) drifts over seconds, so the
two models are never timed in separate blocks: each repeat runs every bucket for
every model back to back, and the model order alternates between repeats, so noise
lands on both alike and the ratio of their percentiles is fair. Plain functions;
the scorers are callables, e.g.
``lambda xb: score_bucketed(model.exported, model.params, xb, buckets=(b,))``.

Clocks: ``wall`` times a call by the wall clock. ``busy`` (the canary's choice on JAX's CPU backend) takes the
smaller of its wall time and the CPU time the whole process used meanwhile: a compiled XLA program on the CPU
keeps this process's threads busy for all of its work, so the time the host ran other processes instead (a
busy shared machine, a throttled container) is left out, and the model is judged, not the host. Work that waits
(a sleep, I/O, a device) would be under-counted, so accelerators are timed by ``wall``.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.evidence import Check, held_to

Scorer = Callable[[np.ndarray], object]
Clock = Literal["wall", "busy"]


class BucketLatency(BaseModel):
    """Timings of one model at one batch bucket."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name, e.g. 'candidate' or 'champion'.")
    bucket: int = Field(description="Rows per call.")
    p50_ms: float = Field(description="Median time of one call, ms (by the report's clock).")
    p95_ms: float = Field(description="95th percentile time of one call, ms.")
    p99_ms: float = Field(description="99th percentile time of one call, ms (with few repeats, close to the max).")
    rows_per_s: float = Field(description="Throughput at the median: bucket / p50.")
    samples_ms: list[float] = Field(description="Every timed call after warm-up, ms, in measurement order.")
    wall_p99_ms: float | None = Field(
        None, description="With the busy clock: the 99th percentile wall time, the host's stalls included.")


class LatencyReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str = Field(description="Where it was measured: OS, machine, processor.")
    clock: Clock = Field("wall", description="How a call was timed: 'wall', or 'busy' (the smaller of its wall time "
                         "and the process's CPU time meanwhile: the time the host ran others left out).")
    warmup: int = Field(description="Untimed calls per model and bucket before measuring (compilation, caches).")
    repeats: int = Field(description="Timed calls per model and bucket.")
    results: list[BucketLatency] = Field(description="One entry per model and bucket.")
    retimings: list[LatencyReport] = Field(
        default_factory=list, description="Later timings of the buckets whose budget failed, in order "
        "(tasks.canary.latency.retimed_checks): a budget fails only if it fails in every timing.")

    def get(self, model: str, bucket: int) -> BucketLatency | None:
        return next((r for r in self.results if r.model == model and r.bucket == bucket), None)

    def samples(self) -> dict[tuple[str, int], list[float]]:
        """(model, bucket) -> raw samples in ms, e.g. for :func:`tasks.canary.plots.latency_histogram`."""
        return {(r.model, r.bucket): r.samples_ms for r in self.results}


def _batch(x: np.ndarray, rows: int) -> np.ndarray:
    # A bucket larger than the sample repeats its rows: timing depends on the shape, not the values.
    reps = -(-rows // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:rows]) if reps > 1 else np.ascontiguousarray(x[:rows])


def _timed(f: Scorer, xb: np.ndarray) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    np.asarray(f(xb))  # forces the result, in case the scorer returns an async device array
    t1, c1 = time.perf_counter(), time.process_time()
    return (t1 - t0) * 1e3, (c1 - c0) * 1e3


def measure_latency(
    models: dict[str, Scorer],
    x: np.ndarray,
    *,
    buckets: Sequence[int],
    warmup: int = 2,
    repeats: int = 20,
    clock: Clock = "wall",
) -> LatencyReport:
    """p50/p95/p99 (ms) and rows/s per model per bucket, timed interleaved after warm-up.

    Args:
      models: name -> scorer taking f32[b, d] and returning scores[b].
      x: f32[n, d] sample rows; each bucket takes its first b rows (tiled if n < b).
      buckets: batch sizes to time.
      warmup: untimed calls per model and bucket first (the first call compiles).
      repeats: timed calls per model and bucket; in repeat r the models run in the
        given order when r is even and reversed when odd, each bucket in turn.
      clock: 'wall', or 'busy' for work that is all CPU in this process (see the module docstring).
    """
    x = np.asarray(x, dtype=np.float32)
    if not models:
        raise ValueError("measure_latency needs at least one model")
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty [n, d] matrix, got shape {list(x.shape)}")
    if not buckets or any(isinstance(b, bool) or int(b) != b or b <= 0 for b in buckets):
        raise ValueError(f"buckets must be positive ints, got {list(buckets)}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    buckets = [int(b) for b in buckets]
    batches = {b: _batch(x, b) for b in buckets}
    names = list(models)
    for b in buckets:
        for name in names:
            for _ in range(warmup):
                _timed(models[name], batches[b])
    if clock not in ("wall", "busy"):
        raise ValueError(f"clock must be 'wall' or 'busy', got {clock!r}")
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {(m, b): [] for m in names for b in buckets}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for b in buckets:
            for name in order:
                samples[(name, b)].append(_timed(models[name], batches[b]))
    results = []
    for name in names:
        for b in buckets:
            wall = np.asarray([w for w, _ in samples[(name, b)]])
            s = wall if clock == "wall" else np.minimum(wall, [c for _, c in samples[(name, b)]])
            p50, p95, p99 = (float(v) for v in np.percentile(s, [50, 95, 99]))
            results.append(BucketLatency(model=name, bucket=b, p50_ms=p50, p95_ms=p95, p99_ms=p99,
                                         rows_per_s=b / (p50 / 1e3) if p50 > 0 else float("inf"),
                                         samples_ms=s.tolist(),
                                         wall_p99_ms=None if clock == "wall" else float(np.percentile(wall, 99))))
    where = " ".join(v for v in (platform.system(), platform.machine(), platform.processor()) if v)
    return LatencyReport(platform=where, clock=clock, warmup=warmup, repeats=repeats, results=results)


def latency_checks(
    report: LatencyReport,
    candidate: str = "candidate",
    champion: str | None = "champion",
    *,
    max_p99_ratio: float,
    max_p99_ms: dict[int, float] | None = None,
    floor_ms: float = 0.0,
) -> list[Check]:
    """Relative budget (candidate p99 <= ``max_p99_ratio`` x champion p99) at every bucket the candidate was
    timed at, and the absolute budget ``max_p99_ms`` (bucket -> ms) per bucket. A budgeted bucket that was not
    measured fails. With no champion (first deployment, ``champion=None``) only the absolute budget applies.

    A bucket where both p99s are under ``floor_ms`` gets an informational ratio check saying it was not judged
    (the ratio of two sub-millisecond timings is the host's noise); its absolute budget still applies."""
    cand = sorted((r for r in report.results if r.model == candidate), key=lambda r: r.bucket)
    if not cand:
        raise ValueError(f"no latency measured for {candidate!r}; models in the report: "
                         f"{sorted({r.model for r in report.results})}")
    checks = []
    if champion is not None:
        for c in cand:
            base = report.get(champion, c.bucket)
            ratio = None if base is None or base.p99_ms <= 0 else c.p99_ms / base.p99_ms
            if base is not None and max(c.p99_ms, base.p99_ms) < floor_ms:
                checks.append(Check(
                    name=f"latency_p99_ratio:b{c.bucket}", value=ratio, threshold=max_p99_ratio, comparison="info",
                    passed=True, informational=True,
                    note=f"p99 {max(c.p99_ms, base.p99_ms):.2f} ms (candidate {c.p99_ms:.2f}, {champion} "
                         f"{base.p99_ms:.2f}) < floor {float(floor_ms)} ms: ratio not judged"))
                continue
            checks.append(held_to(f"latency_p99_ratio:b{c.bucket}", ratio, "<=", max_p99_ratio))
    for bucket, limit in sorted((max_p99_ms or {}).items()):
        c = report.get(candidate, bucket)
        checks.append(held_to(f"latency_p99_ms:b{bucket}", None if c is None else c.p99_ms, "<=", limit))
    return checks


RETIME_REPEATS = 5  # a re-timing's repeats, as a multiple of the first timing's


def retimed_checks(
    report: LatencyReport,
    checks_of: Callable[[LatencyReport], list[Check]],
    measure: Callable[[list[int], int], LatencyReport],
    *,
    retimes: int,
) -> list[Check]:
    """Hold ``report`` to its budget and re-time the buckets of failed budget checks, up to ``retimes`` times.

    With a few repeats a p99 is close to the max, so one stall of the machine (another process, GC, a page
    fault) during one call can put a candidate over its budget. A real slowdown fails every timing; a stall
    seldom hits the same bucket twice. So a check fails only if it fails in every timing, and its value is the
    best one measured. Each re-timing (``measure(buckets, repeats)``, interleaved and warmed up again) takes
    :data:`RETIME_REPEATS` times the first timing's repeats: on a host so busy that stalls come every few
    milliseconds, 20 calls per model leave the p99 to whichever model a stall happened to hit, while with 100 both
    models' p99 carry the host's stalls alike and the ratio measures the models again; a slower model is slower in
    every call, so more calls do not hide it. Each re-timing is appended to ``report.retimings`` so the evidence
    shows every number behind the decision.

    Args:
      report: the first timing, as returned by :func:`measure_latency`.
      checks_of: the budget, e.g. ``lambda r: latency_checks(r, max_p99_ratio=3.0)``; every check it returns
        must be named ``<name>:b<bucket>``.
      measure: times the given buckets of every model again, with the given number of repeats.
      retimes: how many re-timings a failed check may get (0: decide on the first timing).
    """
    checks = checks_of(report)
    for _ in range(retimes):
        failed = sorted({_bucket_of(c) for c in checks if not c.passed} & {r.bucket for r in report.results})
        if not failed:
            break
        again = measure(failed, report.repeats * RETIME_REPEATS)
        report.retimings.append(again)
        newer = {c.name: c for c in checks_of(again) if _bucket_of(c) in failed}
        checks = [_better(c, newer.get(c.name)) for c in checks]
    return checks


def _bucket_of(check: Check) -> int:
    return int(check.name.rsplit(":b", 1)[1])


def _better(old: Check, new: Check | None) -> Check:
    if old.passed or new is None:
        return old
    if new.passed or old.value is None:
        return new
    if new.value is None or old.comparison not in ("<=", "<", ">=", ">"):
        return old
    return new if (new.value < old.value) == (old.comparison in ("<=", "<")) else old
