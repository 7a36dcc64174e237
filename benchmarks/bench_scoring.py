"""Scoring: the exported artifact in bucketed batches vs a plain jax.jit of the model on the same rows.

The artifact path adds deserialisation-independent overhead (padding to buckets,
chunking); this shows what deploying the exact canaried artifact costs.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Comparison, compare


def run(n_rows: int = 200_000, n_features: int = 30) -> list[Comparison]:
    import jax

    from models.config import MLPConfig
    from models.export import export_inference, load_exported, predict_proba, score_bucketed
    from models.train import init_params

    config = MLPConfig(num_features=n_features, hidden_sizes=(64, 32))
    params = init_params(config, seed=0)
    x = np.random.default_rng(0).normal(size=(n_rows, n_features)).astype(np.float32)
    exported = load_exported(export_inference(config, params))
    direct = jax.jit(predict_proba, static_argnums=0)
    assert np.allclose(score_bucketed(exported, params, x), np.asarray(direct(config, params, x)), atol=1e-6)
    return [compare(
        f"score {n_rows:,} rows x {n_features}",
        ("exported artifact, bucketed", lambda: score_bucketed(exported, params, x)),
        ("jax.jit(predict_proba), one call", lambda: np.asarray(direct(config, params, x))),
    )]
