"""Input checks of the canary statistics: labeled golden sets and model outputs, for both tasks.

Classification: labels in {0, 1}, scores probabilities in [0, 1]. Regression: finite
numeric labels and predicted values. Every problem is a :class:`CanaryInputError`
with a one-line message naming it (and the model, and how many rows).
"""

from __future__ import annotations

import numpy as np


class CanaryInputError(ValueError):
    """Golden-set labels or model scores that the canary statistics cannot use (one-line message)."""


# ---------------------------------------------------------------------------------------------- inputs


def as_1d(name: str, a: object) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise CanaryInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _numeric(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        raise CanaryInputError(f"{name} must be numeric, got dtype {arr.dtype}") from None


def _check_scores(name: str, p: object, n: int, probabilities: bool, what: str = "scores") -> np.ndarray:
    if p is None:
        raise CanaryInputError(f"{name} {what} are missing (None)")
    arr = _numeric(f"{name} {what}", as_1d(f"{name} {what}", p))
    if len(arr) != n:
        raise CanaryInputError(f"{name} {what} have {len(arr)} rows but the labels have {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        n_nan = int(np.isnan(arr).sum())
        raise CanaryInputError(
            f"{name} {what} contain {int(bad.sum())} non-finite values of {n} ({n_nan} NaN, {int(bad.sum()) - n_nan} inf)"
        )
    if probabilities:
        out = (arr < 0) | (arr > 1)
        if out.any():
            raise CanaryInputError(
                f"{name} scores must be probabilities in [0, 1]; {int(out.sum())} of {n} are outside "
                f"(min {arr.min():.4g}, max {arr.max():.4g})"
            )
    return arr


def check_inputs(
    y: object, p_candidate: object, p_champion: object | None = None, *, probabilities: bool = True,
    require_both_classes: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate a labeled golden set and return ``(y, p_candidate, p_champion)`` as float64[n] arrays.

    y: labels in {0, 1} (bool, int or float), shape [n]; p_*: scores, shape [n] (or [n, 1]),
    probabilities in [0, 1] unless ``probabilities=False``. Raises :class:`CanaryInputError`
    with a one-line message naming the problem (and the model, and how many rows).
    """
    if y is None:
        raise CanaryInputError("labels are missing (None)")
    y_arr = as_1d("labels", y)
    n = len(y_arr)
    if n == 0:
        raise CanaryInputError("the golden set is empty (0 labeled rows)")
    y_f = None
    if y_arr.dtype.kind == "O":  # e.g. ints with None from a nullable column: None becomes a missing label
        try:
            y_f = y_arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    elif y_arr.dtype.kind in "biuf":
        y_f = y_arr.astype(np.float64)
    if y_f is None:
        # strings: refuse rather than guess which string means positive
        sample = ", ".join(repr(v) for v in list(dict.fromkeys(y_arr.tolist()))[:3])
        raise CanaryInputError(f"labels must be numeric 0/1, got dtype {y_arr.dtype} (e.g. {sample})")
    n_missing = int(np.isnan(y_f).sum())
    if n_missing:
        raise CanaryInputError(f"labels are missing for {n_missing} of {n} rows (NaN)")
    bad = ~np.isin(y_f, (0.0, 1.0))
    if bad.any():
        found = np.unique(y_f[bad])[:5]
        raise CanaryInputError(
            f"labels must be 0/1; {int(bad.sum())} of {n} rows have other values ({', '.join(f'{v:g}' for v in found)})"
        )
    n_pos = int(y_f.sum())
    if require_both_classes and n_pos in (0, n):
        raise CanaryInputError(f"labels have one class only (all {int(y_f[0])}, n={n}); AUC and recall are undefined")
    pc = _check_scores("candidate", p_candidate, n, probabilities)
    ph = None if p_champion is None else _check_scores("champion", p_champion, n, probabilities)
    return y_f, pc, ph


def check_regression_inputs(
    y: object, y_candidate: object, y_champion: object | None = None, *, require_variation: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate a labeled golden set of a regression task; return ``(y, y_candidate, y_champion)`` as float64[n].

    y: finite numeric targets, shape [n]; y_*: predicted values, shape [n] (or [n, 1]), finite.
    ``require_variation``: constant targets are an error (R² is undefined), as one class is for a classifier.
    """
    if y is None:
        raise CanaryInputError("labels are missing (None)")
    y_arr = as_1d("labels", y)
    n = len(y_arr)
    if n == 0:
        raise CanaryInputError("the golden set is empty (0 labeled rows)")
    try:
        y_f = y_arr.astype(np.float64) if y_arr.dtype.kind in "biufO" else None
    except (TypeError, ValueError):
        y_f = None
    if y_f is None:
        sample = ", ".join(repr(v) for v in list(dict.fromkeys(y_arr.tolist()))[:3])
        raise CanaryInputError(f"regression labels must be numeric, got dtype {y_arr.dtype} (e.g. {sample})")
    n_missing = int(np.isnan(y_f).sum())
    if n_missing:
        raise CanaryInputError(f"labels are missing for {n_missing} of {n} rows (NaN)")
    n_inf = int(np.isinf(y_f).sum())
    if n_inf:
        raise CanaryInputError(f"labels contain {n_inf} infinite values of {n}")
    if require_variation and y_f.min() == y_f.max():
        raise CanaryInputError(f"labels are constant (all {y_f[0]:g}, n={n}); R² is undefined")
    yc = _check_scores("candidate", y_candidate, n, probabilities=False, what="predictions")
    yh = None if y_champion is None else _check_scores("champion", y_champion, n, probabilities=False,
                                                       what="predictions")
    return y_f, yc, yh
