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


class CanaryResult(GateResult):
    candidate_version: int
    champion_version: int | None
    candidate: ClassifierMetrics
    champion: ClassifierMetrics | None


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
