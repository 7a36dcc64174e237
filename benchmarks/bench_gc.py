"""The collector's thresholds in lockgate's processes (pipelines/gc_thresholds.py) against Python's defaults.

Each side is a fresh process that loads what a lifecycle loads (Prefect, MLflow, Great Expectations, Evidently, JAX,
Flax, lockgate's gates) and reports the CPU seconds of that import and of the collector during it (gc.callbacks);
the two sides alternate, so machine noise hits both alike. The figure is the import's CPU, not the wall time.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import Comparison

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 5
_CHILD = """
import gc, json, sys, time
if sys.argv[1] == "lockgate":
    from pipelines.gc_thresholds import tune_gc
    tune_gc()
spent = [0.0, 0.0]
def timer(phase, info):
    if phase == "start":
        spent[1] = time.thread_time()
    else:
        spent[0] += time.thread_time() - spent[1]
gc.callbacks.append(timer)
t0 = time.process_time()
import great_expectations, evidently, mlflow, prefect, jax, flax.linen, pyarrow  # noqa: E401
import pipelines.lifecycle, tasks.gates, tasks.drift.gate, tasks.validation.gate, tasks.canary.gate  # noqa: E401
print(json.dumps({"cpu": time.process_time() - t0, "gc": spent[0], "full": gc.get_stats()[2]["collections"]}))
"""


def _child(side: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, side], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> list[Comparison]:
    _child("python"), _child("lockgate")  # warm-up: bytecode and the page cache
    runs: dict[str, list[dict]] = {"python": [], "lockgate": []}
    for _ in range(REPEATS):
        for side in ("python", "lockgate"):
            runs[side].append(_child(side))
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("cpu", "gc", "full")} for side, rs in runs.items()}
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    notes = (f"CPU of the import; in the collector {med['lockgate']['gc']:.2f} vs {med['python']['gc']:.2f} CPU-s, "
             f"full collections {med['lockgate']['full']:.0f} vs {med['python']['full']:.0f}")
    return [Comparison("load the lifecycle's modules (fresh process)", "lockgate's gc thresholds", "Python's defaults",
                       med["lockgate"]["cpu"], med["python"]["cpu"], med["python"]["cpu"] / med["lockgate"]["cpu"],
                       REPEATS, peak, notes)]


if __name__ == "__main__":
    for comparison in run():
        print(comparison.line())
