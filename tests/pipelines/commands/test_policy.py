"""`lockgate policy lint`, in-process: every problem named, exit codes, the file untouched."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from pipelines.exit_codes import EXIT_OK, EXIT_USAGE
from tasks.settings import DEMO_POLICY


def lint(capsys, path):
    before = path.read_bytes() if path.is_file() else None
    code = main(["policy", "lint", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in out + err
    if before is not None:
        assert path.read_bytes() == before
    return code, out


def test_the_demo_policy_is_clean(settings, capsys):
    code, out = lint(capsys, DEMO_POLICY)
    assert code == EXIT_OK and "ok (policy demo; environments: dev (auto-approved), prod (promote, rollback))" in out


def test_default_is_the_configured_policy(settings, capsys, monkeypatch, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: mine\n")
    monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(path))
    assert main(["policy", "lint"]) == EXIT_OK and "policy mine" in capsys.readouterr().out


@pytest.mark.parametrize("text,lines", [
    ("validation:\n  max_quarantine_share: 0.05\n  max_quarantine_share: 1.0\n", ["duplicate key 'max_quarantine_share'"]),
    ("canary:\n  margins: {auc: .nan}\n  max_p99_ms: {1: -20}\n  latency_buckets: [0, -1]\napproval:\n"
     "  environments:\n    prod:\n      approvers: {users: ['']}\n      expiry: 99999999999d\n",
     ["canary.margins.auc", "canary.latency_buckets", "canary.max_p99_ms.1", "approval.environments.prod.approvers.users.0",
      "approval.environments.prod.expiry"]),
    ("", ["the file is empty"]),
    ("canary:\n  shadow_decides: maybe\n  latency_floor_ms: -1\n", ["canary.shadow_decides", "canary.latency_floor_ms"]),
])
def test_every_problem_is_a_line_naming_its_key(settings, capsys, tmp_path, text, lines):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    code, out = lint(capsys, path)
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert code == EXIT_USAGE and len(errors) == len(lines)
    for line, key in zip(errors, lines):
        assert key in line


def test_a_missing_file(settings, capsys, tmp_path):
    code, out = lint(capsys, tmp_path / "nope.yaml")
    assert code == EXIT_USAGE and "policy file not found" in out
