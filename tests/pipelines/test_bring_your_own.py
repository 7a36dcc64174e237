"""End to end from an empty folder, as a new user (issue 16): two tables shipped inside scikit-learn (not made by this
project), each with the user's own model code written into the folder (not one of models/).

- wine as a binary classifier (class 0 or not) with a Flax ``nn.Module``, through the CLI run in the project folder;
- diabetes as a regressor with a plain JAX function ``f(params, x)``, through the Python API (``import lockgate``).

For each: ``init`` (refused without an id column, then the id added as the refusal says; the written contract and
policy are not edited), two versions registered (the second trained longer), the lifecycle of each, a backfill of a
clean and a drifted day, ``audit report``: every step succeeds and the second version is the champion. The wine
champion then loads by plain MLflow in a clean process and predicts what lockgate's scoring wrote.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.flow]

CLEAN, DRIFTED = "2026-01-02", "2026-01-03"

WINENET = '''"""A small network for the wine table: one hidden layer, a logit out."""
import flax.linen as nn


class WineNet(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x):  # x: f32[batch, num_features]
        return nn.Dense(1)(nn.tanh(nn.Dense(self.hidden)(x)))  # f32[batch, 1]


def build(config):
    return WineNet(hidden=config["hidden"])
'''

LINEAR = '''"""Disease progression as a linear function of the encoded features."""


def progression(params, x):  # x: f32[batch, num_features] -> f32[batch]
    return x @ params["w"] + params["b"]
'''


@pytest.fixture(autouse=True)
def own_environment(monkeypatch):
    """The CLI and the API set process defaults (LOCKGATE_PROJECT, ...): give each test a clean environment."""
    for key in ("LOCKGATE_PROJECT", "LOCKGATE_HOME", "LOCKGATE_POLICY_FILE", "LOCKGATE_MODEL_NAME",
                "LOCKGATE_INPUT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    with mock.patch.dict(os.environ):
        yield


def _cli(*argv) -> int:
    from pipelines.cli import main

    return main([str(a) for a in argv])


def _fit(loss, params, x: np.ndarray, y: np.ndarray, *, steps: int, lr: float):
    """The user's own training loop: full-batch adam for ``steps`` steps."""
    import jax
    import optax

    tx = optax.adam(lr)

    @jax.jit
    def step(p, s):
        grads = jax.grad(loss)(p, x, y)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    state = tx.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params


def _encoded(folder: Path, frame: pd.DataFrame) -> np.ndarray:
    """The contract's encoding (lockgate fits the same spec on the reference at registration)."""
    from data_contracts.contract import load_contract
    from models.features import feature_matrix, fit_feature_spec

    contract = load_contract(str(folder / "contract.yaml"))
    reference = pd.read_parquet(folder / "data" / "reference.parquet")
    spec = fit_feature_spec(reference, contract.numeric_features, contract.categorical_features)
    return feature_matrix(frame, spec)


def _write_version(folder: Path, version: str, config: dict, params) -> tuple[Path, Path]:
    from flax.serialization import to_bytes

    out = folder / "runs" / version
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config))
    (out / "params.msgpack").write_bytes(to_bytes(params))
    return out / "config.json", out / "params.msgpack"


def _day(folder: Path, day: str, frame: pd.DataFrame, label: str) -> None:
    """A date partition where the project reads them (LOCKGATE_HOME/data/stream, the default)."""
    part = folder / ".lockgate" / "data" / "stream" / f"date={day}"
    part.mkdir(parents=True)
    frame.drop(columns=label).to_parquet(part / "part-0.parquet", index=False)


def _predictions(folder: Path, name: str, day: str) -> pd.DataFrame:
    return pd.read_parquet(folder / ".lockgate" / "predictions" / name / f"date={day}" / "predictions.parquet")


def test_wine_classifier_with_a_flax_module_through_the_cli(prefect_harness, tmp_path, monkeypatch, capsys,
                                                           clean_process_predict):
    from sklearn.datasets import load_wine

    from pipelines.exit_codes import EXIT_OK, EXIT_USAGE

    wine = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    wine["target"] = (wine["target"] == 0).astype(int)  # binary: class 0 or not
    wine.iloc[:120].to_parquet(tmp_path / "wine.parquet", index=False)
    monkeypatch.chdir(tmp_path)
    assert _cli("init", "wine", "--from", "wine.parquet", "--label", "target") == EXIT_USAGE
    assert "add one, e.g. df.insert(0, 'id', range(len(df)))" in capsys.readouterr().err
    wine.insert(0, "id", range(len(wine)))  # as the refusal says
    wine.iloc[:120].to_parquet(tmp_path / "wine.parquet", index=False)
    wine.iloc[120:].to_parquet(tmp_path / "holdout.parquet", index=False)
    assert _cli("init", "wine", "--from", "wine.parquet", "--label", "target", "--golden", "holdout.parquet") == EXIT_OK

    project = tmp_path / "wine"
    monkeypatch.chdir(project)  # every command below finds ./lockgate.yaml
    (project / "winenet").mkdir()
    (project / "winenet" / "__init__.py").write_text("")
    (project / "winenet" / "net.py").write_text(WINENET)
    spec = importlib.util.spec_from_file_location("winenet_here", project / "winenet" / "net.py")
    net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(net)

    import jax
    import optax

    train = pd.read_parquet("data/reference.parquet")
    x, y = _encoded(project, train), train["target"].to_numpy().astype(np.float32)
    config = {"hidden": 8}
    module = net.build(config)

    def loss(p, xb, yb):
        return optax.sigmoid_binary_cross_entropy(module.apply(p, xb)[:, 0], yb).mean()

    start = module.init(jax.random.PRNGKey(0), x[:1])
    for version, steps in (("v1", 3), ("v2", 150)):  # v2: trained fifty times longer
        cfg, params = _write_version(project, version, config, _fit(loss, start, x, y, steps=steps, lr=0.01))
        assert _cli("register", "--model", "winenet.net:build", "--config", cfg, "--params", params) == EXIT_OK
    for version in (1, 2):
        assert _cli("run", "lifecycle", "--version", version) == EXIT_OK, capsys.readouterr().out[-3000:]

    holdout = pd.read_parquet("data/golden.parquet")
    _day(project, CLEAN, holdout, "target")
    _day(project, DRIFTED, train.nlargest(30, "proline"), "target")  # one kind of wine only
    assert _cli("backfill", "--from", CLEAN, "--to", DRIFTED) == EXIT_OK, capsys.readouterr().out[-3000:]
    assert _cli("audit", "report") == EXIT_OK, capsys.readouterr().out[-3000:]

    import lockgate

    status = lockgate.status(limit=50)
    assert status.champion == 2 and status.ledger_ok and status.aliases_agree
    alerts = [e.reason for e in status.entries if e.action == "monitor.alert"]  # the project policy: alert, score on
    assert any(f"date={DRIFTED}" in reason for reason in alerts), alerts
    scored = _predictions(project, "wine", CLEAN)
    assert list(scored["model_version"].astype(int).unique()) == [2]
    assert {"score", "predicted_target"} <= set(scored.columns)

    from tasks.settings import Settings

    got, origin = clean_process_predict(Settings().tracking_uri, {"wine": "models:/wine@champion"},
                                        project / "data" / "golden.parquet", tmp_path,
                                        absent=("models", "tasks", "winenet"), origin_of="winenet.net")
    assert origin.endswith("/code/winenet/net.py")
    by_id = scored.set_index(scored["id"].astype(int))["score"]
    np.testing.assert_allclose(got["wine"]["score"].to_numpy(), by_id.loc[holdout["id"]].to_numpy(), atol=1e-6)


def test_diabetes_regressor_with_a_jax_function_through_the_api(prefect_harness, tmp_path, capsys):
    from sklearn.datasets import load_diabetes

    import lockgate

    diabetes = load_diabetes(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    diabetes.insert(0, "id", range(len(diabetes)))
    diabetes.iloc[:300].to_parquet(tmp_path / "diabetes.parquet", index=False)
    diabetes.iloc[300:].to_parquet(tmp_path / "holdout.parquet", index=False)
    made = lockgate.init(tmp_path / "diabetes", tmp_path / "diabetes.parquet", label="target",
                         golden=tmp_path / "holdout.parquet")
    assert made.task == "regression"
    project = made.folder
    (project / "progress").mkdir()
    (project / "progress" / "__init__.py").write_text("")
    (project / "progress" / "linear.py").write_text(LINEAR)
    spec = importlib.util.spec_from_file_location("progress_here", project / "progress" / "linear.py")
    linear = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(linear)

    import jax.numpy as jnp

    train = pd.read_parquet(made.reference)
    x, y = _encoded(project, train), train["target"].to_numpy().astype(np.float32)

    def loss(p, xb, yb):
        return jnp.mean((linear.progression(p, xb) - yb) ** 2)

    start = {"w": jnp.zeros(x.shape[1], jnp.float32), "b": jnp.float32(y.mean())}
    versions = []
    for version, steps in (("v1", 3), ("v2", 300)):
        cfg, params = _write_version(project, version, {"task": "regression"}, _fit(loss, start, x, y, steps=steps,
                                                                                      lr=1.0))
        versions.append(lockgate.register(config=cfg, params=params, model="progress.linear:progression",
                                          project=project).version)
    assert versions == [1, 2]
    from pipelines.lifecycle import LifecycleOutcome
    from pipelines.status import ModelStatus
    from tasks.batch.run import BatchRun

    for version in versions:
        outcome = lockgate.lifecycle(version, project=project)  # golden: the project's
        assert isinstance(outcome, LifecycleOutcome) and outcome.decision == "champion", outcome.reasons

    holdout = pd.read_parquet(made.golden)
    _day(project, CLEAN, holdout, "target")
    _day(project, DRIFTED, train.nlargest(40, "bmi"), "target")
    run = lockgate.score(dates=[CLEAN, DRIFTED], project=project)
    assert isinstance(run, BatchRun) and [o.rows for o in run.outcomes] == [len(holdout), 40]
    assert [(o.status, o.model_version) for o in run.outcomes] == [("scored", 2), ("scored", 2)]
    assert run.outcomes[1].drift in ("warn", "breach") and run.outcomes[1].monitor in ("none", "alert")
    assert _cli("--project", project, "audit", "report") == 0, capsys.readouterr().out[-3000:]
    status = lockgate.status(project=project)
    assert isinstance(status, ModelStatus) and status.champion == 2 and status.ledger_ok and status.aliases_agree
    assert {v.version: v.status for v in status.versions}[2] == "champion"
    assert "predicted_target" not in _predictions(project, "diabetes", CLEAN).columns  # a regressor: no class
