"""PNG evidence of the canary gate: ROC and calibration curves (classifiers), predicted-vs-actual
scatter and residual histograms (regressors), latency histograms, slice deltas.

Each function draws on its own ``matplotlib.figure.Figure`` with the Agg canvas,
created inside the function: nothing is set at import, no pyplot global state, no
display needed, and two tasks drawing at once cannot draw into each other's figure
(pyplot's current-figure state is process-global). Each writes one PNG and returns
its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

STATUS_COLORS = {"pass": "tab:green", "fail": "tab:red", "too small": "tab:gray"}


def _figure(width: float = 6.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine, for which savefig draws the whole figure once more before
    # drawing it (a dry run for a layout already done): a quarter of each plot's CPU. The subplot positions stay.
    fig.set_layout_engine(None)
    fig.savefig(path, format="png")
    return path


def roc_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1); tied scores move together."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]
    tp, fp = np.cumsum(y)[last_of_tie], np.cumsum(~y)[last_of_tie]
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def roc_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: str | Path) -> Path:
    """ROC curve of each model's probabilities f[n] against labels y {0,1}[n], AUC in the legend."""
    from tasks.canary.stats import roc_auc

    fig = _figure()
    ax = fig.add_subplot()
    for name, p in scores.items():
        fpr, tpr = roc_points(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(y, p):.4f})")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=0.8, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(fig, path)


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin on [0, 1] with rows: (mean predicted, observed positive rate, rows)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    keep = n > 0
    mean_p = np.bincount(idx, weights=p, minlength=bins)[keep] / n[keep]
    rate = np.bincount(idx, weights=y, minlength=bins)[keep] / n[keep]
    return mean_p, rate, n[keep]


def calibration_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: str | Path, bins: int = 10) -> Path:
    """Reliability diagram (observed positive rate vs mean predicted probability per bin), ECE in the legend."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=0.8, label="perfectly calibrated")
    for name, p in scores.items():
        mean_p, rate, n = calibration_bins(y, p, bins)
        ece = float(np.sum(n * np.abs(mean_p - rate)) / np.sum(n))
        ax.plot(mean_p, rate, marker="o", label=f"{name} (ECE {ece:.4f})")
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", title=f"Calibration ({bins} bins)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return _save(fig, path)


SCATTER_MAX_POINTS = 5_000


def prediction_scatter_plot(y: np.ndarray, predictions: dict[str, np.ndarray], path: str | Path,
                            max_points: int = SCATTER_MAX_POINTS) -> Path:
    """Predicted vs actual for each regressor (f[n] each, targets y f[n]), the identity line, RMSE in the legend.
    At most ``max_points`` rows are drawn (the same evenly spaced rows for every model)."""
    y = np.asarray(y, dtype=np.float64)
    rows = np.linspace(0, len(y) - 1, min(len(y), max_points)).astype(int)
    fig = _figure()
    ax = fig.add_subplot()
    lo, hi = float(y.min()), float(y.max())
    for name, p in predictions.items():
        p = np.asarray(p, dtype=np.float64)
        rmse = float(np.sqrt(np.mean((p - y) ** 2)))
        ax.scatter(y[rows], p[rows], s=6, alpha=0.35, label=f"{name} (RMSE {rmse:.4g})")
        lo, hi = min(lo, float(p.min())), max(hi, float(p.max()))
    ax.plot([lo, hi], [lo, hi], ls="--", color="gray", lw=0.8, label="prediction = actual")
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    ax.legend(loc="upper left")
    return _save(fig, path)


def residual_histogram(y: np.ndarray, predictions: dict[str, np.ndarray], path: str | Path, bins: int = 40) -> Path:
    """Histogram of residuals (prediction - actual) per regressor on shared bins, mean and sd in the legend."""
    y = np.asarray(y, dtype=np.float64)
    residuals = {name: np.asarray(p, dtype=np.float64) - y for name, p in predictions.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(residuals.values())), bins=bins)
    fig = _figure()
    ax = fig.add_subplot()
    for name, r in residuals.items():
        ax.hist(r, bins=edges, alpha=0.55, label=f"{name} (mean {r.mean():+.3g}, sd {r.std():.3g})")
    ax.axvline(0.0, color="gray", lw=0.8, ls="--")
    ax.set(xlabel="residual (prediction - actual)", ylabel="rows", title="Residuals")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def latency_histogram(samples, path: str | Path) -> Path:
    """Histogram of per-call times, one panel per bucket, models overlaid.

    ``samples``: ``{(model, bucket): [ms, ...]}`` or a :class:`tasks.canary.latency.LatencyReport` (its raw samples,
    by its clock, which the axis names).
    """
    clock = getattr(samples, "clock", "wall")
    if hasattr(samples, "samples"):
        samples = samples.samples()
    buckets = sorted({b for _, b in samples})
    models = list(dict.fromkeys(m for m, _ in samples))
    fig = _figure(4.0 * len(buckets), 3.5)
    for i, bucket in enumerate(buckets):
        ax = fig.add_subplot(1, len(buckets), i + 1)
        data = {m: np.asarray(samples[(m, bucket)]) for m in models if (m, bucket) in samples}
        every = np.concatenate(list(data.values()))
        edges = np.histogram_bin_edges(every, bins=min(30, max(5, len(every) // 4)))
        for m, s in data.items():
            ax.hist(s, bins=edges, alpha=0.55, label=f"{m} p50 {np.median(s):.3g} / p99 {np.percentile(s, 99):.3g}")
        ax.set(xlabel=f"ms per call ({clock} clock)", ylabel="calls", title=f"bucket {bucket}")
        ax.legend(fontsize="small")
    return _save(fig, path)


def slice_delta_plot(rows: Sequence[tuple[str, float, float, float, str]], path: str | Path,
                     metric: str = "delta (candidate - champion)") -> Path:
    """Per-slice delta with its CI as a horizontal error bar; colour by status ('pass', 'fail', 'too small').

    ``rows``: (label, delta, ci_low, ci_high, status); NaN CI bounds draw the point only.
    """
    fig = _figure(6.5, max(2.5, 0.35 * len(rows) + 1.2))
    ax = fig.add_subplot()
    for i, (label, delta, lo, hi, status) in enumerate(rows):
        color = STATUS_COLORS.get(status, "tab:blue")
        err = None if np.isnan(lo) or np.isnan(hi) else [[delta - lo], [hi - delta]]
        ax.errorbar([delta], [i], xerr=err, fmt="o", color=color, capsize=3)
    ax.axvline(0.0, color="gray", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)), [f"{r[0]} ({r[4]})" for r in rows])
    ax.invert_yaxis()
    ax.set(xlabel=metric, title="Per-slice deltas with CIs")
    return _save(fig, path)
