"""The drift engine against Evidently's own stattests on the same data.

Every score the engine computes from summaries must equal Evidently's to 1e-9 where
exact, and lie within its stated error bound where it uses the histogram grid; the
method Evidently would choose must be the one the engine chooses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tasks.drift.summary as drift_summary
from tasks.drift.engine import measure
from tasks.drift.results import DriftSpec
from tasks.drift.source import DriftInputError
from tasks.drift.stats import sturges_edges


def evidently_score(method: str | None, kind: str, ref: pd.Series, cur: pd.Series, threshold=None):
    """Evidently's stattest on the column as ValueDrift sees it: inf -> NaN, NaN dropped."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    ref = ref.replace([np.inf, -np.inf], np.nan).dropna()
    cur = cur.replace([np.inf, -np.inf], np.nan).dropna()
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    test = get_stattest(ref, cur, column_type, method)
    return float(test(ref, cur, column_type, threshold).drift_score), test.name


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.01] = np.nan
    x[rng.random(n) < 0.002] = np.inf
    return pd.DataFrame({
        "continuous": x,
        "heavy": rng.lognormal(10 + shift, 1.5, n),
        "ints": rng.integers(0, 60 + int(10 * shift), n),  # > 20 distinct: Sturges bins on integers
        "few": rng.choice([0.0, 1.5, 3.0, 7.0] + ([9.0] if shift else []), n),  # <= 20 distinct: one bin per value
        "binary": rng.choice([0, 1], n, p=[0.7 - 0.1 * shift, 0.3 + 0.1 * shift]),
        "constant": np.full(n, 4.0),
        "colour": rng.choice(["red", "green", "blue"] + (["violet"] if shift else []), n),
        "flag": rng.choice(["y", "n"], n, p=[0.5 + 0.05 * shift, 0.5 - 0.05 * shift]),
    })


NUMERIC = ["continuous", "heavy", "ints", "few", "binary", "constant"]
CATEGORICAL = ["colour", "flag"]


def _specs(methods: dict[str, str | None]) -> list[DriftSpec]:
    return [DriftSpec(name=c, kind="numeric" if c in NUMERIC else "categorical", method=m) for c, m in methods.items()]


def _assert_matches(measured, ref: pd.DataFrame, cur: pd.DataFrame, methods: dict[str, str | None]):
    for col in measured.columns:
        expected, name = evidently_score(methods[col.column], col.kind, ref[col.column], cur[col.column])
        assert col.method == name, col.column
        if col.exact:
            assert col.score == pytest.approx(expected, abs=1e-9, rel=1e-9), (col.column, col.method, col.basis)
        else:
            assert col.error_bound > 0
            assert abs(col.score - expected) <= col.error_bound, (col.column, col.score, expected, col.error_bound)


MERGEABLE_CASES = {
    "wasserstein": ["continuous", "heavy", "ints", "few", "constant"],
    "jensenshannon": NUMERIC + CATEGORICAL,
    "psi": NUMERIC + CATEGORICAL,
    "kl_div": NUMERIC + CATEGORICAL,
    "chisquare": CATEGORICAL,
    "z": ["flag"],
}


@pytest.mark.parametrize("shift", [0.0, 0.5])
@pytest.mark.parametrize("method", sorted(MERGEABLE_CASES))
def test_mergeable_scores_equal_evidently(method, shift):
    ref, cur = _data(3000, 1), _data(2500, 2, shift)
    methods = {c: method for c in MERGEABLE_CASES[method]}
    measured = measure(ref, cur, _specs(methods))
    assert all(c.exact and c.basis != "histogram grid" for c in measured.columns)
    _assert_matches(measured, ref, cur, methods)


@pytest.mark.parametrize("n_ref", [400, 1000, 1001, 5000])
def test_default_method_is_evidentlys_choice(n_ref):
    ref, cur = _data(n_ref, 3), _data(1500, 4, 0.3)
    methods = {c: None for c in NUMERIC + CATEGORICAL}
    measured = measure(ref, cur, _specs(methods))
    _assert_matches(measured, ref, cur, methods)


def test_above_the_distinct_cap_grid_and_sturges_stay_within_bounds(monkeypatch):
    """Continuous columns with more distinct values than the cap go through pass-2 histograms."""
    monkeypatch.setattr(drift_summary, "DISTINCT_CAP", 50)
    ref, cur = _data(6000, 5), _data(4000, 6, 0.2)
    for method in ("wasserstein", "jensenshannon", "psi", "kl_div"):
        methods = {c: method for c in ["continuous", "heavy", "ints"]}
        measured = measure(ref, cur, _specs(methods))
        bases = {c.basis for c in measured.columns}
        assert bases == ({"histogram grid"} if method == "wasserstein" else {"binned counts"})
        _assert_matches(measured, ref, cur, methods)
        if method == "wasserstein":
            assert all(0 < c.error_bound < 1e-3 for c in measured.columns)


@pytest.mark.parametrize("method", ["ks", "anderson", "mannw", "t_test", "hellinger", "cramer_von_mises"])
def test_other_methods_run_evidentlys_own_function(method):
    ref, cur = _data(1200, 7), _data(900, 8, 0.1)
    methods = {"continuous": method, "ints": method}
    measured = measure(ref, cur, _specs(methods))
    assert all(c.basis == "all rows (Evidently)" and c.exact for c in measured.columns)
    _assert_matches(measured, ref, cur, methods)


def test_sampled_methods_say_so_and_stay_close():
    ref, cur = _data(6000, 9), _data(6000, 10, 0.3)
    measured = measure(ref, cur, _specs({"continuous": "ks"}), sample_rows=3000)
    col = measured.columns[0]
    assert not col.exact and col.basis.startswith("seeded sample")
    assert col.drifted  # a 0.3 sd shift is found on half the rows too


def test_partitioned_dataset_gives_the_same_scores_as_one_frame(tmp_path):
    ref, cur = _data(5000, 11), _data(4000, 12, 0.4)
    folder = tmp_path / "current"
    for i, part in enumerate([cur.iloc[:1500], cur.iloc[1500:1500], cur.iloc[1500:]]):  # the middle one is empty
        (folder / f"day={i}").mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / f"day={i}" / "part-0.parquet",
                       row_group_size=700)
    ref_file = tmp_path / "reference.parquet"
    pq.write_table(pa.Table.from_pandas(ref, preserve_index=False), ref_file, row_group_size=1000)
    methods = {c: None for c in NUMERIC + CATEGORICAL} | {"heavy": "psi", "colour": "chisquare"}
    from_frames = measure(ref, cur, _specs(methods))
    from_files = measure(ref_file, folder, _specs(methods), workers=3)
    for a, b in zip(from_frames.columns, from_files.columns):
        assert (a.column, a.method, a.drifted) == (b.column, b.method, b.drifted)
        assert a.score == pytest.approx(b.score, abs=1e-12, rel=1e-12), a.column
    assert (from_files.n_reference, from_files.n_current) == (5000, 4000)


def test_quality_signals():
    ref, cur = _data(3000, 13), _data(3000, 14, 1.0)
    cur.loc[:299, "heavy"] = np.nan  # +10% nulls
    measured = measure(ref, cur, _specs({"heavy": None, "colour": None, "continuous": None}))
    quality = {q.column: q for q in measured.quality}
    assert quality["heavy"].null_share_increase == pytest.approx(0.1)
    unseen = (cur["colour"] == "violet").mean()
    assert quality["colour"].unseen_share == pytest.approx(unseen) and quality["colour"].unseen_examples == ["violet"]
    lo, hi = ref["continuous"][np.isfinite(ref["continuous"])].agg(["min", "max"])
    c = cur["continuous"]
    c = c[np.isfinite(c)]  # inf counts as missing (null share), not as out of range
    assert quality["continuous"].out_of_range_share == pytest.approx(((c < lo) | (c > hi)).sum() / len(cur))


@pytest.mark.parametrize("lo, hi, n, integer", [(0.0, 1.0, 10, False), (3.0, 3.0, 5, False), (0, 7, 5000, True),
                                                (-2.5, 1e6, 123456, False), (5, 6, 100, True)])
def test_sturges_edges_match_numpy(lo, hi, n, integer):
    data = np.linspace(lo, hi, n)
    if integer:
        data = np.round(data).astype(np.int64)
        lo, hi = int(data.min()), int(data.max())
    np.testing.assert_array_equal(sturges_edges(lo, hi, n, integer), np.histogram_bin_edges(data, bins="sturges"))


def test_bad_input_is_a_clear_error(tmp_path):
    ref = _data(100, 15)
    with pytest.raises(DriftInputError, match=r"current data is missing column\(s\) \['ints'\]"):
        measure(ref, ref.drop(columns="ints"), _specs({"ints": None}))
    with pytest.raises(DriftInputError, match="declared numeric but is string in current"):
        measure(ref, ref.assign(ints=ref["ints"].astype(str)), _specs({"ints": None}))
    with pytest.raises(DriftInputError, match="is int64 in reference data but string in current"):
        measure(ref.assign(colour=1), ref, _specs({"colour": None}))
    with pytest.raises(DriftInputError, match="does not apply to categorical"):
        measure(ref, ref, _specs({"colour": "ks"}))
    with pytest.raises(DriftInputError, match="unknown drift method 'nope'"):
        measure(ref, ref, _specs({"ints": "nope"}))
    with pytest.raises(DriftInputError, match="current data has no rows"):
        measure(ref, ref.iloc[:0], _specs({"ints": None}))
    with pytest.raises(DriftInputError, match="current data not found"):
        measure(ref, tmp_path / "missing", _specs({"ints": None}))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DriftInputError, match="is not readable parquet"):
        measure(ref, tmp_path / "junk.parquet", _specs({"ints": None}))


def test_degenerate_columns_have_defined_results():
    rng = np.random.default_rng(16)
    ref = pd.DataFrame({"x": rng.normal(size=500), "ids": [f"id{i}" for i in range(500)]})
    cur = pd.DataFrame({"x": [np.nan] * 3, "ids": ["id1", "zzz", None]})
    measured = measure(ref, cur, [DriftSpec(name="x", kind="numeric"), DriftSpec(name="ids", kind="categorical")])
    x, ids = measured.columns
    assert x.status == "no data" and "current" in x.basis and not x.drifted
    assert ids.status == "measured" and ids.n_current == 2
    one_row = measure(ref.iloc[:1], ref.iloc[1:2], [DriftSpec(name="x", kind="numeric")]).columns[0]
    assert one_row.method == "z" and one_row.status == "measured"  # Evidently: <= 2 values, small reference


def test_a_categorical_with_a_million_distinct_values():
    ids = pd.Series([f"id{i:07d}" for i in range(1_000_000)])
    ref, cur = pd.DataFrame({"id": ids}), pd.DataFrame({"id": ids.iloc[500_000:]})
    col = measure(ref, cur, [DriftSpec(name="id", kind="categorical")]).columns[0]
    assert (col.method, col.n_reference, col.n_current) == ("jensenshannon", 1_000_000, 500_000)
    # Half the values are gone: a uniform over 1M values against a uniform over its second half.
    p = np.full(1_000_000, 1e-6)
    q = np.concatenate([np.zeros(500_000), np.full(500_000, 2e-6)])
    from scipy.spatial import distance
    assert col.score == pytest.approx(float(distance.jensenshannon(p, q)), abs=1e-9) and col.drifted
