"""The golden set's power: the smallest metric difference its paired-bootstrap CI resolves, against each margin.

Non-inferiority passes a higher-is-better metric iff the CI low bound of (candidate - champion) is >= -margin.
A candidate exactly as good as the champion has a CI of about delta +- h, h the CI's half-width, so it can pass
only when h <= margin; a better one passes when its delta exceeds about h - margin. When h > margin the golden
set is too small for that margin: no candidate that is merely as good can show non-inferiority, and the canary
says so, with the rows that would do. The half-width of a bootstrap CI of a mean-like metric scales as
1/sqrt(n), so the rows needed are ``ceil(n * (h / margin) ** 2)``. Reported before the decision; it never
changes the decision. Pure functions over :class:`tasks.canary.stats.DeltaCI`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

_LABELS = {"auc": "AUC", "ece": "ECE", "rmse": "RMSE", "mae": "MAE", "log_loss": "log loss", "brier": "Brier"}


class MetricPower(BaseModel):
    """How finely the golden set resolves one metric's delta, against its non-inferiority margin."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="Metric name (tasks.canary.stats.METRICS).")
    margin: float = Field(description="Its non-inferiority margin from the policy.")
    policy_key: str = Field(description="The policy key of that margin, e.g. canary.margins.auc.")
    half_width: float | None = Field(
        description="Half the width of the delta's paired-bootstrap CI: the smallest difference this golden set "
        "resolves (metric units). None when the CI is undefined."
    )
    resolves_margin: bool = Field(description="half_width <= margin: an equally good candidate can pass.")
    rows_needed: int | None = Field(
        description="Golden rows at which the half-width would shrink to the margin (1/sqrt(n) scaling), when it "
        "does not resolve it now; None when it does, or when no size would (margin 0, undefined CI)."
    )


class GoldenPower(BaseModel):
    """The golden set's power per margined metric (the CanaryReport's ``power``)."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="Golden rows.")
    confidence: float = Field(description="Two-sided confidence level of the CIs.")
    metrics: list[MetricPower] = Field(description="One entry per metric with a margin, in the policy's order.")

    @property
    def underpowered(self) -> list[MetricPower]:
        return [m for m in self.metrics if not m.resolves_margin]


def golden_power(deltas: Iterable, margins: Mapping[str, float], *, n: int, task: str = "classification"
                 ) -> GoldenPower:
    """Power of a golden set of ``n`` rows from its bootstrap ``deltas`` (DeltaCI, one per metric) and the
    policy's ``margins`` (metric -> margin) for ``task``."""
    section = "canary.regression.margins" if task == "regression" else "canary.margins"
    deltas = list(deltas)
    confidence = deltas[0].confidence if deltas else 0.95
    out = []
    for d in deltas:
        margin = float(margins[d.metric])
        h = (d.ci_high - d.ci_low) / 2
        h = h if math.isfinite(h) else None
        resolves = h is not None and h <= margin
        needed = None if resolves or h is None or margin <= 0 else math.ceil(n * (h / margin) ** 2)
        out.append(MetricPower(metric=d.metric, margin=margin, policy_key=f"{section}.{d.metric}", half_width=h,
                               resolves_margin=resolves, rows_needed=needed))
    return GoldenPower(n=n, confidence=confidence, metrics=out)


def label(metric: str) -> str:
    return _LABELS.get(metric, metric)


def power_line(power: GoldenPower, m: MetricPower) -> str:
    """One sentence on metric ``m``: what the golden set resolves, against its margin."""
    at = f"{power.confidence:.0%}"
    if m.half_width is None:
        return (f"golden set of {power.n} rows: the {label(m.metric)} delta's CI is undefined, so no margin can be "
                f"shown; use more rows (with both classes)")
    head = (f"golden set of {power.n} rows resolves {label(m.metric)} differences of ±{m.half_width:.2g} at {at}; "
            f"the margin is {m.margin:g}")
    if m.resolves_margin:
        return f"{head}: enough"
    better = m.half_width - m.margin
    fix = (f"use ≥ {m.rows_needed:,} rows or widen {m.policy_key}" if m.rows_needed is not None
           else f"no golden size resolves a margin of 0; widen {m.policy_key}")
    return (f"{head}: too small to show non-inferiority (a candidate must be better by about {better:.2g} to "
            f"pass); {fix}")


def power_reasons(power: GoldenPower | None) -> list[str]:
    """The canary's reasons about power: one line per margin the golden set is too small for (none when enough)."""
    return [power_line(power, m) for m in power.underpowered] if power is not None else []
