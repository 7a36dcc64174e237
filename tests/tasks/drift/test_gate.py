"""Drift gate: real Evidently on small frames, and the pure decision on hand-built evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tasks.drift.gate import (
    METHODS,
    HTML_NAME,
    SNAPSHOT_NAME,
    ColumnDrift,
    DriftEvidence,
    DriftResult,
    drift_evidence,
    drift_result,
    drift_rule,
)
from tasks.evidence import sha256_file
from tasks.policy import DriftPolicy

N = 2000
NUMERIC = ["x1", "x2", "x3", "x4"]
CATS = ["red", "green", "blue"]


def _frame(seed: int, n: int = N, *, shift: dict[str, float] | None = None, cat_p=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    """n rows: x1..x4 ~ N(shift, 1), colour ~ Categorical(cat_p), score ~ Beta(2, 5) (+ shift)."""
    rng = np.random.default_rng(seed)
    shift = shift or {}
    frame = pd.DataFrame({c: rng.normal(shift.get(c, 0.0), 1.0, n) for c in NUMERIC})
    frame["colour"] = rng.choice(CATS, n, p=list(cat_p))
    frame["score"] = np.clip(rng.beta(2, 5, n) + shift.get("score", 0.0), 0, 1)
    return frame


def _run(tmp_path_factory, name: str, reference: pd.DataFrame, current: pd.DataFrame, **kwargs):
    out_dir = tmp_path_factory.mktemp(name)
    before = (reference.copy(deep=True), current.copy(deep=True))
    evidence = drift_evidence(reference, current, out_dir=out_dir, **kwargs)
    return evidence, (reference, current), before


@pytest.fixture(scope="module")
def no_drift(tmp_path_factory):
    return _run(
        tmp_path_factory,
        "no_drift",
        _frame(1),
        _frame(2),
        numeric=NUMERIC,
        categorical=["colour"],
        prediction_column="score",
    )


@pytest.fixture(scope="module")
def mean_shift(tmp_path_factory):
    """x1 and x2 shifted by one standard deviation; 2 of 4 columns drift."""
    return _run(
        tmp_path_factory,
        "mean_shift",
        _frame(1),
        _frame(2, shift={"x1": 1.0, "x2": 1.0}),
        numeric=NUMERIC,
        categorical=[],
    )


@pytest.fixture(scope="module")
def category_shift(tmp_path_factory):
    """Colour mix and score shifted; x1 pinned to KS with a 0.01 threshold."""
    return _run(
        tmp_path_factory,
        "category_shift",
        _frame(1),
        _frame(2, cat_p=(0.2, 0.3, 0.5), shift={"score": 0.2}),
        numeric=["x1"],
        categorical=["colour"],
        prediction_column="score",
        methods={"x1": "ks"},
        thresholds={"x1": 0.01},
    )


def _by_column(evidence: DriftEvidence) -> dict[str, ColumnDrift]:
    return {c.column: c for c in evidence.columns}


# --- real Evidently ------------------------------------------------------------------


def test_same_distribution_is_ok(no_drift):
    evidence, _, _ = no_drift
    assert [c.column for c in evidence.columns] == NUMERIC + ["score", "colour"]
    assert evidence.drifted_count == 0 and evidence.drifted_share == 0
    assert (evidence.n_reference, evidence.n_current) == (N, N)
    assert "evidently 0.7" in evidence.engine
    assert evidence.report_rows == (N, N)  # small data: Evidently's report saw every row
    cols = _by_column(evidence)
    # Evidently's own choice above 1,000 reference rows.
    assert {cols[c].method for c in NUMERIC + ["score"]} == {"wasserstein"}
    assert cols["colour"].method == "jensenshannon" and cols["colour"].kind == "categorical"
    assert cols["score"].role == "prediction" and cols["score"].kind == "numeric"

    result = drift_result(evidence, DriftPolicy())
    assert isinstance(result, DriftResult)
    assert (result.gate, result.decision, result.passed) == ("drift", "ok", True)
    assert result.drifted_columns == []
    assert all(c.passed for c in result.checks)
    assert "ok" in result.reasons[0] and "warn_drifted_share 0.1" in result.reasons[0]


def test_report_can_be_left_to_a_decision_on_the_measurements(mean_shift, tmp_path):
    """``evidently=`` a function of the measurements: called once with lockgate's own scores (the same as with the
    report), and when it says no, nothing is written and the evidence names no file."""
    evidence, (reference, current), _ = mean_shift
    seen = []
    skipped = drift_evidence(reference, current, numeric=NUMERIC, out_dir=tmp_path / "skipped",
                             evidently=lambda m: seen.append(m) or False)
    assert len(seen) == 1 and seen[0].drifted_share == 0.5
    assert skipped.evidence == {} and skipped.engine == "lockgate summaries" and skipped.report_rows is None
    assert not (tmp_path / "skipped").exists() or not any((tmp_path / "skipped").iterdir())
    assert [(c.column, c.score, c.drifted) for c in skipped.columns] == \
        [(c.column, c.score, c.drifted) for c in evidence.columns]
    assert all(c.evidently_score is None for c in skipped.columns)
    assert drift_result(skipped, DriftPolicy(max_drifted_share=0.3)).decision == "breach"

    kept = drift_evidence(reference, current, numeric=NUMERIC, out_dir=tmp_path / "kept",
                          evidently=lambda m: drift_result(m, DriftPolicy()).decision != "ok")
    assert set(kept.evidence) == {"html", "json"} and "evidently 0.7" in kept.engine
    assert all(c.evidently_score is not None for c in kept.columns)


def test_the_policy_asks_for_the_report_always_or_only_on_warn_or_breach(no_drift, mean_shift, tmp_path):
    from tasks.drift.gate import evidently_wanted

    assert evidently_wanted(DriftPolicy()) is True  # the default: every lifecycle's drift gate writes it
    wanted = evidently_wanted(DriftPolicy(evidently_report="warn_or_breach"))
    for case, (evidence, (reference, current), _), columns, decision, files in (
            ("ok", no_drift, {"categorical": ["colour"], "prediction_column": "score"}, "ok", set()),
            ("breach", mean_shift, {}, "breach", {"html", "json"})):
        assert drift_result(evidence, DriftPolicy()).decision == decision
        kept = drift_evidence(reference, current, numeric=NUMERIC, **columns, out_dir=tmp_path / case,
                              evidently=wanted)
        assert set(kept.evidence) == files, case
        assert (tmp_path / case / HTML_NAME).is_file() == bool(files), case


def test_mean_shift_flags_shifted_columns_and_breaches(mean_shift):
    evidence, _, _ = mean_shift
    cols = _by_column(evidence)
    assert {c.column for c in evidence.drifted_columns} == {"x1", "x2"}
    assert (evidence.drifted_count, evidence.drifted_share) == (2, 0.5)
    for name in ("x1", "x2"):
        assert cols[name].score >= cols[name].threshold  # normed Wasserstein: a distance

    result = drift_result(evidence, DriftPolicy(max_drifted_share=0.3))
    assert (result.decision, result.passed) == ("breach", False)
    assert result.drifted_columns == ["x1", "x2"]
    assert "max_drifted_share 0.3" in result.reasons[0] and "2/4 columns" in result.reasons[0]
    for name in ("x1", "x2"):
        line = next(r for r in result.reasons if f"column {name} " in r)
        assert "wasserstein" in line and f"{cols[name].score:.4g}" in line and "threshold 0.1" in line
    failed = {c.name for c in result.failed_checks()}
    assert failed == {"column:x1", "column:x2", "drifted_share:breach", "drifted_share:warn"}
    assert set(result.evidence) == {"html", "json"}

    lenient = drift_result(evidence, DriftPolicy(max_drifted_share=0.3, block_on_breach=False))
    assert (lenient.decision, lenient.passed) == ("breach", True)
    assert any("block_on_breach is off" in r for r in lenient.reasons)
    assert drift_result(evidence, DriftPolicy(max_drifted_share=0.6, warn_drifted_share=0.5)).decision == "warn"


def test_categorical_and_prediction_shift_flagged(category_shift):
    evidence, _, _ = category_shift
    cols = _by_column(evidence)
    assert cols["colour"].drifted and cols["colour"].method == "jensenshannon"
    assert cols["score"].drifted and cols["score"].role == "prediction"
    result = drift_result(evidence, DriftPolicy())
    assert any(r.startswith("prediction score drifted") for r in result.reasons)


def test_scores_equal_evidentlys_report_on_full_data(no_drift, mean_shift, category_shift):
    """Below report_rows Evidently's preset runs on all rows: its scores are the engine's, to 1e-9."""
    for evidence, _, _ in (no_drift, mean_shift, category_shift):
        for c in evidence.columns:
            assert c.exact and c.evidently_score == pytest.approx(c.score, abs=1e-9, rel=1e-9), c.column


def test_all_null_column_is_not_measured_and_breaches_quality(tmp_path):
    reference, current = _frame(1, 300), _frame(2, 300).assign(x1=np.nan)
    evidence = drift_evidence(reference, current, out_dir=tmp_path, numeric=["x1", "x2"], categorical=["colour"])
    x1 = _by_column(evidence)["x1"]
    assert x1.status == "no data" and not x1.drifted and "current" in x1.basis
    result = drift_result(evidence, DriftPolicy())
    assert result.decision == "breach" and not result.passed
    assert any("quality:x1:null_share_increase: value 1" in r for r in result.reasons)


def test_pinned_method_is_a_p_value_test(category_shift):
    evidence, _, _ = category_shift
    x1 = _by_column(evidence)["x1"]
    assert (x1.method, x1.method_label, x1.threshold, x1.drifted) == ("ks", "K-S p_value", 0.01, False)
    assert x1.score > 0.01
    check = next(c for c in drift_result(evidence, DriftPolicy()).checks if c.name == "column:x1")
    assert (check.comparison, check.passed) == (">", True)


def test_small_reference_switches_to_p_value_tests(tmp_path):
    """Evidently picks KS / chi-square at <= 1,000 reference rows; verdicts follow p < threshold."""
    evidence = drift_evidence(
        _frame(1, 500),
        _frame(2, 500, shift={"x1": 1.0}, cat_p=(0.2, 0.3, 0.5)),
        numeric=["x1", "x2"],
        categorical=["colour"],
        out_dir=tmp_path,
    )
    cols = _by_column(evidence)
    assert (cols["x1"].method, cols["x2"].method, cols["colour"].method) == ("ks", "ks", "chisquare")
    assert cols["x1"].drifted and cols["x1"].score <= cols["x1"].threshold
    assert cols["colour"].drifted and not cols["x2"].drifted
    checks = {c.name: c for c in drift_result(evidence, DriftPolicy()).checks}
    assert (checks["column:x1"].comparison, checks["column:x1"].passed) == (">", False)
    assert (checks["column:colour"].comparison, checks["column:colour"].passed) == (">=", False)


def test_reports_saved_with_matching_hashes(mean_shift, tmp_path):
    from evidently.core.report import Snapshot
    from evidently.ui.workspace import Workspace

    evidence, _, _ = mean_shift
    html, snap = evidence.evidence["html"], evidence.evidence["json"]
    assert html.path.endswith(HTML_NAME) and snap.path.endswith(SNAPSHOT_NAME)
    for f in (html, snap):
        assert sha256_file(f.path) == f.sha256
    with open(html.path, encoding="utf-8") as fh:
        assert "<html" in fh.read(4096).lower()

    loaded = Snapshot.load(snap.path).dict()  # the full snapshot loads back into Evidently
    scores = {
        m["config"]["column"]: m["value"]
        for m in loaded["metrics"]
        if m["config"]["type"] == "evidently:metric_v2:ValueDrift"
    }
    assert scores == {c.column: c.evidently_score for c in evidence.columns}
    assert json.loads(Path(snap.path).read_text())["top_level_metrics"]

    workspace = Workspace.create(str(tmp_path / "workspace"))  # what `evidently ui` serves
    project = workspace.create_project("lockgate drift")
    workspace.add_run(project.id, Snapshot.load(snap.path))
    assert len(workspace.list_runs(project.id)) == 1


def test_inputs_unchanged(no_drift, category_shift):
    for _, (reference, current), (ref_before, cur_before) in (no_drift, category_shift):
        pd.testing.assert_frame_equal(reference, ref_before)
        pd.testing.assert_frame_equal(current, cur_before)


def test_evidence_round_trips_as_json(no_drift):
    evidence, _, _ = no_drift
    assert DriftEvidence.model_validate_json(evidence.model_dump_json()) == evidence


@pytest.mark.parametrize(
    "mutate, kwargs, message",
    [
        (lambda ref, cur: (ref, cur.drop(columns="x2")), {}, r"current data is missing column\(s\) \['x2'\]"),
        (lambda ref, cur: (ref.drop(columns="colour"), cur), {}, r"reference data is missing column\(s\) \['colour'\]"),
        (
            lambda ref, cur: (ref, cur.assign(x1=cur["x1"].astype(str))),
            {},
            r"'x1' is declared numeric but is string in current",
        ),
        (lambda ref, cur: (ref, cur.iloc[:0]), {}, r"current data has no rows"),
        (lambda ref, cur: (ref, cur), {"prediction_column": "proba"}, r"missing column\(s\) \['proba'\]"),
        (lambda ref, cur: (ref, cur), {"categorical": ["x1"]}, r"declared more than once.*\['x1'\]"),
        (lambda ref, cur: (ref, cur), {"numeric": [], "categorical": []}, r"at least one"),
    ],
    ids=["missing-current", "missing-reference", "dtype-mismatch", "empty", "prediction", "twice", "none"],
)
def test_bad_input_fails_before_evidently(monkeypatch, tmp_path, mutate, kwargs, message):
    monkeypatch.setitem(sys.modules, "evidently", None)  # any Evidently import now raises ImportError
    reference, current = mutate(_frame(1, 50), _frame(2, 50))
    args = {"numeric": ["x1", "x2"], "categorical": ["colour"], **kwargs}
    with pytest.raises(ValueError, match=message):
        drift_evidence(reference, current, out_dir=tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


# --- the method table against Evidently's own stattests ------------------------------


def test_method_table_matches_evidently_registry():
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
    from evidently.legacy.core import ColumnType

    tabular = {
        name
        for name, by_type in _registered_stat_tests.items()
        if {ColumnType.Numerical, ColumnType.Categorical} & set(by_type)
    }
    assert tabular == set(METHODS)
    kinds = {ColumnType.Numerical: "numeric", ColumnType.Categorical: "categorical"}
    for name, method in METHODS.items():
        registered = _registered_stat_tests[name]
        assert {st.display_name for st in registered.values()} == {method.label}
        assert {st.default_threshold for st in registered.values()} == {method.default_threshold}
        assert {kinds[t] for t in registered if t in kinds} == set(method.kinds)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_table_direction_matches_stattest(method):
    """Each stattest's verdict at, above and below its own score pins the comparison."""
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests, get_registered_stattest
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(3)
    if ColumnType.Numerical in _registered_stat_tests[method]:
        kind = ColumnType.Numerical
        ref, cur = pd.Series(rng.normal(0, 1, 200)), pd.Series(rng.normal(0.3, 1, 200))
    else:
        kind = ColumnType.Categorical
        ref, cur = pd.Series(rng.choice(["a", "b"], 200)), pd.Series(rng.choice(["a", "b"], 200, p=[0.4, 0.6]))
    registered = get_registered_stattest(method, kind)

    def stattest(ref, cur, kind, threshold):
        np.random.seed(0)  # empirical_mmd permutes with the global RNG
        return registered(ref, cur, kind, threshold)

    score = stattest(ref, cur, kind, 0.05).drift_score
    rule = drift_rule(method)
    p_value = rule in ("<", "<=")
    drift_side = score * 2 + 1e-3 if p_value else score / 2
    safe_side = score / 2 if p_value else score * 2 + 1e-3
    assert score > 0 or p_value
    assert bool(stattest(ref, cur, kind, score).drifted) == (rule in ("<=", ">="))
    assert bool(stattest(ref, cur, kind, drift_side).drifted)
    assert not bool(stattest(ref, cur, kind, safe_side).drifted)


# --- the pure decision on hand-built evidence ------------------------------------------


def _evidence(*columns: ColumnDrift) -> DriftEvidence:
    count = sum(c.drifted for c in columns)
    return DriftEvidence(
        columns=list(columns), drifted_count=count, drifted_share=count / len(columns), n_reference=10, n_current=10
    )


def _col(name: str, method: str, score: float, threshold: float, drifted: bool) -> ColumnDrift:
    return ColumnDrift(column=name, kind="numeric", method=method, score=score, threshold=threshold, drifted=drifted)


@pytest.mark.parametrize(
    "method, score, threshold, drifted, comparison, passed",
    [
        # p-values: drift when small; ks flags p <= threshold, chisquare / z flag p < threshold
        ("ks", 0.01, 0.05, True, ">", False),
        ("ks", 0.05, 0.05, True, ">", False),
        ("ks", 0.30, 0.05, False, ">", True),
        ("chisquare", 0.05, 0.05, False, ">=", True),
        ("chisquare", 0.049, 0.05, True, ">=", False),
        ("z", 0.20, 0.05, False, ">=", True),
        # distances: drift when large; wasserstein / jensenshannon / psi flag d >= threshold, ed flags d > threshold
        ("wasserstein", 0.25, 0.1, True, "<", False),
        ("wasserstein", 0.1, 0.1, True, "<", False),
        ("wasserstein", 0.05, 0.1, False, "<", True),
        ("jensenshannon", 0.02, 0.1, False, "<", True),
        ("psi", 0.3, 0.1, True, "<", False),
        ("ed", 0.1, 0.1, False, "<=", True),
        # a method the table does not know: Evidently's verdict, no invented direction
        ("my_custom_test", 0.7, 0.5, True, "info", False),
    ],
)
def test_column_check_direction(method, score, threshold, drifted, comparison, passed):
    result = drift_result(_evidence(_col("c", method, score, threshold, drifted)), DriftPolicy())
    check = result.checks[0]
    assert (check.name, check.value, check.threshold) == ("column:c", score, threshold)
    assert (check.comparison, check.passed) == (comparison, passed)


@pytest.mark.parametrize(
    "n_drifted, policy, decision, passed",
    [
        (0, DriftPolicy(), "ok", True),
        (1, DriftPolicy(), "warn", True),  # 0.1 >= warn 0.1
        (2, DriftPolicy(), "warn", True),
        (3, DriftPolicy(), "breach", False),  # 0.3 >= max 0.3
        (3, DriftPolicy(block_on_breach=False), "breach", True),
        (9, DriftPolicy(max_drifted_share=1.0, warn_drifted_share=0.5), "warn", True),
        (10, DriftPolicy(max_drifted_share=1.0), "breach", False),
        (0, DriftPolicy(max_drifted_share=0.0, warn_drifted_share=0.0), "breach", False),
    ],
)
def test_decision_by_share(n_drifted, policy, decision, passed):
    columns = [_col(f"c{i}", "wasserstein", 0.5 if i < n_drifted else 0.01, 0.1, i < n_drifted) for i in range(10)]
    result = drift_result(_evidence(*columns), policy)
    assert (result.decision, result.passed) == (decision, passed)
    assert result.drifted_share == pytest.approx(n_drifted / 10)
    assert result.drifted_columns == [f"c{i}" for i in range(n_drifted)]
    share_checks = {c.name: c for c in result.checks if c.name.startswith("drifted_share")}
    assert share_checks["drifted_share:breach"].threshold == policy.max_drifted_share
    assert share_checks["drifted_share:warn"].threshold == policy.warn_drifted_share
    assert share_checks["drifted_share:breach"].passed is (decision != "breach")
    assert len(result.reasons) >= 1 + n_drifted


def test_reasons_name_column_method_score_threshold():
    result = drift_result(
        _evidence(_col("income", "ks", 0.0012, 0.05, True), _col("age", "wasserstein", 0.02, 0.1, False)),
        DriftPolicy(),
    )
    assert result.reasons == [
        "drifted share 0.5 (1/2 columns) >= max_drifted_share 0.3: breach",
        "column income drifted: ks score 0.0012 <= threshold 0.05",
    ]
    assert "| column:income | 0.0012 | > | 0.05 | NO |" in result.markdown()


def test_inconsistent_evidence_is_rejected():
    with pytest.raises(ValidationError, match="contradicts ks"):
        _col("income", "ks", 0.01, 0.05, False)
    with pytest.raises(ValidationError, match="contradicts wasserstein"):
        _col("income", "wasserstein", 0.5, 0.1, False)
    good = _col("income", "ks", 0.01, 0.05, True)
    with pytest.raises(ValidationError, match="drifted_count=0"):
        DriftEvidence(columns=[good], drifted_count=0, drifted_share=0.0, n_reference=1, n_current=1)
    with pytest.raises(ValidationError, match="more than once"):
        _evidence(good, good)
    with pytest.raises(ValidationError, match="no columns"):
        DriftEvidence(columns=[], drifted_count=0, drifted_share=0.0, n_reference=1, n_current=1)
    with pytest.raises(ValidationError, match="extra"):
        DriftEvidence(columns=[good], drifted_count=1, drifted_share=1.0, n_reference=1, n_current=1, typo_field=1)


# --- the demo generator's scenarios: same decisions as Evidently, scores within the bound ---------


@pytest.mark.parametrize("scenario", ["no drift", "covariate drift", "concept drift", "quality incident"])
def test_demo_scenarios_match_full_data_evidently(monkeypatch, tmp_path, scenario):
    """Every column through the large-data paths (cap lowered: grid and Sturges histograms), Evidently's preset
    on the same rows: identical verdicts, scores within each column's stated bound."""
    import tasks.drift.summary as drift_summary
    from benchmarks.drift_data import CATEGORICAL, NUMERIC, frame
    from tasks.drift.gate import DriftSpec

    monkeypatch.setattr(drift_summary, "DISTINCT_CAP", 100)
    day = pd.Timestamp("2026-01-01").date()
    reference = frame(4000, seed=1, day=day, scenario="no drift")
    current = frame(4000, seed=2, day=day, scenario=scenario)
    methods = {"credit_score": "psi", "annual_income": "psi", "region": "chisquare", "defaulted": "z"}
    specs = ([DriftSpec(name=c, kind="numeric", method=methods.get(c)) for c in NUMERIC]
             + [DriftSpec(name=c, kind="categorical", method=methods.get(c)) for c in CATEGORICAL])
    evidence = drift_evidence(reference, current, specs=specs, out_dir=tmp_path)
    assert evidence.report_rows == (4000, 4000)  # Evidently saw every row
    assert any(c.basis == "histogram grid" for c in evidence.columns)
    for c in evidence.columns:
        assert c.evidently_score is not None, c.column
        assert abs(c.score - c.evidently_score) <= c.error_bound + 1e-9, (c.column, c.score, c.evidently_score)
    drifted = {c.column for c in evidence.columns if c.drifted}
    assert drifted == {c.column for c in evidence.columns if c.evidently_drifted}  # Evidently's own verdicts
    if scenario == "no drift":
        assert not drifted
    else:
        assert drifted


def test_low_cardinality_numeric_column_with_a_small_reference(tmp_path):
    """Evidently's own choice for <= 1,000 reference rows tests a numeric column with <= 5 values as categories (z-test
    for two): its report runs that test too (the column declared categorical there) and agrees with the score."""
    rng = np.random.default_rng(0)
    reference, current = (pd.DataFrame({"flag": rng.integers(0, 2, 500).astype(float), "x1": rng.normal(size=500)})
                          for _ in range(2))
    evidence = drift_evidence(reference, current, numeric=["flag", "x1"], out_dir=tmp_path)
    cols = _by_column(evidence)
    assert (cols["flag"].method, cols["flag"].kind, cols["x1"].method) == ("z", "numeric", "ks")
    assert set(evidence.evidence) == {"html", "json"}
    for c in cols.values():
        assert c.evidently_score == pytest.approx(c.score, abs=1e-9) and c.evidently_drifted == c.drifted
