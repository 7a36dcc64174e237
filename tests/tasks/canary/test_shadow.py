import numpy as np
import pytest

from tasks.canary.shadow import MISSING_SLICE, PSI_EPSILON, ShadowInputError, shadow_checks, shadow_comparison

LIMITS = {"max_flip_share": 0.05, "max_psi": 0.1, "max_js": 0.1, "slice_max_flip_share": 0.1, "min_slice_size": 50}


def _beta(n, a=2.0, b=5.0, seed=0):
    return np.random.default_rng(seed).beta(a, b, n)


def test_identical_scores_agree_and_do_not_shift():
    p = _beta(5_000)
    r = shadow_comparison(p, p.copy(), threshold=0.5, slices={"region": np.where(p > 0.3, "a", "b")})
    assert (r.n, r.agreement, r.flip_share, r.flips_to_positive, r.flips_to_negative) == (5_000, 1.0, 0.0, 0, 0)
    assert r.psi == 0.0 and r.js == pytest.approx(0.0, abs=1e-12)
    assert len(r.bin_edges) == 9
    assert all(s.agreement == 1.0 and s.psi == 0.0 for s in r.slices)
    assert all(c.passed for c in shadow_checks(r, **LIMITS))


def test_shifted_candidate_fails_psi_js_and_flips():
    champ = _beta(5_000)
    cand = np.clip(champ + 0.2, 0, 1)
    r = shadow_comparison(cand, champ, threshold=0.5)
    assert r.psi > LIMITS["max_psi"] and r.js > LIMITS["max_js"]
    assert r.flips_to_negative == 0 and r.flips_to_positive > 0
    failed = {c.name for c in shadow_checks(r, **LIMITS) if not c.passed}
    assert failed == {"shadow_flip_share", "shadow_psi", "shadow_js"}


def test_flips_counted_on_a_hand_built_example():
    champ = np.array([0.1, 0.2, 0.6, 0.7, 0.4, 0.9, 0.5, 0.49])
    cand = np.array([0.1, 0.6, 0.3, 0.8, 0.45, 0.2, 0.49, 0.5])
    # flips: row1 -> +, row2 -> -, row5 -> -, row6 -> -, row7 -> + (0.5 >= 0.5 is positive)
    r = shadow_comparison(cand, champ, threshold=0.5)
    assert (r.flips_to_positive, r.flips_to_negative) == (2, 3)
    assert r.agreement == pytest.approx(3 / 8) and r.flip_share == pytest.approx(5 / 8)


def test_psi_matches_the_formula_with_the_documented_epsilon():
    champ = np.arange(100) / 100  # edges at 0.1, ..., 0.9 -> 10 equal bins
    cand = np.full(100, 0.95)  # all in the top bin
    r = shadow_comparison(cand, champ, threshold=0.5, bins=10)
    c = np.array([PSI_EPSILON] * 9 + [1.0])
    b = np.full(10, 0.1)
    assert r.psi == pytest.approx(np.sum((c - b) * np.log(c / b)))
    assert 0.0 < r.js <= 1.0


def test_slice_flips_hidden_in_a_good_overall_are_caught():
    rng = np.random.default_rng(1)
    n = 10_000
    champ = rng.random(n)
    segment = np.where(np.arange(n) < 300, "new_customers", "existing")
    cand = champ.copy()
    hit = segment == "new_customers"
    cand[hit] = 1 - champ[hit]  # every decision in the segment flips
    tiny = np.full(n, "x", dtype=object)
    tiny[:10] = "rare"
    tiny[10:12] = None
    r = shadow_comparison(cand, champ, threshold=0.5, slices={"segment": segment, "tiny": tiny})
    checks = {c.name: c for c in shadow_checks(r, **LIMITS)}
    assert checks["shadow_flip_share"].passed  # 3% overall
    assert not checks["shadow_flip_share:segment=new_customers"].passed
    assert checks["shadow_flip_share:segment=existing"].passed
    small = checks["shadow_flip_share:tiny=rare"]
    assert small.comparison == "info" and small.passed and "too small" in small.value
    assert "shadow_flip_share:tiny=<missing>" in checks
    by = {(s.column, s.value): s for s in r.slices}
    assert by[("segment", "new_customers")].n == 300 and by[("tiny", "<missing>")].n == 2


@pytest.mark.parametrize(
    "cand,champ,slices,match",
    [
        ([], [], None, r"^shadow partition has no rows$"),
        ([0.1, np.nan, np.nan], [0.1, 0.2, 0.3], None, r"^candidate scores contain 2 NaN/inf value\(s\) of 3 rows$"),
        ([0.1, 0.2], [0.1, np.inf], None, r"^champion scores contain 1 NaN/inf"),
        ([0.1, 0.2, 0.3], [0.1, 0.2], None, r"candidate has 3 scores but champion has 2"),
        ([0.1, 0.2], [0.1, 0.2], {"region": ["a"]}, r"slice column 'region' has shape \[1\]"),
    ],
)
def test_bad_inputs_raise_one_line_errors(cand, champ, slices, match):
    with pytest.raises(ShadowInputError, match=match) as e:
        shadow_comparison(np.array(cand), np.array(champ), threshold=0.5, slices=slices)
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)


def test_regression_shadow_measures_prediction_shift_and_records_flips_as_not_applicable():
    from tasks.canary.shadow import regression_shadow_checks, regression_shadow_comparison

    rng = np.random.default_rng(11)
    champ = rng.normal(0.5, 0.1, 4000)
    region = np.where(np.arange(4000) < 3000, "north", "south").astype(object)
    region[:20] = None
    cand = champ + np.where(region == "south", 0.2, 0.0)  # the south's predictions move by 0.2
    report = regression_shadow_comparison(cand, champ, slices={"region": region})
    assert report.mean_diff == pytest.approx(0.05) and report.max_abs_diff == pytest.approx(0.2)
    rows = {s.value: s for s in report.slices}
    assert rows["south"].mean_abs_diff == pytest.approx(0.2) and rows["north"].mean_abs_diff == 0.0
    assert rows[MISSING_SLICE].n == 20 and report.psi > 0
    same = regression_shadow_comparison(champ, champ.copy())
    assert same.psi == 0 and same.js == 0 and same.max_abs_diff == 0

    reported = {c.name: c for c in regression_shadow_checks(report, max_psi=10, max_js=1, max_mean_abs_shift=None,
                                                            min_slice_size=100)}
    assert reported["shadow_flip_share"].value.startswith("not applicable") and reported["shadow_flip_share"].passed
    assert all(c.passed for c in reported.values())  # no |Δ| limit set: reported, not decided
    limited = regression_shadow_checks(report, max_psi=10, max_js=1, max_mean_abs_shift=0.1, min_slice_size=100)
    assert [c.name for c in limited if not c.passed] == ["shadow_mean_abs_diff:region=south"]
    assert next(c for c in limited if c.name.endswith(MISSING_SLICE)).value.startswith("too small")
    with pytest.raises(ShadowInputError, match="no rows"):
        regression_shadow_comparison(np.array([]), np.array([]))


@pytest.mark.parametrize("decides", [False, True], ids=["informs (default)", "decides (shadow_decides: true)"])
def test_shadow_checks_decide_only_when_the_policy_says_so(tmp_path, decides):
    """A candidate whose scores moved far from the champion's (as a much better model's do): by default the shadow
    checks are measured, held to their limits and reported as informational, and the canary passes; with
    canary.shadow_decides: true the same numbers fail it, naming the failing relation."""
    import json

    from tasks.canary.gate import ClassifierMetrics, canary_result
    from tasks.canary.html import canary_report_html
    from tasks.canary.shadow import policy_shadow_checks
    from tasks.evidence import write_json
    from tasks.policy import CanaryPolicy

    champ = _beta(5_000)
    report = shadow_comparison(np.clip(champ + 0.2, 0, 1), champ, threshold=0.5)
    policy = CanaryPolicy(shadow_decides=decides) if decides else CanaryPolicy()
    checks = policy_shadow_checks(report, policy)
    metrics = ClassifierMetrics(n=500, auc=0.9, log_loss=0.3, brier=0.1, accuracy=0.9, precision=0.8, recall=0.8,
                                ece=0.02, positive_rate=0.3)
    result = canary_result(metrics, metrics, policy, candidate_version=2, champion_version=1, shadow=report,
                           extra_checks=checks)
    psi = next(c for c in result.checks if c.name == "shadow_psi")
    assert not psi.passed and report.psi > policy.max_psi  # measured and held to its limit either way
    relation = f"shadow_psi: value {report.psi:.4g} > limit {policy.max_psi:.2f}"
    assert result.passed is not decides
    if decides:
        assert not psi.informational and f"{relation}: FAILED" in result.reasons
        assert {c.name for c in result.failed_checks()} == {"shadow_flip_share", "shadow_psi", "shadow_js"}
    else:
        saved = json.loads(open(write_json(tmp_path / "canary.json", result).path).read())
        shadow_rows = [c for c in saved["checks"] if c["name"].startswith("shadow_")]
        assert shadow_rows and all(c["informational"] for c in shadow_rows)  # the evidence marks them
        assert result.failed_checks() == [] and result.decision == "pass"
        line = next(r for r in result.reasons if "canary.shadow_decides: false" in r)
        assert f"{relation} (informational)" in line and "FAILED" not in line
        page = canary_report_html(result, {}, tmp_path / "canary_report.html").read_text(encoding="utf-8")
        assert '<tr class="info"><td>shadow_psi</td>' in page and "INFORMATIONAL (over the limit)" in page


def test_regression_shadow_checks_follow_the_same_key():
    from tasks.canary.shadow import policy_shadow_checks, regression_shadow_comparison
    from tasks.policy import CanaryPolicy

    y = np.random.default_rng(1).normal(size=2_000)
    report = regression_shadow_comparison(y + 3.0, y)
    assert all(c.informational for c in policy_shadow_checks(report, CanaryPolicy()))
    decided = {c.name: c for c in policy_shadow_checks(report, CanaryPolicy(shadow_decides=True))}
    assert not decided["shadow_psi"].passed and not decided["shadow_psi"].informational
