"""lockgate's drift report leaves out ValueDrift's per-column widgets and is otherwise Evidently's own: the same HTML,
the same snapshot widgets, metric values and tests; Evidently outside the block (another thread's included) draws as
it ships."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from tasks.drift import value_drift_widgets
from tasks.drift.gate import HTML_NAME, SNAPSHOT_NAME, drift_evidence

NUMERIC = ["x1", "x2"]
IDS = value_drift_widgets.RANDOM_IDS


def _frame(seed: int, shift: float = 0.0, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x1": rng.normal(shift, 1, n), "x2": rng.integers(0, 40, n).astype(float),
                         "colour": rng.choice(["red", "green", "blue"], n), "score": rng.beta(2, 5, n)})


def _report(tmp_path, name: str) -> tuple[str, dict]:
    out = tmp_path / name
    drift_evidence(_frame(1), _frame(2, shift=0.6), numeric=NUMERIC, categorical=["colour"], prediction_column="score",
                   methods={"x1": "wasserstein", "colour": "jensenshannon"}, out_dir=out)
    return IDS.sub("ID", (out / HTML_NAME).read_text()), json.loads(IDS.sub("ID", (out / SNAPSHOT_NAME).read_text()))


def _widget_types(snapshot: dict) -> dict[str, list[str]]:
    return {r["display_name"]: [w["type"] for w in r["widget"]] for r in snapshot["metric_results"].values()
            if r["display_name"].startswith("Value drift for ")}


def _evidently_widget_types(frame_a, frame_b) -> set[str]:
    """The widget types of every metric result of Evidently's own DataDriftPreset run in this thread."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC)
    snapshot = Report([DataDriftPreset(columns=NUMERIC)]).run(
        current_data=Dataset.from_pandas(frame_b[NUMERIC], data_definition=definition),
        reference_data=Dataset.from_pandas(frame_a[NUMERIC], data_definition=definition))
    return {w["type"] for r in json.loads(snapshot.dumps())["metric_results"].values() for w in r.get("widget") or []}


def test_the_report_is_evidentlys_own_without_the_per_column_widgets(tmp_path, monkeypatch):
    html, ours = _report(tmp_path, "lockgate")
    monkeypatch.setattr(value_drift_widgets, "skipping", lambda: False)  # the wrapper installed, never skipping
    shipped_html, shipped = _report(tmp_path, "evidently")

    assert html == shipped_html  # the HTML, but for Evidently's random ids
    for key in ("widgets", "tests_widgets", "top_level_metrics", "report", "tags", "metadata"):
        assert ours[key] == shipped[key], key
    assert ours["metric_results"].keys() == shipped["metric_results"].keys()
    for key, result in ours["metric_results"].items():  # every value and test as Evidently's, the widget aside
        assert {k: v for k, v in result.items() if k != "widget"} == \
               {k: v for k, v in shipped["metric_results"][key].items() if k != "widget"}
    columns = [f"Value drift for {c}" for c in ("x1", "x2", "colour", "score")]
    assert _widget_types(ours) == {c: ["counter"] for c in columns}  # Evidently's default widget: the value
    assert all("tabs" in types for types in _widget_types(shipped).values()) and len(_widget_types(shipped)) == 4
    assert len(json.dumps(ours)) < 0.7 * len(json.dumps(shipped))


def test_the_snapshot_loads_back_and_renders(tmp_path):
    from evidently.core.report import Snapshot

    _, saved = _report(tmp_path, "r")
    loaded = Snapshot.load(tmp_path / "r" / SNAPSHOT_NAME)
    reloaded = json.loads(IDS.sub("ID", loaded.dumps()))["metric_results"].values()
    values = {r["display_name"]: r["value"] for r in reloaded if r["display_name"].startswith("Value drift for ")}
    assert values == {r["display_name"]: r["value"] for r in saved["metric_results"].values()
                      if r["display_name"].startswith("Value drift for ")} and len(values) == 4
    html = loaded.get_html_str(as_iframe=False)
    assert all(c in html for c in ("x1", "x2", "colour", "score"))


def test_only_this_thread_inside_the_block_skips_and_the_block_restores(tmp_path):
    a, b = _frame(1), _frame(2, shift=0.6)
    assert "tabs" in _evidently_widget_types(a, b)  # as Evidently ships, before any block
    other: set[str] = set()
    with value_drift_widgets.without_value_drift_widgets() as installed:
        assert installed and value_drift_widgets.skipping()
        inside = _evidently_widget_types(a, b)
        thread = threading.Thread(target=lambda: other.update(_evidently_widget_types(a, b)))
        thread.start()
        thread.join()
        with value_drift_widgets.without_value_drift_widgets():
            pass
        assert value_drift_widgets.skipping()  # a nested block leaves the outer one on
    assert not value_drift_widgets.skipping()
    assert inside == {"counter"}
    assert "tabs" in other  # another thread meanwhile: drawn as Evidently ships
    assert "tabs" in _evidently_widget_types(a, b)  # after the block: drawn again


def test_installed_once_and_an_evidently_without_the_render_is_left_alone(monkeypatch):
    from evidently.metrics.column_statistics import ValueDriftCalculation

    assert value_drift_widgets.install() is True
    wrapped = ValueDriftCalculation.__dict__["_render"]
    assert wrapped.lockgate_skippable and wrapped.__wrapped__ is not wrapped
    value_drift_widgets.install.cache_clear()
    assert value_drift_widgets.install() is True and ValueDriftCalculation.__dict__["_render"] is wrapped  # not twice
    monkeypatch.delattr(ValueDriftCalculation, "_render")
    value_drift_widgets.install.cache_clear()
    try:
        assert value_drift_widgets.install() is False
        assert "_render" not in ValueDriftCalculation.__dict__
    finally:
        value_drift_widgets.install.cache_clear()


@pytest.fixture(autouse=True)
def _installed_after():
    yield
    value_drift_widgets.install()  # the process keeps the wrapper, as the drift gate leaves it
