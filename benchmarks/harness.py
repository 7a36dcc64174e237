"""A small benchmark harness: a candidate and its baseline measured in the same run, reported as a ratio.

Both sides run alternately (baseline, candidate, baseline, ...) after a warm-up, so
machine noise hits both alike; the report gives medians, the ratio
baseline/candidate (>1 means the candidate is faster) and peak RSS growth.
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable


@dataclass
class Comparison:
    name: str
    candidate: str
    baseline: str
    candidate_median_s: float
    baseline_median_s: float
    speedup: float  # baseline / candidate
    repeats: int
    peak_rss_mb: float
    notes: str = ""

    def line(self) -> str:
        return (f"{self.name}: {self.candidate} {self.candidate_median_s * 1e3:.1f} ms vs {self.baseline} "
                f"{self.baseline_median_s * 1e3:.1f} ms -> {self.speedup:.2f}x (median of {self.repeats}; "
                f"peak RSS {self.peak_rss_mb:.0f} MB){' ' + self.notes if self.notes else ''}")


def compare(name: str, candidate: tuple[str, Callable[[], object]], baseline: tuple[str, Callable[[], object]],
            *, repeats: int = 5, warmup: int = 1, notes: str = "") -> Comparison:
    """Time ``candidate`` and ``baseline`` interleaved; return medians and the ratio."""
    (cand_name, cand), (base_name, base) = candidate, baseline
    for _ in range(warmup):
        base()
        cand()
    cand_times, base_times = [], []
    for _ in range(repeats):
        for fn, times in ((base, base_times), (cand, cand_times)):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    c, b = statistics.median(cand_times), statistics.median(base_times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Comparison(name, cand_name, base_name, c, b, b / c, repeats, peak, notes)


def write_results(results: list, path: Path) -> None:
    """Comparisons (and any other result dataclass, e.g. bench_everyday's Figure, tagged with its type) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) if isinstance(r, Comparison) else {"type": type(r).__name__, **asdict(r)}
                                for r in results], indent=2))
