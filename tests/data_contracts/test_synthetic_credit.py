"""The synthetic credit generator: determinism, schema, ground truth, incident knobs, demo files."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from data_contracts.synthetic_credit import (
    CHANNELS,
    COLUMNS,
    PRODUCTS,
    REGIONS,
    UNSEEN_REGION,
    DemoIncident,
    default_probability,
    generate_frame,
    ground_truth_coefficients,
    write_demo_data,
)

DAY = date(2024, 5, 1)
N = 20_000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_frame(N, seed=5, day=DAY, id_offset=77)


def test_same_arguments_same_frame(frame):
    pd.testing.assert_frame_equal(frame, generate_frame(N, seed=5, day=DAY, id_offset=77))


@pytest.mark.parametrize("change", [{"seed": 6}, {"day": DAY + timedelta(days=1)}])
def test_other_seed_or_day_other_frame(change):
    args = {"seed": 5, "day": DAY} | change
    other = generate_frame(500, **args)
    base = generate_frame(500, seed=5, day=DAY)
    assert not np.array_equal(other["annual_income"].to_numpy(), base["annual_income"].to_numpy())


def test_schema_and_ranges(frame):
    assert list(frame.columns) == list(COLUMNS)
    assert isinstance(frame.index, pd.RangeIndex)
    dtypes = frame.dtypes.astype(str).to_dict()
    for col in ("age", "credit_score", "num_open_accounts", "late_payments_12m", "defaulted"):
        assert dtypes[col] == "int64", col
    for col in ("annual_income", "loan_amount", "debt_to_income", "employment_years"):
        assert dtypes[col] == "float64", col
    assert dtypes["applied_at"] == "datetime64[us]"
    assert frame["age"].between(18, 90).all()
    assert frame["credit_score"].between(300, 850).all()
    assert frame["debt_to_income"].between(0, 1.5).all()
    assert (frame["employment_years"] >= 0).all()
    assert (frame["num_open_accounts"] >= 0).all() and (frame["late_payments_12m"] >= 0).all()
    assert (frame["annual_income"] > 0).all() and (frame["loan_amount"] > 0).all()
    assert set(frame["region"]) == set(REGIONS)
    assert set(frame["product"]) == set(PRODUCTS)
    assert set(frame["channel"]) == set(CHANNELS)
    assert set(frame["defaulted"]) == {0, 1}
    assert not frame.isna().any().any()
    start = datetime.combine(DAY, datetime.min.time())
    assert frame["applied_at"].between(start, start + timedelta(days=1), inclusive="left").all()


def test_ids_unique_padded_and_offset(frame):
    ids = frame["application_id"]
    assert ids.is_unique
    assert ids.iloc[0] == "APP-0000000077" and ids.iloc[-1] == f"APP-{77 + N - 1:010d}"
    assert ids.map(lambda s: bool(re.fullmatch(r"APP-\d{10}", s))).all()


def test_default_rate_is_realistic(frame):
    assert 0.10 <= frame["defaulted"].mean() <= 0.20


def test_ground_truth_is_in_the_labels(frame):
    p = default_probability(frame)
    assert p.shape == (N,)
    assert abs(p.mean() - frame["defaulted"].mean()) < 0.01  # labels are drawn from p
    low = frame.loc[frame["credit_score"] < 620, "defaulted"].mean()
    high = frame.loc[frame["credit_score"] > 740, "defaulted"].mean()
    assert low > 3 * high
    deciles = pd.qcut(p, 10, labels=False)
    rates = frame.groupby(deciles)["defaulted"].mean().to_numpy()
    assert rates[-1] > 5 * rates[0]
    assert ground_truth_coefficients()["credit_score"] < 0 < ground_truth_coefficients()["debt_to_income"]


def test_covariate_drift_shifts_the_population(frame):
    drifted = generate_frame(N, seed=5, day=DAY, id_offset=77, covariate_drift=1.0)
    assert drifted["credit_score"].mean() < frame["credit_score"].mean() - 20
    assert drifted["annual_income"].median() < 0.9 * frame["annual_income"].median()
    assert drifted["debt_to_income"].mean() > 1.2 * frame["debt_to_income"].mean()
    assert drifted["defaulted"].mean() > frame["defaulted"].mean()


def test_concept_drift_changes_labels_not_features(frame):
    drifted = generate_frame(N, seed=5, day=DAY, id_offset=77, concept_drift=1.0)
    features = [c for c in COLUMNS if c != "defaulted"]
    pd.testing.assert_frame_equal(drifted[features], frame[features])
    assert not drifted["defaulted"].equals(frame["defaulted"])
    assert ground_truth_coefficients(1.0) != ground_truth_coefficients(0.0)

    # Under the new concept, DTI matters more: the default-rate gap between high and low DTI widens.
    def gap(df):
        return (
            df.loc[df["debt_to_income"] > 0.5, "defaulted"].mean()
            - df.loc[df["debt_to_income"] < 0.2, "defaulted"].mean()
        )

    assert gap(drifted) > gap(frame) + 0.05


def _only_changed(clean: pd.DataFrame, incident: pd.DataFrame, column: str) -> pd.Series:
    """Rows where ``column`` differs; asserts every other column is untouched."""
    others = [c for c in clean.columns if c != column]
    pd.testing.assert_frame_equal(incident[others], clean[others])
    a, b = clean[column], incident[column]
    return ~((a == b) | (a.isna() & b.isna()))


def test_null_spike(frame):
    spiked = generate_frame(N, seed=5, day=DAY, id_offset=77, null_spike=0.2)
    changed = _only_changed(frame, spiked, "annual_income")
    assert changed.equals(spiked["annual_income"].isna())
    assert 0.18 < changed.mean() < 0.22


def test_unit_change(frame):
    thousands = generate_frame(N, seed=5, day=DAY, id_offset=77, unit_change=True)
    _only_changed(frame, thousands, "annual_income")
    np.testing.assert_allclose(thousands["annual_income"] * 1_000, frame["annual_income"], rtol=1e-6)


def test_unseen_categories(frame):
    unseen = generate_frame(N, seed=5, day=DAY, id_offset=77, unseen_categories=0.1)
    changed = _only_changed(frame, unseen, "region")
    assert (unseen.loc[changed, "region"] == UNSEEN_REGION).all()
    assert 0.08 < (unseen["region"] == UNSEEN_REGION).mean() < 0.12


@pytest.mark.parametrize("bad", [{"null_spike": 1.5}, {"unseen_categories": -0.1}, {"n_rows": -1}])
def test_bad_knobs_are_refused(bad):
    args = {"n_rows": 10, "seed": 1, "day": DAY} | bad
    with pytest.raises(ValueError):
        generate_frame(**args)


def test_generates_a_million_rows():
    """A million rows with every column and unique ids (its wall time is `benchmarks.run data`: synthetic_1m)."""
    df = generate_frame(1_000_000, seed=1, day=DAY)
    assert df.shape == (1_000_000, len(COLUMNS)) and list(df.columns) == list(COLUMNS)
    assert df["application_id"].is_unique and df.index.equals(pd.RangeIndex(1_000_000))


def test_write_demo_data(tmp_path):
    paths = write_demo_data(
        tmp_path,
        n_train=600,
        n_golden=200,
        n_days=4,
        rows_per_day=150,
        seed=3,
        start=date(2024, 6, 1),
        incident_from_day=2,
        incident=DemoIncident(null_spike=0.3),
    )
    train, golden = pd.read_parquet(paths.train), pd.read_parquet(paths.golden)
    assert len(train) == 600 and len(golden) == 200
    assert list(train.columns) == list(COLUMNS)
    assert (
        train["applied_at"].max()
        < datetime(2024, 6, 1)
        <= datetime.combine(paths.partitions[0].day, datetime.min.time())
    )

    assert [p.day for p in paths.partitions] == [date(2024, 6, d) for d in (1, 2, 3, 4)]
    assert [p.incident for p in paths.partitions] == [False, False, True, True]
    ids = [train["application_id"], golden["application_id"]]
    for p in paths.partitions:
        assert p.features == paths.stream / f"date={p.day.isoformat()}" / "part-0.parquet"
        assert p.labels == paths.labels / f"date={p.day.isoformat()}" / "part-0.parquet"
        features, labels = pd.read_parquet(p.features), pd.read_parquet(p.labels)
        assert "defaulted" not in features.columns  # scoring never sees the label
        assert list(labels.columns) == ["application_id", "defaulted"]
        assert features["application_id"].equals(labels["application_id"])
        assert len(features) == p.n_rows == 150
        assert features["annual_income"].isna().any() == p.incident
        ids.append(features["application_id"])
    assert pd.concat(ids).is_unique  # unique across the whole stream

    leftovers = [f for f in tmp_path.rglob("*") if f.is_file() and f.suffix != ".parquet"]
    assert leftovers == []  # atomic writes leave no temp files
    assert pq.read_schema(paths.partitions[0].features).field("applied_at").type.unit == "us"


def test_write_demo_data_needs_incident_and_day_together(tmp_path):
    with pytest.raises(ValueError, match="together"):
        write_demo_data(
            tmp_path, n_train=1, n_golden=1, n_days=1, rows_per_day=1, seed=1, start=DAY, incident_from_day=0
        )
    with pytest.raises(ValueError, match="incident_from_day"):
        write_demo_data(
            tmp_path, n_train=1, n_golden=1, n_days=2, rows_per_day=1, seed=1, start=DAY,
            incident_from_day=2, incident=DemoIncident(unit_change=True),
        )  # fmt: skip
