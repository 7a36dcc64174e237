"""Compile report wall time (peak RSS: the largest compile child): MLP (and the FT-Transformer encoder when available) on cpu, v5e-4, v6e-4.

Cold: an empty report cache, every target compiled in its child process. Warm: the same
request again, served from the report cache. Ratio = cold / warm.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Comparison

TARGETS = ["cpu", "v5e-4", "v6e-4"]
BUCKETS = [1, 64, 1024, 8192]
MODELS = {
    "mlp": {"num_features": 27, "hidden_sizes": [64, 32]},
    "ft_transformer": {"num_features": 27, "d_model": 64, "num_layers": 4, "num_heads": 4},
}


def run() -> list[Comparison]:
    from models.architectures import ARCHITECTURES
    from tasks.compilation.report import compile_report

    results = []
    for arch, config in MODELS.items():
        if arch not in ARCHITECTURES:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            kwargs = dict(targets=TARGETS, buckets=BUCKETS, variants=["f32"], cache_dir=Path(tmp), timeout=600,
                          headroom=0.9)
            t0 = time.perf_counter()
            cold = compile_report(arch, config, **kwargs)
            cold_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            warm = compile_report(arch, config, **kwargs)
            warm_s = time.perf_counter() - t0
        assert all(r.cached for r in warm.rows) and [v.verdict for v in cold.verdicts] == ["fits"] * 3
        results.append(Comparison(
            name=f"compile report {arch}: {len(TARGETS)} targets x {len(BUCKETS)} buckets",
            candidate="warm (report cache)", baseline="cold (child process per target)",
            candidate_median_s=warm_s, baseline_median_s=cold_s, speedup=cold_s / warm_s, repeats=1,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, notes=f"goal: cold <= 60 s for the MLP; cold {cold_s:.1f} s"))
    return results
