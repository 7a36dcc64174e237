"""Session-wide test set-up: environment before any heavy import, one Prefect test harness per session."""

from __future__ import annotations

import os
import sys
import tempfile

# Before Prefect/JAX are imported anywhere in the session.
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "300"  # a readiness limit: 2 cores, 2 workers, others busy
os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
# Bytecode caches on, for the whole run and every process it starts. Where PYTHONDONTWRITEBYTECODE is set (as on this
# project's machines), every process compiled lockgate's modules from source and pytest re-rewrote every test module
# in each worker: ~80 of the run's ~1,150 CPU-s (measured with py-spy over a whole run). Python writes each .pyc
# atomically, so processes importing at once cannot read a partial one; __pycache__ is git-ignored.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
# The ledger key signs every test ledger's head: one per session, never the developer's ~/.config/lockgate key.
# Made by the process that starts the run (its xdist workers inherit them; not even a LOCKGATE_*_KEY of the developer's
# environment is used) and removed when it exits.
if not os.environ.get("PYTEST_XDIST_WORKER"):
    import atexit
    import shutil

    _KEYS = tempfile.mkdtemp(prefix="lockgate-test-keys-")
    atexit.register(shutil.rmtree, _KEYS, ignore_errors=True)
    os.environ["LOCKGATE_LEDGER_KEY"] = os.path.join(_KEYS, "ledger_ed25519")
    os.environ["LOCKGATE_ARTIFACT_KEY"] = os.path.join(_KEYS, "artifact_signing_key.pem")
# One JAX compilation cache for the run, shared by both xdist workers (they inherit it from the controller) and every
# process a test starts: the suite compiles the same small models hundreds of times. Fresh each run (a CI run and a
# developer's run cost the same); the controller removes it at exit.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil

    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="lockgate-test-jax-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    # a size limit turns on JAX's file lock: no process reads an entry another is still writing
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
# lockgate's own processes point JAX at LOCKGATE_JAX_CACHE_DIR (default: each home's jax_cache): the same shared one,
# and one compile-report cache (rows keyed by architecture, shapes, target and versions) for every test home, as
# several projects on one machine may share them. Tests of the caches themselves give their own folders.
os.environ.setdefault("LOCKGATE_JAX_CACHE_DIR", os.environ["JAX_COMPILATION_CACHE_DIR"])
if "LOCKGATE_COMPILE_CACHE_DIR" not in os.environ:
    import atexit
    import shutil

    os.environ["LOCKGATE_COMPILE_CACHE_DIR"] = tempfile.mkdtemp(prefix="lockgate-test-compile-cache-")
    atexit.register(shutil.rmtree, os.environ["LOCKGATE_COMPILE_CACHE_DIR"], ignore_errors=True)
# One empty MLflow store and one empty Prefect database for every test home and Prefect server to start from
# (tasks/store_templates.py), fresh each run, not the developer's ~/.cache/lockgate: ~100 homes would each run
# MLflow's schema migrations (~1 CPU-s each) and 6 Prefect servers Prefect's (~5.5 CPU-s each) otherwise.
os.environ.pop("LOCKGATE_REGISTRY_TEMPLATE_DIR", None)
if "LOCKGATE_TEMPLATE_DIR" not in os.environ:
    import atexit
    import shutil

    os.environ["LOCKGATE_TEMPLATE_DIR"] = tempfile.mkdtemp(prefix="lockgate-test-templates-")
    atexit.register(shutil.rmtree, os.environ["LOCKGATE_TEMPLATE_DIR"], ignore_errors=True)

# The collector as in lockgate's own processes (pipelines/gc_thresholds.py): a worker loads the whole stack once.
from pipelines.gc_thresholds import tune_gc  # noqa: E402

tune_gc()

# Prefect's SDK (prefect.main) adds its console handler to the root logger when first imported, bound to the
# sys.stderr of that moment. Imported here, that is pytest's session-wide capture; imported first inside a test using
# capsys, it was that test's stream, closed when the test ended, so every later warning anywhere wrote to a closed
# file (a CLI one-line-error test then failed, and the session lost its stderr).
import prefect.main  # noqa: E402, F401

import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests import shared_prefect  # noqa: E402

# Two workers (xdist): units of work, their order, and the whole run's figures (.pytest-last-run.json).
from tests.suite_run import (pytest_collection_modifyitems, pytest_runtest_logreport,  # noqa: E402, F401
                             pytest_runtest_makereport,
                             pytest_sessionfinish, pytest_terminal_summary, pytest_testnodedown,
                             pytest_xdist_make_scheduler)


def pytest_configure(config):
    shared_prefect.start_for_workers(config)  # the controller of a run with workers: one server for all of them


def pytest_unconfigure(config):
    shared_prefect.stop(config)


_FULL_COLLECTIONS = [0]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After a test during which a full collection ran, its survivors (the modules the test loaded, the session's
    fixtures) are frozen (gc.freeze): later full collections walk only what came after them. A worker holds 1.1-1.5
    million objects; its ~37 full collections took ~15 of its ~225 CPU-s in a whole run (gc.callbacks), mostly
    re-walking modules. A frozen object is still freed when its last reference goes; only a reference cycle among
    frozen objects stays, for the worker's lifetime."""
    import gc

    if (n := gc.get_stats()[2]["collections"]) != _FULL_COLLECTIONS[0]:
        _FULL_COLLECTIONS[0] = n
        gc.freeze()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """The session's Prefect API, each worker with a PREFECT_HOME of its own (not the developer's ~/.prefect, not the
    other worker's): the one server the controller started for the run's workers (tests/shared_prefect.py), or
    without workers Prefect's own test harness (starting it takes 20-30 s here).

    Either database starts as a copy of the run's empty Prefect database when there is one, as a lockgate server's
    does (tasks/prefect_db_template.py), else it is kept as that template once the server answers.
    prefect_test_harness puts its database in a folder of ``tempfile.mkdtemp()``: it is handed the folder seeded
    here."""
    from prefect.settings import (PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_HOME,
                                  temporary_settings)

    from tasks.prefect_db_template import keep_template, seed_prefect_db

    templates = Path(os.environ["LOCKGATE_TEMPLATE_DIR"])
    home = {PREFECT_HOME: tmp_path_factory.mktemp("prefect-home")}
    # Each flow run otherwise waits ~1 s at exit for its heartbeat thread.
    no_heartbeat = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if url := os.environ.get(shared_prefect.URL_VARIABLE):
        shared_prefect.wait_ready(url)
        keep_template(Path(os.environ[shared_prefect.DB_VARIABLE]), templates)  # unless the other worker did
        with temporary_settings({**home, PREFECT_API_URL: url, **no_heartbeat}):
            yield
        return

    from unittest import mock

    import prefect.testing.utilities
    from prefect.testing.utilities import prefect_test_harness

    folder = tmp_path_factory.mktemp("prefect-db")
    db = folder / "prefect-test.db"  # the name prefect_test_harness gives it
    seeded = seed_prefect_db(db, templates)
    with temporary_settings(home), mock.patch.object(prefect.testing.utilities, "mkdtemp", lambda: str(folder)), \
            prefect_test_harness(server_startup_timeout=300):
        assert db.is_file()  # the harness used the folder given
        if not seeded:
            keep_template(db, templates)
        with temporary_settings(no_heartbeat):
            yield


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Settings with LOCKGATE_HOME in a fresh temporary folder."""
    from tasks.settings import Settings

    monkeypatch.setenv("LOCKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCKGATE_ACTOR", "tester")
    return Settings()


@dataclass(frozen=True)
class CandidateFiles:
    config: Path
    params: Path
    reference: Path
    golden: Path


def write_candidate(folder: Path, *, hidden=(8,), epochs=3, seed=0, n=600, task="classification",
                    labels_from=None) -> CandidateFiles:
    """Train a tiny MLP on synthetic rows and write config, params, reference and a golden set.

    ``task="regression"``: a regressor of loss given default (contract loss_given_default) instead of the
    credit-default classifier. ``labels_from``: train on ``labels_from(train_frame)`` instead of the contract's label
    (e.g. a classifier on a thresholded regression target)."""
    from data_contracts.contract import load_contract
    from data_contracts.synthetic_credit import generate_frame, generate_lgd_frame
    from models.config import MLPConfig
    from models.features import feature_matrix, fit_feature_spec
    from models.params_io import save_params
    from models.train import train_model

    regression_data = task == "regression" or labels_from is not None
    contract = load_contract("loss_given_default" if regression_data else "credit_default")
    generate = generate_lgd_frame if regression_data else generate_frame
    train = generate(n, seed=seed, day=date(2026, 10, 1))
    golden = generate(n // 2, seed=seed + 100, day=date(2026, 10, 2), id_offset=n)
    spec = fit_feature_spec(train, contract.numeric_features, contract.categorical_features)
    config = MLPConfig(num_features=spec.num_features, hidden_sizes=hidden, task=task)
    labels = labels_from(train) if labels_from is not None else train[contract.label_column].to_numpy()
    params = train_model(feature_matrix(train, spec), labels, config, epochs=epochs, batch_size=32, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = CandidateFiles(folder / "config.json", folder / "params.msgpack", folder / "reference.parquet",
                           folder / "golden.parquet")
    files.config.write_text(json.dumps(config.to_dict()))
    save_params(params, files.params)
    train.to_parquet(files.reference, index=False)
    golden.to_parquet(files.golden, index=False)
    return files


@pytest.fixture(scope="session")
def make_candidate():
    """The candidate writer, as a fixture (tests/ is not a package)."""
    return write_candidate


@pytest.fixture(scope="session")
def candidate_files(tmp_path_factory) -> CandidateFiles:
    return write_candidate(tmp_path_factory.mktemp("candidate"))


@pytest.fixture(scope="session")
def exported_artifact(candidate_files, tmp_path_factory) -> Path:
    """The candidate's jax.export artifact (cpu), made once: the file the compile gate would store."""
    from models.architectures import build_model
    from models.export import export_inference
    from models.params_io import load_params

    config, _ = build_model("mlp", json.loads(candidate_files.config.read_text()))
    path = tmp_path_factory.mktemp("artifact") / "inference.jaxexport"
    path.write_bytes(export_inference(config, load_params(candidate_files.params), platforms=("cpu",)))
    return path


def register_compiled(settings, candidate_files, artifact: Path, count: int, name: str | None = None) -> list:
    """Register ``count`` versions of the candidate as model ``name``, each with the exported artifact, its sha256
    tag and its model signature, as the compile gate leaves them (enough for the promotion smoke test)."""
    from tasks.evidence import sha256_file
    from tasks.governance.artifact_signature import sign_version
    from tasks.registration.inference import ARTIFACT_SHA_TAG
    from tasks.registration.register import register_candidate
    from tasks.registry import MODEL_DIR
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(settings), ledger_for(settings)
    records = []
    for _ in range(count):
        record = register_candidate(registry, ledger, name=name or settings.model_name, arch="mlp",
                                    config_path=candidate_files.config, params_path=candidate_files.params,
                                    reference_path=candidate_files.reference, contract_name="credit_default",
                                    actor="tester")
        registry.client.log_artifact(record.run_id, str(artifact), MODEL_DIR)
        registry.set_version_tags(record.name, record.version, {ARTIFACT_SHA_TAG: sha256_file(artifact)})
        sign_version(settings, registry, registry.get(record.name, record.version))
        records.append(registry.get(record.name, record.version))
    return records


@pytest.fixture(scope="session")
def compiled_versions():
    return register_compiled


def stored_artifact(registry, record, filename: str = "inference.jaxexport") -> Path:
    """Path of a version's file in the local MLflow artifact store (to tamper with it)."""
    from urllib.parse import urlparse

    return Path(urlparse(registry.client.get_run(record.run_id).info.artifact_uri).path) / "model" / filename


@pytest.fixture(scope="session")
def stored_artifact_path():
    return stored_artifact


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """Settings with one LOCKGATE_HOME for a whole module (a fresh MLflow database costs seconds): tests that share
    it use a model name of their own."""
    from tasks.settings import Settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCKGATE_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("LOCKGATE_ACTOR", "tester")
        yield Settings()


@pytest.fixture
def closed_port():
    """A port of 127.0.0.1 bound but not listening: every connection is refused (a server that never answers), and
    nothing else can take the port meanwhile."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 for the session (tests/object_stores.py)."""
    from tests.object_stores import serve_s3

    with serve_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """gcp-storage-emulator on 127.0.0.1 for the session (tests/object_stores.py)."""
    from tests.object_stores import serve_gcs

    with serve_gcs(tmp_path_factory.mktemp("gcs")) as server:
        yield server


def predict_in_clean_process(tracking_uri: str, uris: dict[str, str], frame: Path, folder: Path, *,
                             absent: tuple[str, ...] = ("models", "tasks"), origin_of: str | None = None):
    """Each of ``uris`` (name -> ``models:/...``) loaded by plain ``mlflow.pyfunc.load_model`` in ``python -I`` (no
    PYTHONPATH, no user site, this repo off ``sys.path``, where none of ``absent`` imports), predicting ``frame``:
    name -> the predictions frame, and the file ``origin_of`` (a module the bundle brought) was imported from."""
    import subprocess
    import sys

    import pandas as pd

    repo = Path(__file__).resolve().parents[1]
    script = f"""
import importlib.util, sys
from pathlib import Path
repo = Path({str(repo)!r}).resolve()
sys.path = [p for p in sys.path if Path(p or '.').resolve() != repo]  # the editable install's entry: not this repo
for name in {absent!r}:
    assert importlib.util.find_spec(name) is None, name + ' importable before loading'
import mlflow.pyfunc, pandas as pd
frame = pd.read_parquet({str(frame)!r})
for name, uri in {uris!r}.items():
    mlflow.pyfunc.load_model(uri).predict(frame).to_parquet(name + '.parquet')
origin = {origin_of!r}
print(importlib.util.find_spec(origin).origin if origin else '')
"""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "JAX_PLATFORMS": "cpu",
           "MLFLOW_TRACKING_URI": tracking_uri}
    proc = subprocess.run([sys.executable, "-I", "-c", script], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in uris}, (lines[-1] if lines else "")


@pytest.fixture(scope="session")
def clean_process_predict():
    """:func:`predict_in_clean_process`, as a fixture (tests/ is not a package)."""
    return predict_in_clean_process
