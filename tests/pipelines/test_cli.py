"""The CLI: instant --help (no heavy imports) and one-line errors on bad input, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.cli import main
from pipelines.exit_codes import EXIT_USAGE

HEAVY = ("jax", "prefect", "mlflow", "great_expectations", "evidently", "flax")


def test_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom pipelines.cli import _parser\n"
        "try:\n    _parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["run", "lifecycle", "--help"],
                                  ["run", "batch-inference", "--help"], ["register", "--help"], ["status", "--help"],
                                  ["demo", "--help"], ["compile", "--help"], ["backfill", "--help"],
                                  ["serve", "--help"], ["unblock", "--help"], ["rollback", "--help"],
                                  ["audit", "--help"], ["audit", "verify", "--help"], ["audit", "report", "--help"],
                                  ["model-card", "--help"], ["server", "start", "--help"], ["server", "--help"],
                                  ["pending", "--help"], ["approve", "--help"], ["reject", "--help"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0 and "usage: lockgate" in capsys.readouterr().out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_unwritable_home(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LOCKGATE_HOME", str(blocker / "home"))
    assert main(["status"]) == EXIT_USAGE
    assert "not writable" in _one_line_error(capsys)
    assert blocker.read_text() == "not a folder"


def test_unknown_policy_key(tmp_path, monkeypatch, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text("canary:\n  min_auc: 0.7\n  max_drop: 0.1\n")
    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(policy))
    golden = tmp_path / "golden.parquet"
    golden.write_bytes(b"PAR1 not really")
    assert main(["run", "batch-inference", str(golden)]) == EXIT_USAGE
    err = _one_line_error(capsys)
    assert "canary.max_drop: unknown key" in err


def test_missing_model_version(settings, capsys, tmp_path):
    golden = tmp_path / "g.parquet"
    assert main(["run", "lifecycle", "--version", "7", "--golden", str(golden)]) == EXIT_USAGE
    assert "v7 not found" in _one_line_error(capsys)


def test_policy_path_is_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(tmp_path))
    assert main(["run", "lifecycle", "--version", "1", "--golden", str(tmp_path / "g.parquet")]) == EXIT_USAGE
    assert "policy file" in _one_line_error(capsys)


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["compile", "credit-default", "--target", "v9z-4"], "unknown target(s) ['v9z-4']"),
        (["compile", "credit-default", "--bucket", "0"], "positive"),
        (["compile", "credit-default:x"], "must be a number"),
        (["compile", "credit-default:4"], "v4 not found"),
        (["compile", "credit-default@champion"], "no 'champion' alias"),
        (["compile", "credit-default"], "no registered versions"),
    ],
)
def test_compile_bad_input(settings, capsys, argv, fragment):
    assert main(argv) == EXIT_USAGE
    assert fragment in _one_line_error(capsys)


@pytest.mark.parametrize("argv,fragment", [
    (["backfill", "--from", "2026-01-05", "--to", "2026-01-01"], "is before --from"),
    (["backfill", "--from", "2026-13-01", "--to", "2026-01-01"], "must be dates YYYY-MM-DD"),
    (["serve"], "lockgate serve needs a Prefect server"),
])
def test_backfill_and_serve_bad_input(settings, capsys, monkeypatch, argv, fragment):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(argv) == EXIT_USAGE
    assert fragment in _one_line_error(capsys)


def test_serve_help_says_what_sigterm_does(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "pauses the deployment's schedule" in out and "prefect deployment resume" in out


def test_lifecycle_needing_approval_fails_fast_without_a_server(tmp_path, monkeypatch, capsys):
    from tasks.settings import DEMO_POLICY

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(DEMO_POLICY))
    monkeypatch.setenv("LOCKGATE_ENVIRONMENT", "prod")
    assert main(["run", "lifecycle", "--version", "1", "--golden", str(tmp_path / "missing.parquet")]) == EXIT_USAGE
    assert _one_line_error(capsys) == (
        "lockgate: error: policy 'demo' needs human approval for promote in prod, but no Prefect server is running "
        "for reviewers to reach the paused run; run `lockgate server start` (or set PREFECT_API_URL) first")
    monkeypatch.setenv("LOCKGATE_ENVIRONMENT", "prdo")  # a typo never skips approval
    assert main(["run", "lifecycle", "--version", "1", "--golden", str(tmp_path / "missing.parquet")]) == EXIT_USAGE
    assert "environment 'prdo' (LOCKGATE_ENVIRONMENT) is not in policy 'demo'" in _one_line_error(capsys)


def test_approve_needs_a_run_id_and_a_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    assert main(["approve", "not-a-run", "--reason", "ok"]) == EXIT_USAGE
    assert _one_line_error(capsys) == "lockgate: error: 'not-a-run' is not a flow run id (see `lockgate pending`)"
    assert main(["reject", "8d1f6a52-3f3c-4b0e-9d7e-1f2a3b4c5d6e", "--reason", " "]) == EXIT_USAGE
    assert "--reason must not be empty" in _one_line_error(capsys)
    assert main(["approve", "8d1f6a52-3f3c-4b0e-9d7e-1f2a3b4c5d6e", "--reason", "ok"]) == EXIT_USAGE
    assert "no Prefect server for this LOCKGATE_HOME, so no run can be awaiting approval" in _one_line_error(capsys)
    assert main(["pending"]) == EXIT_USAGE
    assert "no Prefect server for this LOCKGATE_HOME" in _one_line_error(capsys)


def test_server_status_and_stop_without_a_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    assert main(["server", "status"]) == 0
    assert "no lockgate Prefect server for" in capsys.readouterr().out
    assert main(["server", "stop"]) == 0
    assert "no lockgate Prefect server recorded" in capsys.readouterr().out


def test_a_prefect_api_that_never_answers_is_one_line_naming_the_limit(settings, capsys, monkeypatch, closed_port):
    url = f"http://127.0.0.1:{closed_port}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    monkeypatch.setenv("LOCKGATE_SERVER_READY_TIMEOUT_SECONDS", "0.5")
    assert main(["pending"]) == EXIT_USAGE
    assert _one_line_error(capsys) == (
        f"lockgate: error: the Prefect API at {url} did not answer {url}/health within 0.5 s; start it (`lockgate "
        "server start`, or your server for PREFECT_API_URL), check PREFECT_API_URL, or raise "
        "LOCKGATE_SERVER_READY_TIMEOUT_SECONDS")


def test_an_mlflow_server_that_never_answers_is_one_line_naming_the_limit(settings, capsys, monkeypatch, closed_port):
    uri = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("LOCKGATE_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("LOCKGATE_SERVER_READY_TIMEOUT_SECONDS", "0.5")
    assert main(["status"]) == EXIT_USAGE
    assert _one_line_error(capsys) == (
        f"lockgate: error: the MLflow tracking server at {uri} did not answer {uri}/health within 0.5 s; start it "
        "(`mlflow server`), check LOCKGATE_MLFLOW_TRACKING_URI, or raise LOCKGATE_SERVER_READY_TIMEOUT_SECONDS")
