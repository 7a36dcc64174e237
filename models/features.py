"""Feature spec fitted on training data and the (vectorised) frame -> matrix step.

The spec is part of the model version: it is logged next to the params and the
same spec turns every scored batch into the model's input, so training and
serving can't standardize or one-hot differently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A (near-)constant training column gets std 1 rather than a tiny floor: dividing
# by 1e-12 would turn any unseen value at scoring time into an enormous input.
MIN_STD = 1e-6


class NumericFeature(BaseModel):
    """A numeric column, standardized as ``(x - mean) / std``; NaN -> 0 (the mean)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Column name in the input frame.")
    mean: float = Field(description="Training mean over finite values.")
    std: float = Field(gt=0, description="Training std (ddof=0) over finite values; 1.0 if below MIN_STD.")


class CategoricalFeature(BaseModel):
    """A categorical column, one-hot over ``vocab``; null or unseen -> all zeros."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Column name in the input frame.")
    vocab: list[str] = Field(description="Sorted unique training values, as labels (see _labels).")

    @field_validator("vocab")
    @classmethod
    def _sorted_unique(cls, v: list[str]) -> list[str]:
        if v != sorted(set(v)):
            raise ValueError("vocab must be sorted and unique")
        return v


class FeatureSpec(BaseModel):
    """Column order and encoding of the model input.

    Layout of the matrix: numeric columns in ``numeric`` order, then for each
    categorical column one slot per vocab entry.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    numeric: list[NumericFeature] = Field(default_factory=list, description="Standardized numeric columns.")
    categorical: list[CategoricalFeature] = Field(default_factory=list, description="One-hot categorical columns.")

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSpec:
        names = [f.name for f in self.numeric] + [f.name for f in self.categorical]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns listed more than once: {dupes}")
        return self

    @property
    def columns(self) -> list[str]:
        """Input frame columns this spec reads."""
        return [f.name for f in self.numeric] + [f.name for f in self.categorical]

    @property
    def num_features(self) -> int:
        """Width of :func:`feature_matrix`'s output."""
        return len(self.numeric) + sum(len(f.vocab) for f in self.categorical)

    @property
    def feature_names(self) -> list[str]:
        """One name per matrix column: ``col`` for numerics, ``col=value`` for one-hots."""
        names = [f.name for f in self.numeric]
        for f in self.categorical:
            names.extend(f"{f.name}={v}" for v in f.vocab)
        return names


def _labels(values: np.ndarray) -> list[str]:
    """String labels for category values (applied to uniques only, so cheap).

    Integral floats map to the int label because a nullable int column comes back
    from parquet/pandas as float64 when it has nulls: 3 and 3.0 must match.
    """
    out = []
    for v in values:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        elif isinstance(v, np.generic):
            v = v.item()
        out.append(str(v))
    return out


def _require_columns(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing feature columns: {missing}")


def _numeric_values(df: pd.DataFrame, name: str) -> np.ndarray:
    col = df[name]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise ValueError(f"numeric feature column {name!r} has non-numeric dtype {col.dtype}")
    # na_value handles pandas nullable dtypes (Int64, Float64) whose NA isn't NaN.
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def fit_feature_spec(df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> FeatureSpec:
    """Fit means/stds and vocabularies on training data.

    Args:
      df: training frame with at least ``numeric + categorical`` columns.
      numeric: columns to standardize (numeric dtypes; NaN/inf ignored in the stats).
      categorical: columns to one-hot (any dtype; nulls ignored in the vocab).

    Raises:
      ValueError: a column is missing or a numeric column isn't numeric.
    """
    _require_columns(df, list(numeric) + list(categorical))
    num = []
    for name in numeric:
        x = _numeric_values(df, name)
        finite = x[np.isfinite(x)]
        mean = float(finite.mean()) if finite.size else 0.0
        std = float(finite.std()) if finite.size else 1.0
        num.append(NumericFeature(name=name, mean=mean, std=std if std >= MIN_STD else 1.0))
    cat = []
    for name in categorical:
        _, uniques = pd.factorize(df[name], use_na_sentinel=True)
        cat.append(CategoricalFeature(name=name, vocab=sorted(set(_labels(np.asarray(uniques, dtype=object))))))
    return FeatureSpec(numeric=num, categorical=cat)


def feature_matrix(df: pd.DataFrame | pa.RecordBatch | pa.Table, spec: FeatureSpec) -> np.ndarray:
    """Encode a frame (or an Arrow batch or table, without going through pandas) as model input.

    Args:
      df: frame with the spec's columns (extra columns are ignored); a pyarrow RecordBatch or Table is encoded
        by :func:`_arrow_feature_matrix` to the same matrix.
      spec: fitted :class:`FeatureSpec`.

    Returns:
      f32[n, spec.num_features], C-contiguous: standardized numerics (NaN -> 0;
      +-inf passes through so the data contract, not the encoder, rejects it),
      then one-hot blocks (null or unseen category -> all zeros).
    """
    if isinstance(df, (pa.RecordBatch, pa.Table)):
        return _arrow_feature_matrix(df, spec)
    _require_columns(df, spec.columns)
    n = len(df)
    # Column-major while filling (each feature is a contiguous write), then one copy
    # to row-major for the model.
    out = np.zeros((spec.num_features, n), dtype=np.float32)
    for j, f in enumerate(spec.numeric):
        z = (_numeric_values(df, f.name) - f.mean) / f.std
        z[np.isnan(z)] = 0.0
        out[j] = z
    offset = len(spec.numeric)
    rows = np.arange(n)
    for f in spec.categorical:
        # factorize is hashed and vectorised; only the (few) uniques are labelled and
        # looked up in the vocab.
        codes, uniques = pd.factorize(df[f.name], use_na_sentinel=True)
        lookup = pd.Index(f.vocab).get_indexer(_labels(np.asarray(uniques, dtype=object)))
        # Appending -1 makes the null sentinel (code -1) index a -1 slot too.
        slot = np.append(lookup, -1)[codes]
        hit = slot >= 0
        out[offset + slot[hit], rows[hit]] = 1.0
        offset += len(f.vocab)
    return np.ascontiguousarray(out.T)


def _arrow_numeric(column: pa.Array | pa.ChunkedArray, name: str) -> np.ndarray:
    """float64 values of an Arrow numeric (or boolean) column; nulls -> NaN, as :func:`_numeric_values` does."""
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            or pa.types.is_decimal(kind)):
        raise ValueError(f"numeric feature column {name!r} has non-numeric dtype {kind}")
    values = pc.cast(column, pa.float64())
    if values.null_count:
        values = pc.fill_null(values, np.nan)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.to_numpy(zero_copy_only=False)


def _arrow_slots(column: pa.Array | pa.ChunkedArray, vocab: list[str]) -> np.ndarray:
    """Per row, the one-hot slot of its category in ``vocab``, or -1 (null or unseen). The dictionary (read as
    such from parquet, or hashed here) holds the few distinct values; only those are labelled, as in pandas."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    dictionary = column.dictionary
    values = np.asarray(dictionary.to_pylist(), dtype=object)
    lookup = pd.Index(vocab).get_indexer(_labels(values)) if len(values) else np.zeros(0, np.intp)
    if dictionary.null_count:
        lookup[np.asarray(dictionary.is_null())] = -1
    if len(values) and pa.types.is_floating(dictionary.type):  # NaN is a category value in Arrow, NA in pandas
        lookup[np.isnan(np.asarray(dictionary.to_numpy(zero_copy_only=False), dtype=float))] = -1
    indices = column.indices
    codes = pc.fill_null(indices, -1).to_numpy(zero_copy_only=False) if indices.null_count else indices.to_numpy()
    return np.append(lookup, -1)[codes]


def _arrow_feature_matrix(batch: pa.RecordBatch | pa.Table, spec: FeatureSpec) -> np.ndarray:
    """:func:`feature_matrix` of an Arrow batch: the same matrix, from Arrow buffers (no pandas frame)."""
    missing = [c for c in spec.columns if c not in batch.schema.names]
    if missing:
        raise ValueError(f"missing feature columns: {missing}")
    n = batch.num_rows
    out = np.zeros((spec.num_features, n), dtype=np.float32)
    for j, f in enumerate(spec.numeric):
        z = (_arrow_numeric(batch.column(f.name), f.name) - f.mean) / f.std
        z[np.isnan(z)] = 0.0
        out[j] = z
    offset = len(spec.numeric)
    rows = np.arange(n)
    for f in spec.categorical:
        slot = _arrow_slots(batch.column(f.name), f.vocab)
        hit = slot >= 0
        out[offset + slot[hit], rows[hit]] = 1.0
        offset += len(f.vocab)
    return np.ascontiguousarray(out.T)
