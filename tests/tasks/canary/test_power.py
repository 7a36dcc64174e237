"""The golden set's power: what the paired-bootstrap CI resolves at this size, said plainly against each margin."""

import math

import numpy as np
import pytest

from tasks.canary.gate import canary_metrics, canary_result, regressor_metrics
from tasks.canary.power import golden_power, power_line, power_reasons
from tasks.canary.stats import DeltaCI, bootstrap_deltas, non_inferiority
from tasks.policy import CanaryPolicy, RegressionCanaryPolicy

MARGINS = {"auc": 0.005, "log_loss": 0.01}


def _golden(n, seed=0):
    """A champion and a candidate as good as it (equal AUC at 40,000 rows), scored on n rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = rng.normal(0, 1, n)
    champ = 1 / (1 + np.exp(-(2.0 * (y - 0.5) + z)))
    cand = 1 / (1 + np.exp(-(2.1 * (y - 0.5) + z + rng.normal(0, 0.3, n))))
    return y, cand, champ


def _canary(n, margins=MARGINS):
    y, cand, champ = _golden(n)
    policy = CanaryPolicy(margins=margins, bootstrap_resamples=200)
    deltas = list(bootstrap_deltas(y, cand, champ, metrics=list(margins), resamples=200, seed=0).values())
    result = canary_result(canary_metrics(y, cand, 0.5), canary_metrics(y, champ, 0.5), policy, candidate_version=2,
                           champion_version=1, deltas=deltas)
    return result, deltas


def test_an_80_row_golden_set_is_too_small_for_a_0_005_auc_margin_and_says_so():
    result, deltas = _canary(80)
    power = result.power
    assert power is not None and power.n == 80 and power.confidence == 0.95
    auc = next(m for m in power.metrics if m.metric == "auc")
    d = next(d for d in deltas if d.metric == "auc")
    assert auc.half_width == pytest.approx((d.ci_high - d.ci_low) / 2) and auc.half_width > 0.005
    assert not auc.resolves_margin and auc.rows_needed == math.ceil(80 * (auc.half_width / 0.005) ** 2)
    assert auc.policy_key == "canary.margins.auc"
    line = next(r for r in result.reasons if r.startswith("golden set of 80 rows resolves AUC"))
    assert (f"differences of ±{auc.half_width:.2g} at 95%; the margin is 0.005: too small to show non-inferiority"
            in line)
    assert f"use ≥ {auc.rows_needed:,} rows or widen canary.margins.auc" in line
    assert result.reasons.index(line) == 1  # reported before the checks that decide


def test_the_power_report_does_not_change_the_decision():
    """The underpowered canary decides exactly as the non-inferiority checks do; the reasons tell why it failed."""
    result, deltas = _canary(80)
    expected = all(non_inferiority(d, MARGINS[d.metric]).passed for d in deltas) and result.candidate.auc >= 0.6
    assert result.passed is expected and not result.passed  # a candidate at least as good, and it cannot show it
    assert any("FAILED" in r for r in result.reasons) and any("too small" in r for r in result.reasons)


def test_a_large_golden_set_resolves_the_margins_and_adds_no_reason():
    result, _ = _canary(40_000, margins={"auc": 0.01, "log_loss": 0.02})
    assert all(m.resolves_margin and m.rows_needed is None for m in result.power.metrics), result.power
    assert not any("golden set of" in r for r in result.reasons)
    assert result.passed  # the equally good candidate shows non-inferiority at this size


def test_first_deployment_has_no_power_report():
    y, cand, _ = _golden(200)
    m = canary_metrics(y, cand, 0.5)
    assert canary_result(m, None, CanaryPolicy(), candidate_version=1, champion_version=None).power is None


def _delta(metric, lo, hi, higher=True):
    return DeltaCI(metric=metric, higher_is_better=higher, candidate=0.5, champion=0.5, delta=0.0, ci_low=lo,
                   ci_high=hi, resamples=100, confidence=0.9)


@pytest.mark.parametrize(
    "delta,margin,resolves,needed,fragment",
    [
        (_delta("auc", -0.02, 0.02), 0.02, True, None, "the margin is 0.02: enough"),
        (_delta("auc", -0.04, 0.04), 0.01, False, 100 * 16, "use ≥ 1,600 rows or widen canary.margins.auc"),
        (_delta("ece", -0.01, 0.03, higher=False), 0.0, False, None,
         "no golden size resolves a margin of 0; widen canary.margins.ece"),
        (_delta("auc", float("nan"), float("nan")), 0.01, False, None, "the AUC delta's CI is undefined"),
    ],
)
def test_power_per_metric(delta, margin, resolves, needed, fragment):
    power = golden_power([delta], {delta.metric: margin}, n=100)
    (m,) = power.metrics
    assert (m.resolves_margin, m.rows_needed) == (resolves, needed)
    line = power_line(power, m)
    assert fragment in line and ("at 90%" in line or m.half_width is None)
    assert power_reasons(power) == ([] if resolves else [line])


def test_regression_margins_name_their_key():
    rng = np.random.default_rng(2)
    y = rng.normal(size=60)
    champ, cand = y + rng.normal(0, 0.5, 60), y + rng.normal(0, 0.5, 60)
    policy = CanaryPolicy(regression=RegressionCanaryPolicy(margins={"rmse": 0.01}))
    deltas = list(bootstrap_deltas(y, cand, champ, metrics=["rmse"], resamples=100).values())
    result = canary_result(regressor_metrics(y, cand), regressor_metrics(y, champ), policy, candidate_version=2,
                           champion_version=1, deltas=deltas)
    assert result.power.metrics[0].policy_key == "canary.regression.margins.rmse"
    assert any("resolves RMSE differences" in r and "canary.regression.margins.rmse" in r for r in result.reasons)


def test_the_report_page_and_markdown_show_the_power(tmp_path):
    from tasks.canary.html import canary_report_html

    result, _ = _canary(80)
    page = canary_report_html(result, {}, tmp_path / "canary_report.html").read_text(encoding="utf-8")
    assert "Golden set power (80 rows, 95% CIs)" in page and '<tr class="underpowered"><td>auc</td>' in page
    assert f"{result.power.metrics[0].rows_needed:,}" in page
    assert "Golden set power (80 rows, 95% CIs)" in result.markdown() and "| auc |" in result.markdown()
    type(result).model_validate_json(result.model_dump_json())  # the typed field round-trips as evidence
