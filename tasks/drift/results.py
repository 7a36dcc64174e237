"""Typed drift evidence: Evidently's method table, per-column drift and data quality, the result."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.evidence import EvidenceFile, GateResult

DriftWhen = Literal["<", "<=", ">", ">="]
Kind = Literal["numeric", "categorical"]


class Method(NamedTuple):
    label: str  # display name Evidently records when it chose the method
    drift_when: DriftWhen  # how Evidently compares score with threshold to flag drift
    default_threshold: float
    kinds: tuple[Kind, ...]


_BOTH: tuple[Kind, ...] = ("numeric", "categorical")
# Evidently 0.7.23 stattests for tabular columns (evidently/legacy/calculations/stattests):
# tests check labels, default thresholds and kinds against Evidently's registry, and the
# direction against each stattest's own verdict at its threshold. ks and cramer_von_mises
# flag p <= threshold, the other p-value tests p < threshold; energy distance flags
# d > threshold, the other distances d >= threshold.
METHODS: dict[str, Method] = {
    "anderson": Method("Anderson-Darling", "<", 0.1, ("numeric",)),
    "chisquare": Method("chi-square p_value", "<", 0.05, ("categorical",)),
    "cramer_von_mises": Method("Cramer-von Mises", "<=", 0.1, ("numeric",)),
    "ed": Method("Energy-distance", ">", 0.1, ("numeric",)),
    "empirical_mmd": Method("empirical_mmd", "<", 0.1, ("numeric",)),
    "es": Method("Epps-Singleton", "<", 0.05, ("numeric",)),
    "fisher_exact": Method("Fisher's Exact test", "<", 0.1, ("categorical",)),
    "g_test": Method("g_test", "<", 0.1, ("categorical",)),
    "hellinger": Method("Hellinger distance", ">=", 0.1, _BOTH),
    "jensenshannon": Method("Jensen-Shannon distance", ">=", 0.1, _BOTH),
    "kl_div": Method("Kullback-Leibler divergence", ">=", 0.1, _BOTH),
    "ks": Method("K-S p_value", "<=", 0.05, ("numeric",)),
    "mannw": Method("Mann-Whitney U-rank test", "<", 0.05, ("numeric",)),
    "psi": Method("PSI", ">=", 0.1, _BOTH),
    "t_test": Method("t_test", "<", 0.05, ("numeric",)),
    "TVD": Method("Total-Variation-Distance", "<", 0.1, ("categorical",)),  # a permutation p-value, despite the name
    "wasserstein": Method("Wasserstein distance (normed)", ">=", 0.1, ("numeric",)),
    "z": Method("Z-test p_value", "<", 0.05, ("categorical",)),
}


def drift_rule(method: str) -> DriftWhen | None:
    """How Evidently compares ``score`` with ``threshold`` to flag drift for ``method``.

    ``"<"``/``"<="``: a p-value test (drift when the p-value is small); ``">"``/``">="``:
    a distance (drift when it is large). None for a method this table does not know.
    """
    entry = METHODS.get(method)
    return entry.drift_when if entry else None


def check_method(method: str, kind: str, column: str) -> None:
    """Refuse a method Evidently does not have, or does not allow for this column's kind."""
    from tasks.drift.source import DriftInputError

    if method not in METHODS:
        raise DriftInputError(f"column {column!r}: unknown drift method {method!r} (known: {sorted(METHODS)})")
    if kind not in METHODS[method].kinds:
        raise DriftInputError(f"column {column!r}: drift method {method!r} does not apply to {kind} columns "
                              f"(it takes {', '.join(METHODS[method].kinds)})")


def _apply(op: str, a: float, b: float) -> bool:
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


class DriftSpec(BaseModel):
    """What to measure for one column: its kind, role, and the contract's method and threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Kind
    role: Literal["feature", "prediction"] = "feature"
    method: str | None = Field(None, description="Evidently stattest; None = Evidently's own choice on the full data.")
    threshold: float | None = Field(None, description="None = the method's default threshold.")


class ColumnDrift(BaseModel):
    """The drift measurement for one column."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Column name.")
    kind: Kind = Field(description="Column type declared to Evidently.")
    role: Literal["feature", "prediction"] = Field("feature", description="Model input, or the model's score.")
    method: str = Field(description="Evidently stattest name, e.g. 'wasserstein', 'ks', 'jensenshannon'.")
    method_label: str = Field("", description="Evidently's display name of the method, as shown in its report.")
    score: float = Field(description="Drift score: a p-value or a distance, depending on the method.")
    threshold: float = Field(description="Threshold the score is held to.")
    drifted: bool = Field(description="Verdict for this column, in the method's own direction.")
    status: Literal["measured", "no data"] = Field("measured", description="'no data': a side had no finite values.")
    exact: bool = Field(True, description="Whether the score is computed on all values exactly.")
    error_bound: float = Field(0.0, ge=0, description="Largest possible |score - full-data Evidently score|.")
    basis: str = Field("", description="What the score was computed from (value counts, histogram grid, a sample).")
    n_reference: int | None = Field(None, description="Finite reference values behind the score.")
    n_current: int | None = Field(None, description="Finite current values behind the score.")
    evidently_score: float | None = Field(None, description="Evidently's score in the HTML report's data.")
    evidently_drifted: bool | None = Field(None, description="Evidently's verdict in the HTML report's data.")

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
        what = "prediction" if self.role == "prediction" else "column"
        if self.status == "no data":
            return f"{what} {self.column} not measured: {self.basis}"
        rule = self.drift_when or "vs"
        verdict = "drifted" if self.drifted else "no drift"
        bound = f" (±{self.error_bound:.1g})" if self.error_bound else ""
        measured = f"{self.method} score {self.score:.4g}{bound} {rule} threshold {self.threshold:.4g}"
        return f"{what} {self.column} {verdict}: {measured}"


class ColumnQuality(BaseModel):
    """Data-quality signals of one column beside its drift."""

    model_config = ConfigDict(extra="forbid")

    column: str
    null_share_reference: float = Field(description="Share of null, NaN or infinite values in the reference.")
    null_share_current: float = Field(description="Share of null, NaN or infinite values in the current data.")
    unseen_share: float | None = Field(None, description="Categorical: share of current rows with a value the "
                                                         "reference never had.")
    unseen_examples: list[str] = Field(default_factory=list, description="The most frequent unseen values (<= 5).")
    out_of_range_share: float | None = Field(None, description="Numeric: share of current rows outside the "
                                                               "reference's [min, max].")
    reference_range: tuple[float, float] | None = Field(None, description="Numeric: the reference's [min, max].")

    @property
    def null_share_increase(self) -> float:
        return self.null_share_current - self.null_share_reference


class DriftEvidence(BaseModel):
    """What was measured for one reference/current pair, and where the reports are."""

    model_config = ConfigDict(extra="forbid")

    columns: list[ColumnDrift] = Field(description="Per-column drift, in the declared order.")
    drifted_count: int = Field(ge=0, description="Number of drifted columns.")
    drifted_share: float = Field(ge=0, le=1, description="Share of drifted columns.")
    n_reference: int = Field(ge=0, description="Rows in the reference data.")
    n_current: int = Field(ge=0, description="Rows in the current data.")
    quality: list[ColumnQuality] = Field(default_factory=list, description="Data-quality signals per column.")
    evidence: dict[str, EvidenceFile] = Field(
        default_factory=dict, description="'html': Evidently report; 'json': Evidently snapshot (Snapshot.load-able)."
    )
    engine: str = Field("evidently", description="Engines and versions that produced the measurements.")
    report_rows: tuple[int, int] | None = Field(None, description="Reference/current rows in Evidently's report.")
    accuracy: str = Field("", description="How exact the scores are (exact, or which are bounded and by how much).")
    seconds: float | None = Field(None, description="Wall time of the measurement.")

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
    """The drift gate's decision: ok / warn / breach on the share of drifted columns and data quality."""

    gate: Literal["drift"] = "drift"
    decision: Literal["ok", "warn", "breach"]
    columns: list[ColumnDrift] = Field(description="Per-column drift measurements.")
    quality: list[ColumnQuality] = Field(default_factory=list, description="Data-quality signals per column.")
    drifted_columns: list[str] = Field(description="Names of the drifted columns.")
    drifted_count: int = Field(description="Number of drifted columns.")
    drifted_share: float = Field(description="Share of drifted columns, held to the policy's two thresholds.")
    n_reference: int = Field(description="Rows in the reference data.")
    n_current: int = Field(description="Rows in the current data.")
    accuracy: str = Field("", description="How exact the scores are.")
    dataset: str | None = Field(None, description="The current data measured (path as given), for provenance.")

    def table(self) -> list[dict]:
        """One row per column: method, score, threshold, verdict and quality signals (Prefect table artifact, CLI)."""
        quality = {q.column: q for q in self.quality}

        def num(v: float | None) -> float | None:
            return None if v is None or math.isnan(v) else round(float(v), 6)

        rows = []
        for c in self.columns:
            q = quality.get(c.column)
            verdict = "no data" if c.status == "no data" else "DRIFT" if c.drifted else "ok"
            rows.append({
                "column": c.column, "role": c.role, "method": c.method, "score": num(c.score),
                "drift if": f"{c.drift_when or '?'} {num(c.threshold)}", "threshold": num(c.threshold),
                "verdict": verdict, "accuracy": "exact" if c.exact else (f"±{c.error_bound:.1g}" if c.error_bound
                                                                         else c.basis),
                "null share": num(q.null_share_current) if q else None,
                "unseen share": num(q.unseen_share) if q else None,
                "out of range": num(q.out_of_range_share) if q else None,
            })
        return rows
