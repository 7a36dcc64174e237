"""Run the benchmarks: `uv run python -m benchmarks.run [NAME ...]` (default: all; names: scoring, compile, canary, drift, validation, batch, signing, data, variants, byo, everyday, gc, registry).

A benchmark's ``run()`` returns results with ``.line()``: harness Comparisons, or Figures against a goal
(benchmarks/bench_everyday.py); both are dataclasses, written to benchmarks/results/latest.json."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

BENCHMARKS = {
    "scoring": "benchmarks.bench_scoring",
    "compile": "benchmarks.bench_compile",
    "canary": "benchmarks.bench_canary",
    "drift": "benchmarks.bench_drift",
    "validation": "benchmarks.bench_validation",
    "batch": "benchmarks.bench_batch",
    "signing": "benchmarks.bench_signing",
    "data": "benchmarks.bench_data",
    "variants": "benchmarks.bench_variants",
    "byo": "benchmarks.bench_byo",
    "everyday": "benchmarks.bench_everyday",
    "gc": "benchmarks.bench_gc",
    "registry": "benchmarks.bench_registry",
}


def main() -> None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {sorted(BENCHMARKS)})")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)}")
    results = []
    for name in args.names or list(BENCHMARKS):
        for comparison in importlib.import_module(BENCHMARKS[name]).run():
            print(comparison.line(), flush=True)
            results.append(comparison)
    from benchmarks.harness import write_results

    write_results(results, Path("benchmarks/results/latest.json"))


if __name__ == "__main__":
    main()
