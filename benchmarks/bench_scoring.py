"""CPU inference: the exported artifact with buckets vs eager ``model.apply`` vs plain ``jax.jit`` on ragged shapes.

Rows/s at batch 1, 64, 1024 and 8192, and on a 1M-row stream cut into ragged batches
(sizes vary, so plain jit recompiles for every new shape while the bucketed artifact
compiles once per bucket). Achieved GFLOP/s uses the flops of the compiled program
(cost_analysis) and is set against this machine's measured f32 matmul throughput.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import Comparison, compare

N_FEATURES = 30


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """The machine's f32 matmul throughput through XLA (the physical limit for this model here)."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeats):
        f(a).block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def run() -> list[Comparison]:
    import jax

    from models.config import MLPConfig
    from models.export import export_inference, load_exported, predict_proba, score_bucketed
    from models.mlp import MLPClassifier
    from models.train import init_params

    config = MLPConfig(num_features=N_FEATURES, hidden_sizes=(64, 32))
    params = init_params(config, seed=0)
    exported = load_exported(export_inference(config, params))
    module = MLPClassifier(config)
    jitted = jax.jit(predict_proba, static_argnums=0)
    rng = np.random.default_rng(0)
    results = []
    peak = matmul_gflops()
    flops_per_row = 2 * (N_FEATURES * 64 + 64 * 32 + 32)
    for batch in (1, 64, 1024, 8192):
        x = rng.normal(size=(batch, N_FEATURES)).astype(np.float32)
        repeats = 200 if batch <= 64 else 20
        assert np.allclose(score_bucketed(exported, params, x), np.asarray(jitted(config, params, x)), atol=1e-6)

        def artifact(x=x, repeats=repeats):
            for _ in range(repeats):
                score_bucketed(exported, params, x)

        def eager(x=x, repeats=repeats):
            with jax.disable_jit():
                for _ in range(max(1, repeats // 20)):
                    np.asarray(jax.nn.sigmoid(module.apply(params, x)))

        c = compare(f"batch {batch}", (f"exported artifact, bucketed (x{repeats})", artifact),
                    (f"eager model.apply (x{max(1, repeats // 20)})", eager), repeats=3)
        per_call_artifact = c.candidate_median_s / repeats
        per_call_eager = c.baseline_median_s / max(1, repeats // 20)
        c.speedup = per_call_eager / per_call_artifact
        c.notes = (f"artifact {batch / per_call_artifact:,.0f} rows/s vs eager {batch / per_call_eager:,.0f} rows/s; "
                   f"{flops_per_row * batch / per_call_artifact / 1e9:.2f} GFLOP/s of {peak:.0f} GFLOP/s matmul peak")
        results.append(c)

    # 1M-row stream in ragged batches: every size new to plain jit, buckets for the artifact
    sizes = rng.integers(500, 9000, size=220)
    sizes = sizes[np.cumsum(sizes) <= 1_000_000]
    stream = rng.normal(size=(int(sizes.sum()) + 777, N_FEATURES)).astype(np.float32)  # + a ragged tail
    bounds = np.concatenate([[0], np.cumsum(sizes), [len(stream)]])

    def artifact_stream():
        for a, b in zip(bounds[:-1], bounds[1:]):
            score_bucketed(exported, params, stream[a:b])

    def jit_stream():
        # a new function object per run, so JAX's trace and compile caches miss: every new shape recompiles
        fresh = jax.jit(lambda p, x: predict_proba(config, p, x))
        for a, b in zip(bounds[:-1], bounds[1:]):
            np.asarray(fresh(params, stream[a:b]))

    c = compare(f"ragged stream {len(stream):,} rows in {len(bounds) - 1} batches",
                ("exported artifact, bucketed", artifact_stream), ("plain jax.jit, recompiling per shape", jit_stream),
                repeats=2)
    c.notes = (f"artifact {len(stream) / c.candidate_median_s:,.0f} rows/s vs jit "
               f"{len(stream) / c.baseline_median_s:,.0f} rows/s")
    results.append(c)
    return results
