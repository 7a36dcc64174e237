import numpy as np
import pytest
from scipy.stats import norm

from tasks.canary.stats import roc_auc
from tasks.canary.stats import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    CanaryInputError,
    DeltaCI,
    accuracy,
    bootstrap_deltas,
    bootstrap_deltas_loop,
    brier,
    check_inputs,
    ece,
    interval_coverage,
    log_loss,
    mae,
    non_inferiority,
    precision,
    recall,
    rmse,
    slice_metrics,
)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _pair(rng, n, d_cand, d_champ, rho=0.5, prevalence=0.5):
    """Binormal scores sharing correlated noise: true AUC of a model with separation d is Phi(d / sqrt(2))."""
    y = (rng.random(n) < prevalence).astype(int)
    z0 = rng.normal(size=n)
    z1 = rho * z0 + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return y, _sigmoid(d_cand * y + z1), _sigmoid(d_champ * y + z0)


# ------------------------------------------------------------------------------------------------ metrics


@pytest.mark.parametrize(
    "fn,y,p,expected",
    [
        (brier, [0, 1], [0.0, 1.0], 0.0),
        (brier, [0, 1], [0.5, 0.5], 0.25),
        (log_loss, [0, 1], [0.5, 0.5], np.log(2)),
        (accuracy, [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.6], 0.5),
        (precision, [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.6], 0.5),
        (recall, [0, 1, 1, 1], [0.2, 0.7, 0.4, 0.6], 2 / 3),
        (precision, [0, 1], [0.1, 0.2], float("nan")),  # no predicted positives: undefined
        (ece, [0, 1, 0, 1], [0.25, 0.25, 0.75, 0.75], 0.25),  # two bins, each off by 0.25
        (ece, [0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], 0.0),
    ],
)
def test_classification_metrics_known_values(fn, y, p, expected):
    got = fn(np.array(y, float), np.array(p, float))
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)


def test_metric_registry_directions():
    better_up = {k for k, m in CLASSIFICATION_METRICS.items() if m.higher_is_better}
    assert better_up == {"auc", "accuracy", "precision", "recall"}
    assert not REGRESSION_METRICS["rmse"].higher_is_better and not REGRESSION_METRICS["mae"].higher_is_better


def test_regression_metrics():
    y, yhat = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    assert rmse(y, yhat) == pytest.approx(np.sqrt(4 / 3))
    assert mae(y, yhat) == pytest.approx(2 / 3)
    assert interval_coverage(y, y - 0.5, np.array([1.5, 1.5, 3.5])) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_equals_loop(ties):
    rng = np.random.default_rng(7)
    y, pc, ph = _pair(rng, 1500, 0.8, 1.0, prevalence=0.3)
    if ties:  # coarse scores: many ties within and across classes
        pc, ph = np.round(pc, 2), np.round(ph, 1)
    kw = dict(threshold=0.4, resamples=60, confidence=0.9, seed=11)
    # a small memory budget forces several chunks, including a ragged last one
    vec = bootstrap_deltas(y, pc, ph, max_bytes=7 * 4 * 8 * 1500, **kw)
    loop = bootstrap_deltas_loop(y, pc, ph, **kw)
    assert set(vec) == set(CLASSIFICATION_METRICS)
    for name in vec:
        v, ref = vec[name], loop[name]
        assert v.resamples == ref.resamples == 60
        for field in ("candidate", "champion", "delta", "ci_low", "ci_high"):
            assert getattr(v, field) == pytest.approx(getattr(ref, field), abs=1e-12), (name, field)


def test_vectorised_auc_matches_reference_auc_per_resample():
    rng = np.random.default_rng(3)
    y, pc, ph = _pair(rng, 400, 1.0, 1.0)
    pc = np.round(pc, 1)
    d = bootstrap_deltas(y, pc, ph, metrics=["auc"], resamples=30, seed=0)["auc"]
    assert d.candidate == pytest.approx(roc_auc(y, pc)) and d.champion == pytest.approx(roc_auc(y, ph))


def test_worse_candidate_ci_excludes_zero_and_fails_non_inferiority():
    rng = np.random.default_rng(0)
    # true AUCs: Phi(1.0/sqrt2)=0.760 (candidate) vs Phi(1.4/sqrt2)=0.839 (champion): delta -0.079
    y, pc, ph = _pair(rng, 4000, 1.0, 1.4)
    res = bootstrap_deltas(y, pc, ph, metrics=["auc", "log_loss"], resamples=300, seed=1)
    auc_d = res["auc"]
    assert auc_d.ci_high < 0
    assert auc_d.ci_low < auc_d.delta < auc_d.ci_high
    check = non_inferiority(auc_d, margin=0.01)
    assert not check.passed and check.value == pytest.approx(auc_d.delta) and check.threshold == 0.01
    assert "auc" in check.name and "95% CI" in check.name
    assert res["log_loss"].ci_low > 0 and not non_inferiority(res["log_loss"], margin=0.01).passed


def test_identical_models_delta_zero_and_pass():
    rng = np.random.default_rng(1)
    y, p, _ = _pair(rng, 2000, 1.0, 1.0)
    res = bootstrap_deltas(y, p, p.copy(), resamples=100, seed=0)
    for name, d in res.items():
        assert d.delta == 0 and d.ci_low <= 0 <= d.ci_high, name
        assert non_inferiority(d, margin=0.0).passed, name


@pytest.mark.parametrize(
    "higher,lo,hi,margin,passed",
    [
        (True, -0.009, 0.01, 0.01, True),
        (True, -0.011, 0.01, 0.01, False),
        (False, -0.02, 0.019, 0.02, True),
        (False, -0.02, 0.021, 0.02, False),
        (True, float("nan"), float("nan"), 0.01, False),
    ],
)
def test_non_inferiority_rule(higher, lo, hi, margin, passed):
    d = DeltaCI(metric="m", higher_is_better=higher, candidate=0.5, champion=0.5, delta=0.0, ci_low=lo, ci_high=hi,
                resamples=100, confidence=0.95)
    assert non_inferiority(d, margin).passed is passed


def test_coverage_of_nominal_95_interval(capsys):
    """Over 500 independent golden sets (n=300) from a known binormal population, the nominal 95% paired
    percentile CI of the AUC delta covers the true population delta (-0.0642) in [0.91, 0.98] of them.

    Tolerance: binomial sd at 0.95 over 500 draws is 0.010; the percentile bootstrap is known to under-cover
    slightly at small n (measured 0.935 at n=300 and 0.942 at n=1000 over 1,000 draws each), so the band is
    asymmetric: about 2.5 sd below the measured rate, 4 above."""
    d_cand, d_champ = 0.9, 1.2
    true_delta = norm.cdf(d_cand / np.sqrt(2)) - norm.cdf(d_champ / np.sqrt(2))
    rng = np.random.default_rng(2024)
    reps, covered = 500, 0
    for i in range(reps):
        y, pc, ph = _pair(rng, 300, d_cand, d_champ)
        d = bootstrap_deltas(y, pc, ph, metrics=["auc"], resamples=200, seed=i)["auc"]
        covered += d.ci_low <= true_delta <= d.ci_high
    with capsys.disabled():
        print(f"\ncoverage of the nominal 95% AUC-delta CI: {covered / reps:.3f} over {reps} draws")
    assert 0.91 <= covered / reps <= 0.98, covered / reps


def test_coverage_and_decisions_of_sequential_stopping(capsys):
    """The same simulation with sequential stopping (at most 1,000 resamples, checked every 100; margin 0.12 puts
    the CI's low bound near -margin in many draws, the hardest case for stopping early): the CI it reports covers
    the true delta as often as the fixed one ([0.91, 0.98] of 500 draws), it draws fewer resamples than the cap on
    average, and its non-inferiority decision is the one the full 1,000 resamples give on the first 100 draws."""
    d_cand, d_champ, margin = 0.9, 1.2, 0.12
    true_delta = norm.cdf(d_cand / np.sqrt(2)) - norm.cdf(d_champ / np.sqrt(2))
    rng = np.random.default_rng(2024)
    reps, covered, drawn, disagree = 500, 0, [], 0
    for i in range(reps):
        y, pc, ph = _pair(rng, 300, d_cand, d_champ)
        d = bootstrap_deltas(y, pc, ph, metrics=["auc"], resamples=1000, seed=i, stop_margins={"auc": margin})["auc"]
        covered += d.ci_low <= true_delta <= d.ci_high
        drawn.append(d.resamples)
        assert d.max_resamples == 1000 and d.resamples % 100 == 0
        if i < 100:
            full = bootstrap_deltas(y, pc, ph, metrics=["auc"], resamples=1000, seed=i)["auc"]
            disagree += non_inferiority(d, margin).passed != non_inferiority(full, margin).passed
    with capsys.disabled():
        print(f"\nsequential: coverage {covered / reps:.3f}, mean resamples {np.mean(drawn):.0f} of 1000, "
              f"{disagree} of 100 decisions differ from the full count")
    assert 0.91 <= covered / reps <= 0.98, covered / reps
    assert np.mean(drawn) < 800 and min(drawn) >= 400  # 400: the fewest where a 2.5% quantile's band fits
    assert disagree == 0


def test_sequential_stopping_draws_the_fixed_resamples_in_order():
    """Stopped at m resamples, the CI is the fixed bootstrap's over its first m draws; an undecided one uses all."""
    rng = np.random.default_rng(3)
    y, pc, ph = _pair(rng, 400, 1.4, 1.0)
    seq = bootstrap_deltas(y, pc, ph, metrics=["auc", "log_loss"], resamples=1000, seed=7,
                           stop_margins={"auc": 0.01, "log_loss": 0.02})
    m = seq["auc"].resamples
    assert m < 1000 and seq["log_loss"].resamples == m
    fixed = bootstrap_deltas(y, pc, ph, metrics=["auc", "log_loss"], resamples=m, seed=7)
    for name in ("auc", "log_loss"):
        assert seq[name].ci_low == pytest.approx(fixed[name].ci_low) and fixed[name].max_resamples is None
    # a margin exactly at the CI bound is never decisive: the full count is drawn
    y2, p2, _ = _pair(rng, 400, 1.0, 1.0)
    undecided = bootstrap_deltas(y2, p2, p2.copy(), metrics=["auc"], resamples=500, seed=0, stop_margins={"auc": 0.0})
    assert undecided["auc"].resamples == 500


# ------------------------------------------------------------------------------------------------- slices


def test_slice_regression_hidden_in_good_overall_metric_is_caught():
    rng = np.random.default_rng(5)
    n = 20000
    region = np.where(rng.random(n) < 0.85, "north", "south").astype(object)
    region[:40] = "island"  # a tiny slice
    y, good, champ = _pair(rng, n, 1.3, 1.0)
    # the candidate is better on 85% of rows but much worse on the south (true AUC 0.58 vs 0.76 there)
    cand = np.where(region == "south", _sigmoid(0.3 * y + rng.normal(size=n)), good)
    overall = bootstrap_deltas(y, cand, champ, metrics=["auc"], resamples=200, seed=0)["auc"]
    assert non_inferiority(overall, margin=0.02).passed  # the overall gate alone would let it through
    rows = {r.value: r for r in slice_metrics(y, cand, champ, {"region": region}, min_size=200, margin=0.02,
                                              resamples=200, seed=0)}
    assert rows["south"].status == "regressed" and rows["south"].ci_low < -0.02
    assert rows["north"].status == "ok"
    assert rows["island"].status == "too small" and rows["island"].delta is None and rows["island"].n == 40


def test_slice_with_one_class_is_reported_not_decided():
    rng = np.random.default_rng(6)
    y, pc, ph = _pair(rng, 2000, 1.0, 1.0)
    seg = np.where(np.arange(2000) < 500, "a", "b")
    y[:500] = 1
    rows = {r.value: r for r in slice_metrics(y, pc, ph, {"seg": seg}, min_size=100, resamples=50)}
    assert rows["a"].status == "one class" and rows["b"].status in ("ok", "regressed")
    # a metric defined on one class (log loss) is still computed on that slice
    rows = {r.value: r for r in slice_metrics(y, pc, ph, {"seg": seg}, metric="log_loss", min_size=100, resamples=50)}
    assert rows["a"].delta is not None


# ---------------------------------------------------------------------------------------------- bad input

_Y = np.array([0, 1, 0, 1])
_P = np.array([0.1, 0.8, 0.3, 0.6])


@pytest.mark.parametrize(
    "y,pc,ph,message",
    [
        (None, _P, _P, "labels are missing"),
        (np.array([]), np.array([]), None, "empty"),
        (np.array(["no", "yes", "no", "yes"]), _P, _P, "labels must be numeric 0/1"),
        (np.array([0, 1, 2, 1]), _P, _P, "labels must be 0/1; 1 of 4"),
        (np.array([0, 1, np.nan, 1]), _P, _P, "labels are missing for 1 of 4"),
        (np.array([0, None, None, 1], dtype=object), _P, _P, "labels are missing for 2 of 4"),
        (np.array([0, "x", 1, 1], dtype=object), _P, _P, "labels must be numeric 0/1, got dtype object"),
        (np.array([1, 1, 1, 1]), _P, _P, "one class only"),
        (_Y, np.array([0.1, np.nan, np.nan, 0.2]), _P, "candidate scores contain 2 non-finite values of 4"),
        (_Y, _P, np.array([0.1, np.inf, 0.5, 0.2]), "champion scores contain 1 non-finite"),
        (_Y, _P, _P[:3], "champion scores have 3 rows but the labels have 4"),
        (_Y, None, _P, "candidate scores are missing"),
        (_Y, np.array([0.1, 1.5, 0.5, 0.2]), _P, "candidate scores must be probabilities"),
        (_Y, np.array(["a", "b", "c", "d"]), _P, "candidate scores must be numeric"),
    ],
)
def test_bad_input_raises_one_line_error(y, pc, ph, message):
    with pytest.raises(CanaryInputError, match=message) as err:
        check_inputs(y, pc, ph)
    assert "\n" not in str(err.value)
    if ph is not None and pc is not None:
        with pytest.raises(CanaryInputError):
            bootstrap_deltas(y, pc, ph, resamples=20)


def test_check_inputs_accepts_bool_labels_and_column_scores():
    y, pc, ph = check_inputs(np.array([False, True, False, True]), _P[:, None], _P.astype(np.float32))
    assert y.dtype == pc.dtype == ph.dtype == np.float64 and pc.shape == (4,)


def test_unknown_metric_is_an_input_error():
    with pytest.raises(CanaryInputError, match="unknown metric"):
        bootstrap_deltas(_Y, _P, _P, metrics=["f1"], resamples=20)
