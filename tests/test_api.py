"""The Python API (`import lockgate`): each function on a small real case, returning the CLI's typed results, and
an import that pulls in none of the heavy libraries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {"jax", "great_expectations", "evidently", "prefect", "mlflow", "flax"}


def test_import_lockgate_imports_nothing_heavy():
    """The modules `python -X importtime -c "import lockgate"` lists: none of JAX, GE, Evidently, Prefect, MLflow."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import lockgate"], capture_output=True, text=True,
                          check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "lockgate" in modules and len(modules) > 10  # the listing was read
    assert {m for m in modules if m.split(".")[0] in HEAVY} == set()
    assert {m.split(".")[0] for m in modules} & {"tasks", "pipelines", "models", "data_contracts"} == set()


def _restore_environ():
    """The API sets the process's defaults (like the CLI) and LOCKGATE_PROJECT during a call: put them back."""
    saved = dict(os.environ)
    for key in ("LOCKGATE_PROJECT", "LOCKGATE_HOME", "LOCKGATE_POLICY_FILE", "LOCKGATE_MODEL_NAME"):
        os.environ.pop(key, None)
    return saved


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """scikit-learn's wine table as a binary task (class 0 or not), with an id, shuffled, split 120 / 58."""
    from sklearn.datasets import load_wine

    saved = _restore_environ()
    folder = tmp_path_factory.mktemp("wine")
    frame = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame["target"] = (frame["target"] == 0).astype(int)
    frame.insert(0, "id", range(len(frame)))
    frame.iloc[:120].to_parquet(folder / "train.parquet", index=False)
    frame.iloc[120:].to_parquet(folder / "holdout.parquet", index=False)
    yield folder
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def project(wine):
    import lockgate

    made = lockgate.init(wine / "wine-project", wine / "train.parquet", label="target",
                         golden=wine / "holdout.parquet")
    assert made.task == "classification" and made.id_column == "id" and len(made.numeric_features) == 13
    return made


def test_init_returns_what_it_wrote(project, wine):
    import lockgate
    from tasks.errors import LockgateError

    assert project.project_file.is_file() and project.golden == wine / "wine-project" / "data" / "golden.parquet"
    assert project.reference.read_bytes() == (wine / "train.parquet").read_bytes()
    with pytest.raises(LockgateError, match="already exists"):
        lockgate.init(wine / "wine-project", wine / "train.parquet", label="target")


def test_validate_with_the_projects_contract(project, wine, monkeypatch):
    import lockgate
    from tasks.validation.gate import ValidationResult

    result = lockgate.validate(wine / "holdout.parquet", include_label=True, project=project.folder)
    assert isinstance(result, ValidationResult) and result.decision == "pass" and result.n_rows == 58
    assert Path(result.evidence["result"].path).is_relative_to(project.folder / ".lockgate")
    assert "LOCKGATE_PROJECT" not in os.environ  # only during the call
    monkeypatch.chdir(project.folder)  # the current folder's lockgate.yaml, like the CLI
    assert lockgate.validate("data/reference.parquet", include_label=True).passed
    broken = wine / "broken.parquet"
    import pandas as pd

    frame = pd.read_parquet(wine / "holdout.parquet")
    frame.loc[:9, "alcohol"] = 1000.0  # far outside the inferred range
    frame.to_parquet(broken, index=False)
    failed = lockgate.validate(broken, contract=project.contract, project=project.folder)
    assert failed.decision == "fail" and failed.n_quarantined == 10 and "alcohol in range" in failed.failed_expectations


def test_drift_per_column_with_the_contracts_methods(project, wine):
    import lockgate
    from tasks.drift.results import DriftResult

    result = lockgate.drift(project.reference, wine / "holdout.parquet", project=project.folder)
    assert isinstance(result, DriftResult) and result.decision in ("ok", "warn")
    assert {c.column for c in result.columns} == set(project.numeric_features)
    assert {c.method for c in result.columns} == {"ks"}  # the draft contract's method for 178 rows


def test_status_of_a_project_with_no_version_yet(project):
    import lockgate
    from pipelines.status import ModelStatus

    st = lockgate.status(project=project.folder)
    assert isinstance(st, ModelStatus) and st.model_name == "wine-project" and st.champion is None
    assert st.versions == [] and st.ledger_ok and st.aliases_agree


def test_incidents_of_a_project_and_resolving_an_unknown_one(project):
    import lockgate
    from tasks.errors import LockgateError

    assert lockgate.incidents(project=project.folder) == []
    assert lockgate.incidents(include_resolved=True, project=project.folder) == []
    with pytest.raises(LockgateError, match="no incident INC-20261105-abcdef in this ledger"):
        lockgate.resolve_incident("INC-20261105-abcdef", reason="x", project=project.folder)


def test_bad_input_is_a_one_line_error(project, wine):
    import lockgate
    from tasks.errors import LockgateError

    with pytest.raises(LockgateError, match="no lockgate.yaml in"):
        lockgate.status(project=wine)
    with pytest.raises(LockgateError, match="register needs arch="):
        lockgate.register(config=wine / "c.json", params=wine / "p.msgpack", project=project.folder)
    with pytest.raises(LockgateError, match="data not found"):
        lockgate.validate(wine / "nope.parquet", project=project.folder)


# register -> lifecycle -> score -> status through the API, on a user's own model: tests/pipelines/test_bring_your_own.py
