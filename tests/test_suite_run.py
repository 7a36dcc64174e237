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


def test_malformed_seconds_files_fall_back_to_the_next_source(tmp_path, monkeypatch):
    """A last run or checked-in file that is cut, not JSON, or of the wrong shape is skipped, never a crash."""
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"modules": {"tests/b.py": 2}}))
    monkeypatch.setattr(suite_run, "MODULE_SECONDS", good)
    for text in ('{"modules": {"tests/a.py": 3', "not json", "[1, 2]", '{"modules": [1]}', '{"modules": {"a": "x"}}'):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        monkeypatch.setattr(suite_run, "LAST_RUN", bad)
        assert suite_run._last_modules() == {"tests/b.py": 2.0}, text
    monkeypatch.setattr(suite_run, "MODULE_SECONDS", bad)
    assert suite_run._last_modules() == {}  # neither: the marker guess orders the units
