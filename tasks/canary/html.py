"""The canary report as one self-contained HTML page: the checks table and the plots.

Works offline: the PNG plots are embedded as base64 ``data:`` URIs and the page has no
script, stylesheet or font from anywhere else, so the file alone is the evidence (and
its sha256 covers everything shown).
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from tasks.evidence import Check, _fmt

PLOT_TITLES = {
    "roc": "ROC curves",
    "calibration": "Calibration",
    "scatter": "Predicted vs actual",
    "residuals": "Residuals",
    "latency": "Latency per call",
    "slices": "Per-slice deltas with CIs",
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.fail td, tr.underpowered td { background: #fde8e8; }
tr.info td { background: #f4f4f4; color: #555; }
.pass { color: #176317; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
td.info { font-weight: bold; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; }
img { max-width: 640px; border: 1px solid #ddd; }
"""


def check_intervals(result) -> dict[str, tuple[float, float]]:
    """Check name -> (CI low, CI high) for the checks decided on a CI: metric deltas and slices."""
    out: dict[str, tuple[float, float]] = {}
    by_metric = {d["metric"]: (d["ci_low"], d["ci_high"]) for d in result.deltas}
    for c in result.checks:
        metric = c.name.split("_delta (", 1)[0] if "_delta (" in c.name else None
        if metric in by_metric:
            out[c.name] = by_metric[metric]
    for s in result.slices:
        if s["ci_low"] is not None:
            out[f"slice:{s['column']}={s['value']}:{s['metric']}_delta"] = (s["ci_low"], s["ci_high"])
    return out


def _ci_cell(ci: tuple[float, float] | None) -> str:
    if ci is None or not all(math.isfinite(v) for v in ci):
        return "-" if ci is None else "undefined"
    return f"[{ci[0]:+.5g}, {ci[1]:+.5g}]"


def _row(c: Check, ci: tuple[float, float] | None) -> str:
    verdict = "info" if c.informational else "pass" if c.passed else "fail"
    word = ("INFORMATIONAL" + ("" if c.passed else " (over the limit)")) if c.informational else verdict.upper()
    cells = [c.name, _fmt(c.value), _ci_cell(ci), c.relation() if c.note else c.comparison, _fmt(c.threshold)]
    tds = "".join(f"<td>{html.escape(str(v))}</td>" for v in cells)
    return f'<tr class="{verdict}">{tds}<td class="{verdict}">{html.escape(word)}</td></tr>'


def _power_table(power) -> list[str]:
    """The golden set's power (tasks.canary.power.GoldenPower): what each margined metric's CI resolves."""
    if power is None:
        return []
    rows = []
    for m in power.metrics:
        h = "undefined" if m.half_width is None else f"±{m.half_width:.4g}"
        enough = "yes" if m.resolves_margin else "NO: too small for the margin"
        needed = "-" if m.rows_needed is None else f"{m.rows_needed:,}"
        cells = [m.metric, h, f"{m.margin:g}", m.policy_key, enough, needed]
        rows.append(f'<tr class="{"enough" if m.resolves_margin else "underpowered"}">'
                    + "".join(f"<td>{html.escape(v)}</td>" for v in cells) + "</tr>")
    return [f"<h2>Golden set power ({power.n} rows, {power.confidence:.0%} CIs)</h2>",
            "<p>The smallest difference each metric's paired-bootstrap CI resolves at this size, against its "
            "margin; reported before the decision, it does not change it.</p>",
            '<table id="power"><thead><tr><th>metric</th><th>resolves</th><th>margin</th><th>policy key</th>'
            "<th>enough</th><th>rows needed</th></tr></thead><tbody>", *rows, "</tbody></table>"]


def _image(role: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    title = html.escape(PLOT_TITLES.get(role, role))
    return (f'<figure id="plot-{html.escape(role)}"><figcaption>{title}</figcaption>'
            f'<img alt="{title}" src="data:image/png;base64,{data}"></figure>')


def canary_report_html(result, plots: dict[str, Path], path: str | Path) -> Path:
    """Write the canary report page for ``result`` (a :class:`tasks.canary.gate.CanaryResult`) with the PNG ``plots``
    (role -> path, embedded as base64) to ``path``; returns the path."""
    intervals = check_intervals(result)
    champion = f"champion v{result.champion_version}" if result.champion_version is not None else "no champion"
    verdict = "pass" if result.passed else "fail"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>canary v{result.candidate_version}: {html.escape(result.decision)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Canary: candidate v{result.candidate_version} vs {champion} "
        f'(<span class="{verdict}">{html.escape(result.decision)}</span>)</h1>',
        f"<p>task: {html.escape(result.task)}; golden rows: {result.candidate.n}</p>",
        "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons) + "</ul>",
        *_power_table(result.power),
        "<h2>Checks</h2>",
        '<table id="checks"><thead><tr><th>check</th><th>value</th><th>CI</th><th>comparison</th>'
        "<th>threshold</th><th>verdict</th></tr></thead><tbody>",
        *(_row(c, intervals.get(c.name)) for c in result.checks),
        "</tbody></table>",
        *(f'<p class="retiming">{html.escape(line)} (a latency check holds its best timing)</p>'
          for line in result.retiming_lines()),
        "<h2>Plots</h2>",
        *(_image(role, p) for role, p in plots.items()),
        *(() if plots else ('<p class="note">No plots were drawn for this canary: the policy draws them only where '
                            "the canary fails (canary.plots: on_failures).</p>",)),
        "</body></html>",
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
