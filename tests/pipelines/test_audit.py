"""The audit report and model cards over a history made by the real flows: a champion, a rejected candidate, a
second promotion, an operator's rollback and scored partitions; the HTML checked in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.flow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory):
    """This module's LOCKGATE_HOME, with a lean policy (few compiles; a latency budget wide enough for a busy host)."""
    from pathlib import Path

    from tasks.settings import Settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCKGATE_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("LOCKGATE_POLICY_FILE", str(Path(__file__).with_name("audit_policy.yaml")))
        mp.setenv("LOCKGATE_ACTOR", "tester")
        yield Settings()


@pytest.fixture(scope="module")
def history(champion, module_settings, register, tmp_path_factory):
    """v1 champion; v2 rejected (its golden set breaks the contract); partition A scored by v1; v3 (v1's files) promoted; partition B scored
    by v3; then an operator puts v1 back."""
    import pandas as pd

    from data_contracts.synthetic_credit import generate_frame
    from pipelines.batch_inference import batch_inference
    from pipelines.lifecycle import lifecycle
    from tasks.governance.promotion import move_alias
    from tasks.registry import CHAMPION
    from tasks.stores import ledger_for, registry_for

    first, files = champion
    assert first.decision == "champion", first.reasons
    stream = tmp_path_factory.mktemp("stream")
    broken = stream / "golden_without_credit_score.parquet"  # rejected at validation: quicker than at the canary
    pd.read_parquet(files.golden).drop(columns=["credit_score"]).to_parquet(broken)
    rejected = lifecycle(version=register(files).version, golden=str(broken))
    assert rejected.decision == "rejected"
    parts = []
    for i, day in enumerate((date(2026, 11, 1), date(2026, 11, 2))):
        folder = stream / f"date={day}"
        folder.mkdir()
        generate_frame(300, seed=20 + i, day=day, id_offset=50_000 * (i + 1)).drop(columns=["defaulted"]).to_parquet(
            folder / "part-0.parquet", index=False)
        parts.append(folder)
    assert [o.status for o in batch_inference(partitions=[str(parts[0])]).outcomes] == ["scored"]
    second = lifecycle(version=register(files).version, golden=str(files.golden))
    assert second.decision == "champion", second.reasons
    assert [o.status for o in batch_inference(partitions=[str(parts[1])]).outcomes] == ["scored"]
    move_alias(registry_for(module_settings), ledger_for(module_settings), name=module_settings.model_name,
               alias=CHAMPION, version=first.version, actor="oncall", reason="rollback: operator put v1 back",
               policy="test-audit", evidence={}, flow_run_id=None)
    return {"v1": first.version, "v2": rejected.version, "v3": second.version,
            "partitions": [p.name for p in parts]}


def _report(settings, out_dir, **window):
    from tasks.governance.audit_report import build_report
    from tasks.stores import ledger_for, registry_for

    return build_report(settings, registry_for(settings), ledger_for(settings), out_dir=out_dir, **window)


def test_report_answers_which_model_scored_what_on_which_evidence(history, module_settings, tmp_path):
    from tasks.stores import ledger_for

    v1, v2, v3 = history["v1"], history["v2"], history["v3"]
    report = _report(module_settings, tmp_path)
    assert report.ledger_check.ok and report.evidence_problems == []
    assert len(report.entries) == len(ledger_for(module_settings).entries())
    assert [(c.version, c.previous_version, c.kind) for c in report.champion_changes] == [
        (v1, None, "promotion"), (v3, v1, "promotion"), (v1, v3, "rollback")]
    assert [(s.version, s.end is None, s.kind) for s in report.champion_timeline] == [
        (v1, False, "promotion"), (v3, False, "promotion"), (v1, True, "rollback")]
    promotion = report.champion_changes[1]
    roles = {c.role: c for c in promotion.evidence}
    assert {"canary", "compilation", "drift", "approval", "artifact.jaxexport", "params.msgpack"} <= set(roles)
    assert all(c.status == "ok" for c in promotion.evidence)
    for check in promotion.evidence:  # links are relative to the report folder and lead to the hashed file
        from tasks.evidence import sha256_file

        assert not check.link.startswith("/") and sha256_file(tmp_path / check.link) == check.sha256
    decisions = {(d.action, d.version) for d in report.decisions}
    assert {("approval.auto", v1), ("approval.auto", v3), ("candidate.rejected", v2)} <= decisions
    assert [(b.partition, b.version, b.contract, b.rows_scored, b.evidence_ok) for b in report.batches] == [
        (history["partitions"][0], v1, "credit_default@1.0.0", 300, True),
        (history["partitions"][1], v3, "credit_default@1.0.0", 300, True)]
    assert all(b.drifted_share is not None and b.drift_decision for b in report.batches)
    assert [(c.name, c.version) for c in report.contracts] == [("credit_default", "1.0.0")]
    versions = {v.version: v for v in report.versions}
    assert set(versions) == {v1, v2, v3}
    assert versions[v2].status == "rejected" and versions[v2].canary is None
    assert [(g.gate, g.passed) for g in versions[v2].gates] == [("contract", True), ("validation-golden", False)]
    canary = versions[v3].canary
    assert canary.champion_version == v1 and {d.metric for d in canary.deltas} >= {"auc"}
    assert all(d.ci_low <= d.delta <= d.ci_high for d in canary.deltas)
    assert versions[v3].reference_sha256 == versions[v1].reference_sha256  # the same training data, fingerprinted
    json.loads(report.model_dump_json())


def test_time_window_keeps_the_champion_running_at_its_start(history, module_settings, tmp_path):
    from tasks.governance.audit_report import entry_time
    from tasks.stores import ledger_for

    entries = ledger_for(module_settings).entries()
    later = _report(module_settings, tmp_path, since=entry_time(entries[-1]) + timedelta(seconds=1))
    assert later.entries == [] and later.champion_changes == [] and later.batches == []
    assert [(s.version, s.end) for s in later.champion_timeline] == [(history["v1"], None)]
    second_promotion = next(e for e in entries if (e.aliases or {}).get("champion") == history["v3"])
    upto = _report(module_settings, tmp_path, until=entry_time(second_promotion))
    assert [b.partition for b in upto.batches] == [history["partitions"][0]]
    assert [(s.version, s.end is None) for s in upto.champion_timeline] == [(history["v1"], False), (history["v3"], True)]
    assert history["v3"] in {v.version for v in upto.versions}


def test_changed_and_missing_evidence_are_flagged(history, module_settings, tmp_path, capsys):
    from pipelines.cli import main
    from pipelines.exit_codes import EXIT_NOT_PROMOTED

    from tasks.stores import latest_evidence_dir

    canary = latest_evidence_dir(module_settings, module_settings.model_name, history["v1"]) / "canary.json"
    # the file the partition's row names: its scoring's own, written once (the current copy beside it is not evidence)
    (predictions,) = (module_settings.predictions_dir / module_settings.model_name / "_runs"
                      / history["partitions"][1]).glob("*/predictions.parquet")
    canary_bytes, predictions_bytes = canary.read_bytes(), predictions.read_bytes()
    try:
        canary.write_bytes(canary_bytes.replace(b'"decision": "pass"', b'"decision": "PASS"', 1))
        predictions.unlink()
        report = _report(module_settings, tmp_path)
        changed = [c for e in report.entries for c in e.evidence if c.role == "canary" and c.status == "mismatch"]
        assert changed and all(c.path == str(canary) and c.actual_sha256 != c.sha256 for c in changed)
        missing = [c for e in report.entries for c in e.evidence if c.role == "predictions" and c.status != "ok"]
        assert [c.status for c in missing] == ["missing"]
        assert not report.batches[1].evidence_ok and report.batches[0].evidence_ok
        assert any("canary mismatch" in p for p in report.evidence_problems)
        assert main(["audit", "report", "--out", str(tmp_path / "cli")]) == EXIT_NOT_PROMOTED
        assert "missing or changed" in capsys.readouterr().out
        html = (tmp_path / "cli" / "audit_report.html").read_text()
        assert "✗ mismatch" in html and "✗ missing" in html
    finally:
        canary.write_bytes(canary_bytes)
        predictions.write_bytes(predictions_bytes)
    assert _report(module_settings, tmp_path).evidence_problems == []


def _chromium_dom(html_path, tmp_path):
    profile = tmp_path / "chromium-profile"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", html_path.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, run.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package 'chromium'; .ci/run installs "
                    "it): the HTML report cannot be rendered in a headless browser here")
def test_html_report_renders_in_headless_chromium(history, module_settings, tmp_path):
    from html.parser import HTMLParser

    from tasks.governance.audit_html import render_html, write_report

    report = _report(module_settings, tmp_path)
    html_path, _ = write_report(report, tmp_path)
    dom, log = _chromium_dom(html_path, tmp_path)
    assert "Uncaught" not in log, log[-2000:]

    class Texts(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.by_id = [], {}

        def handle_starttag(self, tag, attrs):
            ident = dict(attrs).get("id")
            if tag not in ("br", "input", "meta", "path", "use", "circle", "rect", "line", "polyline"):
                self.stack.append(ident)
            if ident:
                self.by_id[ident] = {"attrs": dict(attrs), "text": ""}

        def handle_endtag(self, tag):
            if self.stack and tag not in ("br", "input", "meta", "path", "use", "circle", "rect", "line", "polyline"):
                self.stack.pop()

        def handle_data(self, data):
            for ident in self.stack:
                if ident:
                    self.by_id[ident]["text"] += data

    parsed = Texts()
    parsed.feed(dom)
    assert parsed.by_id["script-status"]["text"] == "ok"  # the page's own script ran to its end
    assert parsed.by_id["script-errors"]["text"] == "" and "hidden" in parsed.by_id["script-errors"]["attrs"]
    timeline = parsed.by_id["champion-timeline"]
    assert timeline["attrs"]["data-versions"] == f"v{history['v1']},v{history['v3']}"
    assert "champion over time" in timeline["text"]  # the SVG plot's title, kept as text
    for v in (history["v1"], history["v3"]):
        assert f"credit-default v{v}" in timeline["text"]
    assert "ledger-count" in parsed.by_id and "entries" in parsed.by_id["ledger-count"]["text"]

    # the same check sees a page whose script breaks
    broken = tmp_path / "broken.html"
    broken.write_text(render_html(report).replace("var input = document", "var input = documentt", 1))
    dom, log = _chromium_dom(broken, tmp_path)
    assert 'id="script-status">not run<' in dom and "documentt is not defined" in dom and "Uncaught" in log


def test_lifecycle_logs_a_model_card_for_every_decision(history, module_settings):
    from tasks.stores import registry_for

    from tasks.governance.audit_evidence import latest_model_card

    registry = registry_for(module_settings)
    for key in ("v1", "v2", "v3"):
        record = registry.get(module_settings.model_name, history[key])
        card = latest_model_card(module_settings, module_settings.model_name, history[key])
        assert card.parent.name == "model_card" and card.parent.parent.name.startswith("lifecycle-")  # the run's own
        logged = {a.path for a in registry.client.list_artifacts(record.run_id, f"model_card/{card.parent.parent.name}")}
        assert {f"model_card/{card.parent.parent.name}/model_card.{x}" for x in ("md", "html", "json")} <= logged
    rejected = latest_model_card(module_settings, module_settings.model_name, history["v2"]).with_suffix(".md").read_text()
    assert "Status **rejected**" in rejected and "Gate validation-golden: fail" in rejected and "credit_score" in rejected
    assert "No canary evidence" in rejected
    promoted = latest_model_card(module_settings, module_settings.model_name, history["v3"]).with_suffix(".md").read_text()
    record = registry.get(module_settings.model_name, history["v3"])
    assert record.tags["lockgate.reference_sha256"] in promoted and record.tags["lockgate.artifact_sha256"] in promoted
    assert "Deltas vs the champion" in promoted and "% [" in promoted  # metrics with their CIs
    assert "| v5e-4 |" in promoted and "approval.auto" in promoted
    assert f"compared with champion v{history['v1']}" in promoted


def test_cli_audit_report_and_model_card(history, module_settings, tmp_path, capsys):
    from pipelines.cli import main
    from pipelines.exit_codes import EXIT_OK, EXIT_USAGE
    from tasks.governance.audit_report import AuditReport

    out = tmp_path / "report"
    assert main(["audit", "report", "--since", "2000-01-01", "--model", module_settings.model_name,
                 "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert str(out / "audit_report.html") in printed and "hash chain: intact" in printed
    report = AuditReport.model_validate_json((out / "audit_report.json").read_text())
    assert len(report.champion_changes) == 3 and report.since.startswith("2000-01-01")

    card_dir = tmp_path / "card"
    spec = f"{module_settings.model_name}:{history['v2']}"
    assert main(["model-card", spec, "--out", str(card_dir)]) == EXIT_OK
    assert "rejected" in capsys.readouterr().out
    assert {p.name for p in card_dir.iterdir()} == {"model_card.md", "model_card.html", "model_card.json"}
    # a card is evidence: written once; the same folder again is refused, the default makes a new folder each time
    first = {p.name: p.read_bytes() for p in card_dir.iterdir()}
    assert main(["model-card", spec, "--out", str(card_dir)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a card is never replaced" in err, err
    assert {p.name: p.read_bytes() for p in card_dir.iterdir()} == first
    on_demand = module_settings.evidence_dir / module_settings.model_name / f"v{history['v2']}" / "model_card"
    for _ in range(2):
        assert main(["model-card", spec]) == EXIT_OK
    capsys.readouterr()
    folders = sorted(p for p in on_demand.iterdir() if p.is_dir())
    assert len(folders) >= 2 and all((f / "model_card.html").is_file() for f in folders)
    from tasks.governance.audit_evidence import latest_model_card

    assert latest_model_card(module_settings, module_settings.model_name, history["v2"]).parent in folders

    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    for argv, fragment in [(["audit", "report", "--since", "last week"], "not an ISO date"),
                           (["audit", "report", "--since", tomorrow, "--until", "2026-01-01"], "is after --until"),
                           (["model-card", f"{module_settings.model_name}:99"], "v99 not found")]:
        assert main(argv) == EXIT_USAGE
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fragment in err, err


@pytest.mark.parametrize("argv", [["audit", "--help"], ["audit", "report", "--help"], ["model-card", "--help"]])
def test_help(argv, capsys):
    from pipelines.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0 and "usage: lockgate" in capsys.readouterr().out


def test_registered_intended_use_and_limitations_lead_the_card(history, module_settings, champion):
    from tasks.governance.model_card import write_model_card
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    _, files = champion
    registry, ledger = registry_for(module_settings), ledger_for(module_settings)
    record = register_candidate(
        registry, ledger, name=module_settings.model_name, arch="mlp", config_path=files.config,
        params_path=files.params, reference_path=files.reference, contract_name="credit_default", actor="tester",
        description="retrained on October", intended_use="Pre-screening of consumer loan applications.",
        limitations="Not for business loans; not validated for applicants under 21")
    card, paths = write_model_card(settings=module_settings, registry=registry, ledger=ledger, record=record,
                                   log_to_mlflow=False)
    assert card.intended_use == "Pre-screening of consumer loan applications."
    assert card.limitations[:2] == ["Not for business loans", "not validated for applicants under 21"]
    assert card.metrics is None and card.status == "registered" and card.description == "retrained on October"
    assert [h.action for h in card.history] == ["version.registered"]
    html = paths[1].read_text()
    assert "<li>Not for business loans</li>" in html and "<h2>Intended use</h2>" in html


def test_an_action_the_report_does_not_know_is_listed_as_recorded(history, module_settings, tmp_path):
    # last in the module: the entry it appends names a missing file, which later reports would flag
    from tasks.evidence import sha256_file
    from tasks.ledger.entry import LedgerEntry
    from tasks.stores import ledger_for

    # evidence kept somewhere no rule knows: found by its content
    note = module_settings.evidence_dir / module_settings.model_name / "monitor" / "alert.json"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text('{"alert": "score drift"}')
    ledger_for(module_settings).append(LedgerEntry(
        actor="monitor", action="monitor.alert", model_name=module_settings.model_name, version=history["v1"],
        reason="prediction drift above the alert level", evidence={"alert": sha256_file(note), "gone": "0" * 64}))
    report = _report(module_settings, tmp_path)
    entry = report.entries[-1]
    assert entry.action == "monitor.alert" and report.action_counts["monitor.alert"] == 1
    assert {c.role: c.status for c in entry.evidence} == {"alert": "ok", "gone": "missing"}
    assert entry.evidence[0].path == str(note)


def test_every_dataset_a_version_met_shows_its_provenance_and_licence(history, module_settings, champion, tmp_path):
    report = _report(module_settings, tmp_path)
    versions = {v.version: v for v in report.versions}
    first = versions[history["v1"]]
    assert [d.role for d in first.datasets] == ["reference", "golden", "stream"]
    assert all(d.license == "LicenseRef-lockgate-project" and d.source.startswith("Synthetic: generated by lockgate")
               and d.owner == "credit-risk-ml@example.com" and d.personal_data == "none"
               and d.contract == "credit_default@1.0.0" and "confidential" in d.classification for d in first.datasets)
    reference, golden, stream = first.datasets
    assert reference.sha256 == first.reference_sha256 and reference.rows == int(first.reference_rows)
    assert golden.dataset == str(champion[1].golden) and golden.rows > 0
    assert stream.dataset == golden.dataset and "no stream partition was given" in stream.used_for
    assert [d.role for d in versions[history["v2"]].datasets] == ["reference", "golden"]  # rejected at validation
    assert [(c.name, c.license) for c in report.contracts] == [("credit_default", "LicenseRef-lockgate-project")]
    from tasks.governance.audit_evidence import latest_model_card

    card = latest_model_card(module_settings, module_settings.model_name, history["v3"]).with_suffix(".md").read_text()
    section = card.split("## Datasets: provenance and licence", 1)[1].split("\n## ", 1)[0]
    assert section.count("LicenseRef-lockgate-project") == 3 and "| golden |" in section and "| stream |" in section


def test_framework_map_links_every_evidence_kind_to_the_period(history, module_settings, tmp_path):
    from tasks.governance.audit_html import write_report
    from tasks.governance.framework_map import EVIDENCE_KINDS, MAPPING

    report = _report(module_settings, tmp_path)
    for kind, (_, resolve) in EVIDENCE_KINDS.items():  # every kind the table can name has evidence in a real report
        assert resolve(report), f"evidence kind {kind}: nothing in the report"
    rows = report.framework_map.rows
    assert [r.id for r in rows] == [m["id"] for m in MAPPING] and all(r.evidence for r in rows)
    files = [e.link for r in rows for e in r.evidence if e.link and not e.link.startswith("#")]
    assert any(link.endswith("canary.json") for link in files) and any("model_card" in link for link in files)
    assert all((tmp_path / link).is_file() for link in files)  # links relative to the report lead to the files
    html_path, json_path = write_report(report, tmp_path)
    html = html_path.read_text()
    for anchor in {e.link for r in rows for e in r.evidence if e.link and e.link.startswith("#")}:
        assert f'id="{anchor[1:]}"' in html, anchor
    assert '<section id="framework-map">' in html and "MEASURE 2.4" in html and "A.7.5 data provenance" in html
    saved = json.loads(json_path.read_text())["framework_map"]
    assert any("impact assessment" in gap["area"] for gap in saved["not_covered"])
    dataset_row = next(r for r in saved["rows"] if r["id"] == "dataset-provenance")
    assert any("licence LicenseRef-lockgate-project" in e["label"] for e in dataset_row["evidence"])
