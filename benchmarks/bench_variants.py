"""Every variant vs f32 in one run: rows/s through the exported artifact on the CPU and the artifact's size
(program + params as stored, msgpack), on an MLP large enough for the matmuls to dominate
(64 features, hidden 512-512-256: 0.43M params). Ratio = f32 time / variant time (> 1: the variant is faster).

Unstructured (prune-50) and 2:4 (prune-2of4) sparsity are stored and run dense: XLA's CPU and TPU kernels do the
same multiplications with the zeros, so expect ~1.0x rows/s and the same size (the zeros only help a compressor,
shown as the gzip size). Whole-neuron pruning (prune-neurons) shrinks the matrices, so it is where pruning buys
speed and memory here.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

from benchmarks.harness import Comparison, compare

ROWS = int(os.environ.get("LOCKGATE_BENCH_VARIANT_ROWS", 65_536))


def run() -> list[Comparison]:
    from models.config import MLPConfig
    from models.export import load_exported, score_bucketed
    from models.train import init_params
    from models.variants import VARIANTS, export_variant, variant_info, variant_params_to_bytes

    config = MLPConfig(num_features=64, hidden_sizes=(512, 512, 256))
    params = init_params(config, 0)
    x = np.random.default_rng(0).normal(size=(ROWS, 64)).astype(np.float32)
    buckets = (1024,)
    built = {}
    for variant in VARIANTS:
        blob, vparams = export_variant(variant, config, params, platforms=("cpu",))
        data = variant_params_to_bytes(vparams)
        built[variant] = (load_exported(blob), vparams, len(blob) + len(data), len(gzip.compress(data, 6)),
                          variant_info(variant, vparams).nonzero_fraction)
    f32_size, f32_gz = built["f32"][2:4]

    def scorer(variant):
        model, vparams = built[variant][:2]
        return lambda: score_bucketed(model, vparams, x, buckets=buckets)

    results = []
    for variant in VARIANTS[1:]:
        _, _, size, gz, nonzero = built[variant]
        cmp = compare(f"variant {variant} scoring {ROWS:,} rows at batch 1024 (cpu)", (variant, scorer(variant)),
                      ("f32", scorer("f32")), repeats=5)
        cmp.notes = (f"{ROWS / cmp.candidate_median_s:,.0f} rows/s vs f32 {ROWS / cmp.baseline_median_s:,.0f}; artifact "
                     f"{size / 1e6:.2f} MB vs {f32_size / 1e6:.2f} MB ({size / f32_size:.2f}x); params gzip "
                     f"{gz / 1e6:.2f} MB vs {f32_gz / 1e6:.2f} MB; nonzero {nonzero:.0%}")
        results.append(cmp)
    return results


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    for r in run():
        print(r.line())
