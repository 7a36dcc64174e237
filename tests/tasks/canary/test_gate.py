import numpy as np
import pytest

from tasks.canary.gate import ClassifierMetrics, canary_metrics, canary_result
from tasks.canary.stats import roc_auc
from tasks.policy import CanaryPolicy


@pytest.mark.parametrize(
    "y,s,expected",
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),  # all ties
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ],
)
def test_roc_auc_known_values(y, s, expected):
    assert roc_auc(np.array(y), np.array(s)) == pytest.approx(expected)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 2)  # ties on purpose
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert roc_auc(y, s) == pytest.approx(pairwise)


def test_metrics_of_perfect_and_constant_predictions():
    y = np.array([0, 1, 0, 1])
    perfect = canary_metrics(y, np.array([0.0, 1.0, 0.0, 1.0]), 0.5)
    assert perfect.accuracy == 1.0 and perfect.brier == pytest.approx(0.0) and perfect.log_loss < 1e-5
    const = canary_metrics(y, np.full(4, 0.5), 0.5)
    assert const.log_loss == pytest.approx(np.log(2)) and const.brier == pytest.approx(0.25)


def _m(auc, log_loss):
    return ClassifierMetrics(n=100, auc=auc, log_loss=log_loss, brier=0.1, accuracy=0.9, precision=0.5, recall=0.5,
                             ece=0.02, positive_rate=0.1)


POLICY = CanaryPolicy(min_auc=0.7, margins={"auc": 0.01, "log_loss": 0.02}, bootstrap_resamples=100)


def _population(n, shift, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = 1 / (1 + np.exp(-(2.0 * (y - 0.5) * 1.5 + rng.normal(0, 1, n))))
    worse = 1 / (1 + np.exp(-(2.0 * (y - 0.5) * (1.5 - shift) + rng.normal(0, 1, n))))
    return y, base, worse


@pytest.mark.parametrize(
    "shift,passed,failing",
    [(0.0, True, []), (1.0, False, ["auc_delta", "log_loss_delta"])],  # identical models pass; a clearly worse fails
)
def test_canary_decision_with_bootstrap_cis(shift, passed, failing):
    from tasks.canary.stats import bootstrap_deltas

    y, champion, candidate = _population(3000, shift, seed=5)
    deltas = bootstrap_deltas(y, candidate, champion, metrics=["auc", "log_loss"], threshold=0.5, resamples=100,
                              confidence=0.95, seed=0)
    result = canary_result(canary_metrics(y, candidate, 0.5), canary_metrics(y, champion, 0.5), POLICY,
                           candidate_version=2, champion_version=1, deltas=list(deltas.values()))
    assert result.passed is passed
    assert [c.name.split(" ")[0] for c in result.failed_checks()] == failing
    for name in failing:  # the reason names the value, the CI and the rule
        assert any(name in r and "CI" in r and "FAILED" in r for r in result.reasons)


def test_first_deployment_uses_absolute_threshold_only():
    result = canary_result(_m(0.65, 0.3), None, POLICY, candidate_version=1, champion_version=None)
    assert not result.passed and "first deployment" in result.reasons[0]
    assert [c.name for c in result.failed_checks()] == ["candidate_auc"]


def test_regressed_slice_fails_the_gate_and_small_slices_do_not():
    from tasks.canary.stats import SliceResult

    slices = [SliceResult(column="region", value="south", n=500, metric="auc", delta=-0.1, ci_low=-0.15,
                          ci_high=-0.05, status="regressed"),
              SliceResult(column="region", value="tiny", n=10, metric="auc", status="too small")]
    result = canary_result(_m(0.8, 0.3), _m(0.8, 0.3), POLICY, candidate_version=2, champion_version=1, slices=slices)
    assert not result.passed
    assert [c.name for c in result.failed_checks()] == ["slice:region=south:auc_delta"]


@pytest.mark.parametrize(
    "noise,max_abs_diff,accepted",
    # tiny quantization noise stays within budget, big noise does not; with a per-row budget too loose to
    # decide (1.0), the AUC budget alone rejects the noisy variant
    [(0.0, 0.5, True), (0.002, 0.5, True), (0.3, 0.5, False), (0.3, 1.0, False)],
)
def test_variant_verdict_budget(noise, max_abs_diff, accepted):
    from tasks.canary.gate import variant_verdict

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 3000)
    p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 3000), 0.01, 0.99)
    p_variant = np.clip(p + rng.normal(0, noise, 3000), 0, 1) if noise else p.copy()
    verdict = variant_verdict("int8", y, p, p_variant, CanaryPolicy(
        variant_max_auc_drop=0.005, variant_max_abs_diff=max_abs_diff, bootstrap_resamples=50))
    assert verdict.accepted is accepted
    assert ("AUC delta vs f32" in verdict.reason) and ("95% CI" in verdict.reason)
    assert verdict.delta == pytest.approx(roc_auc(y, p_variant) - roc_auc(y, p))  # variant - f32
    if noise == 0.3:
        assert verdict.ci_high < -0.005 and "< -0.005" in verdict.reason


def test_re_timed_latency_decides_and_the_report_shows_every_timing(tmp_path):
    from tasks.canary.html import canary_report_html
    from tasks.canary.latency import BucketLatency, LatencyReport, latency_checks, retimed_checks

    def timing(candidate_p99, buckets=(1, 64)):
        rows = [BucketLatency(model=m, bucket=b, p50_ms=1.0, p95_ms=1.0, p99_ms=candidate_p99 if m == "candidate" else 1.0,
                              rows_per_s=b * 1e3, samples_ms=[1.0]) for m in ("candidate", "champion") for b in buckets]
        return LatencyReport(platform="test", warmup=0, repeats=1, results=rows)

    first = timing(9.0)  # both buckets 9x the champion: over the 3x budget
    checks = retimed_checks(first, lambda r: latency_checks(r, max_p99_ratio=3.0), lambda bs, repeats: timing(1.5, bs),
                            retimes=1)
    result = canary_result(_m(0.8, 0.3), _m(0.8, 0.3), POLICY, candidate_version=2, champion_version=1,
                           extra_checks=checks, latency=first)
    assert result.passed and {c.name: c.value for c in checks} == {"latency_p99_ratio:b1": 1.5,
                                                                     "latency_p99_ratio:b64": 1.5}
    page = result.markdown()
    assert "| candidate | 64 | 1.000 | 9.000 |" in page  # the first timing, over budget, stays in the evidence
    assert "Re-timing 1 of the buckets over budget: candidate b1 p99 1.500 ms, candidate b64 p99 1.500 ms" in page
    html_page = canary_report_html(result, {}, tmp_path / "canary_report.html").read_text(encoding="utf-8")
    assert ('<p class="retiming">Re-timing 1 of the buckets over budget: candidate b1 p99 1.500 ms, candidate b64 '
            "p99 1.500 ms") in html_page
