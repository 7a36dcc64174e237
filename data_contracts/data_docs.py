"""Great Expectations Data Docs for one validation result, built offline as one HTML page.

:func:`write_data_docs` stores the result in a throwaway file-mode GE context, builds
that context's local Data Docs site for it, and keeps the validation page as
``<out_dir>/data_docs.html``. GE's page templates load Bootstrap, jQuery, Vega and Font
Awesome from CDNs and its logo from S3; the page itself is server-rendered HTML, so those tags are removed and
a small inline stylesheet is added: the page renders the same offline, in an MLflow
artifact view, and in ten years. Building takes ~0.15 s (the context is created fresh each
time; GE's process-wide validation context is restored afterwards).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DATA_DOCS_FILE = "data_docs.html"
_EXTERNAL_TAG = re.compile(
    r"<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>"
    r"|<link\b[^>]*\bhref=[\"']https?://[^>]*>"
    r"|<img\b[^>]*\bsrc=[\"']https?://[^>]*>",  # GE's logo, fetched with the context id in its URL
    re.I,
)
_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0; } td, th { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
.text-danger, .fa-times { color: #b00020; } .text-success, .fa-check-circle { color: #1b7f3b; }
</style>"""


class DataDocs(BaseModel):
    """The Data Docs page of one validation."""

    model_config = ConfigDict(extra="forbid")

    html: Path = Field(description="The self-contained validation page.")
    seconds: float = Field(description="Wall time to build it.")
    external_tags_removed: int = Field(description="CDN <script>/<link>/<img> tags taken out of GE's page.")


def write_data_docs(ge_result: Any, out_dir: Path, *, run_name: str) -> DataDocs:
    """Build the Data Docs page of ``ge_result`` into ``out_dir / data_docs.html``.

    Args:
      ge_result: GE's ExpectationSuiteValidationResult, or its ``to_json_dict()``
        (``ContractValidation.ge_result``).
      out_dir: folder for the page (created).
      run_name: names the run on the page, e.g. the dataset role.

    Raises:
      Exception: whatever GE raises; the caller records it (docs are evidence, not a gate).
    """
    t0 = time.perf_counter()
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from data_contracts.ge_suite import ge_runtime

    result = expectationSuiteValidationResultSchema.load(ge_result) if isinstance(ge_result, dict) else ge_result
    runtime = ge_runtime()
    with runtime.lock, tempfile.TemporaryDirectory(prefix="lockgate-gx-") as root:
        try:
            context = gx.get_context(mode="file", project_root_dir=root)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
                # GE's file store refuses '/' and '\\' in keys, and a run is often named after a path
                run_id=RunIdentifier(run_name=run_name.replace("/", "_").replace("\\", "_")),
                batch_identifier="batch",
            )
            context.validation_results_store.set(key, result)
            context.build_data_docs(resource_identifiers=[key], build_index=False)
            pages = list(Path(root).rglob("validations/**/*.html"))
            if len(pages) != 1:
                raise RuntimeError(f"expected one Data Docs validation page, GE wrote {len(pages)}")
            html, removed = _self_contained(pages[0].read_text(encoding="utf-8"))
        finally:
            project_manager.set_project(runtime.context)  # get_context made the file context GE's current project
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / DATA_DOCS_FILE
    page.write_text(html, encoding="utf-8")
    return DataDocs(html=page, seconds=time.perf_counter() - t0, external_tags_removed=removed)


def _self_contained(html: str) -> tuple[str, int]:
    html, removed = _EXTERNAL_TAG.subn("", html)
    return html.replace("</head>", _STYLE + "\n</head>", 1), removed
