"""Make a registered version loadable with plain MLflow, no pickle:
``mlflow.pyfunc.load_model("models:/NAME@champion").predict(frame)``.

How ``models:/NAME@alias`` resolves in MLflow 3.17 (probed on SQLite + a local
artifact root): alias -> version -> ``get_model_version_download_uri``, which is the
version's ``storage_location or source``; the whole folder is downloaded and must
hold an ``MLmodel`` file at its root. lockgate creates versions with
``source=<run artifact uri>/model`` (``tasks.registry``), so that folder itself is
made a pyfunc:

* ``mlflow.pyfunc.log_model`` can't do it: in MLflow 3 it always writes a
  LoggedModel under ``<experiment artifact location>/models/<model_id>/artifacts``,
  never under the run's artifacts, and an existing version's ``source`` can't be
  changed (``update_model_version`` takes only a description). Pointing the alias at
  a LoggedModel would need a *new* version (``source="models:/<model_id>"``).
* So the pyfunc is written with ``mlflow.pyfunc.save_model`` (models-from-code:
  ``tasks/registration/pyfunc_model.py``) into a temporary folder and uploaded into the version's
  source folder with ``MlflowClient.log_artifacts``. lockgate's own files there are
  untouched; the pyfunc carries hash-checked copies under ``model/artifacts/``. No
  fluent MLflow state (tracking URI, active run) is read or changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

from tasks.errors import LockgateError
from tasks.evidence import sha256_file
from tasks.registry import MODEL_DIR

PYFUNC_CODE_FILE = Path(__file__).with_name("pyfunc_model.py")
MODELS_PACKAGE = Path(__file__).resolve().parents[2] / "models"
HASHES_FILE = "hashes.json"
# Names inside the pyfunc's artifacts/ folder, whatever the inputs are called (same
# names as in the version's model folder).
PACKAGED_NAMES = {"artifact": "inference.jaxexport", "params": "params.msgpack", "feature_spec": "feature_spec.json"}
# What the pyfunc imports (models.export, models.features, models.params_io) needs at run
# time. jaxlib is pinned with jax: jax 0.10.2 accepts jaxlib 0.10.1 too, and the artifact
# is run by jaxlib.
REQUIRED_DISTRIBUTIONS: tuple[str, ...] = ("jax", "jaxlib", "flax", "numpy", "pandas", "pydantic")
# Benign at save time with explicit requirements and no signature (the input is a
# frame whose columns the feature spec defines, nulls included); silenced so a compile
# gate run stays quiet at the CLI.
_QUIET_MESSAGES = ("Failed to infer model signature", "Failed to resolve installed pip version")


def pip_requirements() -> list[str]:
    """``name==version`` of every distribution the pyfunc imports, as installed here."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIRED_DISTRIBUTIONS]


def _client(client_or_tracking_uri):
    from mlflow import MlflowClient

    if isinstance(client_or_tracking_uri, str):
        return MlflowClient(tracking_uri=client_or_tracking_uri, registry_uri=client_or_tracking_uri)
    return client_or_tracking_uri


class _DropMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(m in record.getMessage() for m in _QUIET_MESSAGES)


@contextlib.contextmanager
def _plain_save():
    # MLflow copies the uv.lock/pyproject.toml of the *current directory* into the model
    # when it finds one (MLFLOW_UV_AUTO_DETECT): that would make the model depend on
    # where the process runs and ship lockgate's whole lock file. The explicit pins are
    # the environment.
    previous = os.environ.get("MLFLOW_UV_AUTO_DETECT")
    os.environ["MLFLOW_UV_AUTO_DETECT"] = "false"
    loggers = [logging.getLogger(n) for n in ("mlflow.pyfunc", "mlflow.utils.environment")]
    quiet = _DropMessages()
    for lg in loggers:
        lg.addFilter(quiet)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(quiet)
        if previous is None:
            os.environ.pop("MLFLOW_UV_AUTO_DETECT", None)
        else:
            os.environ["MLFLOW_UV_AUTO_DETECT"] = previous


def _check_files(files: Mapping[str, Path], sources: Mapping[str, Path]) -> None:
    """The three files load and fit each other; one-line LockgateError naming the file otherwise."""
    from models.export import load_exported
    from models.features import FeatureSpec
    from models.params_io import params_from_bytes
    from tasks.registration.pyfunc_model import ARTIFACT_KEY, FEATURES_KEY, PARAMS_KEY, check_compatible

    def fail(what: str, e: Exception):
        first = " ".join(str(e).split())[:300]
        raise LockgateError(f"cannot log the pyfunc: {what}: {first}") from None

    try:
        exported = load_exported(files[ARTIFACT_KEY].read_bytes())
    except ValueError as e:
        fail(str(sources[ARTIFACT_KEY]), e)
    try:
        params = params_from_bytes(files[PARAMS_KEY].read_bytes(), source=str(sources[PARAMS_KEY]))
    except ValueError as e:  # already names the file
        raise LockgateError(f"cannot log the pyfunc: {e}") from None
    try:
        spec = FeatureSpec.model_validate_json(files[FEATURES_KEY].read_text())
    except ValueError as e:  # pydantic's message spans lines; the first names the model
        fail(f"{sources[FEATURES_KEY]} is not a valid feature spec", Exception(str(e).splitlines()[0]))
    try:
        check_compatible(exported, params, spec)
    except ValueError as e:
        fail("the files do not fit each other", e)


def log_pyfunc(
    client_or_tracking_uri,
    run_id: str,
    *,
    artifact_path: Path,
    params_path: Path,
    feature_spec_path: Path,
    name: str = MODEL_DIR,
    buckets: Sequence[int] | None = None,
    expected_sha256: Mapping[str, str] | None = None,
    model_code: Path | None = None,
) -> str:
    """Write the models-from-code pyfunc into ``<run artifacts>/<name>`` of an existing run.

    With ``name`` equal to a version's source folder (lockgate's ``model``), that
    version and every alias on it load with ``mlflow.pyfunc.load_model``. The pyfunc
    is checked before anything is uploaded: the three files must load and fit each
    other, and match ``expected_sha256`` when given.

    Args:
      client_or_tracking_uri: an ``MlflowClient`` or a tracking URI (also used as registry URI).
      run_id: existing run (finished runs accept artifacts too).
      artifact_path: serialized ``jax.export`` artifact (``inference.jaxexport``).
      params_path: params msgpack the artifact is called with.
      feature_spec_path: ``FeatureSpec`` JSON turning a frame into f32[n, F].
      name: artifact folder in the run; the pyfunc's ``MLmodel`` lands at its root.
      buckets: batch buckets for ``score_bucketed`` (default ``models.export.DEFAULT_BUCKETS``).
      expected_sha256: optional ``{"artifact": sha, "params": sha, "feature_spec": sha}``
        (any subset), e.g. the hashes recorded on the model version.
      model_code: the model's own code (its top-level package folder or module file, the version's
        stored copy), bundled beside ``models`` (``code/``) so the model travels with its source; the
        pyfunc runs the exported artifact and does not import it.

    Returns:
      ``runs:/<run_id>/<name>``, loadable with ``mlflow.pyfunc.load_model``.

    Raises:
      LockgateError: one line: a missing, mismatched or incompatible file; nothing uploaded.
    """
    import mlflow.pyfunc

    from models.export import DEFAULT_BUCKETS, _check_buckets
    from tasks.registration.pyfunc_model import ARTIFACT_KEY, FEATURES_KEY, HASHES_KEY, PARAMS_KEY

    sources = {ARTIFACT_KEY: Path(artifact_path), PARAMS_KEY: Path(params_path), FEATURES_KEY: Path(feature_spec_path)}
    for path in sources.values():
        if not path.is_file():
            raise LockgateError(f"cannot log the pyfunc: {path} does not exist")
    try:
        bucket_list = list(_check_buckets(DEFAULT_BUCKETS if buckets is None else buckets))
    except ValueError as e:
        raise LockgateError(f"cannot log the pyfunc: {e}") from None
    client = _client(client_or_tracking_uri)
    with tempfile.TemporaryDirectory(prefix="lockgate-pyfunc-") as tmp:
        tmp = Path(tmp)
        # Checked and hashed after copying, so the bytes hashed are the bytes packaged.
        (tmp / "inputs").mkdir()
        files = {k: Path(shutil.copyfile(path, tmp / "inputs" / PACKAGED_NAMES[k])) for k, path in sources.items()}
        _check_files(files, sources)
        hashes = {key: sha256_file(path) for key, path in files.items()}
        for key, expected in (expected_sha256 or {}).items():
            if key not in hashes:
                raise LockgateError(f"expected_sha256 has unknown key {key!r}; known: {sorted(hashes)}")
            if hashes[key] != expected:
                raise LockgateError(
                    f"cannot log the pyfunc: {sources[key]} has sha256 {hashes[key][:12]}… but {expected[:12]}… "
                    "was recorded; refusing to package a changed file"
                )
        (tmp / HASHES_FILE).write_text(json.dumps({"sha256": hashes}, indent=2, sort_keys=True))
        # A clean copy of the package: code_paths copies whatever is in the folder.
        code = [shutil.copytree(MODELS_PACKAGE, tmp / "code" / "models",
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))]
        if model_code is not None:  # listed in hashes.json for whoever inspects the bundle; loading never imports it
            copied, bundled = _copy_model_code(Path(model_code), tmp / "code")
            code.append(copied)
            (tmp / HASHES_FILE).write_text(json.dumps({"sha256": hashes, "model_code": bundled}, indent=2,
                                                      sort_keys=True))
        out = tmp / "pyfunc"
        with _plain_save():
            mlflow.pyfunc.save_model(
                path=str(out),
                python_model=str(PYFUNC_CODE_FILE),
                artifacts={**{k: str(p) for k, p in files.items()}, HASHES_KEY: str(tmp / HASHES_FILE)},
                code_paths=[str(c) for c in code],
                pip_requirements=pip_requirements(),
                model_config={"buckets": bucket_list},
            )
        pickles = sorted(str(p.relative_to(out)) for p in out.rglob("*.pkl"))
        if pickles:  # models-from-code never pickles; a change in MLflow must not slip one in
            raise LockgateError(f"refusing to log a pyfunc containing pickle files: {pickles}")
        client.log_artifacts(run_id, str(out), name)
    return f"runs:/{run_id}/{name}"


def _copy_model_code(model_code: Path, dst: Path) -> tuple[Path, dict[str, str]]:
    """The model's package folder (or module file) copied into ``dst``; its files' sha256 by path in ``dst``."""
    if model_code.stem == "models" or not model_code.exists():
        raise LockgateError(f"cannot log the pyfunc: model code {model_code} is missing or named like lockgate's "
                            "models package")
    if model_code.is_dir():
        copied = Path(shutil.copytree(model_code, dst / model_code.name,
                                      ignore=shutil.ignore_patterns("__pycache__", "*.pyc")))
        files = sorted(p for p in copied.rglob("*") if p.is_file())
    else:
        copied = Path(shutil.copyfile(model_code, dst / model_code.name))
        files = [copied]
    return copied, {p.relative_to(dst).as_posix(): sha256_file(p) for p in files}


def log_version_pyfunc(
    client_or_tracking_uri,
    name: str,
    version: int,
    *,
    artifact_path: Path,
    params_path: Path,
    feature_spec_path: Path,
    buckets: Sequence[int] | None = None,
    model_code: Path | None = None,
) -> str:
    """Make ``models:/<name>/<version>`` (and its aliases) a plain-MLflow pyfunc (``model_code``: see
    :func:`log_pyfunc`).

    Writes the pyfunc into the version's source folder (which must lie in the
    version's run's artifacts, as lockgate registers them). The artifact and params
    must match the sha256 recorded on the version (``lockgate.artifact_sha256``,
    ``lockgate.params_sha256``), so call this after the compile gate has tagged it.

    Returns:
      ``models:/<name>/<version>``.

    Raises:
      LockgateError: one line: the version has no compiled artifact, its source is
        not in its run's artifacts, or a file does not match what was recorded.
    """
    from mlflow.exceptions import MlflowException

    from tasks.registration.inference import ARTIFACT_SHA_TAG, PARAMS_SHA_TAG

    client = _client(client_or_tracking_uri)
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException:
        raise LockgateError(f"model version {name} v{version} not found in the registry") from None
    tags = dict(mv.tags or {})
    if ARTIFACT_SHA_TAG not in tags:
        raise LockgateError(f"{name} v{version} has no compiled artifact; run the compile gate for it first")
    folder = _run_relative_source(client, mv)
    expected = {"artifact": tags[ARTIFACT_SHA_TAG]}
    if PARAMS_SHA_TAG in tags:
        expected["params"] = tags[PARAMS_SHA_TAG]
    log_pyfunc(client, mv.run_id, artifact_path=artifact_path, params_path=params_path,
               feature_spec_path=feature_spec_path, name=folder, buckets=buckets, expected_sha256=expected,
               model_code=model_code)
    return f"models:/{name}/{version}"


def _run_relative_source(client, mv) -> str:
    """The version's source as a folder inside its run's artifacts."""
    source = mv.source.rstrip("/")
    prefixes = [f"runs:/{mv.run_id}/"]
    if mv.run_id:
        prefixes.append(client.get_run(mv.run_id).info.artifact_uri.rstrip("/") + "/")
    for prefix in prefixes:
        if source.startswith(prefix) and source[len(prefix):]:
            return source[len(prefix):]
    raise LockgateError(
        f"{mv.name} v{mv.version} has source {mv.source}, not a folder in its run's artifacts; "
        "its pyfunc can't be written where models:/ resolves"
    )
