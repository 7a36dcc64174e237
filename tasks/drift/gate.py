"""Drift gate: Evidently's statistics per contract, at any size, and a pure decision over them.

:func:`drift_evidence` measures every declared column with Evidently's stattests
(method and threshold from the contract, else Evidently's own choice made on the full
data) through :mod:`tasks.drift.engine`, which reads partitions in parallel and keeps
memory flat; then it runs Evidently's DataDriftPreset with the same methods pinned on
the data (or a seeded sample of ``report_rows`` per side) to write the HTML report
and the JSON snapshot people open. :func:`drift_result` holds the evidence to a
:class:`~tasks.policy.DriftPolicy` (ok / warn / breach) without touching Evidently.

Evidently is imported only to build the report (and for stattests without a
mergeable form): its import costs ~7 s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from tasks.drift.results import (
    METHODS,
    ColumnDrift,
    ColumnQuality,
    DriftEvidence,
    DriftResult,
    DriftSpec,
    drift_rule,
)
from tasks.drift.source import DriftInputError
from tasks.evidence import Check, Comparison, EvidenceFile, evidence_file, held_to
from tasks.policy import DriftPolicy

__all__ = ["ColumnDrift", "ColumnQuality", "DriftEvidence", "DriftInputError", "DriftResult", "DriftSpec",
           "HTML_NAME", "METHODS", "RESULT_NAME", "SNAPSHOT_NAME", "drift_evidence", "drift_result", "drift_rule",
           "evidently_wanted", "specs_for"]

# The comparison under which a column does NOT drift, i.e. how its Check passes.
_PASS_WHEN: dict[str, Comparison] = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}

HTML_NAME = "drift_report.html"
SNAPSHOT_NAME = "drift_snapshot.json"
RESULT_NAME = "drift.json"  # the DriftResult: measurements and decision, beside Evidently's files


def _column_check(c: ColumnDrift) -> Check:
    name = f"column:{c.column}"
    rule = c.drift_when
    if c.status == "no data":
        return Check(name=name, value="no data", threshold=None, comparison="info", passed=True)
    if rule is None:
        # Unknown method: keep the recorded verdict, do not invent a direction.
        return Check(name=name, value=c.score, threshold=c.threshold, comparison="info", passed=not c.drifted)
    return held_to(name, c.score, _PASS_WHEN[rule], c.threshold)


def _quality_checks(quality: list[ColumnQuality], policy: DriftPolicy) -> list[Check]:
    checks = []
    for q in quality:
        checks.append(held_to(f"quality:{q.column}:null_share_increase", round(q.null_share_increase, 6), "<",
                              policy.max_null_share_increase))
        if q.unseen_share is not None:
            checks.append(held_to(f"quality:{q.column}:unseen_share", q.unseen_share, "<", policy.max_unseen_share))
        if q.out_of_range_share is not None:
            checks.append(held_to(f"quality:{q.column}:out_of_range_share", q.out_of_range_share, "<",
                                  policy.max_out_of_range_share))
    return checks


def drift_result(evidence: DriftEvidence, policy: DriftPolicy) -> DriftResult:
    """Decide: breach at ``share >= max_drifted_share`` or on any quality limit, warn at ``>= warn_drifted_share``.

    One Check per column (passing when the column does not drift, in the method's own
    direction), one per share threshold and one per quality signal. ``passed`` is False
    only on a breach when ``policy.block_on_breach`` is set.
    """
    share = evidence.drifted_share
    n = len(evidence.columns)
    checks = [_column_check(c) for c in evidence.columns]
    breach_check = held_to("drifted_share:breach", share, "<", policy.max_drifted_share)
    warn_check = held_to("drifted_share:warn", share, "<", policy.warn_drifted_share)
    quality = _quality_checks(evidence.quality, policy)
    checks += [breach_check, warn_check, *quality]
    quality_failed = [c for c in quality if not c.passed]

    if not breach_check.passed:
        decision, bound, limit = "breach", "max_drifted_share", policy.max_drifted_share
    elif not warn_check.passed:
        decision, bound, limit = "warn", "warn_drifted_share", policy.warn_drifted_share
    else:
        decision, bound, limit = "ok", "warn_drifted_share", policy.warn_drifted_share
    op = "<" if decision == "ok" else ">="
    reasons = [f"drifted share {share:.4g} ({evidence.drifted_count}/{n} columns) {op} {bound} {limit:.4g}: {decision}"]
    if quality_failed:
        decision = "breach"
        reasons.append(f"data quality breach: {'; '.join(c.describe() for c in quality_failed)}")
    reasons += [c.describe() for c in evidence.drifted_columns]
    reasons += [c.describe() for c in evidence.columns if c.status == "no data"]
    if decision == "breach" and not policy.block_on_breach:
        reasons.append("block_on_breach is off: the breach is recorded but does not block")

    return DriftResult(
        passed=not (decision == "breach" and policy.block_on_breach),
        decision=decision,
        reasons=reasons,
        checks=checks,
        evidence=dict(evidence.evidence),
        columns=list(evidence.columns),
        quality=list(evidence.quality),
        drifted_columns=[c.column for c in evidence.drifted_columns],
        drifted_count=evidence.drifted_count,
        drifted_share=share,
        n_reference=evidence.n_reference,
        n_current=evidence.n_current,
        accuracy=evidence.accuracy,
    )


def evidently_wanted(policy: DriftPolicy) -> bool | Callable[[DriftEvidence], bool]:
    """The policy's ``evidently_report`` as :func:`drift_evidence`'s ``evidently``: always, or only where the
    decision on lockgate's own measurements is warn or breach."""
    if policy.evidently_report == "always":
        return True
    return lambda measured: drift_result(measured, policy).decision != "ok"


def specs_for(contract, prediction_column: str | None = None) -> list[DriftSpec]:
    """The contract's drift settings per feature (numeric, then categorical), then the prediction column."""
    specs = []
    for kind, columns in (("numeric", contract.numeric_features), ("categorical", contract.categorical_features)):
        for col in columns:
            setting = contract.drift_setting(col)
            specs.append(DriftSpec(name=col, kind=kind, method=setting.method if setting else None,
                                   threshold=setting.threshold if setting else None))
    if prediction_column:
        specs.append(DriftSpec(name=prediction_column, kind="numeric", role="prediction"))
    return specs


def _specs(numeric, categorical, prediction_column, methods, thresholds) -> list[DriftSpec]:
    numeric = list(numeric) + ([prediction_column] if prediction_column else [])
    declared = numeric + list(categorical)
    if not declared:
        raise DriftInputError("drift needs at least one numeric or categorical column")
    dupes = sorted({c for c in declared if declared.count(c) > 1})
    if dupes:
        raise DriftInputError(f"columns declared more than once (numeric/categorical/prediction): {dupes}")
    methods, thresholds = dict(methods or {}), dict(thresholds or {})
    return [DriftSpec(name=c, kind="numeric" if c in numeric else "categorical",
                      role="prediction" if c == prediction_column else "feature",
                      method=methods.get(c), threshold=thresholds.get(c)) for c in declared]


def _write_text(path: Path, text: str) -> EvidenceFile:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # left only when the write or the rename failed
    return evidence_file(path)


# what _evidently_report imports: the lifecycle imports them early, while the compile report's children run
EVIDENTLY_MODULES = ("evidently", "evidently.presets")


def _evidently_report(columns: list[ColumnDrift], reference: pd.DataFrame, current: pd.DataFrame, out_dir: Path,
                      drift_share: float) -> tuple[dict[str, EvidenceFile], dict[str, tuple[float, bool]], str]:
    """Evidently's DataDriftPreset with every measured column's method and threshold pinned."""
    from evidently import DataDefinition, Dataset, Report
    from evidently import __version__ as evidently_version
    from evidently.presets import DataDriftPreset

    from tasks.drift.plotly_paths import memoise_plotly_paths
    from tasks.drift.value_drift_widgets import without_value_drift_widgets

    memoise_plotly_paths()
    shown = [c for c in columns if c.status == "measured"
             and reference[c.column].notna().any() and current[c.column].notna().any()]
    # Evidently's own choice for a reference of <= 1,000 rows tests a numeric column with <= 5 distinct values as
    # categories (z-test or chi-square), but refuses those methods pinned on a numerical column: the report declares
    # such a column categorical, which is how the test treats it.
    kinds = {c.column: c.kind if c.kind in METHODS[c.method].kinds else METHODS[c.method].kinds[0] for c in shown}
    numeric = [c.column for c in shown if kinds[c.column] == "numeric"]
    categorical = [c.column for c in shown if kinds[c.column] == "categorical"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    names = numeric + categorical
    ref_ds = Dataset.from_pandas(reference[names], data_definition=definition)
    cur_ds = Dataset.from_pandas(current[names], data_definition=definition)
    preset = DataDriftPreset(columns=names, drift_share=drift_share,
                             per_column_method={c.column: c.method for c in shown},
                             per_column_threshold={c.column: c.threshold for c in shown})
    # include_tests: each ValueDrift carries Evidently's drift verdict as a test status. Its per-column widget is
    # not drawn: the report shows the preset's table, which draws the same plots (tasks/drift/value_drift_widgets.py).
    with without_value_drift_widgets():
        snapshot = Report([preset], include_tests=True, tags=["lockgate", "drift"]).run(
            current_data=cur_ds, reference_data=ref_ds, name="lockgate drift")
    d = snapshot.dict()
    verdicts = {t["metric_config"]["metric_id"]: str(getattr(t["status"], "value", t["status"])) == "FAIL"
                for t in d["tests"] if t["id"] == "drift"}
    scores = {m["config"]["column"]: (float(m["value"]), verdicts.get(m["id"])) for m in d["metrics"]
              if m["config"]["type"] == "evidently:metric_v2:ValueDrift"}
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "html": _write_text(out_dir / HTML_NAME, snapshot.get_html_str(as_iframe=False)),
        # The full SnapshotModel (what Snapshot.load and the Evidently UI's workspace read),
        # not Snapshot.save_json, which writes a metrics-only dict that cannot be loaded back.
        "json": _write_text(out_dir / SNAPSHOT_NAME, snapshot.dumps()),
    }
    return files, scores, f"evidently {evidently_version}"


def drift_evidence(
    reference: pd.DataFrame | str | Path,
    current: pd.DataFrame | str | Path,
    *,
    numeric: list[str] = (),
    categorical: list[str] = (),
    out_dir: Path,
    prediction_column: str | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    specs: list[DriftSpec] | None = None,
    drift_share: float = 0.5,
    report_rows: int = 20_000,
    sample_rows: int = 1_000_000,
    progress=None,
    evidently: bool | Callable[[DriftEvidence], bool] = True,
) -> DriftEvidence:
    """Measure drift per column and write Evidently's report.

    Args:
      reference: reference rows (the training snapshot): a frame, a parquet file, a
        partitioned parquet folder or a pyarrow filesystem URI. Only declared columns are read.
      current: current rows (the batch, golden or shadow data), same forms.
      numeric, categorical: feature columns by kind (ignored when ``specs`` is given).
      out_dir: folder for ``drift_report.html`` and ``drift_snapshot.json`` (created if needed).
      prediction_column: the model's score column, measured as a numeric column.
      methods, thresholds: per-column Evidently stattest names and thresholds; missing
        columns get Evidently's own choice (made on the full data) and its default threshold.
      specs: the columns to measure, with kind, role, method and threshold (see :func:`specs_for`).
      drift_share: Evidently's dataset-level share, only for the verdict shown in its report.
      report_rows: rows per side in Evidently's report (a seeded sample above that).
      sample_rows: rows per side for stattests without a mergeable form.
      progress: optional ``(phase, partitions done, partitions total, rows done)`` callback.
      evidently: whether to write Evidently's report after measuring, or a function of the
        measurements that decides (the batch monitor's ``evidently_report: warn_or_breach``).
        Without the report, ``evidence`` is empty and the measurements are the evidence.

    Raises:
      DriftInputError: a declared column is missing from either side, declared twice, not
        numeric where declared numeric, of another type family in the two sides; a side has
        no rows or cannot be read; a method does not apply. Checked before Evidently runs.
    """
    from tasks.drift.engine import error_bound_note, measure

    specs = specs or _specs(numeric, categorical, prediction_column, methods, thresholds)
    m = measure(reference, current, specs, report_rows=report_rows, sample_rows=sample_rows, progress=progress)
    count = sum(c.drifted for c in m.columns)
    measured = DriftEvidence(columns=m.columns, drifted_count=count, drifted_share=count / len(m.columns),
                             n_reference=m.n_reference, n_current=m.n_current, quality=m.quality,
                             engine="lockgate summaries", accuracy=error_bound_note(m.columns), seconds=m.seconds)
    if not (evidently(measured) if callable(evidently) else evidently):
        return measured
    files, scores, engine = _evidently_report(m.columns, m.report_reference, m.report_current, Path(out_dir),
                                              drift_share)
    columns = [c.model_copy(update={"evidently_score": scores[c.column][0], "evidently_drifted": scores[c.column][1]})
               if c.column in scores else c for c in m.columns]
    return measured.model_copy(update={"columns": columns, "evidence": files,
                                       "engine": f"lockgate summaries + {engine}",
                                       "report_rows": (len(m.report_reference), len(m.report_current))})

