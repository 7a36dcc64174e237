"""The canary's I/O-side parts: shadow scoring, latency timing of both artifacts, TPU estimates, plots.

Each takes the loaded, hash-verified models (tasks.registration.inference.CompiledModel) and returns the
pure modules' reports (tasks/canary/shadow.py, tasks/canary/latency.py, tasks/canary/plots.py) with their checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.errors import LockgateError
from tasks.evidence import EvidenceFile, evidence_file
from tasks.policy import CanaryPolicy


def model_task(cand, champ) -> str:
    """The task of the canary, from the candidate's registered model config; a champion of another task cannot be
    compared with it (a clear error, recorded as the gate's rejection)."""
    task = cand.config.task
    if champ is not None and champ.config.task != task:
        raise LockgateError(
            f"candidate v{cand.record.version} is a {task} model but champion v{champ.record.version} is a "
            f"{champ.config.task} model; a canary compares models of one task (register it under another model name)")
    return task


def shadow_report(cand, champ, df: pd.DataFrame, slice_columns: list[str], cp: CanaryPolicy,
                  task: str = "classification"):
    """Both models on the latest production partition (unlabeled), by slice: agreement, flips, PSI, JS of the
    scores (classifier); PSI, JS and |Δ prediction| of the predicted values, flips "not applicable" (regressor).
    The checks decide only with ``canary.shadow_decides``; otherwise they are informational."""
    from tasks.canary.shadow import policy_shadow_checks, regression_shadow_comparison, shadow_comparison

    slices = {c: df[c].to_numpy() for c in slice_columns if c in df.columns}
    if task == "regression":
        report = regression_shadow_comparison(cand.score(df), champ.score(df), slices=slices)
    else:
        report = shadow_comparison(cand.score(df), champ.score(df), threshold=cp.decision_threshold, slices=slices)
    return report, policy_shadow_checks(report, cp)


def latency_clock(choice: str) -> str:
    """The policy's latency_clock, with 'auto' resolved: 'busy' on JAX's CPU backend (a compiled call's work is all
    CPU in this process), 'wall' on an accelerator (the process waits for the device)."""
    if choice != "auto":
        return choice
    import jax

    return "busy" if jax.default_backend() == "cpu" else "wall"


def latency_report(cand, champ, golden: pd.DataFrame, cp: CanaryPolicy):
    """p50/p95/p99 per bucket of both compiled artifacts on this host, timed interleaved; budget checks."""
    from models.export import score_bucketed
    from models.features import feature_matrix
    from models.inputs import take_rows
    from tasks.canary.latency import latency_checks, measure_latency, retimed_checks

    # rows are passed as indices so each model uses its own feature encoding of the same rows
    features = {name: feature_matrix(golden, m.feature_spec) for name, m in (("candidate", cand), ("champion", champ))
                if m is not None}
    models = {name: m for name, m in (("candidate", cand), ("champion", champ)) if m is not None}

    def scorer(name):
        m, x = models[name], features[name]
        return lambda idx: score_bucketed(m.exported, m.params, take_rows(x, idx[:, 0].astype(np.int64)), buckets=(len(idx),))

    rows = np.arange(len(golden), dtype=np.float32)[:, None]
    scorers = {name: scorer(name) for name in models}

    clock = latency_clock(cp.latency_clock)

    def measure(buckets, repeats=cp.latency_repeats):
        return measure_latency(scorers, rows, buckets=buckets, repeats=repeats, clock=clock)

    def budget(report):
        return latency_checks(report, champion="champion" if champ is not None else None,
                              max_p99_ratio=cp.max_p99_ratio, max_p99_ms=cp.max_p99_ms or None,
                              floor_ms=cp.latency_floor_ms)

    report = measure(cp.latency_buckets)
    return report, retimed_checks(report, budget, measure, retimes=cp.latency_retimes)


def tpu_estimates(version_evidence: Path) -> dict[str, dict[int, float]]:
    """Roofline latency (ms) per TPU target and bucket from the compile report, shown beside the CPU timings."""
    path = version_evidence / "compilation.json"
    if not path.exists():
        return {}
    rows = (json.loads(path.read_text()).get("report") or {}).get("rows", [])
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.get("variant") == "f32" and r.get("estimated_seconds") is not None:
            out.setdefault(r["target"], {})[r["bucket"]] = r["estimated_seconds"] * 1e3
    return out


def canary_plots(y, p_c, p_h, result, latency, folder: Path, *, draw: bool = True) -> dict[str, EvidenceFile]:
    """PNG plots of both models (ROC and calibration curves of classifiers; predicted-vs-actual and residuals of
    regressors), latency histograms, per-slice deltas with CIs, and the HTML report page (checks table and every
    plot embedded), each with its sha256. ``draw`` False (policy ``canary.plots: on_failures`` on a passed canary):
    the HTML report alone."""
    from tasks.canary.html import canary_report_html

    if not draw:
        return {"report": evidence_file(canary_report_html(result, {}, folder / "canary_report.html"))}
    from tasks.canary.plots import (
        calibration_plot,
        latency_histogram,
        prediction_scatter_plot,
        residual_histogram,
        roc_plot,
        slice_delta_plot,
    )

    scores = {f"candidate v{result.candidate_version}": p_c}
    if p_h is not None:
        scores[f"champion v{result.champion_version}"] = p_h
    if result.task == "regression":
        files = {"scatter": prediction_scatter_plot(y, scores, folder / "scatter.png"),
                 "residuals": residual_histogram(y, scores, folder / "residuals.png")}
    else:
        files = {"roc": roc_plot(y, scores, folder / "roc.png"),
                 "calibration": calibration_plot(y, scores, folder / "calibration.png")}
    if latency is not None:
        files["latency"] = latency_histogram(latency, folder / "latency.png")
    if result.slices:
        rows = [(f"{s['column']}={s['value']}", s["delta"] if s["delta"] is not None else float("nan"),
                 s["ci_low"] if s["ci_low"] is not None else float("nan"),
                 s["ci_high"] if s["ci_high"] is not None else float("nan"),
                 {"ok": "pass", "regressed": "fail"}.get(s["status"], s["status"])) for s in result.slices]
        files["slices"] = slice_delta_plot(rows, folder / "slices.png",
                                           metric=f"{result.slices[0]['metric']} delta (candidate - champion)")
    files["report"] = canary_report_html(result, dict(files), folder / "canary_report.html")
    return {k: evidence_file(v) for k, v in files.items()}
