"""Drift benchmark data: the demo generator's scenarios, 21 columns, written as parquet partitions.

Columns: the credit contract's 11 features, the label (``defaulted``, categorical, so
concept drift shows as target drift), the prediction (the ground-truth default
probability under the reference coefficients, i.e. a fixed model) and 8 extra numeric
columns derived from the features with noise (so the frame has the 21 columns of the
issue's measurements). Scenarios follow the demo generator's knobs.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_contracts.synthetic_credit import default_probability, generate_frame

SCENARIOS = {
    "no drift": {},
    "covariate drift": {"covariate_drift": 1.0},
    "concept drift": {"concept_drift": 1.0},
    "quality incident": {"null_spike": 0.2, "unseen_categories": 0.05, "unit_change": True},
}
NUMERIC = ["age", "annual_income", "loan_amount", "credit_score", "debt_to_income", "employment_years",
           "num_open_accounts", "late_payments_12m"] + [f"extra_{i}" for i in range(8)] + ["prediction"]
CATEGORICAL = ["region", "product", "channel", "defaulted"]
PARTITION_ROWS = 1_000_000


def frame(n: int, *, seed: int, day: date, scenario: str) -> pd.DataFrame:
    df = generate_frame(n, seed=seed, day=day, **SCENARIOS[scenario])
    rng = np.random.default_rng(seed + 7)
    base = ["age", "annual_income", "loan_amount", "credit_score", "debt_to_income", "employment_years",
            "num_open_accounts", "late_payments_12m"]
    for i in range(8):
        src = df[base[i]].astype(np.float64)
        df[f"extra_{i}"] = src * (1 + 0.1 * rng.normal(size=n)) + rng.normal(size=n)
    df["prediction"] = default_probability(df.assign(annual_income=df["annual_income"].fillna(df["annual_income"].median())))
    df["defaulted"] = df["defaulted"].astype(str)
    return df[NUMERIC + CATEGORICAL]


def write_partitions(root: Path, rows: int, *, scenario: str, seed: int, distinct: int | None = None) -> Path:
    """``rows`` rows as hive partitions of ``PARTITION_ROWS``; with ``distinct``, only that many partitions are
    generated and the rest are hard links to them (same bytes, no extra disk)."""
    root.mkdir(parents=True, exist_ok=True)
    n_parts = max(1, -(-rows // PARTITION_ROWS))
    made: list[Path] = []
    for i in range(n_parts):
        path = root / f"part={i:04d}" / "data.parquet"
        if path.exists():
            made.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if distinct is not None and i >= distinct:
            os.link(made[i % distinct], path)
        else:
            n = min(PARTITION_ROWS, rows - i * PARTITION_ROWS)
            df = frame(n, seed=seed + i, day=date(2026, 1, 1) + timedelta(days=i), scenario=scenario)
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=256_000)
        made.append(path)
    return root
