"""Evidently's per-column ValueDrift widgets, left out of lockgate's drift report (they appear nowhere in it).

Evidently 0.7's ``DataDriftPreset`` draws every column twice. ValueDrift's calculation renders the column's own
widget (a distribution plot and a mean-over-index plot) and stores it on the metric's result; then the preset's
``render`` draws the legacy drift table, whose expandable rows hold the same two plots again. The report, both the
HTML and the snapshot's ``widgets`` (what Evidently's UI shows of a snapshot), is the preset's table: the
per-metric widgets are shown by neither, yet they took a third of the report's CPU and half of the snapshot's JSON.

Inside :func:`without_value_drift_widgets` (this thread only), ValueDrift's render returns nothing, and Evidently
gives the result its own default widget instead (the metric's value as a counter, as for any metric without a
render of its own). The HTML and the snapshot's ``widgets`` and ``tests_widgets`` are unchanged but for Evidently's
random widget ids; every metric value and test is unchanged (tests/tasks/drift/test_value_drift_widgets.py). A
21-column report takes 1.23x (600 rows) to 1.55x (5,000 rows) less CPU (``benchmarks.run drift``:
``evidently_report_600``, ``_5000``, against Evidently drawing every widget, in the same run).
Evidently used outside the block, by another thread meanwhile included, draws as it ships. An Evidently without
that render, or one already wrapped, is left alone.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache, wraps

_SKIPPING = threading.local()
# What differs between two runs of one report: Evidently's random ids, its widgets' (uuid7) and the HTML's script
# variables; metric ids are fingerprints of the metric, the same every run. For comparing reports.
RANDOM_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=metric_)[0-9a-f]{32}")


def skipping() -> bool:
    """Whether this thread is inside :func:`without_value_drift_widgets`."""
    return getattr(_SKIPPING, "on", False)


@lru_cache(maxsize=1)
def install() -> bool:
    """Wrap ValueDrift's render once per process; True when it is (now or already) wrapped."""
    try:
        from evidently.metrics.column_statistics import ValueDriftCalculation
    except ImportError:
        return False
    render = ValueDriftCalculation.__dict__.get("_render")
    if not callable(render):
        return False
    if getattr(render, "lockgate_skippable", False):
        return True

    @wraps(render)
    def _render(self, *args, **kwargs):
        return None if skipping() else render(self, *args, **kwargs)

    _render.lockgate_skippable = True
    ValueDriftCalculation._render = _render
    return True


@contextmanager
def without_value_drift_widgets() -> Iterator[bool]:
    """Within the block, this thread's ValueDrift metrics get Evidently's default widget instead of their plots;
    yields whether the wrapper is installed (False: Evidently draws as it ships)."""
    installed = install()
    before = skipping()
    _SKIPPING.on = True
    try:
        yield installed
    finally:
        _SKIPPING.on = before
