"""The champion as a plain-MLflow pyfunc (models-from-code, no pickle) on a real SQLite MLflow.

A version is registered the way lockgate registers it (``source=<run artifacts>/model``),
compiled the way the compile gate records it (artifact in ``model/``, sha256 tag), then
``log_version_pyfunc`` makes ``models:/NAME@champion`` load with ``mlflow.pyfunc``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from tasks.errors import LockgateError
from tasks.registration.pyfunc_logging import log_pyfunc, log_version_pyfunc, pip_requirements

BUCKETS = (1, 64, 1024)


def _local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _compile_and_publish(registry, files, tmp: Path, *, alias: str | None = "champion"):
    """Register a version, record its artifact as the compile gate does, log its pyfunc."""
    from models.config import MLPConfig
    from models.export import export_inference
    from models.params_io import load_params
    from tasks.registration.inference import ARTIFACT_FILE, ARTIFACT_SHA_TAG
    from tasks.registration.register import register_candidate
    from tasks.registry import MODEL_DIR
    from tasks.stores import ledger_for

    settings = registry.settings
    record = register_candidate(registry, ledger_for(settings), name=settings.model_name, arch="mlp",
                                config_path=files.config, params_path=files.params, reference_path=files.reference,
                                contract_name="credit_default", actor="tester")
    blob = export_inference(MLPConfig(**json.loads(files.config.read_text())), load_params(files.params))
    artifact = tmp / f"v{record.version}" / ARTIFACT_FILE
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(blob)
    registry.client.log_artifact(record.run_id, str(artifact), MODEL_DIR)
    registry.set_version_tags(record.name, record.version, {ARTIFACT_SHA_TAG: hashlib.sha256(blob).hexdigest()})
    spec = registry.fetch(record, "feature_spec.json", tmp / f"v{record.version}")
    uri = log_version_pyfunc(registry.client, record.name, record.version, artifact_path=artifact,
                             params_path=files.params, feature_spec_path=spec, buckets=BUCKETS)
    if alias:
        registry.set_alias(record.name, alias, record.version)
    return registry.get(record.name, record.version), uri, artifact, spec


@pytest.fixture(scope="module")
def published(tmp_path_factory, candidate_files):
    from tasks.settings import Settings
    from tasks.stores import registry_for

    home = tmp_path_factory.mktemp("pyfunc-home")
    registry = registry_for(Settings(home=home, actor="tester", mlflow_tracking_uri=None, ledger_url=None))
    record, uri, artifact, spec = _compile_and_publish(registry, candidate_files, home / "work")
    return registry, record, uri, artifact, spec


@pytest.fixture
def plain_mlflow(monkeypatch, published):
    """What a user of plain MLflow sets: the tracking (and so registry) URI, nothing lockgate."""
    registry = published[0]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.settings.tracking_uri)
    return registry


def _reference_scores(artifact: Path, params_path: Path, spec_path: Path, frame):
    from models.export import load_exported, score_bucketed
    from models.features import FeatureSpec, feature_matrix
    from models.params_io import load_params

    spec = FeatureSpec.model_validate_json(spec_path.read_text())
    return score_bucketed(load_exported(artifact.read_bytes()), load_params(params_path),
                          feature_matrix(frame, spec), buckets=BUCKETS)


def test_champion_loads_with_plain_mlflow_and_scores_like_the_artifact(plain_mlflow, published, candidate_files):
    import mlflow.pyfunc
    import pandas as pd

    registry, record, uri, artifact, spec = published
    assert uri == f"models:/{record.name}/{record.version}"
    golden = pd.read_parquet(candidate_files.golden)
    golden.index = golden.index + 1000  # the output keeps the caller's index
    model = mlflow.pyfunc.load_model(f"models:/{record.name}@champion")
    out = model.predict(golden)
    assert list(out.columns) == ["score"] and out.index.equals(golden.index)
    expected = _reference_scores(artifact, candidate_files.params, spec, golden)
    np.testing.assert_allclose(out["score"].to_numpy(), expected, rtol=0, atol=1e-6)
    # rows are independent: a single row scores the same as inside the batch
    np.testing.assert_allclose(model.predict(golden.iloc[[5]])["score"].to_numpy(), expected[[5]], atol=1e-6)


def test_logged_model_is_code_and_pinned_never_pickle(published):
    import mlflow

    registry, record, *_ = published
    # logging went through the client only: no fluent run left active, no env var left behind
    assert mlflow.active_run() is None and "MLFLOW_UV_AUTO_DETECT" not in os.environ
    folder = _local(record.source)
    assert (folder / "MLmodel").is_file()
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pkl", ".pickle"))], files
    assert "python_model.pkl" not in {Path(f).name for f in files}
    mlmodel = (folder / "MLmodel").read_text()
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel
    assert {"pyfunc_model.py", "code/models/export.py", "artifacts/hashes.json", "params.msgpack"} <= set(files)
    assert "uv.lock" not in files  # the pins below are the environment, not lockgate's whole lock file
    reqs = (folder / "requirements.txt").read_text().split()
    assert set(pip_requirements()) <= set(reqs)
    assert any(r.startswith("jax==") for r in reqs) and any(r.startswith("jaxlib==") for r in reqs)


def test_tampered_params_refuse_to_load(plain_mlflow, tmp_path, make_candidate):
    import mlflow.pyfunc

    registry = plain_mlflow
    record, *_ = _compile_and_publish(registry, make_candidate(tmp_path / "cand", seed=1), tmp_path, alias=None)
    stored = _local(record.source) / "artifacts" / "params.msgpack"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in a weight: still valid msgpack, different model
    stored.write_bytes(bytes(data))
    refused = r"params\.msgpack has sha256 [0-9a-f]{64} but hashes\.json records [0-9a-f]{64}; refusing"
    with pytest.raises(Exception, match=refused):
        mlflow.pyfunc.load_model(f"models:/{record.name}/{record.version}")


def test_loads_where_lockgate_is_not_importable(plain_mlflow, published, candidate_files, tmp_path):
    """The logged model carries the ``models`` package (code_paths); lockgate need not be installed."""
    registry, record, _, artifact, spec = published
    child = f"""
import sys
from pathlib import Path
sys.path = [p for p in sys.path if not (Path(p or '.') / 'models' / 'export.py').exists()]
try:
    import models
    raise SystemExit('models is importable before loading: ' + models.__file__)
except ImportError:
    pass
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model('models:/{record.name}@champion')
pd.read_parquet({str(candidate_files.golden)!r}).pipe(model.predict).to_parquet({str(tmp_path / 'out.parquet')!r})
import models, importlib.util
assert importlib.util.find_spec('tasks') is None
print(models.__file__)
"""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MLFLOW_TRACKING_URI": registry.settings.tracking_uri}
    proc = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "/code/models/__init__.py" in proc.stdout.strip().splitlines()[-1]
    import pandas as pd

    golden = pd.read_parquet(candidate_files.golden)
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "out.parquet")["score"].to_numpy(),
                               _reference_scores(artifact, candidate_files.params, spec, golden), atol=1e-6)


def test_refuses_to_log_files_other_than_the_recorded_ones(published, tmp_path, make_candidate):
    registry, record, _, artifact, spec = published
    other = make_candidate(tmp_path / "other", seed=7)
    with pytest.raises(LockgateError, match="params.msgpack has sha256 .* was recorded"):
        log_version_pyfunc(registry.client, record.name, record.version, artifact_path=artifact,
                           params_path=other.params, feature_spec_path=spec)


@pytest.mark.parametrize(
    "change,fragment",
    [
        (lambda f, tmp: {"artifact_path": tmp / "nope.jaxexport"}, "nope.jaxexport does not exist"),
        (lambda f, tmp: {"artifact_path": _write(tmp / "a.jaxexport", b"junk")}, "a.jaxexport: not a valid exported"),
        (lambda f, tmp: {"params_path": _write(tmp / "p.msgpack", b"\x00junk")}, "p.msgpack: not a valid params file"),
        (lambda f, tmp: {"feature_spec_path": _write(tmp / "s.json", b"{")}, "s.json is not a valid feature spec"),
        (lambda f, tmp: {"feature_spec_path": _write(tmp / "s.json", b'{"numeric": []}')}, "feature spec encodes 0"),
        (lambda f, tmp: {"buckets": (64, 1)}, "strictly increasing"),
        (lambda f, tmp: {"expected_sha256": {"artifact": "0" * 64}}, "was recorded"),
    ],
)
def test_bad_files_log_nothing(published, tmp_path, change, fragment):
    registry, record, _, artifact, spec = published
    run_id = record.run_id
    kwargs = dict(artifact_path=artifact, params_path=_local(record.source) / "params.msgpack", feature_spec_path=spec)
    kwargs.update(change(kwargs, tmp_path))
    with pytest.raises(LockgateError) as e:
        log_pyfunc(registry.client, run_id, name="scratch", **kwargs)
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert registry.client.list_artifacts(run_id, "scratch") == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_version_without_compiled_artifact_is_refused(published, tmp_path, make_candidate):
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for

    registry, *_ = published
    files = make_candidate(tmp_path / "uncompiled", seed=3)
    record = register_candidate(registry, ledger_for(registry.settings), name=registry.settings.model_name,
                                arch="mlp", config_path=files.config, params_path=files.params,
                                reference_path=files.reference, contract_name="credit_default", actor="tester")
    with pytest.raises(LockgateError, match="no compiled artifact"):
        log_version_pyfunc(registry.client, record.name, record.version, artifact_path=tmp_path / "a",
                           params_path=files.params, feature_spec_path=tmp_path / "s")
