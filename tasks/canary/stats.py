"""Canary statistics: a metric registry (classification and regression), vectorised paired
bootstrap CIs, non-inferiority checks and per-slice deltas. Pure numpy; no orchestrator
imports. Input checks live in :mod:`tasks.canary.inputs` (re-exported here).

The bootstrap is *paired* (each resample picks the same rows for both models) and
*seeded*. :func:`bootstrap_deltas` draws exactly the same row indices as the
straightforward loop :func:`bootstrap_deltas_loop` (``rng.integers(0, n, n)`` per
resample, from ``np.random.default_rng(seed)``), turns each draw into multiplicity
weights with ``np.bincount`` and evaluates every metric for a chunk of resamples at
once as weighted matrix operations, so both give the same numbers up to float noise.

Non-inferiority rule (used for metrics and slices alike): with ``delta = candidate -
champion`` and its two-sided CI ``[lo, hi]``, a higher-is-better metric passes iff
``lo >= -margin``; a lower-is-better metric passes iff ``hi <= margin``. A CI that is
not finite (e.g. every resample undefined) fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.canary.inputs import CanaryInputError, as_1d, check_inputs, check_regression_inputs
from tasks.evidence import Check

Task = Literal["classification", "regression"]

_EPS = 1e-7
ECE_BINS = 10
_CHUNK_BYTES = 200 * 2**20  # upper bound for the [chunk, n] float64 work arrays
SEQUENTIAL_BATCH = 100  # resamples between two sequential-stopping checks
_STOP_Z = 3.0  # the band of order statistics a quantile estimate could still move within (about 99.7%)
_WORK_ARRAYS = 4  # live [chunk, n]-sized float64 arrays at the peak (weights and the AUC temporaries)


# -------------------------------------------------------------------------------------- plain metrics
# Classification: y {0,1}[n] float, p probabilities f[n]. Undefined values (one class,
# no predicted positives) are NaN, which the bootstrap drops (nanquantile).


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


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """AUC-ROC by average ranks (ties count half)."""
    return roc_auc(y, p)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    pc = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((p >= threshold) == (y == 1)))


def precision(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    pred = p >= threshold
    return float((pred & (y == 1)).sum() / pred.sum()) if pred.any() else float("nan")


def recall(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    pos = y == 1
    return float(((p >= threshold) & pos).sum() / pos.sum()) if pos.any() else float("nan")


def _ece_bins(p: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(p * ECE_BINS).astype(np.int64), 0, ECE_BINS - 1)


def ece(y: np.ndarray, p: np.ndarray) -> float:
    """Expected calibration error over 10 equal-width bins of [0, 1]: sum_b (n_b/n) |mean p_b - mean y_b|."""
    gaps = np.bincount(_ece_bins(p), weights=p - y, minlength=ECE_BINS)
    return float(np.abs(gaps).sum() / len(y))


# Regression: y, y_hat f[n] (finite); interval bounds f[n].


def rmse(y: np.ndarray, y_hat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_hat, float) - np.asarray(y, float)) ** 2)))


def mae(y: np.ndarray, y_hat: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_hat, float) - np.asarray(y, float))))


def interval_coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of rows with lower <= y <= upper (compare with the intervals' nominal level)."""
    y = np.asarray(y, float)
    return float(np.mean((np.asarray(lower, float) <= y) & (y <= np.asarray(upper, float))))


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    task: Task = "classification"
    uses_threshold: bool = False
    needs_both_classes: bool = False

    def __call__(self, y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
        return self.fn(y, p, threshold) if self.uses_threshold else self.fn(y, p)


CLASSIFICATION_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("auc", auc, True, needs_both_classes=True),
        Metric("log_loss", log_loss, False),
        Metric("brier", brier, False),
        Metric("accuracy", accuracy, True, uses_threshold=True),
        Metric("precision", precision, True, uses_threshold=True),
        Metric("recall", recall, True, uses_threshold=True, needs_both_classes=True),
        Metric("ece", ece, False),
    )
}
# Point metrics of one prediction per row. interval_coverage needs two bounds per row, which no
# model here gives (the regression head has one output), so it is not a bootstrapped metric.
REGRESSION_METRICS: dict[str, Metric] = {
    m.name: m for m in (Metric("rmse", rmse, False, task="regression"), Metric("mae", mae, False, task="regression"))
}
METRICS: dict[str, Metric] = {**CLASSIFICATION_METRICS, **REGRESSION_METRICS}


def _metrics(names: tuple[str, ...] | list[str] | None) -> list[Metric]:
    names = list(CLASSIFICATION_METRICS) if names is None else list(names)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise CanaryInputError(f"unknown metric(s) {unknown}; known: {list(METRICS)}")
    ms = [METRICS[m] for m in names]
    if len({m.task for m in ms}) > 1:
        raise CanaryInputError(f"metrics {names} mix classification and regression; compare one task at a time")
    return ms


def _checked(ms: list[Metric], y: object, p_cand: object, p_champ: object):
    """Inputs checked for the metrics' task; a regression golden set may be constant here (RMSE/MAE are defined)."""
    if ms[0].task == "regression":
        return check_regression_inputs(y, p_cand, p_champ, require_variation=False)
    return check_inputs(y, p_cand, p_champ)


# ------------------------------------------------------------------------------------------ bootstrap


class DeltaCI(BaseModel):
    """candidate - champion for one metric, with its paired percentile bootstrap CI."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="Metric name from METRICS (CLASSIFICATION_METRICS or REGRESSION_METRICS).")
    higher_is_better: bool = Field(description="Direction of the metric.")
    candidate: float = Field(description="Candidate's metric on the full sample.")
    champion: float = Field(description="Champion's metric on the full sample.")
    delta: float = Field(description="candidate - champion on the full sample.")
    ci_low: float = Field(description="Lower percentile bound of the bootstrap deltas.")
    ci_high: float = Field(description="Upper percentile bound of the bootstrap deltas.")
    resamples: int = Field(description="Bootstrap resamples drawn.")
    undefined_resamples: int = Field(0, description="Resamples where the delta was undefined (NaN) and dropped.")
    confidence: float = Field(description="Two-sided confidence level of [ci_low, ci_high].")
    max_resamples: int | None = Field(
        None, description="Sequential stopping: the resamples allowed; fewer were drawn (``resamples``) once every "
        "margin's CI bound was clearly on one side. None: a fixed number of resamples.")

    def interval(self) -> str:
        return f"{self.confidence:.0%} CI [{self.ci_low:+.5f}, {self.ci_high:+.5f}]"


def _ci(metric: Metric, cand: float, champ: float, deltas: np.ndarray, confidence: float) -> DeltaCI:
    alpha = (1 - confidence) / 2
    finite = deltas[np.isfinite(deltas)]
    lo, hi = (np.quantile(finite, [alpha, 1 - alpha]) if len(finite) else (np.nan, np.nan))
    return DeltaCI(metric=metric.name, higher_is_better=metric.higher_is_better, candidate=cand, champion=champ,
                   delta=cand - champ, ci_low=float(lo), ci_high=float(hi), resamples=len(deltas),
                   undefined_resamples=int(len(deltas) - len(finite)), confidence=confidence)


def bootstrap_deltas_loop(
    y: np.ndarray, p_cand: np.ndarray, p_champ: np.ndarray, *, metrics: tuple[str, ...] | list[str] | None = None,
    threshold: float = 0.5, resamples: int = 200, confidence: float = 0.95, seed: int = 0,
) -> dict[str, DeltaCI]:
    """Reference implementation: one Python iteration per resample, metrics on ``y[idx]``. Same signature as
    :func:`bootstrap_deltas` and the same resamples for a given seed."""
    ms = _metrics(metrics)
    y, pc, ph = _checked(ms, y, p_cand, p_champ)
    n = len(y)
    rng = np.random.default_rng(seed)
    deltas = np.empty((len(ms), resamples))
    with np.errstate(invalid="ignore", divide="ignore"):
        for r in range(resamples):
            idx = rng.integers(0, n, n)
            yi, ci, hi = y[idx], pc[idx], ph[idx]
            for k, m in enumerate(ms):
                deltas[k, r] = m(yi, ci, threshold) - m(yi, hi, threshold)
    return {m.name: _ci(m, m(y, pc, threshold), m(y, ph, threshold), deltas[k], confidence) for k, m in enumerate(ms)}


class _Prepared:
    """Per-model constants so a chunk of weighted metrics is a GEMM plus one sorted cumulative sum (AUC)."""

    def __init__(self, y: np.ndarray, p: np.ndarray, names: set[str], threshold: float):
        cols: dict[str, np.ndarray] = {}
        pred = p >= threshold
        pos = y == 1
        if "log_loss" in names:
            pc = np.clip(p, _EPS, 1 - _EPS)
            cols["log_loss"] = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
        if "brier" in names:
            cols["brier"] = (p - y) ** 2
        if "accuracy" in names:
            cols["accuracy"] = (pred == pos).astype(np.float64)
        if names & {"precision", "recall"}:
            cols["tp"] = (pred & pos).astype(np.float64)
            cols["pred"] = pred.astype(np.float64)
        if "rmse" in names:
            cols["squared_error"] = (p - y) ** 2
        if "mae" in names:
            cols["absolute_error"] = np.abs(p - y)
        self.col_index = {k: i for i, k in enumerate(cols)}
        mats = [np.stack(list(cols.values()), axis=1)] if cols else []
        self.ece_at = None
        if "ece" in names:
            e = np.zeros((len(y), ECE_BINS))
            e[np.arange(len(y)), _ece_bins(p)] = p - y
            self.ece_at = sum(m.shape[1] for m in mats)
            mats.append(e)
        self.V = np.concatenate(mats, axis=1) if mats else np.zeros((len(y), 0))
        self.auc = "auc" in names
        if self.auc:
            # AUC = sum over positives of w_i * (negative weight below s_i + half the tied negative weight)
            # / (W+ W-). Negatives sorted once; a positive's "below" and "below or tied" are fixed
            # positions in the negatives' cumulative weight, so a resample needs one cumsum.
            neg = np.flatnonzero(y == 0)
            self.neg_order = neg[np.argsort(p[neg], kind="mergesort")]
            neg_scores = p[self.neg_order]
            p_pos = p[y == 1]
            self.left = np.searchsorted(neg_scores, p_pos, side="left")
            self.right = np.searchsorted(neg_scores, p_pos, side="right")

    def weighted(self, W: np.ndarray, W_pos: np.ndarray | None, wsum: np.ndarray,
                 wpos: np.ndarray) -> dict[str, np.ndarray]:
        """W: float64[chunk, n] multiplicities; W_pos: W at the positive rows [chunk, n_pos] (for AUC);
        wsum/wpos: float64[chunk] total and positive weight."""
        out: dict[str, np.ndarray] = {}
        S = W @ self.V if self.V.shape[1] else None
        ci = self.col_index
        for k in ("log_loss", "brier", "accuracy"):
            if k in ci:
                out[k] = S[:, ci[k]] / wsum
        if "tp" in ci:
            tp, pred = S[:, ci["tp"]], S[:, ci["pred"]]
            out["precision"] = np.where(pred > 0, tp / np.where(pred > 0, pred, 1), np.nan)
            out["recall"] = np.where(wpos > 0, tp / np.where(wpos > 0, wpos, 1), np.nan)
        if "squared_error" in ci:
            out["rmse"] = np.sqrt(S[:, ci["squared_error"]] / wsum)
        if "absolute_error" in ci:
            out["mae"] = S[:, ci["absolute_error"]] / wsum
        if self.ece_at is not None:
            out["ece"] = np.abs(S[:, self.ece_at:self.ece_at + ECE_BINS]).sum(axis=1) / wsum
        if self.auc:
            c = W.shape[0]
            cum_neg = np.zeros((c, len(self.neg_order) + 1))
            np.cumsum(np.take(W, self.neg_order, axis=1), axis=1, out=cum_neg[:, 1:])
            below2 = np.take(cum_neg, self.left, axis=1)
            below2 += np.take(cum_neg, self.right, axis=1)  # 2 x (below + half of ties)
            num = 0.5 * np.einsum("ij,ij->i", W_pos, below2)
            wneg = wsum - wpos
            with np.errstate(invalid="ignore", divide="ignore"):
                out["auc"] = np.where((wpos > 0) & (wneg > 0), num / (wpos * wneg), np.nan)
        return out


def _chunk_size(n: int, resamples: int, max_bytes: int) -> int:
    return int(max(1, min(resamples, max_bytes // (_WORK_ARRAYS * 8 * max(n, 1)))))


def bootstrap_deltas(
    y: np.ndarray, p_cand: np.ndarray, p_champ: np.ndarray, *, metrics: tuple[str, ...] | list[str] | None = None,
    threshold: float = 0.5, resamples: int = 200, confidence: float = 0.95, seed: int = 0,
    max_bytes: int = _CHUNK_BYTES, stop_margins: dict[str, float] | None = None, batch: int = SEQUENTIAL_BATCH,
) -> dict[str, DeltaCI]:
    """Paired percentile bootstrap of candidate - champion for each metric, vectorised over resamples.

    y: {0,1}[n]; p_cand, p_champ: probabilities f[n]; metrics: names from CLASSIFICATION_METRICS
    (default all); threshold: decision threshold for accuracy/precision/recall. For regression
    metrics (names from REGRESSION_METRICS, not mixed with classification ones) y is the target
    f[n] and p_cand, p_champ the predicted values f[n]. Resample r draws
    ``rng.integers(0, n, n)`` from ``np.random.default_rng(seed)`` exactly as
    :func:`bootstrap_deltas_loop` does; its multiplicities weight every metric. Resamples are
    processed in chunks so the [chunk, n] work arrays stay under ``max_bytes``.
    ``stop_margins`` ({metric: margin}, every metric's): sequential stopping, see :func:`decisive`; resamples are
    drawn ``batch`` at a time (the same draws, in the same order, as without stopping) and the bootstrap stops
    at the first batch where every metric's CI bound is clearly on one side of its margin.
    Returns {metric: DeltaCI}.
    """
    ms = _metrics(metrics)
    y, pc, ph = _checked(ms, y, p_cand, p_champ)
    return _bootstrap(y, pc, ph, ms, threshold, resamples, confidence, seed, max_bytes, stop_margins, batch)


def decisive(deltas: np.ndarray, higher_is_better: bool, margin: float, confidence: float) -> bool:
    """Whether more resamples could not move the CI bound that decides non-inferiority across ``margin``.

    With m finite resample deltas, the bound's quantile q (alpha for a higher-is-better metric's low bound,
    1 - alpha for a lower-is-better one's high bound) is the order statistic near m q; how far it could sit with
    more resamples is the binomial band m q +/- 3 sqrt(m q (1 - q)) of order statistics. The CI is decisive when
    the margin's limit (-margin or +margin) lies outside that band; an undefined resample never is (the full
    count decides then)."""
    m = len(deltas)
    if m == 0 or not np.isfinite(deltas).all():
        return False
    alpha = (1 - confidence) / 2
    q = alpha if higher_is_better else 1 - alpha
    spread = _STOP_Z * np.sqrt(m * q * (1 - q))
    lo_k, hi_k = int(np.floor(m * q - spread)), int(np.ceil(m * q + spread))
    if lo_k < 0 or hi_k > m - 1:
        return False  # the band reaches past the extreme resample: too few to tell
    ordered = np.partition(deltas, (lo_k, hi_k))
    limit = -margin if higher_is_better else margin
    return bool(ordered[lo_k] > limit or ordered[hi_k] < limit)


def _bootstrap(y: np.ndarray, pc: np.ndarray, ph: np.ndarray, ms: list[Metric], threshold: float, resamples: int,
               confidence: float, seed: int, max_bytes: int = _CHUNK_BYTES, stop_margins: dict[str, float] | None = None,
               batch: int = SEQUENTIAL_BATCH) -> dict[str, DeltaCI]:
    names = {m.name for m in ms}
    n = len(y)
    models = (_Prepared(y, pc, names, threshold), _Prepared(y, ph, names, threshold))
    pos_rows = np.flatnonzero(y == 1)
    rng = np.random.default_rng(seed)
    chunk = _chunk_size(n, resamples, max_bytes)
    deltas = {m.name: np.empty(resamples) for m in ms}
    W = np.empty((chunk, n))
    step = max(1, batch) if stop_margins is not None else resamples  # stopping is checked at every step's end
    drawn = 0
    while drawn < resamples:
        end = min(resamples, drawn + step)
        for start in range(drawn, end, chunk):
            c = min(chunk, end - start)
            for r in range(c):
                W[r] = np.bincount(rng.integers(0, n, n), minlength=n)
            Wc = W[:c]
            wsum = np.full(c, float(n))
            wpos = Wc @ y
            W_pos = np.take(Wc, pos_rows, axis=1) if "auc" in names else None
            cand, champ = (model.weighted(Wc, W_pos, wsum, wpos) for model in models)
            for name in names:
                deltas[name][start:start + c] = cand[name] - champ[name]
        drawn = end
        if stop_margins is not None and all(
                decisive(deltas[m.name][:drawn], m.higher_is_better, stop_margins[m.name], confidence) for m in ms):
            break
    cap = resamples if stop_margins is not None else None
    return {m.name: _ci(m, m(y, pc, threshold), m(y, ph, threshold), deltas[m.name][:drawn], confidence)
            .model_copy(update={"max_resamples": cap}) for m in ms}


# ------------------------------------------------------------------------------------------- decisions


def non_inferiority(delta_ci: DeltaCI, margin: float) -> Check:
    """Non-inferiority of the candidate on one metric: higher-is-better passes iff ci_low >= -margin,
    lower-is-better iff ci_high <= margin; a non-finite bound fails.

    The Check's value is the point delta and its threshold the margin; the rule is on a CI bound,
    not the point value, so the comparison is "info" and the name states the CI and the rule.
    """
    d = delta_ci
    if d.higher_is_better:
        bound, ok, rule = d.ci_low, d.ci_low >= -margin, f"CI low >= -{margin:g}"
        side, limit, op = "CI low", f"-{margin:g}", (">=", "<")
    else:
        bound, ok, rule = d.ci_high, d.ci_high <= margin, f"CI high <= {margin:g}"
        side, limit, op = "CI high", f"{margin:g}", ("<=", ">")
    ok = bool(ok) and bool(np.isfinite(bound))
    name = f"{d.metric}_delta ({d.interval()}; non-inferior iff {rule})"
    note = (f"delta {d.delta:+.4g}, {side} {bound:+.4g} {op[0] if ok else op[1]} {limit}" if np.isfinite(bound)
            else f"delta {d.delta:+.4g}, CI undefined ({d.undefined_resamples} of {d.resamples} resamples undefined)")
    return Check(name=name, value=d.delta, threshold=margin, comparison="info", passed=ok, note=note)


SliceStatus = Literal["ok", "regressed", "too small", "one class"]


class SliceResult(BaseModel):
    """One value of one slice column: the metric for both models and its paired delta CI."""

    model_config = ConfigDict(extra="forbid")

    column: str
    value: str
    n: int
    metric: str
    candidate: float | None = None
    champion: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    resamples: int | None = None
    status: SliceStatus

    def describe(self) -> str:
        head = f"{self.column}={self.value} (n={self.n})"
        if self.delta is None:
            return f"{head}: {self.status}"
        return (f"{head}: {self.metric} delta {self.delta:+.4f} CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]: "
                f"{self.status}")


def slice_metrics(
    y: np.ndarray, p_cand: np.ndarray, p_champ: np.ndarray, slices: dict[str, np.ndarray], *, metric: str = "auc",
    min_size: int = 200, margin: float = 0.02, threshold: float = 0.5, resamples: int = 200,
    confidence: float = 0.95, seed: int = 0, sequential: bool = False, batch: int = SEQUENTIAL_BATCH,
) -> list[SliceResult]:
    """Per-slice paired bootstrap of ``metric`` (of either task); slices: {column: labels[n]} (any dtype,
    compared as str).

    A slice value with fewer than ``min_size`` rows is "too small" (reported, never decides);
    one with a single label class is "one class" when the metric needs both; otherwise it is
    "regressed" iff :func:`non_inferiority` with ``margin`` fails on its CI, else "ok". ``sequential``: each
    slice's bootstrap stops once its CI bound is clearly on one side of ``margin`` (see :func:`bootstrap_deltas`).
    """
    m = _metrics([metric])[0]
    y, pc, ph = _checked([m], y, p_cand, p_champ)
    out: list[SliceResult] = []
    for column, labels in slices.items():
        lab = as_1d(f"slice column {column!r}", labels)
        if len(lab) != len(y):
            raise CanaryInputError(f"slice column {column!r} has {len(lab)} rows but the labels have {len(y)}")
        lab = lab.astype(str)
        for value in np.unique(lab):
            mask = lab == value
            ys, cs, hs = y[mask], pc[mask], ph[mask]
            n = int(mask.sum())
            one_class = ys.min() == ys.max()
            if n < min_size:
                out.append(SliceResult(column=column, value=str(value), n=n, metric=metric, status="too small"))
                continue
            if one_class and m.needs_both_classes:
                out.append(SliceResult(column=column, value=str(value), n=n, metric=metric, status="one class"))
                continue
            d = _bootstrap(ys, cs, hs, [m], threshold, resamples, confidence, seed,
                           stop_margins={metric: margin} if sequential else None, batch=batch)[metric]
            status: SliceStatus = "ok" if non_inferiority(d, margin).passed else "regressed"
            out.append(SliceResult(column=column, value=str(value), n=n, metric=metric, candidate=d.candidate,
                                   champion=d.champion, delta=d.delta, ci_low=d.ci_low, ci_high=d.ci_high,
                                   resamples=d.resamples, status=status))
    return out
