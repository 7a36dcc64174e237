"""Canary gate: candidate vs champion on the labeled golden set.

Both models are scored through their exported, hash-verified artifacts (see
tasks/inference.py); this module only holds the statistics and the decision.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from tasks.evidence import GateResult, held_to
from tasks.policy import CanaryPolicy

_EPS = 1e-7


class ClassifierMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    auc: float
    log_loss: float
    brier: float
    accuracy: float
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
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1 - _EPS)
    return ClassifierMetrics(
        n=len(y),
        auc=roc_auc(y, p),
        log_loss=float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        brier=float(np.mean((p - y) ** 2)),
        accuracy=float(np.mean((p >= threshold) == (y == 1))),
        positive_rate=float(np.mean(p >= threshold)),
    )


def paired_bootstrap_delta(
    y: np.ndarray, p_base: np.ndarray, p_new: np.ndarray, metric, *, resamples: int, confidence: float, seed: int
) -> tuple[float, float, float]:
    """metric(y, p_new) - metric(y, p_base) and its percentile CI over paired resamples (same rows for both)."""
    y, p_base, p_new = np.asarray(y), np.asarray(p_base), np.asarray(p_new)
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        deltas[i] = metric(y[idx], p_new[idx]) - metric(y[idx], p_base[idx])
    alpha = (1 - confidence) / 2
    lo, hi = np.nanquantile(deltas, [alpha, 1 - alpha])
    return float(metric(y, p_new) - metric(y, p_base)), float(lo), float(hi)


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
    delta, lo, hi = paired_bootstrap_delta(y, p_f32, p_variant, roc_auc, resamples=policy.bootstrap_resamples,
                                           confidence=policy.confidence_level, seed=policy.seed)
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
    candidate_version: int
    champion_version: int | None
    candidate: ClassifierMetrics
    champion: ClassifierMetrics | None
    variants: list[VariantVerdict] = []


def canary_result(
    candidate: ClassifierMetrics,
    champion: ClassifierMetrics | None,
    policy: CanaryPolicy,
    *,
    candidate_version: int,
    champion_version: int | None,
) -> CanaryResult:
    """Decide: absolute floor always; non-inferiority against the champion when there is one."""
    checks = [held_to("candidate_auc", candidate.auc, ">=", policy.min_auc)]
    if champion is not None:
        checks.append(held_to("auc_delta", candidate.auc - champion.auc, ">=", -policy.max_auc_drop))
        checks.append(
            held_to("log_loss_delta", candidate.log_loss - champion.log_loss, "<=", policy.max_log_loss_increase)
        )
    failed = [c for c in checks if not c.passed]
    reasons = [c.describe() for c in failed] or [c.describe() for c in checks]
    if champion is None:
        reasons.insert(0, "first deployment: no champion, absolute thresholds only")
    else:
        reasons.insert(
            0, f"candidate v{candidate_version} AUC {candidate.auc:.4f} vs champion v{champion_version} AUC {champion.auc:.4f}"
        )
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
    )
