"""Canary gate: candidate vs champion on the labeled golden set, for classifiers and regressors.

Both models are scored through their exported, hash-verified artifacts (see
tasks/registration/inference.py); this module only holds the golden-set metrics and the decision.
The task (model config ``task``) picks the metrics: :class:`ClassifierMetrics` with the
AUC floor, or :class:`RegressorMetrics` with the R² floor (and an optional RMSE ceiling),
and the policy's margins for that task.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.canary.power import GoldenPower, golden_power, power_reasons
from tasks.evidence import Check, GateResult, held_to
from tasks.policy import CanaryPolicy

Task = Literal["classification", "regression"]


class ClassifierMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    auc: float
    log_loss: float
    brier: float
    accuracy: float
    precision: float
    recall: float
    ece: float
    positive_rate: float


def canary_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> ClassifierMetrics:
    """Classification metrics of probabilities ``proba`` (f[n]) against labels ``y_true`` ({0,1}[n])."""
    from tasks.canary.stats import CLASSIFICATION_METRICS

    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    values = {name: float(m.fn(y, p, threshold) if m.uses_threshold else m.fn(y, p))
              for name, m in CLASSIFICATION_METRICS.items()}
    return ClassifierMetrics(n=len(y), positive_rate=float(np.mean(p >= threshold)), **values)


class RegressorMetrics(BaseModel):
    """Point metrics of a regressor's predictions against the golden targets."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="Golden rows.")
    rmse: float = Field(description="Root mean squared error (label units).")
    mae: float = Field(description="Mean absolute error (label units).")
    r2: float = Field(description="1 - SSE / SST: share of the targets' variance explained (scale-free; <= 1).")
    bias: float = Field(description="Mean of prediction - label (label units).")


def regressor_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> RegressorMetrics:
    """Regression metrics of predictions ``y_pred`` (f[n]) against targets ``y_true`` (f[n], not constant)."""
    from tasks.canary.stats import REGRESSION_METRICS

    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    values = {name: m(y, p) for name, m in REGRESSION_METRICS.items()}
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((p - y) ** 2)) / sst if sst > 0 else float("nan")
    return RegressorMetrics(n=len(y), r2=r2, bias=float(np.mean(p - y)), **values)


def golden_metrics(task: Task, y: np.ndarray, output: np.ndarray, threshold: float):
    """The metrics of ``task`` for one model's outputs (probabilities or predicted values) on the golden set."""
    return regressor_metrics(y, output) if task == "regression" else canary_metrics(y, output, threshold)


class VariantVerdict(BaseModel):
    """Whether a bf16/int8 variant of the candidate stays within the policy's accuracy budget."""

    model_config = ConfigDict(extra="forbid")

    variant: str
    metric: str = Field(description="Metric of the budget: auc (classifier) or rmse (regressor).")
    value: float = Field(description="The variant's metric on the golden set.")
    delta: float = Field(description="variant - f32 candidate on that metric.")
    ci_low: float
    ci_high: float
    max_abs_diff: float = Field(description="Largest per-row output difference against f32.")
    accepted: bool
    reason: str


def variant_verdict(variant: str, y: np.ndarray, p_f32: np.ndarray, p_variant: np.ndarray,
                    policy: CanaryPolicy, task: Task = "classification") -> VariantVerdict:
    """A variant is accepted iff its metric delta against the f32 candidate is non-inferior within the budget
    (paired bootstrap CI) and no row's output moves more than the per-row budget."""
    from tasks.canary.stats import bootstrap_deltas, non_inferiority

    if task == "regression":
        metric, budget, diff_budget = "rmse", policy.regression.variant_max_rmse_increase, \
            policy.regression.variant_max_abs_diff
    else:
        metric, budget, diff_budget = "auc", policy.variant_max_auc_drop, policy.variant_max_abs_diff
    # the variant in the candidate's place and f32 in the champion's: delta = variant - f32
    d = bootstrap_deltas(y, p_variant, p_f32, metrics=[metric], threshold=policy.decision_threshold,
                         resamples=policy.bootstrap_resamples, confidence=policy.confidence_level, seed=policy.seed,
                         **policy.bootstrap_stop({metric: budget}))[metric]
    max_diff = float(np.max(np.abs(np.asarray(p_variant, np.float64) - np.asarray(p_f32, np.float64))))
    metric_ok = non_inferiority(d, budget).passed
    diff_ok = max_diff <= diff_budget
    level = f"{policy.confidence_level:.0%} CI"
    rule = f"{'>=' if metric_ok else '<'} -{budget}" if d.higher_is_better else f"{'<=' if metric_ok else '>'} {budget}"
    reason = (f"{metric.upper()} delta vs f32 {d.delta:+.5f} ({level} [{d.ci_low:+.5f}, {d.ci_high:+.5f}]) {rule}; "
              f"max |Δ{'p' if task == 'classification' else 'y'}| {max_diff:.4f} "
              f"{'<=' if diff_ok else '>'} {diff_budget}")
    return VariantVerdict(variant=variant, metric=metric, value=d.candidate, delta=d.delta, ci_low=d.ci_low,
                          ci_high=d.ci_high, max_abs_diff=max_diff, accepted=metric_ok and diff_ok, reason=reason)


class CanaryResult(GateResult):
    """The CanaryReport: every check with its measured value, CI, threshold and verdict, and the parts behind them."""

    task: Task = "classification"
    candidate_version: int
    champion_version: int | None
    candidate: ClassifierMetrics | RegressorMetrics
    champion: ClassifierMetrics | RegressorMetrics | None
    deltas: list = []  # tasks.canary.stats.DeltaCI
    slices: list = []  # tasks.canary.stats.SliceResult
    shadow: dict | None = None  # tasks.canary.shadow.ShadowReport as a dict
    latency: dict | None = None  # tasks.canary.latency.LatencyReport as a dict (raw samples included)
    tpu_estimates_ms: dict[str, dict[int, float]] = {}
    variants: list[VariantVerdict] = []
    power: GoldenPower | None = Field(
        None, description="The golden set's power: the smallest delta its CI resolves per margined metric, against "
        "the margin (tasks.canary.power); reported before the decision, never changes it. None without a champion.")

    def markdown(self) -> str:
        """The checks table, the golden set's power, then latency measured here beside the compile report's TPU
        estimates."""
        lines = [super().markdown()]
        if self.power is not None:
            lines += ["", f"Golden set power ({self.power.n} rows, {self.power.confidence:.0%} CIs):", "",
                      "| metric | resolves ± | margin | enough | rows needed |", "|---|---|---|---|---|"]
            for m in self.power.metrics:
                h = "undefined" if m.half_width is None else f"{m.half_width:.4g}"
                lines.append(f"| {m.metric} | {h} | {m.margin:g} | {'yes' if m.resolves_margin else 'NO'} | "
                             f"{m.rows_needed if m.rows_needed is not None else '-'} |")
        if self.latency:
            targets = sorted(self.tpu_estimates_ms)
            lines += ["", "| model | bucket | p50 ms | p99 ms | rows/s | " + " | ".join(f"{t} est. ms" for t in targets) + " |",
                      "|---|---|---|---|---|" + "---|" * len(targets)]
            for r in self.latency["results"]:
                est = [self.tpu_estimates_ms[t].get(r["bucket"]) for t in targets] if r["model"] == "candidate" else []
                cells = " | ".join(f"{e:.4f}" if e is not None else "-" for e in est) if est else " | ".join("-" for _ in targets)
                lines.append(f"| {r['model']} | {r['bucket']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                             f"{r['rows_per_s']:,.0f} | {cells} |")
            if self.latency.get("clock") == "busy":
                walls = ", ".join(f"{r['model']} b{r['bucket']} {r['wall_p99_ms']:.3f}" for r in self.latency["results"]
                                  if r.get("wall_p99_ms") is not None)
                lines.append(f"\nTimed by the busy clock (a call's wall time less the time the host ran other "
                             f"processes); wall-clock p99 ms: {walls}")
            lines += [f"\n{line}" for line in self.retiming_lines()]
        return "\n".join(lines)

    def retiming_lines(self) -> list[str]:
        """One line per re-timing of the buckets over their latency budget (tasks.canary.latency.retimed_checks)."""
        lines = []
        for i, again in enumerate((self.latency or {}).get("retimings") or [], start=1):
            timed = ", ".join(f"{r['model']} b{r['bucket']} p99 {r['p99_ms']:.3f} ms" for r in again["results"])
            lines.append(f"Re-timing {i} of the buckets over budget: {timed}")
        return lines


def slice_checks(slices, margin: float | None = None) -> list[Check]:
    """Regressed slices fail; 'too small' and 'one class' slices are reported and never decide. With the slice
    ``margin``, a judged slice's check states its CI bound against it."""
    return [Check(name=f"slice:{r.column}={r.value}:{r.metric}_delta", value=r.delta if r.delta is not None else r.status,
                  threshold=None if r.status == "ok" or r.delta is None else r.status,
                  comparison="info", passed=r.status != "regressed", note=_slice_note(r, margin)) for r in slices]


def _slice_note(r, margin: float | None) -> str | None:
    from tasks.canary.stats import METRICS

    if r.delta is None or margin is None or r.metric not in METRICS:
        return None
    ok = r.status != "regressed"
    if METRICS[r.metric].higher_is_better:
        relation = f"CI low {r.ci_low:+.4g} {'>=' if ok else '<'} -{margin:g}"
    else:
        relation = f"CI high {r.ci_high:+.4g} {'<=' if ok else '>'} {margin:g}"
    return f"n={r.n}, delta {r.delta:+.4g}, {relation}"


def floor_checks(candidate: ClassifierMetrics | RegressorMetrics, policy: CanaryPolicy) -> list[Check]:
    """The absolute thresholds, held on every deployment: the AUC floor of a classifier; the R² floor (and the
    optional RMSE ceiling) of a regressor."""
    if isinstance(candidate, RegressorMetrics):
        rp = policy.regression
        checks = [held_to("candidate_r2", candidate.r2, ">=", rp.min_r2)]
        if rp.max_rmse is not None:
            checks.append(held_to("candidate_rmse", candidate.rmse, "<=", rp.max_rmse))
        return checks
    return [held_to("candidate_auc", candidate.auc, ">=", policy.min_auc)]


def canary_result(
    candidate: ClassifierMetrics | RegressorMetrics,
    champion: ClassifierMetrics | RegressorMetrics | None,
    policy: CanaryPolicy,
    *,
    candidate_version: int,
    champion_version: int | None,
    deltas=(),
    slices=(),
    shadow=None,
    extra_checks: list[Check] = (),
    latency=None,
    tpu_estimates_ms: dict | None = None,
) -> CanaryResult:
    """Decide: the absolute thresholds always (:func:`floor_checks`); with a champion, non-inferiority of every
    metric in the policy's margins for the task (paired bootstrap CIs), every slice, the shadow limits and the
    latency budgets (``extra_checks``). The task is the candidate's metrics type; the champion's must match.

    Before the decision the reasons report the golden set's power (:mod:`tasks.canary.power`): one line per margin
    the golden set is too small to show; it never changes the decision. Informational checks (shadow checks
    without ``canary.shadow_decides``, latency buckets under ``canary.latency_floor_ms``) are reported, never fail
    the gate; those over their limits get one reason line."""
    from tasks.canary.stats import non_inferiority

    task: Task = "regression" if isinstance(candidate, RegressorMetrics) else "classification"
    if champion is not None and type(champion) is not type(candidate):
        raise ValueError(f"candidate metrics are {type(candidate).__name__} but champion's are "
                         f"{type(champion).__name__}; a canary compares models of one task")
    margins = policy.margins_for(task)
    checks = floor_checks(candidate, policy)
    n_floor = len(checks)
    checks += [non_inferiority(d, margins[d.metric]) for d in deltas]
    checks += slice_checks(slices, policy.slice_rule(task)[1])
    checks += list(extra_checks)
    failed = [c for c in checks if not c.passed and not c.informational]
    informed = [c for c in checks if not c.passed and c.informational]
    power = golden_power(deltas, margins, n=candidate.n, task=task) if deltas else None
    headline = ("RMSE", "rmse", ".5f") if task == "regression" else ("AUC", "auc", ".4f")
    if champion is None:
        head = "first deployment: no champion, absolute thresholds only"
    else:
        label, field, fmt = headline
        head = (f"candidate v{candidate_version} {label} {getattr(candidate, field):{fmt}} vs champion "
                f"v{champion_version} {label} {getattr(champion, field):{fmt}}")
    reasons = [head] + power_reasons(power)
    reasons += [c.describe() for c in failed] or [c.describe() for c in checks[: n_floor + len(deltas)]]
    if informed:
        key = " (canary.shadow_decides: false)" if any(c.name.startswith("shadow_") for c in informed) else ""
        reasons.append(f"over their limits, reported, not deciding{key}: " + "; ".join(c.describe() for c in informed))
    return CanaryResult(
        gate="canary",
        task=task,
        passed=not failed,
        decision="pass" if not failed else "fail",
        reasons=reasons,
        checks=checks,
        candidate_version=candidate_version,
        champion_version=champion_version,
        candidate=candidate,
        champion=champion,
        deltas=[d.model_dump() for d in deltas],
        slices=[r.model_dump() for r in slices],
        shadow=shadow.model_dump() if shadow is not None else None,
        latency=latency.model_dump() if latency is not None else None,
        tpu_estimates_ms=tpu_estimates_ms or {},
        power=power,
    )
