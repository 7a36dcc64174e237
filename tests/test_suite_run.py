"""tests/suite_run.py: a fresh clone orders the heaviest modules first from the checked-in module seconds."""

from __future__ import annotations

import json

from tests import suite_run


def test_without_a_last_run_the_checked_in_seconds_order_the_units(tmp_path, monkeypatch):
    monkeypatch.setattr(suite_run, "LAST_RUN", tmp_path / "none.json")
    seconds = suite_run._last_modules()
    assert seconds == json.loads(suite_run.MODULE_SECONDS.read_text())["modules"]
    assert max(seconds, key=seconds.get).startswith("tests/pipelines/")  # an end-to-end module, not a unit test's
    (tmp_path / "none.json").write_text(json.dumps({"modules": {"tests/a.py": 3}}))
    assert suite_run._last_modules() == {"tests/a.py": 3.0}  # this checkout's own last run wins


def test_every_module_named_in_the_checked_in_seconds_exists():
    root = suite_run.TESTS.parent
    named = json.loads(suite_run.MODULE_SECONDS.read_text())["modules"]
    assert [m for m in named if not (root / m).is_file()] == []  # else: python -m tests.suite_run after a whole run
