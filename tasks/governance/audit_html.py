"""Render the audit report as one self-contained HTML file (inline CSS, inline SVG plots, a small inline script).

Nothing is loaded from the network. The script only filters the ledger table; it catches its
own errors into ``#script-errors`` and writes ``ok`` into ``#script-status`` when it ran, so a
headless browser test can tell a page that works from one that does not.
"""

from __future__ import annotations

from html import escape

from tasks.governance.audit_evidence import EvidenceCheck
from tasks.governance.audit_report import AuditEntry, AuditReport

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#212121;max-width:1400px}
h1{margin-bottom:0.2em} h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:0.5em 0;font-size:0.85em;width:100%}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f5} .ok{color:#2e7d32} .bad{color:#c62828;font-weight:bold} .muted{color:#757575}
.box{border:1px solid #c62828;background:#ffebee;padding:0.5em 1em;margin:1em 0}
.good{border-color:#2e7d32;background:#e8f5e9} code{font-size:0.9em} figure{margin:0.5em 0}
details{margin:0.3em 0} .tag{display:inline-block;padding:0 4px;border-radius:3px;background:#eee;margin:1px}
"""

ERROR_CATCHER = """
window.__auditErrors = [];
window.addEventListener('error', function (ev) {
  window.__auditErrors.push(String(ev.message || ev));
  var box = document.getElementById('script-errors');
  if (box) { box.textContent = window.__auditErrors.join('\\n'); box.hidden = false; }
});
"""

SCRIPT = """
(function () {
  var input = document.getElementById('ledger-filter');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#ledger-table tbody tr'));
  var count = document.getElementById('ledger-count');
  function apply() {
    var q = input.value.toLowerCase(), shown = 0;
    rows.forEach(function (r) {
      var hit = !q || r.textContent.toLowerCase().indexOf(q) >= 0;
      r.hidden = !hit; if (hit) { shown++; }
    });
    count.textContent = shown + ' of ' + rows.length + ' entries';
  }
  input.addEventListener('input', apply);
  apply();
  if (window.__auditErrors.length === 0) { document.getElementById('script-status').textContent = 'ok'; }
})();
"""


def _e(value) -> str:
    return escape("-" if value is None else str(value))


def _table(headers: list[str], rows: list[list[str]], *, table_id: str | None = None) -> str:
    """``rows`` hold HTML already escaped by the caller."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def evidence_links(checks: list[EvidenceCheck]) -> str:
    parts = []
    for c in checks:
        mark = '<span class="ok">✓</span>' if c.status == "ok" else f'<span class="bad">✗ {c.status}</span>'
        title = f"recorded sha256 {c.sha256}" + (f"; now {c.actual_sha256}" if c.actual_sha256 else "")
        name = f'<a href="{escape(c.link)}" title="{escape(title)}">{escape(c.role)}</a>' if c.link else \
            f'<span title="{escape(title)}">{escape(c.role)}</span>'
        parts.append(f'<span class="tag">{mark} {name}</span>')
    return " ".join(parts) or '<span class="muted">none</span>'


def _version_label(model: str, version: int | None) -> str:
    return "-" if version is None else f"{escape(model)} v{version}"


def _entry_rows(entries: list[AuditEntry]) -> list[list[str]]:
    return [[str(e.seq), _e(e.recorded_at[:19]), _e(e.actor), f"<code>{_e(e.action)}</code>",
             _version_label(e.model_name, e.version), _e(e.alias), _e(e.reason), _e(e.policy), _e(e.flow_run_id),
             evidence_links(e.evidence)] for e in entries]


def _versions(report: AuditReport) -> str:
    out = []
    for v in report.versions:
        meta = _table(["registered", "by", "description", "arch", "status", "contract", "training data (reference)",
                       "deployed artifact sha256", "model card"],
                      [[_e(v.registered_at), _e(v.registered_by), _e(v.description), _e(v.arch), _e(v.status),
                        f"{_e(v.contract)}@{_e(v.contract_version)} <code>{_e(v.contract_fingerprint[:12])}</code>",
                        f"<code>{_e(v.reference_sha256[:16])}</code> ({_e(v.reference_rows)} rows)",
                        f"<code>{_e(v.artifact_sha256[:16])}</code>",
                        f'<a href="{escape(v.model_card)}">model card</a>' if v.model_card else "-"]])
        gates = _table(["gate", "decision", "reasons", "result", "files"],
                       [[_e(g.gate), f'<span class="{"ok" if g.passed else "bad"}">{_e(g.decision)}</span>',
                         "<br>".join(_e(r) for r in g.reasons),
                         f'<a href="{escape(g.link)}">{escape(g.gate)}.json</a>' if g.link else "-",
                         evidence_links(g.files)] for g in v.gates])
        datasets = _datasets(v)
        canary = ""
        if v.canary is not None:
            metrics = ", ".join(f"{k} {val:.4g}" for k, val in v.canary.metrics.items())
            rows = [[_e(d.metric), f"{d.candidate:.4f}", _e(f"{d.champion:.4f}" if d.champion is not None else None),
                     _e(f"{d.delta:+.4f}" if d.delta is not None else None),
                     _e(f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]" if d.ci_low is not None else None),
                     _e(f"{d.confidence:.0%}" if d.confidence else None)] for d in v.canary.deltas]
            canary = (f"<p>canary ({_e(v.canary.task)}, {_e(v.canary.decision)}, champion "
                      f"{_e('v' + str(v.canary.champion_version) if v.canary.champion_version else 'none')}): "
                      f"{_e(metrics)}</p>" + (_table(["metric", "candidate", "champion", "delta", "CI", "level"], rows)
                                               if rows else ""))
        out.append(f'<details id="version-{escape(v.model_name)}-{v.version}"><summary><b>{escape(v.model_name)} '
                   f'v{v.version}</b> — {_e(v.status)}</summary>{meta}{datasets}{gates}{canary}</details>')
    return "".join(out) or '<p class="muted">no versions in range</p>'


def _datasets(v) -> str:
    """The datasets a version was trained and evaluated on, with provenance and licence."""
    if not v.datasets:
        return ""
    return _table(["dataset", "used for", "data", "rows", "licence (SPDX)", "source", "owner", "personal data",
                   "column classification"],
                  [[_e(d.role), _e(d.used_for), f"<code>{_e(d.dataset)}</code>", _e(d.rows),
                    _e(d.license) if d.license else '<span class="bad">not recorded</span>', _e(d.source), _e(d.owner),
                    _e(d.personal_data), _e(d.classification)] for d in v.datasets])


def _figure(svg: str, fig_id: str, caption: str) -> str:
    if not svg:
        return f'<p class="muted" id="{fig_id}-empty">nothing to plot: {escape(caption)}</p>'
    return f'<figure id="{fig_id}">{svg}<figcaption class="muted">{escape(caption)}</figcaption></figure>'


def render_html(report: AuditReport) -> str:
    """The whole report as one HTML page."""
    from tasks.governance.audit_incidents import incidents_html
    from tasks.governance.audit_plots import canary_svg, champion_timeline_svg, drift_svg, rows_svg
    from tasks.governance.framework_map import framework_map_html

    rng = f"{report.since or 'the first entry'} to {report.until or 'now'}"
    chain = report.ledger_check
    chain_box = (f'<div class="box good">ledger hash chain intact ({chain.entries} entries)</div>' if chain.ok else
                 f'<div class="box">ledger hash chain BROKEN at entry {chain.first_bad_seq}: {_e(chain.problem)}</div>')
    problems = (f'<div class="box" id="evidence-problems"><b>{len(report.evidence_problems)} evidence file(s) missing or '
                f'changed since the decision</b><ul>' + "".join(f"<li>{_e(p)}</li>" for p in report.evidence_problems)
                + "</ul></div>") if report.evidence_problems else \
        '<div class="box good" id="evidence-problems">every evidence file matches the sha256 recorded in the ledger</div>'
    spans = _table(["model version", "champion from", "until", "how it became champion"],
                   [[_version_label(s.model_name, s.version), _e(s.start[:19]), _e(s.end[:19] if s.end else "now"),
                     _e(s.kind)] for s in report.champion_timeline])
    changes = _table(["#", "when", "model version", "previous", "kind", "by", "reason", "policy", "flow run", "evidence"],
                     [[str(c.seq), _e(c.at[:19]), _version_label(c.model_name, c.version),
                       _e(f"v{c.previous_version}" if c.previous_version else None), _e(c.kind), _e(c.actor),
                       _e(c.reason), _e(c.policy), _e(c.flow_run_id), evidence_links(c.evidence)]
                      for c in report.champion_changes])
    batches = _table(["#", "when", "partition", "scored by", "contract", "status", "rows scored", "quarantined", "drift",
                      "drifted share", "evidence"],
                     [[str(b.seq), _e(b.at[:19]), _e(b.partition), _version_label(b.model_name, b.version),
                       _e(b.contract), _e(b.status), _e(b.rows_scored), _e(b.rows_quarantined), _e(b.drift_decision),
                       _e(f"{b.drifted_share:.3f}" if b.drifted_share is not None else None),
                       '<span class="ok">✓</span>' if b.evidence_ok else '<span class="bad">✗</span>']
                      for b in report.batches])
    contracts = _table(["contract", "version", "fingerprint", "licence (SPDX)", "source", "used by"],
                       [[_e(c.name), _e(c.version), f"<code>{_e(c.fingerprint)}</code>",
                         _e(c.license) if c.license else '<span class="bad">not recorded</span>', _e(c.source),
                         _e(", ".join(c.model_versions))] for c in report.contracts])
    counts = ", ".join(f"{escape(k)}: {n}" for k, n in sorted(report.action_counts.items())) or "none"
    headers = ["#", "when (UTC)", "actor", "action", "version", "alias", "reason", "policy", "flow run", "evidence"]
    timeline_versions = ",".join(sorted({f"v{s.version}" for s in report.champion_timeline}))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lockgate audit report</title>
<style>{CSS}</style><script>{ERROR_CATCHER}</script></head>
<body>
<h1>lockgate audit report</h1>
<p class="muted">models {_e(', '.join(report.models) or 'none')} · ledger entries from {_e(rng)} · generated
{_e(report.generated_at)} by {_e(report.generated_by)} · registry <code>{_e(report.tracking_uri)}</code> · ledger
<code>{_e(report.ledger_url)}</code></p>
<pre id="script-errors" class="box" hidden></pre>
<p class="muted">page script: <span id="script-status">not run</span></p>
{chain_box}{problems}
<p>entries in range by action: {counts}</p>
<h2>Champion timeline</h2>
<section id="champion-timeline" data-versions="{escape(timeline_versions)}">
{_figure(champion_timeline_svg(report), 'champion-timeline-plot', 'which version was champion when')}
{spans}</section>
<h2>Champion changes</h2><section id="champion-changes">{changes}</section>
<h2>Approvals, rejections, rollbacks</h2>
<section id="decisions">{_table(headers, _entry_rows(report.decisions))}</section>
<h2>Canary metrics per candidate</h2>
<section id="canary">{_figure(canary_svg(report), 'canary-plot', 'headline metric and its delta vs the champion')}</section>
<h2>Batches: which version scored which partition</h2>
<section id="batches">{batches}
{_figure(drift_svg(report), 'drift-plot', 'drift per partition')}
{_figure(rows_svg(report), 'rows-plot', 'rows per partition')}</section>
<h2>Incidents</h2><section id="incidents">{incidents_html(report.incidents, evidence_links)}</section>
<h2>Contracts</h2><section id="contracts">{contracts}</section>
<h2>Model versions and their evidence</h2><section id="versions">{_versions(report)}</section>
<h2>Framework map</h2><section id="framework-map">{framework_map_html(report.framework_map)}</section>
<h2>Ledger</h2>
<section id="ledger"><p><input id="ledger-filter" placeholder="filter (action, version, actor, text)" size="40">
<span id="ledger-count" class="muted"></span></p>{_table(headers, _entry_rows(report.entries), table_id='ledger-table')}
</section>
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(report: AuditReport, out_dir) -> tuple:
    """Write ``audit_report.html`` and ``audit_report.json`` into ``out_dir``; return their paths."""
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / "audit_report.html", out / "audit_report.json"
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    return html_path, json_path
