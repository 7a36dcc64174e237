"""Drift gate: Evidently's DataDriftPreset as the engine of record, a pure decision over it.

:func:`drift_evidence` runs Evidently on the declared columns, saves its HTML report
and its JSON snapshot, and reads back per column the method Evidently chose, the
score, the threshold and Evidently's own verdict. :func:`drift_result` holds that
evidence to a :class:`~tasks.policy.DriftPolicy` (ok / warn / breach) without
touching Evidently, so it is testable on hand-built evidence.

Evidently is imported inside :func:`drift_evidence` only: its import costs ~7 s and
the decision, the models and the method table do not need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.evidence import Check, Comparison, EvidenceFile, GateResult, evidence_file, held_to
from tasks.policy import DriftPolicy

DriftWhen = Literal["<", "<=", ">", ">="]

# Evidently 0.7 stattests usable on numeric / categorical columns: registry name ->
# (display name Evidently records in the ValueDrift config when it chose the method,
#  the comparison under which Evidently flags drift). Read from
# evidently/legacy/calculations/stattests/*.py (0.7.23); tests check this table
# against Evidently's registry and against the stattests' own verdicts at the
# threshold. Note ks and cramer_von_mises flag p <= threshold, the other p-value
# tests p < threshold; energy distance flags d > threshold, the other distances d >= threshold.
_METHODS: dict[str, tuple[str, DriftWhen]] = {
    "anderson": ("Anderson-Darling", "<"),
    "chisquare": ("chi-square p_value", "<"),
    "cramer_von_mises": ("Cramer-von Mises", "<="),
    "ed": ("Energy-distance", ">"),
    "empirical_mmd": ("empirical_mmd", "<"),
    "es": ("Epps-Singleton", "<"),
    "fisher_exact": ("Fisher's Exact test", "<"),
    "g_test": ("g_test", "<"),
    "hellinger": ("Hellinger distance", ">="),
    "jensenshannon": ("Jensen-Shannon distance", ">="),
    "kl_div": ("Kullback-Leibler divergence", ">="),
    "ks": ("K-S p_value", "<="),
    "mannw": ("Mann-Whitney U-rank test", "<"),
    "psi": ("PSI", ">="),
    "t_test": ("t_test", "<"),
    "TVD": ("Total-Variation-Distance", "<"),  # permutation-test p-value, despite the name
    "wasserstein": ("Wasserstein distance (normed)", ">="),
    "z": ("Z-test p_value", "<"),
}
_BY_DISPLAY_NAME = {display: name for name, (display, _) in _METHODS.items()}
# The comparison under which a column does NOT drift, i.e. how its Check passes.
_PASS_WHEN: dict[DriftWhen, Comparison] = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}

HTML_NAME = "drift_report.html"
SNAPSHOT_NAME = "drift_snapshot.json"


def drift_rule(method: str) -> DriftWhen | None:
    """How Evidently compares ``score`` with ``threshold`` to flag drift for ``method``.

    ``"<"``/``"<="``: a p-value test (drift when the p-value is small); ``">"``/``">="``:
    a distance (drift when it is large). None for a method this table does not know.
    """
    entry = _METHODS.get(method)
    return entry[1] if entry else None


def _apply(op: str, a: float, b: float) -> bool:
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


class ColumnDrift(BaseModel):
    """Evidently's drift measurement for one column."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Column name.")
    kind: Literal["numeric", "categorical"] = Field(description="Column type declared to Evidently.")
    role: Literal["feature", "prediction"] = Field("feature", description="Model input, or the model's score.")
    method: str = Field(description="Evidently stattest name, e.g. 'wasserstein', 'ks', 'jensenshannon'.")
    method_label: str = Field("", description="Evidently's display name of the method, as shown in its report.")
    score: float = Field(description="Drift score: a p-value or a distance, depending on the method.")
    threshold: float = Field(description="Threshold Evidently held the score to.")
    drifted: bool = Field(description="Evidently's verdict for this column.")

    @model_validator(mode="after")
    def _verdict_matches_method(self) -> ColumnDrift:
        rule = drift_rule(self.method)
        if rule is not None and not math.isnan(self.score) and _apply(rule, self.score, self.threshold) != self.drifted:
            raise ValueError(
                f"column {self.column!r}: drifted={self.drifted} contradicts {self.method} "
                f"(drift when score {rule} threshold) with score {self.score} and threshold {self.threshold}"
            )
        return self

    @property
    def drift_when(self) -> DriftWhen | None:
        return drift_rule(self.method)

    def describe(self) -> str:
        rule = self.drift_when or "vs"
        what = "prediction" if self.role == "prediction" else "column"
        verdict = "drifted" if self.drifted else "no drift"
        measured = f"{self.method} score {self.score:.4g} {rule} threshold {self.threshold:.4g}"
        return f"{what} {self.column} {verdict}: {measured}"


class DriftEvidence(BaseModel):
    """What Evidently measured for one reference/current pair, and where its reports are."""

    model_config = ConfigDict(extra="forbid")

    columns: list[ColumnDrift] = Field(description="Per-column drift: numeric, then prediction, then categorical.")
    drifted_count: int = Field(ge=0, description="Number of drifted columns (Evidently's DriftedColumnsCount).")
    drifted_share: float = Field(ge=0, le=1, description="Share of drifted columns (Evidently's DriftedColumnsCount).")
    n_reference: int = Field(ge=0, description="Rows in the reference data.")
    n_current: int = Field(ge=0, description="Rows in the current data.")
    evidence: dict[str, EvidenceFile] = Field(
        default_factory=dict, description="'html': Evidently report; 'json': Evidently snapshot (Snapshot.load-able)."
    )
    engine: str = Field("evidently", description="Engine and version that produced the measurements.")

    @model_validator(mode="after")
    def _consistent(self) -> DriftEvidence:
        if not self.columns:
            raise ValueError("drift evidence has no columns")
        names = [c.column for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"drift evidence lists columns more than once: {dupes}")
        flagged = sum(c.drifted for c in self.columns)
        if flagged != self.drifted_count:
            raise ValueError(f"drifted_count={self.drifted_count} but {flagged} columns are marked drifted")
        if not math.isclose(self.drifted_share, flagged / len(self.columns), abs_tol=1e-9):
            raise ValueError(f"drifted_share={self.drifted_share} but {flagged}/{len(self.columns)} columns drifted")
        return self

    @property
    def drifted_columns(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]


class DriftResult(GateResult):
    """The drift gate's decision: ok / warn / breach on the share of drifted columns."""

    gate: Literal["drift"] = "drift"
    decision: Literal["ok", "warn", "breach"]
    columns: list[ColumnDrift] = Field(description="Per-column drift as measured by Evidently.")
    drifted_columns: list[str] = Field(description="Names of the drifted columns.")
    drifted_count: int = Field(description="Number of drifted columns.")
    drifted_share: float = Field(description="Share of drifted columns, held to the policy's two thresholds.")
    n_reference: int = Field(description="Rows in the reference data.")
    n_current: int = Field(description="Rows in the current data.")


def _column_check(c: ColumnDrift) -> Check:
    name = f"column:{c.column}"
    rule = c.drift_when
    if rule is None:
        # Unknown method: keep Evidently's verdict, do not invent a direction.
        return Check(name=name, value=c.score, threshold=c.threshold, comparison="info", passed=not c.drifted)
    return held_to(name, c.score, _PASS_WHEN[rule], c.threshold)


def drift_result(evidence: DriftEvidence, policy: DriftPolicy) -> DriftResult:
    """Decide on drift evidence: breach at ``share >= max_drifted_share``, warn at ``>= warn_drifted_share``.

    One Check per column (passing when Evidently finds no drift, in the method's own
    direction) and one per share threshold. ``passed`` is False only on a breach
    when ``policy.block_on_breach`` is set.
    """
    share = evidence.drifted_share
    n = len(evidence.columns)
    checks = [_column_check(c) for c in evidence.columns]
    breach_check = held_to("drifted_share:breach", share, "<", policy.max_drifted_share)
    warn_check = held_to("drifted_share:warn", share, "<", policy.warn_drifted_share)
    checks += [breach_check, warn_check]

    if not breach_check.passed:
        decision, bound, limit = "breach", "max_drifted_share", policy.max_drifted_share
    elif not warn_check.passed:
        decision, bound, limit = "warn", "warn_drifted_share", policy.warn_drifted_share
    else:
        decision, bound, limit = "ok", "warn_drifted_share", policy.warn_drifted_share
    op = "<" if decision == "ok" else ">="
    reasons = [f"drifted share {share:.4g} ({evidence.drifted_count}/{n} columns) {op} {bound} {limit:.4g}: {decision}"]
    reasons += [c.describe() for c in evidence.drifted_columns]
    if decision == "breach" and not policy.block_on_breach:
        reasons.append("block_on_breach is off: the breach is recorded but does not block")

    return DriftResult(
        passed=not (decision == "breach" and policy.block_on_breach),
        decision=decision,
        reasons=reasons,
        checks=checks,
        evidence=dict(evidence.evidence),
        columns=list(evidence.columns),
        drifted_columns=[c.column for c in evidence.drifted_columns],
        drifted_count=evidence.drifted_count,
        drifted_share=share,
        n_reference=evidence.n_reference,
        n_current=evidence.n_current,
    )


def _check_inputs(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
    declared = numeric + categorical
    if not declared:
        raise ValueError("drift needs at least one numeric or categorical column")
    dupes = sorted({c for c in declared if declared.count(c) > 1})
    if dupes:
        raise ValueError(f"columns declared more than once (numeric/categorical/prediction): {dupes}")
    for label, frame in (("reference", reference), ("current", current)):
        missing = [c for c in declared if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} data is missing column(s) {missing} (has {list(frame.columns)})")
        if len(frame) == 0:
            raise ValueError(f"{label} data has no rows")
    for col in numeric:
        for label, frame in (("reference", reference), ("current", current)):
            dtype = frame[col].dtype
            if not pd.api.types.is_numeric_dtype(dtype):
                raise ValueError(f"column {col!r} is declared numeric but has dtype {dtype} in {label} data")
    for col in declared:
        for label, frame in (("reference", reference), ("current", current)):
            if not frame[col].notna().any():
                raise ValueError(f"column {col!r} has no non-null values in {label} data")


def _write_text(path: Path, text: str) -> EvidenceFile:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return evidence_file(path)


def _status(value: object) -> str:
    return str(getattr(value, "value", value))


def _columns_from_snapshot(
    snapshot_dict: dict, numeric: list[str], categorical: list[str], prediction_column: str | None
) -> tuple[list[ColumnDrift], int, float]:
    """Per-column drift and the dataset counts from ``Snapshot.dict()`` of a DataDriftPreset run."""
    value_drift: dict[str, dict] = {}
    counts: dict | None = None
    for m in snapshot_dict["metrics"]:
        kind = m["config"]["type"]
        if kind == "evidently:metric_v2:ValueDrift":
            value_drift[m["config"]["column"]] = m
        elif kind == "evidently:metric_v2:DriftedColumnsCount":
            counts = m["value"]
    verdicts = {
        t["metric_config"]["metric_id"]: _status(t["status"]) for t in snapshot_dict["tests"] if t["id"] == "drift"
    }
    if counts is None:
        raise RuntimeError("Evidently snapshot has no DriftedColumnsCount result")

    columns = []
    for col in numeric + categorical:
        m = value_drift.get(col)
        if m is None:
            raise RuntimeError(f"Evidently snapshot has no ValueDrift result for column {col!r}")
        status = verdicts.get(m["id"])
        if status not in ("SUCCESS", "FAIL"):
            raise RuntimeError(f"Evidently snapshot has no drift verdict for column {col!r} (got {status!r})")
        recorded = str(m["config"]["method"])
        method = recorded if recorded in _METHODS else _BY_DISPLAY_NAME.get(recorded, recorded)
        columns.append(
            ColumnDrift(
                column=col,
                kind="numeric" if col in numeric else "categorical",
                role="prediction" if col == prediction_column else "feature",
                method=method,
                method_label=_METHODS[method][0] if method in _METHODS else recorded,
                score=float(m["value"]),
                threshold=float(m["config"]["threshold"]),
                drifted=status == "FAIL",
            )
        )
    return columns, round(float(counts["count"])), float(counts["share"])


def drift_evidence(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    out_dir: Path,
    prediction_column: str | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
) -> DriftEvidence:
    """Run Evidently's DataDriftPreset on the declared columns and save its reports.

    Args:
      reference: reference rows (the training snapshot); only the declared columns are read.
      current: current rows (the batch, golden or shadow data); same declared columns.
      numeric: numeric feature columns (declared to Evidently, so types are not guessed).
      categorical: categorical feature columns.
      out_dir: folder for ``drift_report.html`` and ``drift_snapshot.json`` (created if needed).
      prediction_column: the model's score column; drift-tested as a numeric column and
        counted in the drifted share like any other column.
      methods: optional per-column Evidently stattest names (e.g. ``{"age": "ks"}``);
        default is Evidently's own choice per column (KS / chi-square / Z with <= 1,000
        reference rows, normed Wasserstein / Jensen-Shannon above).
      thresholds: optional per-column thresholds; default each method's own.
      drift_share: Evidently's dataset-level drift share, only used for the verdict
        shown in the HTML report; pass ``policy.max_drifted_share`` so the two agree.

    Raises:
      ValueError: a declared column is missing from either frame, declared twice, not
        numeric where declared numeric, or all null; or a frame has no rows. Checked
        before Evidently runs.
    """
    numeric = list(numeric)
    categorical = list(categorical)
    if prediction_column is not None:
        numeric = numeric + [prediction_column]
    _check_inputs(reference, current, numeric, categorical)

    from evidently import DataDefinition, Dataset, Report
    from evidently import __version__ as evidently_version
    from evidently.presets import DataDriftPreset

    declared = numeric + categorical
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    # Column subsets are new frames: Evidently never sees (or mutates) the caller's data.
    ref_ds = Dataset.from_pandas(reference[declared], data_definition=definition)
    cur_ds = Dataset.from_pandas(current[declared], data_definition=definition)
    preset = DataDriftPreset(
        columns=declared,
        drift_share=drift_share,
        per_column_method=dict(methods) if methods else None,
        per_column_threshold=dict(thresholds) if thresholds else None,
    )
    # include_tests: each ValueDrift carries Evidently's drift verdict as a test status.
    report = Report([preset], include_tests=True, tags=["lockgate", "drift"])
    snapshot = report.run(current_data=cur_ds, reference_data=ref_ds, name="lockgate drift")

    columns, count, share = _columns_from_snapshot(snapshot.dict(), numeric, categorical, prediction_column)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "html": _write_text(out_dir / HTML_NAME, snapshot.get_html_str(as_iframe=False)),
        # The full SnapshotModel (what Snapshot.load and the Evidently UI's workspace read),
        # not Snapshot.save_json, which writes a metrics-only dict that cannot be loaded back.
        "json": _write_text(out_dir / SNAPSHOT_NAME, snapshot.dumps()),
    }
    return DriftEvidence(
        columns=columns,
        drifted_count=count,
        drifted_share=share,
        n_reference=len(reference),
        n_current=len(current),
        evidence=files,
        engine=f"evidently {evidently_version}",
    )
