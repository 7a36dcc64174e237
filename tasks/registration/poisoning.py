"""The poisoning screen of training/reference data: frames in, a typed result out, decided by policy.

Run at registration (the reference data, against the golden set when one is given) and in the
lifecycle (the registered reference snapshot against the run's golden set). The four checks
(tasks/registration/poisoning_checks.py) run on the contract's encoded features (the version's
feature spec); each is warn, fail or off by the policy's ``poisoning:`` section. A fail finding
fails the screen; warn findings are recorded and let it pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from tasks.evidence import Check, GateResult
from tasks.policy import PoisoningPolicy
from tasks.registration.poisoning_checks import (Finding, duplicate_findings, far_cluster_findings, label_balance_findings,
                                                 label_flip_findings, label_mean_findings, nearest_neighbours)

CHECKS = ("label_flips", "duplicates", "far_cluster", "label_balance")


class PoisoningResult(GateResult):
    dataset: str = Field(description="The screened (training/reference) data.")
    golden: str | None = Field(None, description="The golden set it was held against (None: its checks skipped).")
    task: str = Field(description="classification or regression (the model config's task).")
    n_rows: int = Field(description="Rows in the dataset.")
    n_screened: int = Field(description="Rows screened (a seeded sample of poisoning.max_rows above that).")
    findings: list[Finding] = Field(default_factory=list, description="What was found, fail findings first.")
    skipped: dict[str, str] = Field(default_factory=dict, description="Check -> why it did not run.")
    measured: dict[str, dict[str, float]] = Field(default_factory=dict, description="Check -> its measured values.")


def slice_masks(df: pd.DataFrame, contract, spec) -> dict[str, np.ndarray]:
    """'column=value' -> bool[n]: the contract's slice columns, else every categorical feature's values, else the
    quartiles of every numeric feature ('column in q2' ...)."""
    columns = [c for c in contract.slice_columns if c in df.columns] or [f.name for f in spec.categorical]
    masks = {}
    for column in columns:
        values = df[column].astype("string")
        for v in sorted(values.dropna().unique()):
            masks[f"{column}={v}"] = (values == v).fillna(False).to_numpy(bool)
    if masks:
        return masks
    for f in spec.numeric:
        x = pd.to_numeric(df[f.name], errors="coerce").to_numpy(np.float64)
        edges = np.nanquantile(x, [0.25, 0.5, 0.75]) if np.isfinite(x).any() else []
        bins = np.searchsorted(edges, x, side="right")
        for q in range(4):
            member = (bins == q) & np.isfinite(x)
            if member.any():
                masks[f"{f.name} in q{q + 1}"] = member
    return masks


def poisoning_screen(reference: pd.DataFrame, golden: pd.DataFrame | None, *, contract, spec, task: str,
                     policy: PoisoningPolicy, dataset: str, golden_name: str | None = None) -> PoisoningResult:
    """Screen ``reference`` (training rows with the contract's label and id) against ``golden``, decided by ``policy``.

    Args:
      reference, golden: frames with the feature spec's columns; golden may be None (far_cluster and label_balance
        are then skipped, and the result says so).
      contract: the data contract (label, id and slice columns). spec: the models.features.FeatureSpec encoding.
      task: "classification" or "regression".
    """
    from models.features import feature_matrix

    modes, skipped = policy.modes(), {}
    for name, mode in modes.items():
        if mode == "off":
            skipped[name] = "off in the policy"
    n_rows = len(reference)
    if n_rows > policy.max_rows:
        keep = np.sort(np.random.default_rng(policy.seed).choice(n_rows, size=policy.max_rows, replace=False))
        reference = reference.iloc[keep]
    reference = reference.reset_index(drop=True)
    label = contract.label_column
    has_label = label is not None and label in reference.columns
    if not has_label:
        for name in ("label_flips", "duplicates", "label_balance"):
            skipped.setdefault(name, f"the data have no label column ({label or 'none in the contract'})")
    if golden is None:
        for name in ("far_cluster", "label_balance"):
            skipped.setdefault(name, "no golden set given")
    elif len(golden) < 2 or len(reference) == 0:
        for name in ("far_cluster", "label_balance"):
            skipped.setdefault(name, f"{len(golden)} golden and {len(reference)} screened rows: too few to compare")
    elif has_label and label not in golden.columns:
        skipped.setdefault("label_balance", f"the golden set has no label column {label}")
    if task == "regression":
        skipped.setdefault("label_flips", "regression: labels have no classes to disagree with (residuals against "
                           "the neighbours' mean are not screened)")
    ids = (reference[contract.id_column].astype(str).to_numpy() if contract.id_column in reference.columns
           else np.array([f"row {i}" for i in range(len(reference))], dtype=object))
    x = np.nan_to_num(feature_matrix(reference, spec), posinf=0.0, neginf=0.0)
    findings: list[Finding] = []
    measured: dict[str, dict[str, float]] = {}
    run = [c for c in CHECKS if c not in skipped]
    if len(reference) < max(policy.neighbours + 1, 3):
        for name in ("label_flips", "duplicates"):
            if name in run:
                skipped[name] = f"{len(reference)} rows: too few for {policy.neighbours} neighbours"
        run = [c for c in CHECKS if c not in skipped]
    y = gy = None
    if has_label:
        labels = [reference[label]] + ([golden[label]] if golden is not None and label in golden.columns else [])
        if task == "regression":
            y = pd.to_numeric(reference[label], errors="coerce").to_numpy(np.float64)
            gy = (pd.to_numeric(golden[label], errors="coerce").to_numpy(np.float64)
                  if len(labels) == 2 else None)
        else:
            codes, _ = pd.factorize(pd.concat(labels, ignore_index=True).astype("string"), use_na_sentinel=False,
                                      sort=True)
            y, gy = codes[: len(reference)], (codes[len(reference):] if len(labels) == 2 else None)
    if {"label_flips", "duplicates"} & set(run):
        dist, idx = nearest_neighbours(x, policy.neighbours)
        if "label_flips" in run:
            p = policy.label_flips
            found, measured["label_flips"] = label_flip_findings(
                y, idx, ids, slice_masks(reference, contract, spec), min_disagreement=p.min_disagreement,
                min_z=p.min_z, min_ratio=p.min_ratio, min_suspects=p.min_suspects)
            findings += found
        if "duplicates" in run:
            p = policy.duplicates
            if task == "regression":
                tolerance = p.regression_label_tolerance * (float(np.nanstd(y)) or 1.0)

                def conflict(a, b):
                    return np.abs(a - b) > tolerance
            else:
                def conflict(a, b):
                    return a != b
            found, measured["duplicates"] = duplicate_findings(
                x, y, ids, dist, idx, near_distance=p.near_distance, max_conflicting_rows=p.max_conflicting_rows,
                conflict=conflict)
            findings += found
    if "far_cluster" in run:
        g = np.nan_to_num(feature_matrix(golden, spec), posinf=0.0, neginf=0.0)
        p = policy.far_cluster
        found, measured["far_cluster"] = far_cluster_findings(x, g, ids, golden_quantile=p.golden_quantile,
                                                              min_rows=p.min_rows)
        findings += found
    if "label_balance" in run:
        p = policy.label_balance
        balance = label_mean_findings if task == "regression" else label_balance_findings
        ok_y, ok_gy = (y[np.isfinite(y)], gy[np.isfinite(gy)]) if task == "regression" else (y, gy)
        found, measured["label_balance"] = balance(ok_y, ok_gy, max_share_diff=p.max_share_diff, min_z=p.min_z)
        findings += found
    return decide_poisoning(findings, measured, skipped, policy, dataset=dataset, golden=golden_name, task=task,
                            n_rows=n_rows, n_screened=len(reference))


def decide_poisoning(findings: list[Finding], measured: dict[str, dict[str, float]], skipped: dict[str, str],
                     policy: PoisoningPolicy, *, dataset: str, golden: str | None, task: str, n_rows: int,
                     n_screened: int) -> PoisoningResult:
    """fail when a check in 'fail' mode found something, warn when only 'warn' checks did, pass otherwise."""
    modes = policy.modes()
    findings = [f.model_copy(update={"mode": modes[f.check]}) for f in findings]
    findings.sort(key=lambda f: (f.mode != "fail", CHECKS.index(f.check)))
    checks = []
    for name in CHECKS:
        if name in skipped:
            continue
        mine = [f for f in findings if f.check == name]
        checks.append(Check(name=f"{name}:findings", value=len(mine), threshold=0, comparison="==", passed=not mine,
                            informational=modes[name] == "warn"))
        checks += [Check(name=f"{name}:{k}", value=v, passed=True) for k, v in measured.get(name, {}).items()]
    failed = [f for f in findings if f.mode == "fail"]
    decision = "fail" if failed else ("warn" if findings else "pass")
    reasons = [f"{f.mode}: {f.summary}" for f in findings]  # no brackets: consoles read [..] as markup
    if not findings:
        ran = [c for c in CHECKS if c not in skipped]
        reasons.append(f"{n_screened} rows screened ({', '.join(ran) or 'no check'}): no finding")
    reasons += [f"{name} skipped: {why}" for name, why in skipped.items()]
    if n_screened < n_rows:
        reasons.append(f"{n_screened} of {n_rows} rows screened (seeded sample, poisoning.max_rows)")
    return PoisoningResult(gate="poisoning", passed=not failed, decision=decision, reasons=reasons, checks=checks,
                           dataset=dataset, golden=golden, task=task, n_rows=n_rows, n_screened=n_screened,
                           findings=findings, skipped=skipped, measured=measured)


def refusal_line(result: PoisoningResult) -> str:
    """The one line registration is refused with: the first fail finding (check and counts), and how many more."""
    failed = [f for f in result.findings if f.mode == "fail"]
    more = f" (and {len(failed) - 1} more fail finding(s))" if len(failed) > 1 else ""
    return f"poisoning screen of {result.dataset} failed: {failed[0].summary}{more}; nothing registered"
