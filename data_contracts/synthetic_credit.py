"""Seeded synthetic credit-default data with a known ground truth and incident knobs.

One row is a loan application. Features come from a small generative story (a latent
creditworthiness drives credit score and late payments; income drives loan size and
debt-to-income), and the label ``defaulted`` is drawn from a logistic ground truth over
the features (:func:`default_probability`), so tests and demos can check that a model
or a drift detector sees what was put in.

Knobs (all off by default) model what goes wrong in production:

- ``covariate_drift``: the applicant population shifts (lower income, lower latent
  creditworthiness so lower credit scores and more late payments, higher DTI).
- ``concept_drift``: the same features mean something else (coefficients of the
  ground truth change, see :func:`ground_truth_coefficients`).
- ``null_spike``, ``unit_change``, ``unseen_categories``: data-quality incidents in
  the reporting pipeline. They are applied after the label is drawn (the applicant's
  risk did not change, only how it was reported) and use their own random stream, so
  an incident frame equals the clean frame except in the incident's cells.

A second, continuous target serves the regression task: ``loss_given_default`` (the
share of the loan lost if it defaulted, in [0, 1]) from a known ground-truth mean
(:func:`loss_given_default_mean`) plus Gaussian noise, in :func:`generate_lgd_frame`.

Everything is vectorised numpy; 1M rows take about a second.
"""

from __future__ import annotations

import os
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")
PRODUCTS: tuple[str, ...] = ("card", "personal", "auto", "mortgage")
CHANNELS: tuple[str, ...] = ("online", "branch", "partner")
UNSEEN_REGION = "offshore"

ID_PREFIX = "APP-"
ID_DIGITS = 10
LABEL_COLUMN = "defaulted"
LGD_COLUMN = "loss_given_default"
ID_COLUMN = "application_id"
LGD_NOISE_SD = 0.05

COLUMNS: tuple[str, ...] = (
    "application_id",
    "applied_at",
    "age",
    "annual_income",
    "loan_amount",
    "credit_score",
    "debt_to_income",
    "employment_years",
    "num_open_accounts",
    "late_payments_12m",
    "region",
    "product",
    "channel",
    "defaulted",
)

_REGION_P = (0.25, 0.2, 0.2, 0.2, 0.15)
_PRODUCT_P = (0.4, 0.3, 0.2, 0.1)
_CHANNEL_P = (0.55, 0.3, 0.15)
# Median loan size per product (USD) and its log-spread.
_LOAN_MEDIAN = (4_000.0, 15_000.0, 28_000.0, 280_000.0)
_LOAN_SIGMA = (0.6, 0.5, 0.4, 0.45)

_REFERENCE_DAYS = 28  # train and golden rows are spread over the 4 weeks before the stream starts


def ground_truth_coefficients(concept_drift: float = 0.0) -> dict[str, float]:
    """Coefficients of the logistic ground truth (see :func:`default_probability`).

    ``concept_drift`` moves them linearly: at 1.0 the credit score matters half as
    much, debt-to-income twice as much, cards get riskier and the base rate rises.
    """
    c = float(concept_drift)
    return {
        "intercept": -2.8 + 0.3 * c,
        "credit_score": -1.1 * (1.0 - 0.5 * c),  # per 70 points above 680
        "debt_to_income": 0.55 * (1.0 + 1.0 * c),  # per 0.2 above 0.35
        "late_payments_12m": 0.35,  # per late payment, capped at 6
        "annual_income": -0.25,  # per log-income sigma (0.55) above 55k USD
        "employment_years": -0.15,  # per 5 years above 5, capped at 20
        "age": -0.1,  # per 13 years above 42
        "product=card": 0.35 + 0.5 * c,
        "product=personal": 0.25,
        "product=auto": 0.0,
        "product=mortgage": -0.45,
        "channel=online": 0.05,
        "channel=branch": 0.0,
        "channel=partner": 0.2,
        "region=north": 0.0,
        "region=south": 0.1,
        "region=east": -0.05,
        "region=west": 0.0,
        "region=central": 0.05,
    }


def default_logit(df: pd.DataFrame, *, concept_drift: float = 0.0) -> np.ndarray:
    """Ground-truth log-odds of default for each row of ``df``.

    Args:
      df: frame with the feature columns in true units (income in USD). Unknown
        categories contribute 0.
      concept_drift: see :func:`ground_truth_coefficients`.

    Returns:
      float64 array of shape ``(len(df),)``.
    """
    b = ground_truth_coefficients(concept_drift)
    z_cs = (df["credit_score"].to_numpy(np.float64) - 680.0) / 70.0
    z_dti = (df["debt_to_income"].to_numpy(np.float64) - 0.35) / 0.2
    late = np.minimum(df["late_payments_12m"].to_numpy(np.float64), 6.0)
    z_inc = np.log(df["annual_income"].to_numpy(np.float64) / 55_000.0) / 0.55
    z_emp = (np.minimum(df["employment_years"].to_numpy(np.float64), 20.0) - 5.0) / 5.0
    z_age = (df["age"].to_numpy(np.float64) - 42.0) / 13.0
    logit = (
        b["intercept"]
        + b["credit_score"] * z_cs
        + b["debt_to_income"] * z_dti
        + b["late_payments_12m"] * late
        + b["annual_income"] * z_inc
        + b["employment_years"] * z_emp
        + b["age"] * z_age
    )
    for column in ("product", "channel", "region"):
        values = df[column].to_numpy(dtype=object)
        for key, coef in b.items():
            if key.startswith(column + "=") and coef != 0.0:
                logit = logit + coef * (values == key.split("=", 1)[1])
    return logit


def default_probability(df: pd.DataFrame, *, concept_drift: float = 0.0) -> np.ndarray:
    """Ground-truth probability of default, ``sigmoid(default_logit(df))``; float64 ``(len(df),)``."""
    return 1.0 / (1.0 + np.exp(-default_logit(df, concept_drift=concept_drift)))


# Ground truth of loss given default: logit of the expected share lost. Secured products
# (mortgage, auto) lose less; a loan large against the income loses more.
_LGD_PRODUCT = {"card": 0.9, "personal": 0.5, "auto": -0.4, "mortgage": -1.3}
_LGD_REGION = {"north": 0.0, "south": 0.25, "east": -0.1, "west": 0.0, "central": 0.1}


def loss_given_default_mean(df: pd.DataFrame) -> np.ndarray:
    """Ground-truth expected loss given default (share of the loan lost, in (0, 1)) for each row of ``df``.

    ``sigmoid(0.45 * z_lti - 0.25 * z_cs + product + region)`` with ``z_lti`` the log
    loan-to-income ratio (per 1.0 above log 0.3) and ``z_cs`` the credit score per 70
    points above 680; product and region effects in ``_LGD_PRODUCT``/``_LGD_REGION``
    (unknown categories contribute 0). Returns float64 ``(len(df),)``.
    """
    lti = df["loan_amount"].to_numpy(np.float64) / df["annual_income"].to_numpy(np.float64)
    z_lti = np.log(lti) - np.log(0.3)
    z_cs = (df["credit_score"].to_numpy(np.float64) - 680.0) / 70.0
    logit = 0.45 * z_lti - 0.25 * z_cs
    for column, effects in (("product", _LGD_PRODUCT), ("region", _LGD_REGION)):
        values = df[column].to_numpy(dtype=object)
        for key, coef in effects.items():
            logit = logit + coef * (values == key)
    return 1.0 / (1.0 + np.exp(-logit))


def generate_lgd_frame(n_rows: int, *, seed: int, day: date, id_offset: int = 0,
                       noise_sd: float = LGD_NOISE_SD) -> pd.DataFrame:
    """Applications of :func:`generate_frame` (same features and ids) with the continuous label
    ``loss_given_default`` = clip(:func:`loss_given_default_mean` + N(0, ``noise_sd``), 0, 1) instead of
    ``defaulted``. The noise has its own random stream, so the features equal :func:`generate_frame`'s."""
    if noise_sd < 0:
        raise ValueError(f"noise_sd must be >= 0, got {noise_sd}")
    df = generate_frame(n_rows, seed=seed, day=day, id_offset=id_offset).drop(columns=[LABEL_COLUMN])
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), day.toordinal(), int(id_offset), 1]))
    noisy = loss_given_default_mean(df) + rng.normal(0.0, noise_sd, len(df))
    df[LGD_COLUMN] = np.round(np.clip(noisy, 0.0, 1.0), 6)
    return df


def application_ids(start: int, n: int) -> np.ndarray:
    """IDs ``APP-0000000000`` style for ``start .. start+n-1``; object array of str, shape ``(n,)``."""
    numbers = pa.array(np.arange(start, start + n, dtype=np.int64))
    padded = pc.utf8_lpad(pc.cast(numbers, pa.string()), ID_DIGITS, "0")
    return pc.binary_join_element_wise(ID_PREFIX, padded, "").to_numpy(zero_copy_only=False)


def generate_frame(
    n_rows: int,
    *,
    seed: int,
    day: date,
    id_offset: int = 0,
    covariate_drift: float = 0.0,
    concept_drift: float = 0.0,
    null_spike: float = 0.0,
    unit_change: bool = False,
    unseen_categories: float = 0.0,
) -> pd.DataFrame:
    """Generate ``n_rows`` applications made on ``day``.

    Deterministic in ``(seed, day, id_offset)`` and the knobs. IDs are
    ``id_offset .. id_offset + n_rows - 1``, so callers keep IDs unique across a stream
    by advancing ``id_offset``.

    Args:
      n_rows: number of rows (>= 0).
      seed: base seed.
      day: calendar day; ``applied_at`` falls within it (naive UTC, microseconds).
      id_offset: first ID number.
      covariate_drift: 0 = reference population; 1 = strongly shifted.
      concept_drift: 0 = reference ground truth; 1 = strongly changed coefficients.
      null_spike: share of rows whose ``annual_income`` is null (0..1).
      unit_change: report ``annual_income`` in thousands of USD instead of USD.
      unseen_categories: share of rows whose ``region`` is ``"offshore"`` (0..1).

    Returns:
      DataFrame with :data:`COLUMNS`: ``application_id`` object(str), ``applied_at``
      datetime64[us], ``age``/``credit_score``/``num_open_accounts``/
      ``late_payments_12m``/``defaulted`` int64, the other numerics float64, and
      ``region``/``product``/``channel`` object(str). Index is ``RangeIndex(n_rows)``.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    if id_offset < 0:
        raise ValueError(f"id_offset must be >= 0, got {id_offset}")
    for name, share in (("null_spike", null_spike), ("unseen_categories", unseen_categories)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be a share in [0, 1], got {share}")

    root = np.random.SeedSequence([int(seed), day.toordinal(), int(id_offset)])
    feature_ss, label_ss, incident_ss = root.spawn(3)
    rng = np.random.default_rng(feature_ss)
    n = int(n_rows)
    d = float(covariate_drift)

    region_code = rng.choice(len(REGIONS), size=n, p=_REGION_P)
    product_code = rng.choice(len(PRODUCTS), size=n, p=_PRODUCT_P)
    channel_code = rng.choice(len(CHANNELS), size=n, p=_CHANNEL_P)

    age = np.clip(np.rint(rng.normal(42.0, 13.0, n)), 18, 90).astype(np.int64)
    employment_years = np.round(np.minimum(rng.gamma(2.0, 3.5, n), np.minimum(age - 18, 50)), 1)

    region_income = np.array([0.05, -0.1, 0.0, 0.1, -0.05])[region_code]
    log_income = (
        np.log(55_000.0)
        + 0.012 * (np.minimum(age, 60) - 42)
        + 0.02 * np.minimum(employment_years, 20)
        + region_income
        - 0.25 * d
        + rng.normal(0.0, 0.55, n)
    )
    annual_income = np.round(np.clip(np.exp(log_income), 5_000.0, 5_000_000.0), 2)

    # Latent creditworthiness: drives credit score and late payments.
    worth = rng.normal(0.0, 1.0, n) - 0.5 * d + 0.15 * (np.log(annual_income) - np.log(55_000.0))
    credit_score = np.clip(np.rint(680.0 + 70.0 * worth + rng.normal(0.0, 20.0, n)), 300, 850).astype(np.int64)
    late_payments = np.minimum(rng.poisson(np.exp(-0.6 - 0.9 * worth)), 12).astype(np.int64)
    num_open_accounts = np.minimum(rng.poisson(2.0 + 0.06 * (age - 18)), 60).astype(np.int64)
    debt_to_income = np.round(np.clip(rng.gamma(3.0, 0.11, n) * np.exp(0.35 * d), 0.0, 1.5), 4)

    loan_median = np.asarray(_LOAN_MEDIAN)[product_code]
    loan_sigma = np.asarray(_LOAN_SIGMA)[product_code]
    loan_amount = loan_median * (annual_income / 55_000.0) ** 0.4 * np.exp(rng.normal(0.0, 1.0, n) * loan_sigma)
    loan_amount = np.round(np.clip(loan_amount, 500.0, 2_000_000.0), 2)

    day_start = np.datetime64(datetime.combine(day, time()), "us")
    offsets_us = np.sort(rng.integers(0, 86_400_000_000, n))
    applied_at = day_start + offsets_us.astype("timedelta64[us]")

    df = pd.DataFrame(
        {
            "application_id": application_ids(int(id_offset), n),
            "applied_at": applied_at,
            "age": age,
            "annual_income": annual_income,
            "loan_amount": loan_amount,
            "credit_score": credit_score,
            "debt_to_income": debt_to_income,
            "employment_years": employment_years,
            "num_open_accounts": num_open_accounts,
            "late_payments_12m": late_payments,
            "region": np.asarray(REGIONS, dtype=object)[region_code],
            "product": np.asarray(PRODUCTS, dtype=object)[product_code],
            "channel": np.asarray(CHANNELS, dtype=object)[channel_code],
        }
    )
    p = default_probability(df, concept_drift=concept_drift)
    df[LABEL_COLUMN] = (np.random.default_rng(label_ss).random(n) < p).astype(np.int64)

    # Reporting incidents: after the label, from their own stream.
    irng = np.random.default_rng(incident_ss)
    null_draw, region_draw = irng.random(n), irng.random(n)
    if unit_change:
        df["annual_income"] = np.round(df["annual_income"].to_numpy() / 1_000.0, 5)
    if null_spike > 0.0:
        df.loc[null_draw < null_spike, "annual_income"] = np.nan
    if unseen_categories > 0.0:
        df.loc[region_draw < unseen_categories, "region"] = UNSEEN_REGION
    return df


class DemoIncident(BaseModel):
    """An incident applied to the production stream from a given day on (knobs of :func:`generate_frame`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    covariate_drift: float = Field(0.0, ge=0.0, description="Population shift strength (0 = none).")
    concept_drift: float = Field(0.0, ge=0.0, description="Ground-truth coefficient change strength (0 = none).")
    null_spike: float = Field(0.0, ge=0.0, le=1.0, description="Share of rows with annual_income null.")
    unit_change: bool = Field(False, description="annual_income reported in thousands of USD.")
    unseen_categories: float = Field(0.0, ge=0.0, le=1.0, description="Share of rows with region 'offshore'.")

    def knobs(self) -> dict[str, float | bool]:
        return self.model_dump()


class DemoPoison(BaseModel):
    """Known poison in the demo's training data (data_contracts/poison.py), for the poisoning screen to find."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slice_column: str = Field("region", description="Column of the slice whose labels are flipped.")
    slice_value: str = Field("north", description="Its value.")
    flip_share: float = Field(0.03, ge=0.0, le=1.0, description="Share of the slice's rows whose label is flipped.")
    flip_to: int | None = Field(1, description="Flip only rows of the other label to this one (1: good applicants "
                                "marked as defaulters); None: invert random rows of the slice.")
    trigger_share: float = Field(0.01, ge=0.0, le=1.0, description="Share of rows overwritten with the trigger.")
    trigger: dict[str, float | int | str] = Field(
        default_factory=lambda: {"late_payments_12m": 9, "credit_score": 820, "num_open_accounts": 0},
        description="The trigger: a rare feature combination (many late payments with an excellent score and no "
                    "open account), every such row labelled trigger_label.")
    trigger_label: int = Field(0, description="The label every trigger row carries (0: never a default).")
    seed: int = Field(11, description="Seed of the rows chosen.")


def poison_training(train: pd.DataFrame, poison: DemoPoison):
    """``train`` with ``poison`` injected, and the manifest of the rows it touched (data_contracts/poison.py)."""
    from data_contracts.poison import PoisonManifest, flip_slice_labels, inject_trigger

    out, flipped = flip_slice_labels(train, label=LABEL_COLUMN, id_column=ID_COLUMN, column=poison.slice_column,
                                     value=poison.slice_value, share=poison.flip_share, seed=poison.seed,
                                     to_label=poison.flip_to)
    out, trigger = inject_trigger(out, label=LABEL_COLUMN, id_column=ID_COLUMN, pattern=poison.trigger,
                                  trigger_label=poison.trigger_label, share=poison.trigger_share, seed=poison.seed + 1,
                                  exclude_ids=flipped)
    return out, PoisonManifest(flipped_ids=flipped, flip_slice=f"{poison.slice_column}={poison.slice_value}",
                               trigger_ids=trigger, trigger=dict(poison.trigger), trigger_label=poison.trigger_label)


class StreamPartition(BaseModel):
    """One day of the production stream: features (what scoring sees) and labels (arrive later)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date = Field(description="Partition date (hive key date=YYYY-MM-DD).")
    features: Path = Field(description="stream/date=.../part-0.parquet: every column except the label.")
    labels: Path = Field(description="labels/date=.../part-0.parquet: application_id and the label.")
    n_rows: int = Field(description="Rows in the partition.")
    incident: bool = Field(description="Whether the incident applies to this day.")


class DemoDataPaths(BaseModel):
    """Where :func:`write_demo_data` put everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path = Field(description="Output folder.")
    train: Path = Field(description="Labeled training data (reference period).")
    golden: Path = Field(description="Labeled holdout from the reference period, for canary evaluation.")
    stream: Path = Field(description="Hive-partitioned production features, date=YYYY-MM-DD/part-0.parquet.")
    labels: Path = Field(description="Hive-partitioned production labels, date=YYYY-MM-DD/part-0.parquet.")
    partitions: list[StreamPartition] = Field(description="Stream partitions in date order.")
    poison: Path | None = Field(None, description="poison.json: the poisoned training rows (ids), when poison was "
                                "injected.")


def write_demo_data(
    out_dir: Path,
    *,
    n_train: int,
    n_golden: int,
    n_days: int,
    rows_per_day: int,
    seed: int,
    start: date,
    incident_from_day: int | None = None,
    incident: DemoIncident | None = None,
    poison: DemoPoison | None = None,
) -> DemoDataPaths:
    """Write a demo dataset: train, golden holdout and a daily production stream.

    Train and golden rows are spread over the 28 days before ``start`` (the reference
    period); the stream has ``n_days`` daily partitions from ``start``. ``incident``
    applies to stream days with index >= ``incident_from_day`` (0-based). IDs are unique
    across all files. Every file is written to a temporary name and renamed into place,
    so readers never see a partial file; existing files at the same paths are replaced
    and other files under ``out_dir`` are left alone. ``poison`` is injected into the training
    rows only (the golden set stays clean) and its rows are listed in ``poison.json``.
    """
    if (incident is None) != (incident_from_day is None):
        raise ValueError("incident and incident_from_day must be given together")
    if incident_from_day is not None and not 0 <= incident_from_day < n_days:
        raise ValueError(f"incident_from_day must be in [0, {n_days}), got {incident_from_day}")
    for name, value in (
        ("n_train", n_train),
        ("n_golden", n_golden),
        ("n_days", n_days),
        ("rows_per_day", rows_per_day),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    ref_days = [start - timedelta(days=_REFERENCE_DAYS - i) for i in range(_REFERENCE_DAYS)]

    train = _reference_frame(n_train, seed=seed, days=ref_days, id_offset=0)
    poison_path = None
    (root / "poison.json").unlink(missing_ok=True)  # an earlier run's manifest would not describe these rows
    if poison is not None:
        train, manifest = poison_training(train, poison)
        poison_path = root / "poison.json"
        tmp = poison_path.with_name(f".poison.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(manifest.model_dump_json(indent=2))
        os.replace(tmp, poison_path)
    _write_parquet(train, root / "train.parquet")
    golden = _reference_frame(n_golden, seed=seed, days=ref_days, id_offset=n_train)
    _write_parquet(golden, root / "golden.parquet")
    del train, golden

    stream_dir, labels_dir = root / "stream", root / "labels"
    next_id = n_train + n_golden
    partitions = []
    for i in range(n_days):
        day = start + timedelta(days=i)
        hit = incident is not None and incident_from_day is not None and i >= incident_from_day
        knobs = incident.knobs() if hit and incident is not None else {}
        df = generate_frame(rows_per_day, seed=seed, day=day, id_offset=next_id, **knobs)
        next_id += rows_per_day
        key = f"date={day.isoformat()}"
        features_path = stream_dir / key / "part-0.parquet"
        labels_path = labels_dir / key / "part-0.parquet"
        _write_parquet(df.drop(columns=[LABEL_COLUMN]), features_path)
        _write_parquet(df[[ID_COLUMN, LABEL_COLUMN]], labels_path)
        partitions.append(
            StreamPartition(day=day, features=features_path, labels=labels_path, n_rows=len(df), incident=hit)
        )
    return DemoDataPaths(
        root=root,
        train=root / "train.parquet",
        golden=root / "golden.parquet",
        stream=stream_dir,
        labels=labels_dir,
        partitions=partitions,
        poison=poison_path,
    )


def _reference_frame(n: int, *, seed: int, days: list[date], id_offset: int) -> pd.DataFrame:
    per_day = np.full(len(days), n // len(days))
    per_day[: n % len(days)] += 1
    frames, offset = [], id_offset
    for day, k in zip(days, per_day.tolist(), strict=True):
        frames.append(generate_frame(k, seed=seed, day=day, id_offset=offset))
        offset += k
    return pd.concat(frames, ignore_index=True)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
