"""The everyday commands import nothing they do not use (issue 18): `status`, `pending`, `audit verify`,
`contract lint`, `--help` and every subcommand's `--help`, each in a fresh interpreter on a real home with a
champion, load none of JAX, GE, Evidently, Prefect or MLflow (what is imported, not how long it takes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("jax", "flax", "great_expectations", "evidently", "prefect", "mlflow")
MARK = "LOADED-MODULES:"
CHILD = """
import json, sys
from pipelines.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    try:
        codes.append(main(argv))
    except SystemExit as e:  # --help
        codes.append(e.code)
print(%r + json.dumps({"codes": codes, "heavy": sorted({m.split('.')[0] for m in sys.modules} & set(%r))}))
""" % (MARK, HEAVY)


def loaded(argvs: list[list[str]], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argvs)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    line = [x for x in done.stdout.splitlines() if x.startswith(MARK)][-1]
    return json.loads(line[len(MARK):])


def help_argvs() -> list[list[str]]:
    """``--help`` of the program and of every subcommand, nested ones included (``run lifecycle --help``)."""
    import argparse

    from pipelines.cli import _parser

    found = [["--help"]]

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append([*prefix, name, "--help"])
                    walk(sub, [*prefix, name])

    walk(_parser(), [])
    return found


@pytest.fixture(scope="module")
def env(shared_home, candidate_files, exported_artifact, compiled_versions):
    """The module's home with a signed champion (v2) and a previous champion (v1); the child's environment."""
    from tasks.governance.promotion import promote
    from tasks.stores import ledger_for, registry_for

    compiled_versions(shared_home, candidate_files, exported_artifact, 2)
    registry, ledger = registry_for(shared_home), ledger_for(shared_home)
    common = dict(actor="tester", policy="test", evidence={}, flow_run_id=None)
    promote(registry, ledger, name=shared_home.model_name, version=1, reason="first", expected_champion=None, **common)
    promote(registry, ledger, name=shared_home.model_name, version=2, reason="better", expected_champion=1, **common)
    child = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    child.update(LOCKGATE_HOME=str(shared_home.home_dir), LOCKGATE_ACTOR="tester", JAX_PLATFORMS="cpu")
    return child


@pytest.mark.parametrize("argv,code", [
    (["status"], 0),
    (["audit", "verify"], 0),  # the champion's model signature verified too
    (["contract", "lint", "credit_default"], 0),
    (["pending"], 2),  # no Prefect server: nothing to ask, and Prefect is not imported to say so
])
def test_everyday_command_loads_no_heavy_library(env, argv, code):
    got = loaded([argv], env)
    assert got == {"codes": [code], "heavy": []}


def test_every_help_loads_no_heavy_library(env):
    argvs = help_argvs()
    assert ["run", "lifecycle", "--help"] in argvs and ["contract", "lint", "--help"] in argvs and len(argvs) > 25
    got = loaded(argvs, env)
    assert got == {"codes": [0] * len(argvs), "heavy": []}


def test_the_check_sees_a_heavy_import(env):
    """The same child reports a command that does load them (compile imports JAX and Flax; it reads the registry
    with sqlite3, so not MLflow)."""
    got = loaded([["compile", "credit-default:1", "--target", "cpu", "--bucket", "1", "--variant", "f32"]], env)
    assert {"jax", "flax"} <= set(got["heavy"]) and "mlflow" not in got["heavy"]
