"""The audit report's plots as inline SVG (matplotlib, text kept as text so it can be searched and selected).

Each function takes the typed report and returns an ``<svg>`` string, or "" when there is
nothing to draw. No file and no network is touched: the HTML stays self-contained.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone

from tasks.governance.audit_report import AuditReport

KIND_COLOURS = {"promotion": "#2e7d32", "rollback": "#c62828", "removal": "#757575"}
DRIFT_COLOURS = {"ok": "#2e7d32", "warn": "#f9a825", "breach": "#c62828"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False})
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _when(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def champion_timeline_svg(report: AuditReport) -> str:
    """One row per model version: bars while it was champion; promotions, rollbacks and rejections marked."""
    if not report.champion_timeline:
        return ""
    plt = _pyplot()
    import matplotlib.dates as mdates

    end = _when(report.until) if report.until else _when(report.generated_at)
    rows = sorted({(s.model_name, s.version) for s in report.champion_timeline})
    rows += sorted({(d.model_name, d.version) for d in report.decisions
                    if d.action == "candidate.rejected" and d.version is not None} - set(rows))
    y = {r: i for i, r in enumerate(rows)}
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.4))
    for s in report.champion_timeline:
        start, stop = _when(s.start), _when(s.end) if s.end else end
        ax.barh(y[(s.model_name, s.version)], mdates.date2num(stop) - mdates.date2num(start), left=mdates.date2num(start),
                height=0.5, color=KIND_COLOURS.get(s.kind, "#1565c0"), alpha=0.75)
    for c in report.champion_changes:
        if c.version is not None and (c.model_name, c.version) in y:
            marker = "v" if c.kind == "rollback" else "^"
            ax.plot(mdates.date2num(_when(c.at)), y[(c.model_name, c.version)], marker, color="black", markersize=7)
    for d in report.decisions:
        if d.action == "candidate.rejected" and (d.model_name, d.version) in y:
            ax.plot(mdates.date2num(_when(d.recorded_at)), y[(d.model_name, d.version)], "x", color="#c62828",
                    markersize=8, mew=2)
    ax.set_yticks(range(len(rows)), [f"{m} v{v}" for m, v in rows])
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.set_title("champion over time (▲ promotion, ▼ rollback, ✕ rejected candidate)")
    fig.autofmt_xdate()
    return _svg(fig)


def canary_svg(report: AuditReport) -> str:
    """Per candidate, in the order of its decision: the headline metric's delta vs the champion with its CI."""
    points = []
    for v in report.versions:
        if v.canary is None:
            continue
        headline = "rmse" if v.canary.task == "regression" else "auc"
        delta = next((d for d in v.canary.deltas if d.metric == headline), None)
        points.append((v, headline, delta))
    if not points:
        return ""
    plt = _pyplot()
    fig, (ax_abs, ax_delta) = plt.subplots(1, 2, figsize=(9, 3))
    labels = [f"v{v.version}" for v, _, _ in points]
    for i, (v, headline, delta) in enumerate(points):
        colour = "#2e7d32" if v.canary.decision == "pass" else "#c62828"
        ax_abs.plot(i, v.canary.metrics.get(headline, float("nan")), "o", color=colour)
        if delta is not None and delta.ci_low is not None:
            ax_delta.errorbar(i, delta.delta, yerr=[[delta.delta - delta.ci_low], [delta.ci_high - delta.delta]],
                              fmt="o", color=colour, capsize=4)
            ax_delta.annotate(f"vs v{v.canary.champion_version}", (i, delta.ci_high), fontsize=7, ha="center",
                              va="bottom")
    metric = points[-1][1].upper()
    ax_abs.set_title(f"candidate {metric} on the golden set")
    ax_delta.set_title(f"{metric} delta vs champion (CI)")
    ax_delta.axhline(0, color="#9e9e9e", linewidth=0.8)
    for ax in (ax_abs, ax_delta):
        ax.set_xticks(range(len(points)), labels)
        ax.set_xlim(-0.5, len(points) - 0.5)
    return _svg(fig)


def drift_svg(report: AuditReport) -> str:
    """Share of drifted columns per scored partition (colour: the drift decision), in partition order."""
    batches = [b for b in report.batches if b.status == "scored" and b.drifted_share is not None]
    if not batches:
        return ""
    plt = _pyplot()
    batches = sorted(batches, key=lambda b: (b.partition or "", b.seq))
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.bar(range(len(batches)), [b.drifted_share for b in batches],
           color=[DRIFT_COLOURS.get(b.drift_decision or "", "#1565c0") for b in batches])
    ax.set_xticks(range(len(batches)), [f"{b.partition}\nv{b.version}" for b in batches], fontsize=7)
    ax.set_ylabel("drifted share of columns")
    ax.set_title("drift per scored partition (green ok, amber warn, red breach)")
    return _svg(fig)


def rows_svg(report: AuditReport) -> str:
    """Rows scored and quarantined per partition, labelled with the version that scored it."""
    batches = sorted((b for b in report.batches if b.rows_scored is not None), key=lambda b: (b.partition or "", b.seq))
    if not batches:
        return ""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 2.8))
    x = range(len(batches))
    scored = [b.rows_scored for b in batches]
    ax.bar(x, scored, color="#1565c0", label="scored")
    ax.bar(x, [b.rows_quarantined or 0 for b in batches], bottom=scored, color="#f9a825", label="quarantined")
    ax.set_xticks(list(x), [f"{b.partition}\nv{b.version}" for b in batches], fontsize=7)
    ax.set_title("rows per partition")
    ax.legend(loc="lower right", fontsize=7)
    return _svg(fig)
