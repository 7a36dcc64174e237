"""Evidently's drift statistics computed from mergeable summaries.

Each function mirrors one of Evidently 0.7's stattests
(``evidently/legacy/calculations/stattests``) on the values Evidently would see (a
column after replacing +-inf with NaN and dropping NaN), but reads counts and
histograms instead of the rows:

- ``wasserstein``: ``scipy.stats.wasserstein_distance / max(std(reference), 0.001)``,
  exact from value counts, or from a ``GRID_BINS`` grid with error <= grid step / norm;
- ``jensenshannon``, ``psi``, ``kl_div``: Evidently's ``get_binned_data`` (Sturges
  bins over both sides when the reference has > 20 distinct values, else one bin per
  value), then the same scipy call;
- ``chisquare`` and ``z``: value counts.

The default method follows Evidently's ``_get_default_stattest`` on the full data.
Tests compare every score here with Evidently on the same data (tests/tasks/test_drift_stats.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial import distance

from tasks.drift.summary import GRID_BINS, NumericSummary

#: Methods computed here from summaries. Every other Evidently stattest runs through
#: Evidently's own function on the rows (all of them, or a seeded sample).
MERGEABLE = frozenset({"wasserstein", "jensenshannon", "psi", "kl_div", "chisquare", "z"})
BINNED = frozenset({"jensenshannon", "psi", "kl_div"})


def default_method(kind: str, n_reference: int, n_values: int | None) -> str:
    """Evidently's automatic choice (``_get_default_stattest``) from the finite reference
    row count and the number of distinct values over both sides (None: very many)."""
    many = n_values is None
    if n_reference <= 1000:
        if kind == "numeric" and (many or n_values > 5):
            return "ks"
        return "chisquare" if not many and n_values > 2 else "z"
    if kind == "numeric":
        return "jensenshannon" if not many and n_values <= 5 else "wasserstein"
    return "jensenshannon"


def sturges_edges(lo: float, hi: float, n_total: int, integer: bool) -> np.ndarray:
    """``np.histogram_bin_edges(combined, bins="sturges")`` from the combined min, max and size."""
    first, last = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
    width = (hi - lo) / (np.log2(n_total) + 1.0)
    if width:
        if integer and width < 1:
            width = 1
        n_bins = int(np.ceil((last - first) / width))
    else:
        n_bins = 1
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=np.float64)


def _fill_zeroes(p: np.ndarray) -> np.ndarray:
    p = p.copy()
    smallest = p[p != 0].min()
    np.place(p, p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return p


def keyed_percents(ref: dict, cur: dict, n_ref: int, n_cur: int) -> tuple[np.ndarray, np.ndarray]:
    """Share of each value over the union of both sides' values (Evidently's keyed branch)."""
    keys = list(set(ref) | set(cur))
    return (np.array([ref.get(k, 0) / n_ref for k in keys], dtype=np.float64),
            np.array([cur.get(k, 0) / n_cur for k in keys], dtype=np.float64))


def binned_score(method: str, ref_p: np.ndarray, cur_p: np.ndarray) -> float:
    """Jensen-Shannon distance, PSI or KL divergence of two share vectors, as Evidently computes them."""
    if method == "jensenshannon":
        return float(distance.jensenshannon(ref_p, cur_p, None))
    ref_p, cur_p = _fill_zeroes(ref_p), _fill_zeroes(cur_p)
    if method == "psi":
        return float(np.sum((ref_p - cur_p) * np.log(ref_p / cur_p)))
    if method == "kl_div":
        return float(stats.entropy(ref_p, cur_p))
    raise ValueError(f"{method} is not a binned method")


def chisquare_p(ref: dict, cur: dict, n_ref: int, n_cur: int) -> float:
    keys = list(set(ref) | set(cur))
    k_norm = n_cur / n_ref
    f_exp = [ref.get(k, 0) * k_norm for k in keys]
    f_obs = [cur.get(k, 0) for k in keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(f_obs, f_exp)[1])


def z_p(ref: dict, cur: dict, n_ref: int, n_cur: int) -> float:
    """Two-proportion z-test on 'first value (sorted) vs the rest', as Evidently's ``z``."""
    if len(ref) == 1 and len(cur) == 1 and next(iter(ref)) == next(iter(cur)):
        return 1.0
    first = sorted(set(ref) | set(cur))[0]
    p1 = (n_ref - ref.get(first, 0)) / n_ref
    p2 = (n_cur - cur.get(first, 0)) / n_cur
    pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def wasserstein_norm(ref: NumericSummary, cur: NumericSummary) -> tuple[float, float]:
    """Normed Wasserstein distance and its error bound (0 when computed from exact counts)."""
    norm = max(ref.std, 0.001)
    if ref.counts is not None and cur.counts is not None:
        values, ref_cdf, cur_cdf = _aligned_cdfs(ref.counts, cur.counts, ref.n, cur.n)
        w = float(np.sum(np.abs(ref_cdf[:-1] - cur_cdf[:-1]) * np.diff(values)))
        return w / norm, 0.0
    lo, hi = min(ref.lo, cur.lo), max(ref.hi, cur.hi)
    step = (hi - lo) / GRID_BINS
    diff = np.cumsum(ref.grid)[:-1] / ref.n - np.cumsum(cur.grid)[:-1] / cur.n
    w = float(np.abs(diff).sum() * step)
    # Each value moves at most half a step to its bin centre (a hair more for rounding at a bin edge),
    # so each side moves at most step/2 in Wasserstein distance: |w - exact| <= step.
    return w / norm, step * (1 + 1e-6) / norm


def _aligned_cdfs(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], n_a: int, n_b: int):
    values = np.union1d(a[0], b[0])
    ca = np.zeros(len(values))
    cb = np.zeros(len(values))
    ca[np.searchsorted(values, a[0])] = a[1]
    cb[np.searchsorted(values, b[0])] = b[1]
    return values, np.cumsum(ca) / n_a, np.cumsum(cb) / n_b


def numeric_percents(ref: NumericSummary, cur: NumericSummary) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data`` shares for a numeric column (before zero filling)."""
    if ref.counts is not None and len(ref.counts[0]) <= 20:
        if cur.counts is None:
            raise RuntimeError("current value counts were not kept for a column with <= 20 reference values")
        return keyed_percents(dict(zip(*ref.counts)), dict(zip(*cur.counts)), ref.n, cur.n)
    edges = sturges_edges(min(ref.lo, cur.lo), max(ref.hi, cur.hi), ref.n + cur.n, ref.integer and cur.integer)
    return _sturges_counts(ref, edges) / ref.n, _sturges_counts(cur, edges) / cur.n


def _sturges_counts(s: NumericSummary, edges: np.ndarray) -> np.ndarray:
    if s.counts is not None:
        return np.histogram(s.counts[0], bins=edges, weights=s.counts[1].astype(np.float64))[0]
    return s.sturges.astype(np.float64)


def needs_bins(method: str, ref: NumericSummary, cur: NumericSummary) -> tuple[bool, bool]:
    """(Sturges histogram, Wasserstein grid) a numeric column needs from pass 2."""
    exact = ref.counts is not None and cur.counts is not None
    if exact:
        return False, False
    if method == "wasserstein":
        return False, True
    keyed = ref.counts is not None and len(ref.counts[0]) <= 20
    return method in BINNED and not keyed, False


def drifted(method_rule: str, score: float, threshold: float) -> bool:
    if math.isnan(score):
        return False
    return {"<": score < threshold, "<=": score <= threshold, ">": score > threshold,
            ">=": score >= threshold}[method_rule]
