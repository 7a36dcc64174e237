"""Great Expectations Data Docs for one validation result, built offline as one HTML page.

:func:`write_data_docs` renders the result's validation page with GE's own page renderer and
view (those its site builder uses) and keeps it as ``<out_dir>/data_docs.html``. GE's page templates load Bootstrap, jQuery, Vega and Font
Awesome from CDNs and its logo from S3; the page itself is server-rendered HTML, so
:func:`offline_page` rewrites it to stand alone: tags loading files the page does not
have are removed, each status icon (a Font Awesome glyph, blank without its CSS)
becomes an inline-SVG badge with the word *passed*, *failed* or *error*, links to
pages that were not built (Home, the suite page) are unwrapped, GE's newsletter
footer and its jQuery-only scripts are removed (the "Failed Only" filter gets a
plain-JS version), an expectation GE has no sentence for is written as its name and
arguments instead of ``expect_x(**{...})``, and a small stylesheet is added. The page
renders the same offline, in an MLflow artifact view, and in ten years. Each rewrite
matches a marker of GE's markup; one that finds no marker changes nothing, and the
page is still written (``DataDocs.rewrites`` counts what each one changed). Building
takes ~0.08 s (GE's file context, store and site around the page took ~0.2 s).
"""

from __future__ import annotations

import ast
import html as html_lib
import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DATA_DOCS_FILE = "data_docs.html"

# Tags that load a file: CDN scripts and stylesheets, GE's logo (fetched with the context id in its URL), its
# favicon (relative to a site that is not kept). The page is one file, so none of them can load.
_LOADING_TAG = re.compile(
    r"<script\b[^>]*\bsrc\s*=[^>]*>\s*</script>"
    r"|<link\b[^>]*>"
    r"|<img\b[^>]*\bsrc\s*=\s*[\"'](?!data:)[^>]*>",
    re.I,
)
_CSS_URL = re.compile(r"url\(\s*[\"']?https?://[^)]*\)", re.I)  # GE's dark-mode logo
_FOOTER = re.compile(r"<footer\b.*?</footer>", re.I | re.S)  # "Stay current on everything GX with our newsletter"
_ICON = re.compile(r"<i\b[^>]*\bclass\s*=\s*\"([^\"]*)\"[^>]*>\s*</i>(\s*(?:Succeeded|Failed)\b)?", re.I)
# an <li> holding nothing but a link to another page (the breadcrumb's "Home")
_LINK_ITEM = re.compile(r"<li\b[^>]*>\s*<a\b[^>]*\bhref\s*=\s*[\"'](?!#)[^\"']*[\"'][^>]*>"
                        r"(?:(?!</?a\b|</?li\b).)*</a>\s*</li>", re.I | re.S)
_ANCHOR = re.compile(r"<a\b([^>]*)>((?:(?!</?a\b).)*)</a>", re.I | re.S)
_HREF = re.compile(r"\bhref\s*=\s*[\"']([^\"']*)[\"']", re.I)
_INLINE_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.I | re.S)
# GE's fallback for an expectation without a sentence renderer: expect_x(**{'column': 'age', ...})
_RAW_EXPECTATION = re.compile(
    r"<span\b[^>]*\bclass=\"badge badge-warning\"[^>]*>\s*(expect_\w+)\s*</span>\s*\(\*\*(\{.*?\})\)", re.S)

_SVG = ('<svg class="lg-icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">'
        '<circle cx="8" cy="8" r="8" fill="currentColor"/>'
        '<path d="{path}" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round"/></svg>')
_STATUS = {  # Font Awesome class of GE's icon -> (word, svg path)
    "fa-check-circle": ("passed", "M4.5 8.3l2.3 2.3 4.7-4.9"),
    "fa-times": ("failed", "M5.3 5.3l5.4 5.4M10.7 5.3l-5.4 5.4"),
    "fa-exclamation-triangle": ("error", "M8 4.2v4.6M8 11.6v.1"),
}
_FILTER_SCRIPT = """<script>
function lgShowSucceeded(show) {
  var display = show ? "" : "none";
  document.querySelectorAll(".hide-succeeded-validation-target-child").forEach(function (el) {
    el.parentElement.style.display = display; });
  document.querySelectorAll(".hide-succeeded-validation-target").forEach(function (el) { el.style.display = display; });
  document.querySelectorAll(".hide-succeeded-validations-column-section-target-child").forEach(function (el) {
    var section = el.parentElement.parentElement;
    section.style.display = display;
    document.querySelectorAll('a[href="#' + section.id + '"]').forEach(function (a) { a.style.display = display; });
  });
}
function showAllValidations() { lgShowSucceeded(true); }
function hideSucceededValidations() { lgShowSucceeded(false); }
</script>"""
_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0; } td, th { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
.text-danger { color: #b00020; } .text-success { color: #1b7f3b; }
.badge { display: inline-block; padding: 0 0.3em; margin: 0.1em 0; border-radius: 0.25em; background: #eef0f3;
  font-family: ui-monospace, monospace; font-size: 0.85em; }
.alert-secondary { background: #eef0f3; padding: 0.4rem 0.6rem; margin-top: 1rem; }
.breadcrumb { list-style: none; padding: 0; margin: 0; }
.lg-status { display: inline-flex; align-items: center; gap: 0.3em; font-weight: 600; white-space: nowrap; }
.lg-passed { color: #1b7f3b; } .lg-failed { color: #b00020; } .lg-error { color: #a15c00; }
.lg-icon { flex: none; }
</style>"""


class DataDocs(BaseModel):
    """The Data Docs page of one validation."""

    model_config = ConfigDict(extra="forbid")

    html: Path = Field(description="The self-contained validation page.")
    seconds: float = Field(description="Wall time to build it.")
    external_tags_removed: int = Field(
        description="<script>/<link>/<img> tags taken out of GE's page: CDN files, GE's logo, its favicon.")
    rewrites: dict[str, int] = Field(
        default_factory=dict, description="What each offline rewrite of GE's page changed (see offline_page); 0: its "
        "marker was not found and that part of the page is as GE rendered it.")


def write_data_docs(ge_result: Any, out_dir: Path, *, run_name: str) -> DataDocs:
    """Build the Data Docs page of ``ge_result`` into ``out_dir / data_docs.html``.

    Args:
      ge_result: GE's ExpectationSuiteValidationResult, or its ``to_json_dict()``
        (``ContractValidation.ge_result``).
      out_dir: folder for the page (created).
      run_name: the page's title, e.g. the dataset role or the file validated.

    Raises:
      Exception: whatever GE raises; the caller records it (docs are evidence, not a gate).
    """
    t0 = time.perf_counter()
    html, rewrites = offline_page(ge_validation_page(ge_result, run_name=run_name))
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / DATA_DOCS_FILE
    page.write_text(html, encoding="utf-8")
    return DataDocs(html=page, seconds=time.perf_counter() - t0,
                    external_tags_removed=rewrites["loading_tags_removed"], rewrites=rewrites)


def ge_validation_page(ge_result: Any, *, run_name: str) -> str:
    """GE's Data Docs validation page of ``ge_result`` (before :func:`offline_page`), titled ``run_name``.

    Rendered by the renderer and view GE's site builder uses for a local site's validation pages
    (``ValidationResultsPageRenderer``, then ``DefaultJinjaPageView``), without the file-mode context, store and site
    GE would build around them: the same page (tests/data_contracts/test_data_docs.py compares it with GE's own build)
    in about 40% of the time. GE's build titles the page "Data documentation compiled by Great Expectations"; here
    the title names the run.

    Args and raises as :func:`write_data_docs`.
    """
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from data_contracts.ge_suite import ge_runtime

    result = expectationSuiteValidationResultSchema.load(ge_result) if isinstance(ge_result, dict) else ge_result
    runtime = ge_runtime()  # also registers lockgate's dtype expectation, with its sentence renderer
    with runtime.lock:
        document = ValidationResultsPageRenderer().render(result)
        page = DefaultJinjaPageView().render(document, data_context_id=None, show_how_to_buttons=True)
    title = html_lib.escape(f"{run_name} · {result.suite_name} · Data Docs")
    return re.sub(r"<title>[^<]*</title>", lambda _: f"<title>{title}</title>", page, count=1)  # the first: the tab's


def offline_page(html: str) -> tuple[str, dict[str, int]]:
    """GE's validation page rewritten to stand alone offline; returns the page and what each rewrite changed.

    Every rewrite is a substitution on a marker of GE's markup, so a GE release that
    renders differently leaves that part as GE made it rather than failing the build.
    """
    counts: dict[str, int] = {}

    def rewrite(name: str, pattern: re.Pattern, replace: Any) -> None:
        nonlocal html
        changed = 0

        def counted(match: re.Match) -> str:
            nonlocal changed
            new = replace(match) if callable(replace) else replace
            changed += new != match.group(0)
            return new

        html = pattern.sub(counted, html)
        counts[name] = changed

    rewrite("loading_tags_removed", _LOADING_TAG, "")
    rewrite("css_urls_removed", _CSS_URL, "none")
    rewrite("footers_removed", _FOOTER, "")
    rewrite("status_badges", _ICON, _status_badge)
    rewrite("dead_link_items_removed", _LINK_ITEM, "")
    rewrite("dead_links_unwrapped", _ANCHOR, _unwrap_dead_link)
    rewrite("raw_expectations_rewritten", _RAW_EXPECTATION, _readable_expectation)
    rewrite("jquery_scripts_rewritten", _INLINE_SCRIPT, _offline_script)
    counts["stylesheet_added"] = int("</head>" in html)
    return html.replace("</head>", _STYLE + "\n</head>", 1), counts


def _status_badge(match: re.Match) -> str:
    classes = match.group(1).split()
    for fa_class, (word, path) in _STATUS.items():
        if fa_class in classes:
            return (f'<span class="lg-status lg-{word}" title="{word}">{_SVG.format(path=path)}'
                    f'<span class="lg-status-text">{word}</span></span>')
    return match.group(0)  # an icon this page does not use for a status


def _unwrap_dead_link(match: re.Match) -> str:
    href = _HREF.search(match.group(1))
    if href is None or href.group(1).startswith("#"):
        return match.group(0)  # an in-page link (table of contents, "show more info")
    return match.group(2)


def _readable_expectation(match: re.Match) -> str:
    name, raw_kwargs = match.group(1), match.group(2)
    try:
        kwargs = ast.literal_eval(html_lib.unescape(raw_kwargs))
        args = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                         for k, v in kwargs.items() if k != "batch_id")
        args = html_lib.escape(args, quote=False)
    except (ValueError, SyntaxError, AttributeError, MemoryError, RecursionError):
        args = raw_kwargs  # as GE rendered it
    return f'<span class="lg-expectation">{name.removeprefix("expect_").replace("_", " ")}</span> ({args})'


def _offline_script(match: re.Match) -> str:
    code = match.group(1)
    if "function hideSucceededValidations" in code:
        return _FILTER_SCRIPT
    if "$(" in code or "jQuery" in code:  # jQuery is not on the page: the script would only throw
        return ""
    return match.group(0)
