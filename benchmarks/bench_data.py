"""Data-side steps whose wall time the tests no longer assert, each against a baseline measured in the same run.

- ``data_docs``: a validation's Data Docs page (``write_data_docs``: GE's validation-page renderer and
  view, the offline rewrite) vs the GE validation that made the result (``validate_frame`` of the
  same 2,000-row batch, 20 rows failing two expectations): what the page adds to a small batch. The
  notes give the offline rewrite (``offline_page``) alone.
- ``synthetic_1m``: ``generate_frame`` of 1M rows (14 columns with their dependencies, string ids,
  timestamps, labels) vs numpy drawing the same 14M numbers (one normal per cell, no frame): the floor
  for making that many values.
- ``feature_encoding_200k``: ``feature_matrix`` on 200k rows (10 numeric columns, 3 categorical with
  nulls) vs plain pandas (standardize, fill NaN, ``get_dummies`` over the vocabulary, concatenate);
  the notes say whether the matrices are equal.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.harness import Comparison, compare

DAY = date(2026, 1, 1)


def data_docs(rows: int = 2_000) -> Comparison:
    from data_contracts.contract import load_contract
    from data_contracts.data_docs import ge_validation_page, offline_page, write_data_docs
    from data_contracts.ge_suite import ge_runtime
    from data_contracts.synthetic_credit import generate_frame
    from data_contracts.validate import validate_frame

    ge_runtime()  # GE's import and context (~9 s) out of both timings
    contract = load_contract("credit_default")
    frame = generate_frame(rows, seed=7, day=DAY)
    frame.loc[:9, "age"] = 5
    frame.loc[:9, "region"] = "atlantis"
    outcome = validate_frame(frame, contract, include_label=True)
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-docs-") as tmp:
        docs = write_data_docs(outcome.ge_result, Path(tmp), run_name="bench")
        ge_page = ge_validation_page(outcome.ge_result, run_name="bench")
        t0 = time.perf_counter()
        for _ in range(20):
            offline_page(ge_page)
        rewrite_ms = (time.perf_counter() - t0) / 20 * 1e3
        return compare(
            "data_docs", ("Data Docs page (write_data_docs)",
                          lambda: write_data_docs(outcome.ge_result, Path(tmp), run_name="bench")),
            ("the GE validation it shows (validate_frame)",
             lambda: validate_frame(frame, contract, include_label=True)),
            repeats=7,
            notes=f"{rows:,} rows x 14 columns, {len(outcome.ge_result['results'])} expectations, "
                  f"{outcome.n_failed_rows} rows failing; page {docs.html.stat().st_size / 1024:.0f} KiB, "
                  f"{docs.rewrites['status_badges']} status badges; the offline rewrite alone {rewrite_ms:.1f} ms")


def synthetic(rows: int = 1_000_000) -> Comparison:
    from data_contracts.synthetic_credit import COLUMNS, generate_frame

    df = generate_frame(rows, seed=1, day=DAY)
    assert df.shape == (rows, len(COLUMNS)), df.shape
    return compare(
        f"synthetic_{rows // 1_000_000}m", (f"generate_frame({rows:,})", lambda: generate_frame(rows, seed=1, day=DAY)),
        (f"numpy: {rows * len(COLUMNS) / 1e6:.0f}M normal draws",
         lambda: np.random.default_rng(1).standard_normal((len(COLUMNS), rows))),
        repeats=5, notes=f"{rows:,} rows x {len(COLUMNS)} columns, {df.memory_usage(deep=True).sum() / 2**20:.0f} MiB "
                         "as a pandas frame")


def feature_encoding(rows: int = 200_000) -> Comparison:
    import pandas as pd

    from models.features import feature_matrix, fit_feature_spec

    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(10)})
    for i in range(3):
        df[f"c{i}"] = rng.choice(np.array(["p", "q", "r", "s", None], dtype=object), size=rows)
    spec = fit_feature_spec(df, [f"x{i}" for i in range(10)], ["c0", "c1", "c2"])

    def plain_pandas() -> np.ndarray:
        numeric = [((df[f.name] - f.mean) / f.std).fillna(0.0) for f in spec.numeric]
        one_hot = [pd.get_dummies(pd.Categorical(df[f.name], categories=f.vocab), dtype=np.float32)
                   for f in spec.categorical]
        return pd.concat([*numeric, *one_hot], axis=1).to_numpy(np.float32)

    same = np.array_equal(feature_matrix(df, spec), plain_pandas())
    return compare(f"feature_encoding_{rows // 1000}k", ("feature_matrix", lambda: feature_matrix(df, spec)),
                   ("plain pandas (standardize, fillna, get_dummies, concat)", plain_pandas), repeats=7,
                   notes=f"{rows:,} rows -> {spec.num_features} features (10 numeric, 3 categorical with nulls); "
                         f"identical matrix: {same}")


def run() -> list[Comparison]:
    return [data_docs(), synthetic(), feature_encoding()]
