"""Shadow comparison: candidate vs champion scores on an unlabeled production partition.

No labels, so the question is how differently the candidate would act: the share of
rows whose decision at the policy threshold flips, and how far the candidate's score
distribution has moved from the champion's (PSI and Jensen-Shannon distance), overall
and per slice. A regressor has no decision to flip: its comparison
(:func:`regression_shadow_comparison`) is the same PSI/JS of the predicted values plus
the mean and largest |candidate - champion| prediction, and its checks record the flip
limit as "not applicable". Plain functions; the Prefect task that scores the partition with both
compiled artifacts lives with the canary gate.

Binning (PSI and JS use the same bins):
  edges are the champion's score quantiles at 0, 1/bins, ..., 1 (duplicates dropped, so
  a champion with heavily tied scores gets fewer bins); the outer bins are open, so
  candidate scores outside the champion's range still land in the first/last bin. Slices
  reuse the overall edges, so a slice's PSI is read on the same scale as the overall one.

Epsilon:
  PSI = sum((c - b) * ln(c / b)) over bins, with c, b the candidate/champion shares; a
  share of 0 makes the log infinite, so shares are floored at ``PSI_EPSILON`` (1e-4,
  i.e. "at most 0.01% of rows") before the sum. Identical distributions give exactly 0.
  JS distance (base 2, in [0, 1]) is finite with empty bins and uses the raw shares.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial.distance import jensenshannon

from tasks.errors import LockgateError
from tasks.evidence import Check, as_informational, held_to
from tasks.policy import CanaryPolicy

PSI_EPSILON = 1e-4
MISSING_SLICE = "<missing>"


class ShadowInputError(LockgateError, ValueError):
    """Shadow scores that cannot be compared (empty partition, NaN scores, mismatched rows)."""


class ShadowStats(BaseModel):
    """Decision agreement and score shift of the candidate against the champion on a set of rows."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="Rows compared.")
    agreement: float = Field(description="Share of rows with the same decision (score >= threshold) from both models.")
    flip_share: float = Field(description="1 - agreement: share of rows whose decision flips.")
    flips_to_positive: int = Field(description="Rows the champion scores negative and the candidate positive.")
    flips_to_negative: int = Field(description="Rows the champion scores positive and the candidate negative.")
    psi: float = Field(description="Population stability index of candidate vs champion scores (champion-quantile bins).")
    js: float = Field(description="Jensen-Shannon distance (base 2, in [0, 1]) of the same binned distributions.")


class SliceShadow(ShadowStats):
    column: str = Field(description="Slice column.")
    value: str = Field(description=f"Slice value as a label; null values are '{MISSING_SLICE}'.")


class ShadowReport(ShadowStats):
    threshold: float = Field(description="Decision threshold the agreement is measured at.")
    bins: int = Field(description="Bins requested for PSI/JS.")
    bin_edges: list[float] = Field(description="Interior bin edges actually used (champion quantiles, deduplicated).")
    slices: list[SliceShadow] = Field(default_factory=list, description="Per slice column and value.")


def _scores(name: str, p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ShadowInputError(f"{name} scores must be 1-d, got shape {list(p.shape)}")
    bad = int((~np.isfinite(p)).sum())
    if bad:
        raise ShadowInputError(f"{name} scores contain {bad} NaN/inf value(s) of {len(p)} rows")
    return p


def _interior_edges(p_champ: np.ndarray, bins: int) -> np.ndarray:
    return np.unique(np.quantile(p_champ, np.linspace(0.0, 1.0, bins + 1))[1:-1])


def _shares(p: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # side="right": a score equal to an edge goes to the bin above it, as np.histogram does.
    counts = np.bincount(np.searchsorted(edges, p, side="right"), minlength=len(edges) + 1)
    return counts / counts.sum()


def _distribution_shift(p_cand: np.ndarray, p_champ: np.ndarray, edges: np.ndarray) -> dict:
    c, b = _shares(p_cand, edges), _shares(p_champ, edges)
    cf, bf = np.maximum(c, PSI_EPSILON), np.maximum(b, PSI_EPSILON)
    js = float(jensenshannon(c, b, base=2)) if len(c) > 1 else 0.0
    return {"n": len(p_cand), "psi": float(np.sum((cf - bf) * np.log(cf / bf))), "js": 0.0 if not np.isfinite(js) else js}


def _stats(p_cand: np.ndarray, p_champ: np.ndarray, threshold: float, edges: np.ndarray) -> dict:
    cand_pos, champ_pos = p_cand >= threshold, p_champ >= threshold
    agreement = float(np.mean(cand_pos == champ_pos))
    return {
        **_distribution_shift(p_cand, p_champ, edges),
        "agreement": agreement,
        "flip_share": 1.0 - agreement,
        "flips_to_positive": int(np.sum(cand_pos & ~champ_pos)),
        "flips_to_negative": int(np.sum(~cand_pos & champ_pos)),
    }


def _regression_stats(y_cand: np.ndarray, y_champ: np.ndarray, edges: np.ndarray) -> dict:
    diff = y_cand - y_champ
    return {**_distribution_shift(y_cand, y_champ, edges), "mean_diff": float(diff.mean()),
            "mean_abs_diff": float(np.abs(diff).mean()), "max_abs_diff": float(np.abs(diff).max())}


def _labels(values: np.ndarray) -> np.ndarray:
    s = pd.Series(np.asarray(values, dtype=object))
    return s.where(s.notna(), MISSING_SLICE).astype(str).to_numpy()


def shadow_comparison(
    p_cand: np.ndarray,
    p_champ: np.ndarray,
    *,
    threshold: float,
    slices: dict[str, np.ndarray] | None = None,
    bins: int = 10,
) -> ShadowReport:
    """Compare candidate and champion scores on the same unlabeled rows.

    Args:
      p_cand, p_champ: f[n] scores of the same rows, in the same order.
      threshold: decision threshold; a row is positive when its score >= threshold.
      slices: slice column -> values[n] (any dtype; nulls become '<missing>').
      bins: PSI/JS bins, from the champion's quantiles (see the module docstring).

    Raises:
      ShadowInputError: empty partition, NaN/inf scores (naming the model and the count),
        mismatched row counts between the two models or a slice column.
    """
    p_cand, p_champ, edges = _checked_pair(p_cand, p_champ, bins)
    per_slice = [SliceShadow(column=column, value=value, **_stats(p_cand[m], p_champ[m], threshold, edges))
                 for column, value, m in _slice_masks(slices, len(p_champ))]
    return ShadowReport(
        threshold=threshold, bins=bins, bin_edges=edges.tolist(), slices=per_slice,
        **_stats(p_cand, p_champ, threshold, edges),
    )


def _checked_pair(p_cand, p_champ, bins) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p_cand, p_champ = _scores("candidate", p_cand), _scores("champion", p_champ)
    if len(p_cand) != len(p_champ):
        raise ShadowInputError(f"candidate has {len(p_cand)} scores but champion has {len(p_champ)}; rows must match")
    if len(p_champ) == 0:
        raise ShadowInputError("shadow partition has no rows")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ShadowInputError(f"bins must be a positive int, got {bins!r}")
    return p_cand, p_champ, _interior_edges(p_champ, bins)


def _slice_masks(slices: dict[str, np.ndarray] | None, n: int):
    """(column, value, row mask) per slice value, values in sorted order; nulls become '<missing>'."""
    for column, values in (slices or {}).items():
        values = np.asarray(values, dtype=object)
        if values.shape != (n,):
            raise ShadowInputError(f"slice column {column!r} has shape {list(values.shape)} but the partition has {n} rows")
        labels = _labels(values)
        for value in sorted(set(labels)):
            yield column, value, labels == value


def shadow_checks(
    report: ShadowReport,
    *,
    max_flip_share: float,
    max_psi: float,
    max_js: float,
    slice_max_flip_share: float,
    min_slice_size: int,
) -> list[Check]:
    """One Check per policy limit, overall and per slice; slices under ``min_slice_size`` rows are info checks
    ("too small") that pass, so tiny slices do not decide the gate."""
    checks = [
        held_to("shadow_flip_share", report.flip_share, "<=", max_flip_share),
        held_to("shadow_psi", report.psi, "<=", max_psi),
        held_to("shadow_js", report.js, "<=", max_js),
    ]
    for s in report.slices:
        name = f"shadow_flip_share:{s.column}={s.value}"
        if s.n < min_slice_size:
            checks.append(Check(name=name, value=f"too small: n={s.n} < {min_slice_size}", threshold=min_slice_size,
                                comparison="info", passed=True))
        else:
            checks.append(held_to(name, s.flip_share, "<=", slice_max_flip_share))
    return checks


# ------------------------------------------------------------------------------------------- regression


class RegressionShadowStats(BaseModel):
    """How far a regressor's predictions move from the champion's on the same unlabeled rows."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="Rows compared.")
    psi: float = Field(description="PSI of candidate vs champion predictions (champion-quantile bins).")
    js: float = Field(description="Jensen-Shannon distance (base 2, in [0, 1]) of the same binned distributions.")
    mean_diff: float = Field(description="Mean of candidate - champion prediction (label units).")
    mean_abs_diff: float = Field(description="Mean |candidate - champion| prediction (label units).")
    max_abs_diff: float = Field(description="Largest |candidate - champion| prediction (label units).")


class RegressionSliceShadow(RegressionShadowStats):
    column: str = Field(description="Slice column.")
    value: str = Field(description=f"Slice value as a label; null values are '{MISSING_SLICE}'.")


class RegressionShadowReport(RegressionShadowStats):
    bins: int = Field(description="Bins requested for PSI/JS.")
    bin_edges: list[float] = Field(description="Interior bin edges actually used (champion quantiles, deduplicated).")
    slices: list[RegressionSliceShadow] = Field(default_factory=list, description="Per slice column and value.")


def regression_shadow_comparison(
    y_cand: np.ndarray, y_champ: np.ndarray, *, slices: dict[str, np.ndarray] | None = None, bins: int = 10,
) -> RegressionShadowReport:
    """Compare a candidate regressor's predictions f[n] with the champion's on the same rows: PSI/JS of the
    predictions (binned as in :func:`shadow_comparison`) and |Δ prediction|, overall and per slice.

    Raises:
      ShadowInputError: as :func:`shadow_comparison`.
    """
    y_cand, y_champ, edges = _checked_pair(y_cand, y_champ, bins)
    per_slice = [RegressionSliceShadow(column=column, value=value, **_regression_stats(y_cand[m], y_champ[m], edges))
                 for column, value, m in _slice_masks(slices, len(y_champ))]
    return RegressionShadowReport(bins=bins, bin_edges=edges.tolist(), slices=per_slice,
                                  **_regression_stats(y_cand, y_champ, edges))


def _limit_or_info(name: str, value: float, limit: float | None) -> Check:
    if limit is None:
        return Check(name=name, value=value, threshold="no limit set: reported only", comparison="info", passed=True)
    return held_to(name, value, "<=", limit)


def regression_shadow_checks(
    report: RegressionShadowReport, *, max_psi: float, max_js: float, max_mean_abs_shift: float | None,
    min_slice_size: int,
) -> list[Check]:
    """PSI/JS of the predictions against their limits; mean |Δ prediction| against its limit when one is set
    (else reported), overall and per slice (slices under ``min_slice_size`` rows are "too small"). Decision flips
    do not apply to a regressor and are recorded as such."""
    checks = [
        Check(name="shadow_flip_share", value="not applicable: regression (no decision threshold)",
              comparison="info", passed=True),
        held_to("shadow_psi", report.psi, "<=", max_psi),
        held_to("shadow_js", report.js, "<=", max_js),
        _limit_or_info("shadow_mean_abs_diff", report.mean_abs_diff, max_mean_abs_shift),
        Check(name="shadow_max_abs_diff", value=report.max_abs_diff, comparison="info", passed=True),
    ]
    for s in report.slices:
        name = f"shadow_mean_abs_diff:{s.column}={s.value}"
        if s.n < min_slice_size:
            checks.append(Check(name=name, value=f"too small: n={s.n} < {min_slice_size}", threshold=min_slice_size,
                                comparison="info", passed=True))
        else:
            checks.append(_limit_or_info(name, s.mean_abs_diff, max_mean_abs_shift))
    return checks


def policy_shadow_checks(report: ShadowReport | RegressionShadowReport, cp: CanaryPolicy) -> list[Check]:
    """The shadow checks of ``report`` (classifier or regressor) against the canary policy's limits; they can fail
    the canary only with ``cp.shadow_decides``, otherwise they are informational (measured, held to the limits,
    reported, never failing the gate)."""
    if isinstance(report, RegressionShadowReport):
        checks = regression_shadow_checks(report, max_psi=cp.max_psi, max_js=cp.max_js,
                                          max_mean_abs_shift=cp.regression.max_mean_abs_shift,
                                          min_slice_size=cp.min_slice_size)
    else:
        checks = shadow_checks(report, max_flip_share=cp.max_flip_share, max_psi=cp.max_psi, max_js=cp.max_js,
                               slice_max_flip_share=cp.slice_max_flip_share, min_slice_size=cp.min_slice_size)
    return checks if cp.shadow_decides else as_informational(checks)
