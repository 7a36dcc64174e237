"""Data Docs of a validation: GE's own validation page (the one its file-mode context builds), one self-contained page that shows each
expectation's status as text, names every expectation in words and links nowhere it cannot reach; the page is also
rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from data_contracts.data_docs import DATA_DOCS_FILE, offline_page, write_data_docs
from data_contracts.validate import validate_frame

CHROMIUM = next(filter(None, map(shutil.which, ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"))),
                None)


@pytest.fixture(scope="module")
def failing_validation(contract, clean_frame, ge_runtime):
    frame = clean_frame.copy()
    frame.loc[:6, "age"] = 5  # 7 rows out of range
    frame.loc[:2, "region"] = "atlantis"  # 3 rows not in the set
    outcome = validate_frame(frame, contract, include_label=True)
    assert outcome.failure_counts() == {"age in range": 7, "region in set": 3}
    return outcome


@pytest.mark.parametrize("given", ["json dict", "ge object"])
def test_page_names_the_expectations_and_failing_counts(failing_validation, tmp_path, given):
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema

    ge_result = failing_validation.ge_result
    if given == "ge object":
        ge_result = expectationSuiteValidationResultSchema.load(ge_result)
    docs = write_data_docs(ge_result, tmp_path / "docs", run_name="golden")
    assert docs.html == tmp_path / "docs" / DATA_DOCS_FILE
    html = docs.html.read_text(encoding="utf-8")
    assert "7 unexpected values found" in html and "3 unexpected values found" in html
    assert "atlantis" not in html  # lockgate keeps failing values out of the evidence (rows are quarantined)
    # GE renders each expectation as prose on its column, with the bounds / the value set
    assert "greater than or equal to" in html and "north" in html
    assert re.search(r">\s*age\s*<", html) and re.search(r">\s*region\s*<", html)
    assert failing_validation.ge_result["suite_name"] in html
    # nothing needed to render it comes from the network
    assert not re.search(r"<(script|img)\b[^>]*\bsrc=[\"']https?://", html, re.I)
    assert not re.search(r"<link\b[^>]*\bhref=[\"']https?://", html, re.I)
    assert docs.external_tags_removed > 0 and "<style>" in html


@pytest.fixture(scope="module")
def page(failing_validation, tmp_path_factory):
    return write_data_docs(failing_validation.ge_result, tmp_path_factory.mktemp("docs"), run_name="golden")


class _Page(HTMLParser):
    """The rows of the expectation tables (cells as text), every href/src, every id, and the page's text."""

    def __init__(self):
        super().__init__()
        self.rows, self.links, self.ids, self.text = [], [], set(), []
        self._row, self._cell, self._status_table, self._in_script = None, None, False, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.add(attrs.get("id"))
        self.links += [(tag, attrs[a]) for a in ("href", "src") if attrs.get(a) is not None]
        if tag == "thead":
            self._status_table = False
        elif tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        self._in_script = tag in ("script", "style")

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._status_table and self._row:
                self.rows.append(self._row)
            self._row = None
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        elif self._row is not None and data.strip() == "Status":  # a <th>: this table lists expectations
            self._status_table = True


def _parsed(html: str) -> _Page:
    parsed = _Page()
    parsed.feed(html)
    return parsed


def test_every_row_shows_its_status_as_text(page, failing_validation):
    html = page.html.read_text(encoding="utf-8")
    rows = _parsed(html).rows
    assert len(rows) == len(failing_validation.ge_result["results"]) == 57  # one row per expectation
    assert {row[0] for row in rows} == {"passed", "failed"}  # GE's Font Awesome icon alone was blank offline
    failed = [row[1] for row in rows if row[0] == "failed"]
    assert len(failed) == 2 and all("unexpected values found" in f for f in failed)
    assert any("7 unexpected" in f and "greater than or equal to" in f for f in failed)
    assert "fa-check-circle" not in html and "fa-times" not in html
    assert html.count("<svg") == 57 + 1  # the overview's status too
    assert page.rewrites["status_badges"] == 58
    assert re.search(r"Status:</span>\s*<span class=\"lg-status lg-failed\"", html)


def test_expectations_are_named_in_words(page):
    html = page.html.read_text(encoding="utf-8")
    rows = [(row[1], row[2]) for row in _parsed(html).rows]
    assert "(**{" not in html and "expect_column_dtype_to_be_in_list" not in html
    dtype_rows = [text for text, _ in rows if text.startswith("dtype must be one of ")]
    assert len(dtype_rows) == 14  # one per column
    assert any("int64" in text and "int64[pyarrow]" in text for text in dtype_rows)
    assert ("values must never be null.", "100% not null") in rows


def test_an_expectation_without_a_sentence_is_shown_as_name_and_arguments(failing_validation, tmp_path, monkeypatch):
    """GE prints an expectation it has no renderer for as ``expect_x(**{...})``; the page shows name and arguments."""
    from great_expectations.expectations import registry
    from great_expectations.render import LegacyRendererType

    from data_contracts.ge_suite import DTYPE_EXPECTATION_TYPE

    monkeypatch.delitem(registry._registered_renderers[DTYPE_EXPECTATION_TYPE], LegacyRendererType.PRESCRIPTIVE)
    docs = write_data_docs(failing_validation.ge_result, tmp_path, run_name="golden")
    html = docs.html.read_text(encoding="utf-8")
    assert docs.rewrites["raw_expectations_rewritten"] == 14 and "(**{" not in html
    texts = [row[1] for row in _parsed(html).rows]
    assert "column dtype to be in list (column: age; type_list: int8, int16, " in " ".join(texts)
    assert "batch_id" not in html


def test_links_only_within_the_page_and_no_promotion(page):
    html = page.html.read_text(encoding="utf-8")
    parsed = _parsed(html)
    for tag, target in parsed.links:  # GE linked Home, the suite's page and a favicon, none of which was built
        assert target.startswith("#"), (tag, target)
        assert target[1:] in parsed.ids, target  # each in-page link has its target
    text = " ".join(" ".join(parsed.text).split())
    assert "newsletter" not in html.lower() and "Subscribe" not in text and "<footer" not in html
    assert "Home" not in text and "credit_default@1.0.0" in text  # the suite is named, not linked
    assert not re.search(r"url\(\s*['\"]?https?:", html)  # GE's dark-mode logo
    assert "$(" not in html  # jQuery is not on the page; its scripts are replaced or removed
    assert "function hideSucceededValidations" in html  # the "Failed Only" filter works without it


def test_a_rewrite_that_finds_no_marker_leaves_the_page_as_ge_made_it(failing_validation, tmp_path, monkeypatch):
    """A GE release that renders differently: the page is still written, that part as GE rendered it."""
    import data_contracts.data_docs as data_docs

    monkeypatch.setattr(data_docs, "_ICON", re.compile("no such marker"))
    monkeypatch.setattr(data_docs, "_FOOTER", re.compile("no such marker"))
    docs = write_data_docs(failing_validation.ge_result, tmp_path, run_name="golden")
    html = docs.html.read_text(encoding="utf-8")
    assert docs.rewrites["status_badges"] == 0 and docs.rewrites["footers_removed"] == 0
    assert "fa-check-circle" in html and "7 unexpected values found" in html
    assert docs.rewrites["dead_links_unwrapped"] > 0  # the other rewrites still ran

    bare, counts = offline_page("<html><body><p>no GE markup</p></body></html>")
    assert bare == "<html><body><p>no GE markup</p></body></html>" and set(counts.values()) == {0}


def _chromium(page_path, tmp_path, *args):
    run = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *args,
         page_path.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, run.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (/usr/bin/chromium, or chromium, chromium-browser or "
                    "google-chrome on PATH; Debian package 'chromium'): the page cannot be rendered in a headless "
                    "browser here")
def test_page_renders_offline_in_headless_chromium(page, tmp_path):
    screenshot = tmp_path / "data_docs.png"
    _, log = _chromium(page.html, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom, log = _chromium(page.html, tmp_path, "--dump-dom")
    assert "Uncaught" not in log, log[-2000:]  # no script on the page throws (GE's needed jQuery)
    rows = _parsed(dom).rows
    assert len(rows) == 57 and sum(row[0] == "passed" for row in rows) == 55
    assert [row[0] for row in rows].count("failed") == 2
    assert "7 unexpected values found" in " ".join(_parsed(dom).text)


def test_validation_still_works_after_docs(contract, clean_frame, failing_validation, tmp_path):
    """Building docs leaves GE's process-wide validation context as it was."""
    write_data_docs(failing_validation.ge_result, tmp_path, run_name="x")
    assert validate_frame(clean_frame, contract, include_label=True).passed


def test_not_a_validation_result_raises(tmp_path):
    with pytest.raises(Exception):
        write_data_docs({"results": "nope"}, tmp_path, run_name="x")


def test_run_named_after_a_path_builds(failing_validation, tmp_path):
    """`lockgate validate /abs/path/data` names the run after the path: the page's title, escaped."""
    docs = write_data_docs(failing_validation.ge_result, tmp_path / "docs", run_name="/data/day=1 <rows> 0+")
    html = docs.html.read_text(encoding="utf-8")
    suite = failing_validation.ge_result["suite_name"]
    assert suite in html and f"<title>/data/day=1 &lt;rows&gt; 0+ · {suite} · Data Docs</title>" in html


def _ge_site_page(ge_result, root) -> str:
    """The validation page GE's own Data Docs build writes: a file-mode context, its results store, its local site."""
    from pathlib import Path

    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from data_contracts.ge_suite import ge_runtime

    result = expectationSuiteValidationResultSchema.load(ge_result)
    try:
        context = gx.get_context(mode="file", project_root_dir=str(root))
        key = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
                                         run_id=RunIdentifier(run_name="golden"), batch_identifier="batch")
        context.validation_results_store.set(key, result)
        context.build_data_docs(resource_identifiers=[key], build_index=False)
        (page,) = Path(root).rglob("validations/**/*.html")
        return page.read_text(encoding="utf-8")
    finally:
        project_manager.set_project(ge_runtime().context)


def test_the_page_is_the_one_ges_own_data_docs_build_writes(failing_validation, tmp_path):
    """Rendered without GE's file context, store and site, the page is the one GE's build writes, but for what differs
    between any two builds (element ids, the logo's timestamp and context id) and two things of the site: its title,
    and the custom stylesheet GE scaffolds for a new project (selectors with empty rules, no style)."""
    from data_contracts.data_docs import ge_validation_page

    ours = ge_validation_page(failing_validation.ge_result, run_name="golden")
    theirs = _ge_site_page(failing_validation.ge_result, tmp_path)
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

    def no_style(css: str) -> bool:  # comments and selectors with empty rules only
        return not re.sub(r"/\*.*?\*/|[^{}]+\{\s*\}", "", css, flags=re.S).strip()

    styles = list(zip(re.findall(r"<style>([^<]*)</style>", ours), re.findall(r"<style>([^<]*)</style>", theirs)))
    (differ,) = [(a, b) for a, b in styles if a != b]
    assert differ[0] == "" and differ[1].strip() and no_style(differ[1])

    def same_build(html: str) -> str:
        html = uuid.sub("UUID", html)
        html = re.sub(r"logo-long\.png\?[^\"]*", "logo-long.png", html)
        html = re.sub(r"<title>[^<]*</title>", "<title/>", html, count=1)
        return re.sub(r"<style>([^<]*)</style>", lambda m: "<style/>" if no_style(m.group(1)) else m.group(0), html)

    assert "<title>golden · " in ours and len(ours) > 50_000
    assert same_build(ours) == same_build(theirs)
