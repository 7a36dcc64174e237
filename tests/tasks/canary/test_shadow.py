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
