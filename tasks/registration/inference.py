"""Load a model version's compiled artifact (hash-verified) and score frames with it.

What is canaried and what is deployed is the same ``jax.export`` artifact: both the
canary and batch inference go through :func:`load_compiled`, which refuses a file
whose sha256 differs from the one recorded at compile time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import LockgateError
from tasks.evidence import sha256_file
from tasks.registration.register import (
    CODE_DIR,
    CODE_MANIFEST_FILE,
    CODE_SHA_TAG,
    CONFIG_FILE,
    CONTRACT_FILE,
    FEATURES_FILE,
    PARAMS_FILE,
    REFERENCE_FILE,
)
from tasks.registry import MODEL_DIR, MlflowRegistry, ModelVersionRecord

if TYPE_CHECKING:  # numpy and pandas load where used: `audit verify` reads file names only
    import numpy as np
    import pandas as pd
    import pyarrow as pa

ARTIFACT_FILE = "inference.jaxexport"
ARTIFACT_SHA_TAG = "lockgate.artifact_sha256"
PARAMS_SHA_TAG = "lockgate.params_sha256"


@dataclass(frozen=True)
class CompiledModel:
    record: ModelVersionRecord
    arch: str
    config: object
    feature_spec: object
    params: object
    exported: object
    artifact_sha256: str
    buckets: tuple[int, ...]

    def score(self, df: pd.DataFrame) -> np.ndarray:
        """Probabilities f32[len(df)] for the rows of ``df`` through the exported artifact."""
        return self.score_features(self.features(df))

    def features(self, df: pd.DataFrame | pa.RecordBatch) -> np.ndarray:
        """The model input f32[len(df), num_features] of the rows of a frame or Arrow batch (the version's spec)."""
        from models.features import feature_matrix

        return feature_matrix(df, self.feature_spec)

    def score_features(self, x: np.ndarray, on_output=None) -> np.ndarray:
        """The artifact's outputs f32[n] for f32[n, num_features] ``x``: bucketed, sharded over this process's
        devices when it has several (``on_output``: see :func:`models.export.score_in_chunks`)."""
        import jax
        import numpy as np

        from models.export import score_bucketed

        devices = jax.local_devices()  # this process's: a multi-process program's jax.devices() are not all ours
        if len(devices) > 1:  # data-parallel over the local devices (TPU chips, or forced CPU devices)
            from models.sharded import score_sharded

            return np.asarray(score_sharded(self.exported, self.params, x, buckets=self.buckets, devices=devices,
                                            on_output=on_output))
        return np.asarray(score_bucketed(self.exported, self.params, x, buckets=self.buckets, on_output=on_output))

    def scorer(self) -> "Scorer":
        return Scorer(self)


class ScoringStats(BaseModel):
    """Where and how a partition was scored, measured on the artifact's outputs in the process that scored it."""

    model_config = ConfigDict(extra="forbid")

    process: str = Field(description="host:pid of the process that scored (a Dask worker, the flow's process, ...).")
    platform: str = Field(description="JAX platform of its devices (cpu, tpu, gpu).")
    local_devices: int = Field(description="jax.local_device_count() there.")
    calls: int = Field(description="Artifact calls (one per padded chunk).")
    sharded_calls: int = Field(description="Calls whose output was split over more than one device.")
    devices: list[int] = Field(description="Ids of the devices that held a part of any output.")
    rows_per_device: int = Field(description="Rows one device computed in the largest call (padding included).")

    def line(self) -> str:
        where = (f"sharded over {len(self.devices)} {self.platform} devices" if self.sharded_calls
                 else f"on 1 {self.platform} device")
        return f"scored {where} ({self.calls} call(s), {self.process})"


class Scorer:
    """``model.score_features`` as a callable that records the sharding of every output (one per partition)."""

    def __init__(self, model: CompiledModel):
        self.model = model
        self.calls = self.sharded_calls = self.rows_per_device = 0
        self.devices: set[int] = set()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.model.score_features(x, on_output=self._observe)

    def _observe(self, y) -> None:
        shards = y.addressable_shards
        self.calls += 1
        self.sharded_calls += len({s.device.id for s in shards}) > 1
        self.devices.update(s.device.id for s in shards)
        self.rows_per_device = max([self.rows_per_device, *(s.data.shape[0] for s in shards)])

    def stats(self) -> ScoringStats:
        import os
        import socket

        import jax

        return ScoringStats(process=f"{socket.gethostname()}:{os.getpid()}", platform=jax.default_backend(),
                            local_devices=jax.local_device_count(), calls=self.calls, sharded_calls=self.sharded_calls,
                            devices=sorted(self.devices), rows_per_device=self.rows_per_device)


def verified_file(registry: MlflowRegistry, record: ModelVersionRecord, filename: str, dst: Path, expected: str | None) -> Path:
    path = registry.fetch(record, filename, dst)
    if expected is not None:
        actual = sha256_file(path)
        if actual != expected:
            raise LockgateError(
                f"{filename} of {record.name} v{record.version} has sha256 {actual[:12]}… but {expected[:12]}… "
                "was recorded; refusing to use a changed artifact"
            )
    return path


def fetch_model_code(registry: MlflowRegistry, record: ModelVersionRecord, dst: Path) -> tuple[Path, dict] | None:
    """The version's stored model code, every file hash-verified: ``(folder holding the top package or module file,
    manifest)``, or None for a version whose model is lockgate's own code (a built-in)."""
    expected = record.tags.get(CODE_SHA_TAG)
    if expected is None:
        return None
    manifest = json.loads(verified_file(registry, record, CODE_MANIFEST_FILE, dst, expected).read_text())
    for rel, sha in sorted(manifest["files"].items()):
        verified_file(registry, record, f"{CODE_DIR}/{rel}", dst, sha)
    return dst / MODEL_DIR / CODE_DIR, manifest


def load_version_files(registry: MlflowRegistry, record: ModelVersionRecord, cache_dir: Path):
    """(arch, model, feature spec, params) of a registered version, params and code hash-verified.

    ``model`` is a ``models.code_model.CodeModel`` (its code, the version's stored copy, is imported on first use);
    ``arch`` its short name (``mlp``, or the ``MODULE:ATTR`` reference of a user's model)."""
    from models.code_model import ModelCodeError, model_from_dict
    from models.features import FeatureSpec
    from models.params_io import load_params

    dst = cache_dir / record.name / f"v{record.version}"
    cfg = json.loads(registry.fetch(record, CONFIG_FILE, dst).read_text())
    code = fetch_model_code(registry, record, dst)
    if cfg.get("code_sha256") != record.tags.get(CODE_SHA_TAG) or (code and code[1]["model"] != cfg["model"]):
        raise LockgateError(f"{CONFIG_FILE} of {record.name} v{record.version} does not name the code registered "
                            f"with it (tag {CODE_SHA_TAG}); refusing to build the model")
    try:
        model = model_from_dict(cfg, code_dir=code[0] if code else None)
    except ModelCodeError as e:
        raise LockgateError(f"{record.name} v{record.version}: {e}") from None
    spec = FeatureSpec.model_validate_json(registry.fetch(record, FEATURES_FILE, dst).read_text())
    params = load_params(verified_file(registry, record, PARAMS_FILE, dst, record.tags.get(PARAMS_SHA_TAG)))
    return model.arch, model, spec, params


def load_reference(registry: MlflowRegistry, record: ModelVersionRecord, cache_dir: Path) -> pd.DataFrame:
    from tasks.datasets import read_table

    dst = cache_dir / record.name / f"v{record.version}"
    path = verified_file(registry, record, REFERENCE_FILE, dst, record.tags.get("lockgate.reference_sha256"))
    return read_table(path, what="reference snapshot")


def load_version_contract(registry: MlflowRegistry, record: ModelVersionRecord, cache_dir: Path):
    """The data contract registered with the version (its YAML, hash-verified), not the file on disk today.

    Versions registered before contracts were stored with them load the named contract, which
    must still have the fingerprint recorded at registration.
    """
    from data_contracts.contract import load_contract

    expected = record.tags.get("lockgate.contract_sha256")
    if expected is not None:
        dst = cache_dir / record.name / f"v{record.version}"
        return load_contract(verified_file(registry, record, CONTRACT_FILE, dst, expected))
    contract = load_contract(record.tags["lockgate.contract"])
    if contract.fingerprint != record.tags.get("lockgate.contract_fingerprint"):
        raise LockgateError(f"contract {contract.name} changed since v{record.version} was registered "
                            "(fingerprint differs) and the version holds no copy of it")
    return contract


def load_compiled(
    registry: MlflowRegistry, record: ModelVersionRecord, cache_dir: Path, buckets: tuple[int, ...]
) -> CompiledModel:
    """The version's exported artifact and params, both checked against their recorded sha256."""
    from models.export import load_exported

    expected = record.tags.get(ARTIFACT_SHA_TAG)
    if expected is None:
        raise LockgateError(
            f"{record.name} v{record.version} has no compiled artifact; run the lifecycle (compile gate) for it first"
        )
    arch, config, spec, params = load_version_files(registry, record, cache_dir)
    path = verified_file(registry, record, ARTIFACT_FILE, cache_dir / record.name / f"v{record.version}", expected)
    return CompiledModel(
        record=record,
        arch=arch,
        config=config,
        feature_spec=spec,
        params=params,
        exported=load_exported(path.read_bytes()),
        artifact_sha256=expected,
        buckets=buckets,
    )


def variant_scores(registry: MlflowRegistry, record: ModelVersionRecord, df: pd.DataFrame, cache_dir: Path,
                   buckets: tuple[int, ...]):
    """(variant, f32 scores, variant scores) for every variant exported by the compile gate, hashes verified."""
    import numpy as np

    from models.export import load_exported, score_bucketed
    from models.features import feature_matrix
    from models.variants import variant_params_from_bytes

    variants = sorted({k.split(".")[2] for k in record.tags if k.startswith("lockgate.variant.")})
    if not variants:
        return []
    base = load_compiled(registry, record, cache_dir, buckets)
    x = feature_matrix(df, base.feature_spec)
    p_f32 = np.asarray(score_bucketed(base.exported, base.params, x, buckets=buckets))
    dst = cache_dir / record.name / f"v{record.version}" / "variants"
    out = []
    for v in variants:
        tag = f"lockgate.variant.{v}"
        blob = verified_file(registry, record, f"variants/inference-{v}.jaxexport", dst,
                             record.tags[f"{tag}.artifact_sha256"]).read_bytes()
        path = verified_file(registry, record, f"variants/params-{v}.msgpack", dst, record.tags[f"{tag}.params_sha256"])
        vparams = variant_params_from_bytes(path.read_bytes(), v, base.config, source=str(path), params=base.params)
        out.append((v, p_f32, np.asarray(score_bucketed(load_exported(blob), vparams, x, buckets=buckets))))
    return out


def smoke_test(registry: MlflowRegistry, record: ModelVersionRecord, rows: int = 8) -> str:
    """Load ``record``'s deployed artifact and params (sha256 verified) and score ``rows`` of its reference snapshot:
    the last check before an alias move is committed. Raises LockgateError naming what failed."""
    import numpy as np

    from tasks.stores import cache_dir

    model = load_compiled(registry, record, cache_dir(registry.settings), (rows,))
    frame = load_reference(registry, record, cache_dir(registry.settings)).head(rows)
    scores = model.score(frame)
    if scores.shape != (len(frame),) or not np.all(np.isfinite(scores)):
        raise LockgateError(f"smoke test of {record.name} v{record.version}: {len(frame)} reference rows gave scores of "
                            f"shape {scores.shape} with {int(np.sum(~np.isfinite(scores)))} non-finite")
    return (f"v{record.version} artifact {model.artifact_sha256[:12]} verified, {len(frame)} reference rows scored "
            f"(mean {float(scores.mean()):.4f})")
