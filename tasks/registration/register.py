"""Register a candidate: model code + config + params + feature spec + reference snapshot -> a model version.

The same path serves a user's own model (`lockgate register --model pkg.mod:attr`), the
built-in architectures (`--arch mlp` is `--model models.architectures:mlp`) and the demo.
A user's model code (its top-level package, or its module file, under the code root they
name) is copied into the version (``model/model_code/``, with a manifest of sha256 per file
whose own sha256 is tagged and written into ``model_config.json``), and the model is built
from that copy, as every later gate builds it (models/code_model.py). Every input is checked
before anything is written, so a bad input leaves nothing half-registered: the code must
import, the config must build the model, the params must load and fit it, the reference data
must hold the contract's feature columns, and a forward pass on a few reference rows must
return one finite output per row. A version is created in the registry, then
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
from tasks.policy import Policy
from tasks.registry import MlflowRegistry, ModelVersionRecord

PARAMS_FILE = "params.msgpack"
CONFIG_FILE = "model_config.json"
FEATURES_FILE = "feature_spec.json"
REFERENCE_FILE = "reference.parquet"
CONTRACT_FILE = "contract.yaml"  # the contract as registered: gates read this, not the file on disk today
CODE_DIR = "model_code"  # the user's model code as registered (model/model_code/<package>/...)
CODE_MANIFEST_FILE = "model_code.json"  # {"model": ref, "files": {relative path: sha256}}
CODE_SHA_TAG = "lockgate.code_sha256"
POISONING_FILE = "poisoning_screen.json"  # the registration's poisoning screen (when a policy was given)
POISONING_TAG = "lockgate.registration.poisoning"  # its decision (the lifecycle gate tags lockgate.poisoning.*)
REGISTERED = "version.registered"
# the registration tags that hold a file's sha256: checked again when a row is recorded after a crash
HASH_TAGS = {PARAMS_FILE: "lockgate.params_sha256", REFERENCE_FILE: "lockgate.reference_sha256",
             CONTRACT_FILE: "lockgate.contract_sha256", CODE_MANIFEST_FILE: CODE_SHA_TAG}


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


def model_ref(model: str | None, arch: str | None) -> str:
    """The ``MODULE:ATTR`` reference of ``--model`` or ``--arch`` (exactly one; a built-in name given as ``model``
    is its ``--arch``). One-line LockgateError otherwise."""
    from models.architectures import ARCHITECTURES
    from models.code_model import ModelCodeError, builtin_ref, parse_ref

    if (model is None) == (arch is None):
        raise LockgateError("give the model as exactly one of --model MODULE:ATTR or --arch NAME")
    try:
        if arch is not None:
            return builtin_ref(arch)
        if model in ARCHITECTURES:
            return builtin_ref(model)
        if ":" not in model:
            raise LockgateError(f"model {model!r} is neither MODULE:ATTR (e.g. mypkg.net:build) nor a built-in "
                                f"architecture {sorted(ARCHITECTURES)}")
        parse_ref(model)
        return model
    except ModelCodeError as e:
        raise LockgateError(str(e)) from None


def register_candidate(
    registry: MlflowRegistry,
    ledger: Ledger,
    *,
    name: str,
    config_path: Path,
    params_path: Path,
    reference_path: Path,
    contract_name: str,
    actor: str,
    arch: str | None = None,
    model: str | None = None,
    code_root: Path | None = None,
    description: str = "",
    intended_use: str = "",
    limitations: str = "",
    extra_tags: dict[str, str] | None = None,
    policy: Policy | None = None,
    poisoning=None,
    golden_path: Path | None = None,
) -> ModelVersionRecord:
    """Check the inputs, then create a model version holding everything the gates need.

    The model is ``model`` (``"pkg.mod:attr"``: a Flax module class, a factory ``build(config) -> nn.Module`` or a
    function ``f(params, x) -> y``, see models/code_model.py), whose top-level package or module file lies under
    ``code_root`` (default: the current folder), or a built-in ``arch`` (``"mlp"``, ``"ft_transformer"``,
    ``"moe"``): exactly one of the two. ``config_path`` is any JSON object (``task``, ``num_features`` and
    ``inputs`` are lockgate's keys: ``inputs`` declares the raw columns the model takes, see models/inputs.py);
    ``params_path`` a flax.serialization msgpack file or an orbax checkpoint folder (restored with the model's
    init params as the target, stored as msgpack).

    ``intended_use`` and ``limitations`` (free text, limitations separated by ';') go to the model card;
    ``extra_tags`` are set on the version with the others (the demo's run and candidate). ``policy``: with
    ``governance.require_dataset_licence``, a contract that records no dataset licence is refused.

    ``poisoning`` (a tasks.policy.PoisoningPolicy) screens the reference data first, against the golden set at
    ``golden_path`` when given (else its golden-set checks are skipped and the result says so): a fail finding
    refuses the registration; warn findings are stored with the version (``poisoning_screen.json``, its sha256 in
    the ledger row) and tagged (``lockgate.registration.poisoning``). None: no screen.

    Raises:
      LockgateError: one line naming the bad input; nothing is registered."""
    from data_contracts.contract import ContractError, load_contract
    from models.code_model import ModelCodeError, inputs_of, is_lockgate_code, load_model, model_source, probe
    from models.features import feature_matrix
    from models.inputs import describe
    from models.params_io import is_orbax_checkpoint, load_params

    ref = model_ref(model, arch)
    try:
        contract = load_contract(contract_name)
    except ContractError as e:
        raise LockgateError(str(e)) from None
    if policy is not None and policy.governance.require_dataset_licence:
        from data_contracts.provenance import licence_refusal

        refusal = licence_refusal(contract, policy_name=policy.name)
        if refusal:
            raise LockgateError(refusal)
    raw_config = read_model_config(config_path)
    try:
        declared_inputs = inputs_of(raw_config, ref)
    except ModelCodeError as e:
        raise LockgateError(f"model config {config_path}: {e}") from None
    orbax = is_orbax_checkpoint(params_path)
    try:  # an orbax checkpoint is restored once the model is built: its init params are the restore target
        params = None if orbax else load_params(params_path)
    except ValueError as e:
        raise LockgateError(str(e)) from None
    reference = read_table(reference_path, what="reference data")
    missing = [c for c in contract.feature_columns if c not in reference.columns]
    if missing:
        raise LockgateError(f"reference data {reference_path} lacks the contract's feature columns {missing}")
    spec = model_feature_spec(contract, reference, declared_inputs, config_path)
    screen = None
    if poisoning is not None:
        from models.features import fit_feature_spec
        from tasks.registration.poisoning import poisoning_screen, refusal_line

        golden = read_table(golden_path, what="golden set") if golden_path is not None else None
        # the data is screened in the contract's encoding, whatever inputs the model declares
        data_spec = spec if spec.inputs is None else fit_feature_spec(reference, contract.numeric_features,
                                                                     contract.categorical_features)
        screen = poisoning_screen(reference, golden, contract=contract, spec=data_spec,
                                  task=str(raw_config.get("task", "classification")), policy=poisoning,
                                  dataset=str(reference_path), golden_name=str(golden_path) if golden_path else None)
        if not screen.passed:
            raise LockgateError(refusal_line(screen))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        code_dir = code_sha = None
        try:
            if not is_lockgate_code(ref):  # the user's code is copied first and built from the copy, as gates will
                source = model_source(ref, Path.cwd() if code_root is None else code_root)
                code_dir = tmp / CODE_DIR
                manifest = tmp / CODE_MANIFEST_FILE
                manifest.write_text(json.dumps({"model": ref, "files": source.copy_to(code_dir)}, indent=2,
                                               sort_keys=True))
                code_sha = sha256_file(manifest)
            built = load_model(ref, raw_config, num_features=spec.num_features, code_dir=code_dir,
                               code_sha256=code_sha)
        except ModelCodeError as e:
            raise LockgateError(f"model config {config_path}: {e}" if e.kind == "config" else str(e)) from None
        if orbax:
            params = restore_checkpoint(built, params_path)
        declared = raw_config.get("num_features", spec.num_features)
        if declared_inputs is None and declared != spec.num_features:
            raise LockgateError(
                f"model config num_features={declared} but contract {contract.name} encodes "
                f"{spec.num_features} features from the reference data; retrain or fix the config"
            )
        x = feature_matrix(reference.head(8), spec)
        try:  # params must fit the model, and the model must take the contract's features: one forward pass
            probe(built, params, x)
        except ModelCodeError as e:
            if e.kind == "params":
                raise LockgateError(f"params {params_path} do not fit model {ref}: {e}") from None
            if e.kind == "input" and declared_inputs is not None:
                raise LockgateError(f"model {ref} does not take the columns it declares, as lockgate gives them from "
                                    f"the reference data ({describe(x)}), with params {params_path}: {e}") from None
            if e.kind == "input":
                raise LockgateError(f"model {ref} does not take the {spec.num_features} features contract "
                                    f"{contract.name} encodes from the reference data (x: float32{list(x.shape)}) "
                                    f"with params {params_path}: {e}") from None
            raise LockgateError(str(e)) from None
        registered = _store_version(registry, tmp, name=name, model=built, contract=contract, params_path=params_path,
                                    params=params if orbax else None,
                                    spec=spec, reference=reference, actor=actor, description=description,
                                    intended_use=intended_use, limitations=limitations, extra_tags=extra_tags,
                                    screen=screen)
    record, hashes = registered
    failpoint("version-created")  # the fault test kills the demo here: a version with no ledger row yet
    ledger.append(
        LedgerEntry(
            actor=actor,
            action=REGISTERED,
            model_name=name,
            version=record.version,
            reason=description or f"registered {built.arch} candidate with contract {contract.name} v{contract.version}",
            evidence={k: v for k, v in hashes.items()},
        )
    )
    return record


def model_feature_spec(contract, reference, declared_inputs, config_path: Path):
    """The version's feature spec: the contract's encoding fitted on the reference data, or, for a model declaring
    its inputs, those raw columns (every contract feature column declared, each as a dtype lockgate can give)."""
    from models.features import FeatureSpec, fit_feature_spec, raw_input_spec

    if declared_inputs is None:
        return fit_feature_spec(reference, contract.numeric_features, contract.categorical_features)
    names = [n for n, _ in declared_inputs]
    unknown = [n for n in names if n not in contract.columns]
    if unknown:
        raise LockgateError(f"model config {config_path}: inputs {unknown} are not columns of contract "
                            f"{contract.name}")
    undeclared = [c for c in contract.feature_columns if c not in names]
    if undeclared:
        raise LockgateError(f"model config {config_path}: inputs declare no dtype for contract {contract.name}'s "
                            f"feature columns {undeclared}; the model must take every feature column")
    allowed = {c: contract.allowed_values(c) for c in contract.categorical_features}
    try:
        return FeatureSpec(inputs=raw_input_spec(declared_inputs, contract.numeric_features,
                                                 contract.categorical_features, allowed, reference))
    except ValueError as e:
        raise LockgateError(f"model config {config_path}: {e} of contract {contract.name}") from None


def restore_checkpoint(model, params_path: Path):
    """Params of an orbax checkpoint folder, restored with ``model``'s init params (shape only) as the target;
    a plain function (no init) restores them as saved and the forward pass checks them."""
    from models.params_io import load_orbax_params

    template = None
    if model.module is not None:
        import jax

        from models.train import init_params

        try:
            template = jax.eval_shape(lambda: init_params(model, 0))
        except Exception as e:  # the user's init failing is a one-line finding too
            from models.code_model import one_line

            raise LockgateError(f"model {model.ref}: cannot init it to restore orbax checkpoint {params_path}: "
                                f"{one_line(e)}") from None
    try:
        return load_orbax_params(params_path, template)
    except ValueError as e:
        raise LockgateError(f"params {e}") from None


def _store_version(registry: MlflowRegistry, tmp: Path, *, name, model, contract, params_path, params, spec, reference,
                   actor, description, intended_use, limitations,
                   extra_tags, screen=None) -> tuple[ModelVersionRecord, dict[str, str]]:
    files = {
        PARAMS_FILE: tmp / PARAMS_FILE,
        CONFIG_FILE: tmp / CONFIG_FILE,
        FEATURES_FILE: tmp / FEATURES_FILE,
        REFERENCE_FILE: tmp / REFERENCE_FILE,
        CONTRACT_FILE: tmp / CONTRACT_FILE,
    }
    if model.code_sha256 is not None:
        files[CODE_MANIFEST_FILE] = tmp / CODE_MANIFEST_FILE
    if screen is not None:
        files[POISONING_FILE] = tmp / POISONING_FILE
        files[POISONING_FILE].write_text(screen.model_dump_json(indent=2))
    files[CONTRACT_FILE].write_bytes(contract.source.read_bytes())
    if params is None:  # a msgpack file is stored as given
        files[PARAMS_FILE].write_bytes(Path(params_path).read_bytes())
    else:  # params restored from an orbax checkpoint: stored as msgpack, pickle-free, with a sha256 like any other
        from models.params_io import params_to_bytes

        files[PARAMS_FILE].write_bytes(params_to_bytes(params))
    # holds the code manifest's sha256: the model signature over this file covers the code too
    files[CONFIG_FILE].write_text(json.dumps(model.to_dict(), indent=2))
    files[FEATURES_FILE].write_text(spec.model_dump_json(indent=2))
    reference.to_parquet(files[REFERENCE_FILE], index=False)
    hashes = {k: sha256_file(p) for k, p in files.items()}
    if model.code_sha256 is not None and hashes[CODE_MANIFEST_FILE] != model.code_sha256:
        raise LockgateError(f"the code manifest of {model.ref} changed while registering; register again")
    tags = {
        "lockgate.arch": model.arch,
        "lockgate.model": model.ref,
        **({CODE_SHA_TAG: model.code_sha256} if model.code_sha256 else {}),
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
        **({POISONING_TAG: screen.decision, "lockgate.registration.poisoning_findings": str(len(screen.findings))}
           if screen is not None else {}),
        **(extra_tags or {}),
    }
    params_logged = {"arch": model.arch, "model": model.ref,
                     **{f"config.{k}"[:250]: str(v)[:500] for k, v in model.config.items()}}
    folders = {CODE_DIR: tmp / CODE_DIR} if model.code_sha256 is not None else None
    record = registry.register(name, files=list(files.values()), params=params_logged, tags=tags,
                               run_name=description or f"{name}-{model.arch}", folders=folders)
    return record, hashes


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
    files = (PARAMS_FILE, CONFIG_FILE, FEATURES_FILE, REFERENCE_FILE, CONTRACT_FILE,
             *((CODE_MANIFEST_FILE,) if CODE_SHA_TAG in record.tags else ()),
             *((POISONING_FILE,) if POISONING_TAG in record.tags else ()))
    with tempfile.TemporaryDirectory() as tmp:
        hashes = {f: sha256_file(registry.fetch(record, f, Path(tmp))) for f in files}
    changed = [f for f, tag in HASH_TAGS.items() if f in hashes and record.tags.get(tag) != hashes[f]]
    if changed:
        raise LockgateError(f"{record.name} v{record.version} has no registration row and its stored {changed} no "
                            "longer match its registration tags; register the candidate again")
    reason = description or (f"registered {record.tags.get('lockgate.arch')} candidate with contract "
                             f"{record.tags.get('lockgate.contract')} v{record.tags.get('lockgate.contract_version')}")
    return ledger.append(LedgerEntry(actor=actor, action=REGISTERED, model_name=record.name, version=record.version,
                                     reason=f"{reason} (recorded after its registration was interrupted)",
                                     evidence=hashes))
