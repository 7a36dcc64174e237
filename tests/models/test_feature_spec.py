import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from models.features import CategoricalFeature, FeatureSpec, feature_matrix, fit_feature_spec


@pytest.fixture
def train_df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 50.0],
            "income": pd.array([1, 2, 3, pd.NA], dtype="Int64"),
            "const": [7.0, 7.0, 7.0, 7.0],
            "city": ["b", "a", None, "c"],
            "tier": [1, 3, 3, 2],
        }
    )


@pytest.fixture
def spec(train_df) -> FeatureSpec:
    return fit_feature_spec(train_df, ["age", "income", "const"], ["city", "tier"])


def test_fit_stats_ignore_nan_and_floor_std(spec):
    age, income, const = spec.numeric
    assert age.mean == pytest.approx(np.nanmean([20, 30, np.nan, 50]))
    assert age.std == pytest.approx(np.nanstd([20, 30, np.nan, 50]))
    assert income.mean == pytest.approx(2.0)
    assert const.std == 1.0  # constant column: no division by ~0
    assert [f.vocab for f in spec.categorical] == [["a", "b", "c"], ["1", "2", "3"]]


def test_matrix_shape_dtype_and_layout(train_df, spec):
    m = feature_matrix(train_df, spec)
    assert spec.num_features == 3 + 3 + 3
    assert spec.feature_names == [
        "age", "income", "const", "city=a", "city=b", "city=c", "tier=1", "tier=2", "tier=3"
    ]
    assert m.shape == (4, spec.num_features) and m.dtype == np.float32 and m.flags.c_contiguous
    age = spec.numeric[0]
    expected = (np.array([20.0, 30.0, age.mean, 50.0]) - age.mean) / age.std  # NaN row -> mean -> 0
    np.testing.assert_allclose(m[:, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(m[:, 3:6], [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(m[:, 6:9], [[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0]])


def test_nan_imputes_zero_and_unseen_or_null_category_is_all_zeros(spec):
    df = pd.DataFrame(
        {
            "age": [np.nan, np.nan],
            "income": pd.array([pd.NA, 2], dtype="Int64"),
            "const": [7.0, np.nan],
            "city": ["zzz", None],
            "tier": [99, 1],
        }
    )
    m = feature_matrix(df, spec)
    np.testing.assert_array_equal(m[:, :3], np.zeros((2, 3)))
    np.testing.assert_array_equal(m[:, 3:6], np.zeros((2, 3)))  # unseen + null
    np.testing.assert_array_equal(m[:, 6:9], [[0, 0, 0], [1, 0, 0]])


def test_int_category_matches_when_column_arrives_as_float_with_nulls(train_df, spec):
    # Nullable int columns become float64 in pandas: 3.0 must hit the "3" slot.
    df = train_df.assign(tier=[1.0, 3.0, np.nan, 2.0])
    m = feature_matrix(df, spec)
    np.testing.assert_array_equal(m[:, 6:9], [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("dtype", ["category", "string"])
def test_categorical_dtypes_encode_like_object(train_df, spec, dtype):
    df = train_df.assign(city=train_df["city"].astype(dtype))
    np.testing.assert_array_equal(feature_matrix(df, spec), feature_matrix(train_df, spec))


def test_json_round_trip(train_df, spec):
    back = FeatureSpec.model_validate_json(spec.model_dump_json())
    assert back == spec
    np.testing.assert_array_equal(feature_matrix(train_df, back), feature_matrix(train_df, spec))


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"numeric": [], "categorical": [], "extra": 1}, "extra"),
        ({"numeric": [{"name": "a", "mean": 0.0, "std": 0.0}]}, "std"),
        ({"numeric": [{"name": "a", "mean": 0.0, "std": 1.0, "unit": "m"}]}, "unit"),
        ({"categorical": [{"name": "c", "vocab": ["b", "a"]}]}, "sorted"),
        (
            {"numeric": [{"name": "a", "mean": 0.0, "std": 1.0}], "categorical": [{"name": "a", "vocab": []}]},
            "more than once",
        ),
    ],
)
def test_spec_validation(payload, message):
    with pytest.raises(ValidationError, match=message):
        FeatureSpec.model_validate(payload)


def test_missing_and_non_numeric_columns_are_named(train_df, spec):
    with pytest.raises(ValueError, match=r"missing feature columns: \['tier'\]"):
        feature_matrix(train_df.drop(columns="tier"), spec)
    with pytest.raises(ValueError, match="'city'.*non-numeric"):
        fit_feature_spec(train_df, ["city"], [])


def test_empty_vocab_and_empty_frame(train_df):
    spec = FeatureSpec(categorical=[CategoricalFeature(name="city", vocab=[])])
    assert feature_matrix(train_df, spec).shape == (4, 0)
    spec = fit_feature_spec(train_df, ["age"], ["city"])
    assert feature_matrix(train_df.iloc[:0], spec).shape == (0, 4)


def test_encodes_a_large_frame():
    """200k rows (its wall time against plain pandas is `benchmarks.run data`: feature_encoding_200k)."""
    rng = np.random.default_rng(0)
    n = 200_000
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(10)})
    for i in range(3):
        df[f"c{i}"] = rng.choice(np.array(["p", "q", "r", "s", None], dtype=object), size=n)
    spec = fit_feature_spec(df, [f"x{i}" for i in range(10)], ["c0", "c1", "c2"])
    m = feature_matrix(df, spec)
    assert m.shape == (n, 10 + 3 * 4)
    assert (m[:, 10:].reshape(n, 3, 4).sum(axis=2) == df[["c0", "c1", "c2"]].notna().to_numpy()).all()


def test_arrow_batches_and_tables_encode_like_the_pandas_frame():
    """The engine's Arrow path (no pandas frame) gives the same matrix: NaN and null numerics, nullable ints,
    booleans, null, unseen and float-with-NaN categories, string dictionaries from parquet, chunked tables."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame({
        "a": rng.normal(size=n), "b": rng.integers(0, 10, n), "c": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "flag": rng.random(n) > 0.5, "cat": rng.choice(["x", "y", "z", None], n),
        "num_cat": pd.array(rng.integers(1, 4, n), dtype="Int64"), "fcat": rng.choice([1.0, 2.0, np.nan], n)})
    df.loc[::7, "a"] = np.nan
    df.loc[::11, "c"] = pd.NA
    df.loc[::13, "num_cat"] = pd.NA
    spec = fit_feature_spec(df.iloc[:2000], ["a", "b", "c", "flag"], ["cat", "num_cat", "fcat"])
    df.loc[::17, "cat"] = "unseen"
    want = feature_matrix(df, spec)
    table = pa.Table.from_pandas(df, preserve_index=False)
    dictionaries = pa.table([c.dictionary_encode() if c.type == pa.string() else c for c in table.columns],
                            names=table.column_names)
    for arrow in (table, table.to_batches()[0], pa.concat_tables([table.slice(0, 1000), table.slice(1000)]),
                  dictionaries):
        np.testing.assert_array_equal(feature_matrix(arrow, spec), want)
    with pytest.raises(ValueError, match="missing feature columns: \\['cat'\\]"):
        feature_matrix(table.drop_columns(["cat"]), spec)
    with pytest.raises(ValueError, match="numeric feature column 'a' has non-numeric dtype string"):
        feature_matrix(table.set_column(0, "a", pa.array(["1"] * n)), spec)
