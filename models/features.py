"""Feature spec fitted on training data and the (vectorised) frame -> matrix step.

The spec is part of the model version: it is logged next to the params and the
same spec turns every scored batch into the model's input, so training and
serving can't standardize or one-hot differently.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

# A (near-)constant training column gets std 1 rather than a tiny floor: dividing
# by 1e-12 would turn any unseen value at scoring time into an enormous input.
MIN_STD = 1e-6
_BLOCK_ROWS = 32_768  # rows encoded at a time: a block of the matrix stays in cache


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


class RawInput(BaseModel):
    """One column of a model that declares its own inputs (``models.inputs``): given as a 1-D array, not encoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Column name in the input frame (a contract feature column).")
    dtype: str = Field(description="Array dtype: float32|bfloat16|float16 for a numeric column, int32 for a "
                                   "categorical one.")
    values: list[str] | None = Field(None, description="A categorical column's values as labels; value i is code "
                                                       "i + 1, a null or any other value code 0. None: numeric.")


class FeatureSpec(BaseModel):
    """Column order and encoding of the model input.

    Layout of the matrix: numeric columns in ``numeric`` order, then for each
    categorical column one slot per vocab entry. With ``inputs`` the model takes those
    columns raw instead, as a dict of arrays (:func:`raw_inputs`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    numeric: list[NumericFeature] = Field(default_factory=list, description="Standardized numeric columns.")
    categorical: list[CategoricalFeature] = Field(default_factory=list, description="One-hot categorical columns.")
    inputs: list[RawInput] | None = Field(None, description="The model's declared raw inputs, in declared order; "
                                                            "None: the encoded matrix.")

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSpec:
        for names in ([f.name for f in self.numeric] + [f.name for f in self.categorical],
                      [f.name for f in self.inputs or ()]):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"columns listed more than once: {dupes}")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_inputs(self, handler):
        # a spec of the matrix serializes as before raw inputs existed (same bytes, same sha256)
        out = handler(self)
        if isinstance(out, dict) and out.get("inputs") is None:
            out.pop("inputs", None)
        return out

    @property
    def columns(self) -> list[str]:
        """Input frame columns this spec reads."""
        if self.inputs is not None:
            return [f.name for f in self.inputs]
        return [f.name for f in self.numeric] + [f.name for f in self.categorical]

    @property
    def num_features(self) -> int:
        """Width of :func:`feature_matrix`'s output (the number of raw columns with ``inputs``)."""
        if self.inputs is not None:
            return len(self.inputs)
        return len(self.numeric) + sum(len(f.vocab) for f in self.categorical)

    @property
    def feature_names(self) -> list[str]:
        """One name per matrix column: ``col`` for numerics, ``col=value`` for one-hots (the raw columns' names
        with ``inputs``)."""
        if self.inputs is not None:
            return [f.name for f in self.inputs]
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


def raw_input_spec(declared: list[tuple[str, str]], numeric: list[str], categorical: list[str],
                   allowed: dict[str, list | None], df: pd.DataFrame | None = None) -> list[RawInput]:
    """The :class:`RawInput` of each declared ``(column, dtype)``: a numeric feature column as a float dtype, a
    categorical one as int32 codes over its allowed values (``allowed[column]``, in that order) or, when the
    contract gives none, over the sorted values of ``df`` (as the one-hot vocab is fitted).

    Raises:
      ValueError: one line naming the column: not a feature column, or a dtype lockgate cannot give it.
    """
    from models.inputs import CATEGORICAL_DTYPES, NUMERIC_DTYPES

    out = []
    for name, dtype in declared:
        if name in numeric:
            if dtype not in NUMERIC_DTYPES:
                raise ValueError(f"input {name!r} is a numeric column: lockgate gives it as one of "
                                 f"{list(NUMERIC_DTYPES)}, not {dtype!r}")
            out.append(RawInput(name=name, dtype=dtype))
        elif name in categorical:
            if dtype not in CATEGORICAL_DTYPES:
                raise ValueError(f"input {name!r} is a categorical column: lockgate gives it as int32 codes, "
                                 f"not {dtype!r}")
            values = allowed.get(name)
            if values is not None:
                labels = list(dict.fromkeys(_labels(np.asarray(values, dtype=object))))
            elif df is not None and name in df.columns:
                _, uniques = pd.factorize(df[name], use_na_sentinel=True)
                labels = sorted(set(_labels(np.asarray(uniques, dtype=object))))
            else:
                raise ValueError(f"input {name!r}: the contract gives no allowed values and no data was given")
            out.append(RawInput(name=name, dtype=dtype, values=labels))
        else:
            raise ValueError(f"input {name!r} is not a feature column (numeric {list(numeric)}, "
                             f"categorical {list(categorical)})")
    return out


def raw_inputs(df: pd.DataFrame | pa.RecordBatch | pa.Table, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The declared raw columns of a frame (or Arrow batch or table): ``{name: dtype[n]}``.

    Numbers in the declared float dtype (null -> NaN; +-inf passes through to the contract), categoricals as
    int32 codes: ``1 + position`` in the column's ``values``, ``0`` for a null or any other value.
    """
    arrow = isinstance(df, (pa.RecordBatch, pa.Table))
    names = df.schema.names if arrow else df.columns
    missing = [c for c in spec.columns if c not in names]
    if missing:
        raise ValueError(f"missing feature columns: {missing}")
    out = {}
    for f in spec.inputs:
        if f.values is None:
            x = _arrow_numeric(df.column(f.name), f.name) if arrow else _numeric_values(df, f.name)
            out[f.name] = x.astype(_np_dtype(f.dtype))
        else:
            slots = _arrow_slots(df.column(f.name), f.values) if arrow else _frame_slots(df[f.name], f.values)
            out[f.name] = (np.asarray(slots) + 1).astype(np.int32)
    return out


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def feature_matrix(df: pd.DataFrame | pa.RecordBatch | pa.Table, spec: FeatureSpec) -> np.ndarray:
    """Encode a frame (or an Arrow batch or table, without going through pandas) as model input.

    This is where every caller (registration, compile gate, canary, batch scoring, the pyfunc) gets the model's
    input: for a spec with ``inputs`` it is the dict of raw columns of :func:`raw_inputs` instead.

    Args:
      df: frame with the spec's columns (extra columns are ignored); a pyarrow RecordBatch or Table is encoded
        from its Arrow buffers to the same matrix.
      spec: fitted :class:`FeatureSpec`.

    Returns:
      f32[n, spec.num_features], C-contiguous: standardized numerics (NaN -> 0;
      +-inf passes through so the data contract, not the encoder, rejects it),
      then one-hot blocks (null or unseen category -> all zeros).
    """
    if spec.inputs is not None:
        return raw_inputs(df, spec)
    if isinstance(df, (pa.RecordBatch, pa.Table)):
        missing = [c for c in spec.columns if c not in df.schema.names]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        return _encode(df.num_rows, spec, lambda f: _arrow_numeric(df.column(f.name), f.name),
                       lambda f: _arrow_slots(df.column(f.name), f.vocab))
    _require_columns(df, spec.columns)
    return _encode(len(df), spec, lambda f: _numeric_values(df, f.name), lambda f: _frame_slots(df[f.name], f.vocab))


def _frame_slots(column: pd.Series, vocab: list[str]) -> np.ndarray:
    """Per row, the one-hot slot of its category in ``vocab``, or -1 (null or unseen). factorize is hashed and
    vectorised; only the (few) uniques are labelled and looked up in the vocab."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    lookup = pd.Index(vocab).get_indexer(_labels(np.asarray(uniques, dtype=object)))
    return np.append(lookup, -1)[codes]  # the appended -1 makes the null sentinel (code -1) a -1 slot too


def _encode(n: int, spec: FeatureSpec, numeric: Callable[[NumericFeature], np.ndarray],
            slots: Callable[[CategoricalFeature], np.ndarray]) -> np.ndarray:
    """The matrix from each numeric feature's float64 values and each categorical feature's slots (either source).

    Written row-major in place, in blocks of ``_BLOCK_ROWS`` rows so the strided column writes stay in cache (a
    transposing copy at the end cost more). Standardizing is float64 arithmetic in one reused buffer, cast to
    float32 on the way into the matrix."""
    d = spec.num_features
    out = np.zeros((n, d), dtype=np.float32)
    values = [numeric(f) for f in spec.numeric]
    one_hot, offset = [], len(spec.numeric)  # (first column of the feature's one-hot block, slot per row)
    for f in spec.categorical:
        one_hot.append((offset, slots(f)))
        offset += len(f.vocab)
    z = np.empty(min(n, _BLOCK_ROWS), dtype=np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(n, start + _BLOCK_ROWS)
        block = z[: stop - start]
        for j, (f, x) in enumerate(zip(spec.numeric, values)):
            np.subtract(x[start:stop], f.mean, out=block)
            block /= f.std
            block[np.isnan(block)] = 0.0  # NaN (or null) -> the mean; +-inf passes through to the contract
            out[start:stop, j] = block
        flat = out[start:stop].reshape(-1)
        for offset, slot in one_hot:
            rows = slot[start:stop]
            hit = np.flatnonzero(rows >= 0)
            flat[hit * d + offset + rows[hit]] = 1.0
    return out


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
