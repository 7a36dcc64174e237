"""Register a candidate: params + model config + feature spec + reference snapshot -> a model version.

The same path serves a user's own model (`lockgate register`) and the demo. Every
input is checked before anything is written, so a bad input leaves nothing
half-registered: the params must load, match the config, and the reference data
must hold the contract's feature columns. A version is created in the registry, then
recorded in the ledger (``version.registered``); a process killed between the two
leaves a version without its row, which :func:`record_registration` writes later.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tasks.datasets import read_table
from tasks.errors import LockgateError
from tasks.evidence import sha256_file
from tasks.faults import failpoint
from tasks.ledger.entry import LedgerEntry
from tasks.ledger.store import Ledger
from tasks.registry import MlflowRegistry, ModelVersionRecord

PARAMS_FILE = "params.msgpack"
CONFIG_FILE = "model_config.json"
FEATURES_FILE = "feature_spec.json"
REFERENCE_FILE = "reference.parquet"
CONTRACT_FILE = "contract.yaml"  # the contract as registered: gates read this, not the file on disk today
REGISTERED = "version.registered"
# the registration tags that hold a file's sha256: checked again when a row is recorded after a crash
HASH_TAGS = {PARAMS_FILE: "lockgate.params_sha256", REFERENCE_FILE: "lockgate.reference_sha256",
             CONTRACT_FILE: "lockgate.contract_sha256"}


def read_model_config(path: Path) -> dict:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LockgateError(f"model config file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise LockgateError(f"model config {path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise LockgateError(f"model config {path} must be a JSON object")
    return raw


def register_candidate(
    registry: MlflowRegistry,
    ledger: Ledger,
    *,
    name: str,
    arch: str,
    config_path: Path,
    params_path: Path,
    reference_path: Path,
    contract_name: str,
    actor: str,
    description: str = "",
    intended_use: str = "",
    limitations: str = "",
    extra_tags: dict[str, str] | None = None,
) -> ModelVersionRecord:
    """Check the inputs, then create a model version holding everything the gates need.

    ``intended_use`` and ``limitations`` (free text, limitations separated by ';') go to the model card;
    ``extra_tags`` are set on the version with the others (the demo's run and candidate)."""
    import numpy as np

    from data_contracts.contract import ContractError, load_contract
    from models.architectures import build_model
    from models.export import predict
    from models.features import fit_feature_spec, feature_matrix
    from models.params_io import load_params

    try:
        contract = load_contract(contract_name)
    except ContractError as e:
        raise LockgateError(str(e)) from None
    try:
        config, _ = build_model(arch, read_model_config(config_path))
    except ValueError as e:
        raise LockgateError(f"model config {config_path}: {e}") from None
    try:
        params = load_params(params_path)
    except ValueError as e:
        raise LockgateError(str(e)) from None
    reference = read_table(reference_path, what="reference data")
    missing = [c for c in contract.feature_columns if c not in reference.columns]
    if missing:
        raise LockgateError(f"reference data {reference_path} lacks the contract's feature columns {missing}")
    spec = fit_feature_spec(reference, contract.numeric_features, contract.categorical_features)
    if spec.num_features != config.num_features:
        raise LockgateError(
            f"model config num_features={config.num_features} but contract {contract.name} encodes "
            f"{spec.num_features} features from the reference data; retrain or fix the config"
        )
    try:  # params must fit the config: one forward pass on a few reference rows
        probe = predict(config, params, feature_matrix(reference.head(8), spec))
        if not np.all(np.isfinite(np.asarray(probe))):
            raise ValueError("non-finite outputs")
    except Exception as e:
        raise LockgateError(f"params {params_path} do not fit the {arch} config {config_path}: {str(e).splitlines()[0]}") from None

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {
            PARAMS_FILE: tmp / PARAMS_FILE,
            CONFIG_FILE: tmp / CONFIG_FILE,
            FEATURES_FILE: tmp / FEATURES_FILE,
            REFERENCE_FILE: tmp / REFERENCE_FILE,
            CONTRACT_FILE: tmp / CONTRACT_FILE,
        }
        files[CONTRACT_FILE].write_bytes(contract.source.read_bytes())
        files[PARAMS_FILE].write_bytes(Path(params_path).read_bytes())
        files[CONFIG_FILE].write_text(json.dumps({"arch": arch, "config": config.to_dict()}, indent=2))
        files[FEATURES_FILE].write_text(spec.model_dump_json(indent=2))
        reference.to_parquet(files[REFERENCE_FILE], index=False)
        hashes = {k: sha256_file(p) for k, p in files.items()}
        tags = {
            "lockgate.arch": arch,
            "lockgate.contract": contract.name,
            "lockgate.contract_version": str(contract.version),
            "lockgate.contract_fingerprint": contract.fingerprint,
            "lockgate.contract_sha256": hashes[CONTRACT_FILE],
            "lockgate.reference_sha256": hashes[REFERENCE_FILE],
            "lockgate.reference_rows": str(len(reference)),
            "lockgate.params_sha256": hashes[PARAMS_FILE],
            "lockgate.registered_by": actor,
            "lockgate.status": "registered",
            **({"lockgate.intended_use": intended_use[:5000]} if intended_use else {}),
            **({"lockgate.limitations": limitations[:5000]} if limitations else {}),
            **(extra_tags or {}),
        }
        params_logged = {"arch": arch, **{f"config.{k}": str(v) for k, v in config.to_dict().items()}}
        record = registry.register(
            name, files=list(files.values()), params=params_logged, tags=tags, run_name=description or f"{name}-{arch}"
        )
    failpoint("version-created")  # the fault test kills the demo here: a version with no ledger row yet
    ledger.append(
        LedgerEntry(
            actor=actor,
            action=REGISTERED,
            model_name=name,
            version=record.version,
            reason=description or f"registered {arch} candidate with contract {contract.name} v{contract.version}",
            evidence={k: v for k, v in hashes.items()},
        )
    )
    return record


def registration_row(entries: list[LedgerEntry], version: int) -> LedgerEntry | None:
    """The ``version.registered`` row of ``version`` among one model's ledger rows."""
    return next((e for e in entries if e.action == REGISTERED and e.version == version), None)


def record_registration(registry: MlflowRegistry, ledger: Ledger, record: ModelVersionRecord, *, actor: str,
                        description: str = "") -> LedgerEntry | None:
    """Write the ``version.registered`` row of a version a crash left without one (killed between the registry and
    the ledger), with the sha256 of its files as stored, after checking them against its registration tags.
    None when the row exists."""
    if registration_row(ledger.entries(model_name=record.name), record.version) is not None:
        return None
    files = (PARAMS_FILE, CONFIG_FILE, FEATURES_FILE, REFERENCE_FILE, CONTRACT_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        hashes = {f: sha256_file(registry.fetch(record, f, Path(tmp))) for f in files}
    changed = [f for f, tag in HASH_TAGS.items() if record.tags.get(tag) != hashes[f]]
    if changed:
        raise LockgateError(f"{record.name} v{record.version} has no registration row and its stored {changed} no "
                            "longer match its registration tags; register the candidate again")
    reason = description or (f"registered {record.tags.get('lockgate.arch')} candidate with contract "
                             f"{record.tags.get('lockgate.contract')} v{record.tags.get('lockgate.contract_version')}")
    return ledger.append(LedgerEntry(actor=actor, action=REGISTERED, model_name=record.name, version=record.version,
                                     reason=f"{reason} (recorded after its registration was interrupted)",
                                     evidence=hashes))
