"""Canary gate: candidate vs champion on the labeled golden set.

Both models are scored through their exported, hash-verified artifacts (see
tasks/inference.py); this module only holds the statistics and the decision.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from tasks.evidence import Check, GateResult, held_to
from tasks.policy import CanaryPolicy



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


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """AUC-ROC by the rank-sum (Mann-Whitney) formula, ties averaged. y_true: {0,1}[n]; scores: f[n]."""
    y = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def canary_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> ClassifierMetrics:
    """Classification metrics of probabilities ``proba`` (f[n]) against labels ``y_true`` ({0,1}[n])."""
    from tasks.canary_stats import CLASSIFICATION_METRICS

    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    values = {name: float(m.fn(y, p, threshold) if m.uses_threshold else m.fn(y, p))
              for name, m in CLASSIFICATION_METRICS.items()}
    return ClassifierMetrics(n=len(y), positive_rate=float(np.mean(p >= threshold)), **values)


class VariantVerdict(BaseModel):
    """Whether a bf16/int8 variant of the candidate stays within the policy's accuracy budget."""

    model_config = ConfigDict(extra="forbid")

    variant: str
    auc: float
    auc_delta: float
    ci_low: float
    ci_high: float
    max_abs_diff: float
    accepted: bool
    reason: str


def variant_verdict(variant: str, y: np.ndarray, p_f32: np.ndarray, p_variant: np.ndarray,
                    policy: CanaryPolicy) -> VariantVerdict:
    from tasks.canary_stats import bootstrap_deltas

    d = bootstrap_deltas(y, p_f32, p_variant, metrics=["auc"], threshold=policy.decision_threshold,
                         resamples=policy.bootstrap_resamples, confidence=policy.confidence_level, seed=policy.seed)["auc"]
    delta, lo, hi = d.delta, d.ci_low, d.ci_high
    max_diff = float(np.max(np.abs(np.asarray(p_variant, np.float64) - np.asarray(p_f32, np.float64))))
    auc_ok = lo >= -policy.variant_max_auc_drop
    diff_ok = max_diff <= policy.variant_max_abs_diff
    level = f"{policy.confidence_level:.0%} CI"
    reason = (f"AUC delta vs f32 {delta:+.5f} ({level} [{lo:+.5f}, {hi:+.5f}]) "
              f"{'>=' if auc_ok else '<'} -{policy.variant_max_auc_drop}; max |Δp| {max_diff:.4f} "
              f"{'<=' if diff_ok else '>'} {policy.variant_max_abs_diff}")
    return VariantVerdict(variant=variant, auc=roc_auc(y, p_variant), auc_delta=delta, ci_low=lo, ci_high=hi,
                          max_abs_diff=max_diff, accepted=auc_ok and diff_ok, reason=reason)


class CanaryResult(GateResult):
    """The CanaryReport: every check with its measured value, CI, threshold and verdict, and the parts behind them."""

    candidate_version: int
    champion_version: int | None
    candidate: ClassifierMetrics
    champion: ClassifierMetrics | None
    deltas: list = []  # tasks.canary_stats.DeltaCI
    slices: list = []  # tasks.canary_stats.SliceResult
    shadow: dict | None = None  # tasks.shadow.ShadowReport as a dict
    latency: dict | None = None  # tasks.latency.LatencyReport as a dict (raw samples included)
    tpu_estimates_ms: dict[str, dict[int, float]] = {}
    variants: list[VariantVerdict] = []

    def markdown(self) -> str:
        """The checks table, then latency measured here beside the compile report's TPU estimates."""
        lines = [super().markdown()]
        if self.latency:
            targets = sorted(self.tpu_estimates_ms)
            lines += ["", "| model | bucket | p50 ms | p99 ms | rows/s | " + " | ".join(f"{t} est. ms" for t in targets) + " |",
                      "|---|---|---|---|---|" + "---|" * len(targets)]
            for r in self.latency["results"]:
                est = [self.tpu_estimates_ms[t].get(r["bucket"]) for t in targets] if r["model"] == "candidate" else []
                cells = " | ".join(f"{e:.4f}" if e is not None else "-" for e in est) if est else " | ".join("-" for _ in targets)
                lines.append(f"| {r['model']} | {r['bucket']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                             f"{r['rows_per_s']:,.0f} | {cells} |")
        return "\n".join(lines)


def slice_checks(slices) -> list[Check]:
    """Regressed slices fail; 'too small' and 'one class' slices are reported and never decide."""
    return [Check(name=f"slice:{r.column}={r.value}:{r.metric}_delta", value=r.delta if r.delta is not None else r.status,
                  threshold=None if r.status == "ok" or r.delta is None else r.status,
                  comparison="info", passed=r.status != "regressed") for r in slices]


def canary_result(
    candidate: ClassifierMetrics,
    champion: ClassifierMetrics | None,
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
    """Decide: the absolute AUC floor always; with a champion, non-inferiority of every metric in the policy's
    margins (paired bootstrap CIs), every slice, the shadow limits and the latency budgets (``extra_checks``)."""
    from tasks.canary_stats import non_inferiority

    checks = [held_to("candidate_auc", candidate.auc, ">=", policy.min_auc)]
    checks += [non_inferiority(d, policy.margins[d.metric]) for d in deltas]
    checks += slice_checks(slices)
    checks += list(extra_checks)
    failed = [c for c in checks if not c.passed]
    if champion is None:
        head = "first deployment: no champion, absolute thresholds only"
    else:
        head = (f"candidate v{candidate_version} AUC {candidate.auc:.4f} vs champion v{champion_version} AUC "
                f"{champion.auc:.4f}")
    reasons = [head] + ([c.describe() for c in failed] or [c.describe() for c in checks[: 1 + len(deltas)]])
    return CanaryResult(
        gate="canary",
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
    )
