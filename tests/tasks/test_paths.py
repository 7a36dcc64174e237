"""Names that become paths: one alphabet, checked at the edge; the joined path stays under its root."""

from __future__ import annotations

import pytest

from tasks.errors import LockgateError
from tasks.paths import checked_name, path_under


@pytest.mark.parametrize("name", ["credit-default", "credit_default", "v1.2", "date=2026-11-05", "A9", "x" * 128])
def test_safe_names_pass(name):
    assert checked_name(name, "model name") == name


@pytest.mark.parametrize("name,fragment", [
    ("", "must not be empty"), ("..", "must not contain '..'"), ("a..b", "'..'"), ("../etc", "'..'"),
    ("a/b", "may hold only"), ("a\\b", "may hold only"), ("/abs", "may hold only"), (".hidden", "may hold only"),
    ("-flag", "may hold only"), ("with space", "may hold only"), ("nul\x00", "may hold only"), ("é", "may hold only"),
    ("x" * 129, "at most 128 characters"), (None, "must be a string"), (3, "must be a string"),
])
def test_unsafe_names_are_one_line_errors(name, fragment):
    with pytest.raises(LockgateError) as e:
        checked_name(name, "model name")
    assert fragment in str(e.value) and str(e.value).startswith("model name ") and "\n" not in str(e.value)


def test_path_under_joins_checked_names(tmp_path):
    assert path_under(tmp_path, "m", "v1") == tmp_path / "m" / "v1"


def test_path_under_refuses_a_symlink_out_of_its_root(tmp_path):
    root, outside = tmp_path / "home", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "m").symlink_to(outside)
    with pytest.raises(LockgateError, match="leads outside"):
        path_under(root, "m", "v1")


def test_settings_refuse_an_unsafe_model_name(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from tasks.settings import Settings

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path))
    monkeypatch.setenv("LOCKGATE_MODEL_NAME", "../../x")
    with pytest.raises(ValidationError, match="is not a safe name"):
        Settings()


def test_cli_names_an_unsafe_model_name_in_one_line(monkeypatch, tmp_path, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCKGATE_MODEL_NAME", "../../x")
    assert main(["status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lockgate: error: invalid LOCKGATE_* setting: model_name:") and len(err.splitlines()) == 1
    assert not (tmp_path / "home").exists()
