"""MLflow models-from-code pyfunc over a version's exported artifact (no pickle).

MLflow copies this file into the logged model (``python_model`` given as a path,
see :func:`tasks.registration.pyfunc_logging.log_pyfunc`) and runs it at load time to get the
model object from ``mlflow.models.set_model``; nothing is unpickled. What runs is
the same ``jax.export`` artifact the canary and batch inference score with, with
the params as call arguments, both checked against ``hashes.json`` before use.

This file must stay importable by plain MLflow: it imports only ``models`` (logged
with the pyfunc as code) and third-party packages, never ``tasks``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

# Keys of the pyfunc's ``artifacts`` dict; tasks.registration.pyfunc_logging uses the same names.
ARTIFACT_KEY = "artifact"
PARAMS_KEY = "params"
FEATURES_KEY = "feature_spec"
HASHES_KEY = "hashes"
HASHED_KEYS = (ARTIFACT_KEY, PARAMS_KEY, FEATURES_KEY)
SCORE_COLUMN = "score"


class PyfuncIntegrityError(RuntimeError):
    """A file of the logged pyfunc is missing or differs from its recorded sha256."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_artifacts(artifacts: dict[str, str]) -> dict[str, Path]:
    """Check every hashed file against ``hashes.json``; returns key -> local path.

    Raises:
      PyfuncIntegrityError: one line naming the file, its sha256 and the recorded one.
    """
    missing = [k for k in (*HASHED_KEYS, HASHES_KEY) if k not in artifacts]
    if missing:
        raise PyfuncIntegrityError(f"lockgate pyfunc is missing artifacts {missing}; it was not logged by log_pyfunc")
    paths = {k: Path(artifacts[k]) for k in (*HASHED_KEYS, HASHES_KEY)}
    try:
        recorded = json.loads(paths[HASHES_KEY].read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        name = paths[HASHES_KEY].name
        raise PyfuncIntegrityError(f"lockgate pyfunc: unreadable {name} ({type(e).__name__})") from None
    for key in HASHED_KEYS:
        expected = recorded.get(key) if isinstance(recorded, dict) else None
        actual = _sha256(paths[key])
        if actual != expected:
            raise PyfuncIntegrityError(
                f"lockgate pyfunc: {paths[key].name} has sha256 {actual} but hashes.json records {expected}; "
                "refusing to load a changed file"
            )
    return paths


def check_compatible(exported, params, spec) -> None:
    """Raise ValueError (one line) unless ``params`` and ``spec`` fit the exported signature.

    Args:
      exported: ``jax.export.Exported`` taking ``(params, x: f32[b, F])`` or ``(params, {column: dtype[b]})``.
      params: params pytree (nested dicts of arrays).
      spec: ``models.features.FeatureSpec``; its width must be ``F``, or its ``inputs`` the artifact's columns.
    """
    import jax

    (params_avals, x_aval), _ = exported.in_tree.unflatten(exported.in_avals)
    if isinstance(x_aval, dict) or spec.inputs is not None:
        takes = {k: str(a.dtype) for k, a in x_aval.items()} if isinstance(x_aval, dict) else None
        gives = {f.name: f.dtype for f in spec.inputs} if spec.inputs is not None else None
        if takes != gives:
            raise ValueError(f"feature spec gives the columns {gives or 'as a matrix'} but the artifact takes "
                             f"{takes or 'a matrix'}")
    elif spec.num_features != x_aval.shape[-1]:
        raise ValueError(f"feature spec encodes {spec.num_features} features but the artifact takes "
                         f"{x_aval.shape[-1]}")
    # in_avals are the flattened (params, x): dict leaves in sorted-key order, as jax.tree.leaves gives them.
    got = [f"{np.asarray(a).dtype}{list(np.shape(a))}" for a in jax.tree.leaves(params)]
    want = [f"{a.dtype}{list(a.shape)}" for a in jax.tree.leaves(params_avals)]
    if got != want:
        raise ValueError(f"params leaves {got} do not match the artifact's {want}")


class LockgateArtifactModel(mlflow.pyfunc.PythonModel):
    """Scores a frame with a version's exported artifact, params and feature spec.

    ``model_config`` (optional): ``{"buckets": [1, 64, ...]}``, the batch buckets of
    :func:`models.export.score_bucketed` (default: ``models.export.DEFAULT_BUCKETS``).
    """

    def load_context(self, context):
        from models.export import DEFAULT_BUCKETS, load_exported
        from models.features import FeatureSpec
        from models.params_io import params_from_bytes

        paths = verify_artifacts(context.artifacts)
        config = context.model_config or {}
        self._buckets = tuple(int(b) for b in config.get("buckets", DEFAULT_BUCKETS))
        self._exported = load_exported(paths[ARTIFACT_KEY].read_bytes())
        self._params = params_from_bytes(paths[PARAMS_KEY].read_bytes(), source=paths[PARAMS_KEY].name)
        self._spec = FeatureSpec.model_validate_json(paths[FEATURES_KEY].read_text())
        check_compatible(self._exported, self._params, self._spec)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """The artifact's output per row: a frame with one f32 column ``score`` (P(y=1) of a classifier, the
        predicted value of a regressor), on ``model_input``'s index.

        ``model_input`` holds the feature spec's columns (others are ignored); nulls and
        unseen categories are encoded as in training (see ``models.features``).
        """
        from models.export import score_bucketed
        from models.features import feature_matrix

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        x = feature_matrix(model_input, self._spec)
        scores = score_bucketed(self._exported, self._params, x, buckets=self._buckets)
        return pd.DataFrame({SCORE_COLUMN: np.asarray(scores, np.float32)}, index=model_input.index)


mlflow.models.set_model(LockgateArtifactModel())
