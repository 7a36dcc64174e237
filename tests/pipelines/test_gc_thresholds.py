"""lockgate's own processes raise the collector's young-generation threshold; a process's own thresholds are kept."""

from __future__ import annotations

import ast
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.gc_thresholds import LOCKGATE, PYTHON_DEFAULT, tune_gc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_defaults_are_raised_and_a_process_s_own_thresholds_kept(thresholds):
    gc.set_threshold(*PYTHON_DEFAULT)
    assert tune_gc() is True and gc.get_threshold() == LOCKGATE
    assert tune_gc() is False and gc.get_threshold() == LOCKGATE  # idempotent
    gc.set_threshold(500, 5, 5)
    assert tune_gc() is False and gc.get_threshold() == (500, 5, 5)


def _cli_thresholds(before: str) -> tuple[int, int, int]:
    code = (f"import gc, json\n{before}\nfrom pipelines.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(json.dumps(gc.get_threshold()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def test_the_cli_process_runs_with_lockgate_s_thresholds_unless_it_set_its_own():
    assert _cli_thresholds("") == LOCKGATE
    assert _cli_thresholds("gc.set_threshold(2000, 20, 20)") == (2000, 20, 20)
    assert LOCKGATE[0] > PYTHON_DEFAULT[0] and LOCKGATE[1:] == PYTHON_DEFAULT[1:]


def test_a_flow_run_a_worker_starts_is_set_up_with_them():
    """The batch flow's set-up of a deployment's run (a process Prefect's worker started, not the CLI) tunes too."""
    tree = ast.parse((ROOT / "pipelines" / "batch_inference.py").read_text())
    branch = next(n for n in ast.walk(tree) if isinstance(n, ast.If) and "deployment.get_id" in ast.unparse(n.test))
    calls = [ast.unparse(c.func) for n in branch.body for c in ast.walk(n) if isinstance(c, ast.Call)]
    assert "tune_gc" in calls and "process_defaults" in calls
