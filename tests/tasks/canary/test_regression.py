"""The canary for regressors: metrics, the paired bootstrap on RMSE/MAE deltas, slices, the decision, inputs."""

import numpy as np
import pytest

from tasks.canary.gate import RegressorMetrics, canary_result, regressor_metrics, variant_verdict
from tasks.canary.stats import (
    REGRESSION_METRICS,
    CanaryInputError,
    bootstrap_deltas,
    bootstrap_deltas_loop,
    check_regression_inputs,
    non_inferiority,
    slice_metrics,
)
from tasks.policy import CanaryPolicy, RegressionCanaryPolicy

POLICY = CanaryPolicy(bootstrap_resamples=200, regression=RegressionCanaryPolicy(margins={"rmse": 0.01, "mae": 0.01}))


def _population(n, extra_error, seed):
    """Targets and two predictors with correlated errors (sd 0.1); the candidate's error has ``extra_error``
    more sd, so its true RMSE is sqrt(0.1² + extra_error²) against the champion's 0.1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.5 + 0.2 * x + rng.normal(0, 0.05, n)
    shared = rng.normal(0, 0.1, n)
    champion = y + shared
    candidate = y + shared + rng.normal(0, extra_error, n) if extra_error else champion.copy()
    return y, candidate, champion


def test_regression_metrics_on_hand_computed_values():
    y, yhat = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.0, 4.5])
    m = regressor_metrics(y, yhat)
    # errors +0.5, 0, -1, +0.5: SSE 1.5, SST 5
    assert isinstance(m, RegressorMetrics) and m.n == 4
    assert (m.rmse, m.mae, m.r2, m.bias) == pytest.approx((np.sqrt(1.5 / 4), 0.5, 1 - 1.5 / 5, 0.0))
    assert regressor_metrics(y, y + 2).bias == pytest.approx(2.0) and regressor_metrics(y, y).r2 == 1.0


def test_vectorised_regression_bootstrap_equals_the_loop():
    y, cand, champ = _population(1200, 0.05, seed=1)
    kw = dict(metrics=list(REGRESSION_METRICS), resamples=40, confidence=0.9, seed=3)
    vec = bootstrap_deltas(y, cand, champ, max_bytes=4 * 8 * 1200 * 7, **kw)  # several chunks
    loop = bootstrap_deltas_loop(y, cand, champ, **kw)
    for name in REGRESSION_METRICS:
        for field in ("candidate", "champion", "delta", "ci_low", "ci_high"):
            assert getattr(vec[name], field) == pytest.approx(getattr(loop[name], field), abs=1e-12), (name, field)


def test_worse_regressor_ci_excludes_zero_and_the_gate_fails():
    # true RMSE 0.1 (champion) vs sqrt(0.1² + 0.05²) = 0.1118 (candidate): worse by 0.0118, held to margin 0.005
    y, cand, champ = _population(4000, 0.05, seed=2)
    deltas = bootstrap_deltas(y, cand, champ, metrics=["rmse", "mae"], resamples=200, seed=0)
    assert deltas["rmse"].ci_low > 0 and deltas["mae"].ci_low > 0  # CI excludes 0: worse for sure
    assert not deltas["rmse"].higher_is_better
    policy = POLICY.model_copy(update={"regression": RegressionCanaryPolicy(margins={"rmse": 0.005, "mae": 0.005})})
    result = canary_result(regressor_metrics(y, cand), regressor_metrics(y, champ), policy, candidate_version=2,
                           champion_version=1, deltas=list(deltas.values()))
    assert result.task == "regression" and not result.passed
    assert [c.name.split(" ")[0] for c in result.failed_checks()] == ["rmse_delta", "mae_delta"]
    assert "RMSE" in result.reasons[0] and any("CI high <= 0.005" in r and "FAILED" in r for r in result.reasons)


def test_identical_regressors_pass_and_the_ci_covers_zero():
    y, cand, champ = _population(3000, 0.0, seed=3)
    deltas = bootstrap_deltas(y, cand, champ, metrics=["rmse", "mae"], resamples=100, seed=0)
    for d in deltas.values():
        assert d.delta == 0 and d.ci_low <= 0 <= d.ci_high
    result = canary_result(regressor_metrics(y, cand), regressor_metrics(y, champ), POLICY, candidate_version=2,
                           champion_version=1, deltas=list(deltas.values()))
    assert result.passed, result.reasons
    assert [c.name.split(" ")[0] for c in result.checks] == ["candidate_r2", "rmse_delta", "mae_delta"]


def test_slice_regression_hidden_in_a_good_overall_rmse_is_caught():
    rng = np.random.default_rng(5)
    n = 20000
    region = np.where(rng.random(n) < 0.85, "north", "south").astype(object)
    region[:40] = "island"
    y, _, champ = _population(n, 0.0, seed=6)
    # better than the champion on 85% of rows (less error), much worse on the south
    cand = np.where(region == "south", y + rng.normal(0, 0.2, n), y + 0.5 * (champ - y))
    overall = bootstrap_deltas(y, cand, champ, metrics=["rmse"], resamples=200, seed=0)["rmse"]
    assert non_inferiority(overall, margin=0.01).passed  # the overall gate alone would let it through
    rows = {r.value: r for r in slice_metrics(y, cand, champ, {"region": region}, metric="rmse", min_size=200,
                                              margin=0.02, resamples=200, seed=0)}
    assert rows["south"].status == "regressed" and rows["south"].ci_low > 0.02
    assert rows["north"].status == "ok" and rows["north"].delta < 0
    assert rows["island"].status == "too small"


def test_first_deployment_of_a_regressor_holds_the_r2_floor_and_the_optional_rmse_ceiling():
    y, _, champ = _population(500, 0.0, seed=7)
    good = canary_result(regressor_metrics(y, champ), None, POLICY, candidate_version=1, champion_version=None)
    assert good.passed and [c.name for c in good.checks] == ["candidate_r2"] and "first deployment" in good.reasons[0]
    worse_than_mean = canary_result(regressor_metrics(y, np.full_like(y, y.mean() + 0.3)), None, POLICY,
                                    candidate_version=1, champion_version=None)
    assert [c.name for c in worse_than_mean.failed_checks()] == ["candidate_r2"]
    ceiling = POLICY.model_copy(update={"regression": RegressionCanaryPolicy(max_rmse=0.05)})
    capped = canary_result(regressor_metrics(y, champ), None, ceiling, candidate_version=1, champion_version=None)
    assert [c.name for c in capped.failed_checks()] == ["candidate_rmse"]


def test_a_canary_across_tasks_is_refused():
    from tasks.canary.gate import canary_metrics

    y = np.array([0.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="one task"):
        canary_result(regressor_metrics(y, y), canary_metrics(y, y, 0.5), POLICY, candidate_version=2,
                      champion_version=1)
    with pytest.raises(CanaryInputError, match="mix classification and regression"):
        bootstrap_deltas(y, y, y, metrics=["auc", "rmse"], resamples=20)


@pytest.mark.parametrize("noise,accepted", [(0.0, True), (0.001, True), (0.05, False)])
def test_regression_variant_verdict_rmse_budget(noise, accepted):
    y, _, f32 = _population(3000, 0.0, seed=8)
    variant = f32 + np.random.default_rng(9).normal(0, noise, len(y)) if noise else f32.copy()
    policy = CanaryPolicy(bootstrap_resamples=50, regression=RegressionCanaryPolicy(
        variant_max_rmse_increase=0.002, variant_max_abs_diff=1.0))  # the per-row budget does not decide here
    verdict = variant_verdict("int8", y, f32, variant, policy, task="regression")
    assert verdict.accepted is accepted and verdict.metric == "rmse"
    assert verdict.delta == pytest.approx(regressor_metrics(y, variant).rmse - regressor_metrics(y, f32).rmse)
    assert "RMSE delta vs f32" in verdict.reason


_Y = np.array([0.2, 0.4, 0.1, 0.9])


@pytest.mark.parametrize(
    "y,pc,ph,message",
    [
        (None, _Y, _Y, "labels are missing"),
        (np.array([]), np.array([]), None, "empty"),
        (np.array(["a", "b", "c", "d"]), _Y, _Y, "regression labels must be numeric"),
        (np.array([0.1, np.nan, 0.2, 0.3]), _Y, _Y, "labels are missing for 1 of 4"),
        (np.array([0.1, np.inf, 0.2, 0.3]), _Y, _Y, "1 infinite values of 4"),
        (np.full(4, 0.5), _Y, _Y, "labels are constant"),
        (_Y, np.array([0.1, np.nan, 0.2, 0.3]), _Y, "candidate predictions contain 1 non-finite"),
        (_Y, _Y, _Y[:3], "champion predictions have 3 rows but the labels have 4"),
        (_Y, None, _Y, "candidate predictions are missing"),
    ],
)
def test_bad_regression_input_raises_one_line_error(y, pc, ph, message):
    with pytest.raises(CanaryInputError, match=message) as err:
        check_regression_inputs(y, pc, ph)
    assert "\n" not in str(err.value)


def test_regression_predictions_need_not_be_probabilities():
    y, yc, yh = check_regression_inputs(_Y * 100, _Y * 100 + 3, np.array([-5.0, 250, 1e6, 0]))
    assert yc.dtype == np.float64 and yh.max() == 1e6
