"""Registering a candidate on a real SQLite MLflow: what is stored, and bad inputs that write nothing."""

from __future__ import annotations

import json

import pytest

from tasks.errors import LockgateError
from tasks.registration.register import register_candidate
from tasks.stores import ledger_for, registry_for


def _register(settings, files, **overrides):
    kwargs = dict(name=settings.model_name, arch="mlp", config_path=files.config, params_path=files.params,
                  reference_path=files.reference, contract_name="credit_default", actor="tester")
    kwargs.update(overrides)
    return register_candidate(registry_for(settings), ledger_for(settings), **kwargs)


def test_register_records_everything_the_gates_need(settings, candidate_files):
    record = _register(settings, candidate_files)
    assert record.version == 1
    tags = record.tags
    assert tags["lockgate.contract"] == "credit_default" and tags["lockgate.contract_version"] == "1.0.0"
    assert len(tags["lockgate.contract_fingerprint"]) == 64 and len(tags["lockgate.reference_sha256"]) == 64
    assert tags["lockgate.status"] == "registered" and tags["lockgate.registered_by"] == "tester"
    spec = registry_for(settings).fetch_json(record, "feature_spec.json")
    assert [f["name"] for f in spec["numeric"]][:2] == ["age", "annual_income"]
    entry = ledger_for(settings).entries()[-1]
    assert entry.action == "version.registered" and entry.version == 1
    assert entry.evidence["params.msgpack"] == tags["lockgate.params_sha256"]


def _corrupt(path):
    path.write_bytes(b"\x00not msgpack")
    return path


@pytest.mark.parametrize(
    "change,fragment",
    [
        (lambda f, tmp: {"arch": "transformer9"}, "unknown architecture"),
        (lambda f, tmp: {"contract_name": "no_such_contract"}, "no_such_contract"),
        (lambda f, tmp: {"params_path": tmp / "missing.msgpack"}, "missing.msgpack"),
        (lambda f, tmp: {"params_path": _corrupt(tmp / "bad.msgpack")}, "bad.msgpack"),
        (lambda f, tmp: {"reference_path": tmp / "nope.parquet"}, "reference data not found"),
        (lambda f, tmp: {"config_path": _write(tmp / "c.json", {"num_features": 5})}, "num_features=5"),
        (lambda f, tmp: {"config_path": _write(tmp / "c.json", {"num_features": 30, "hidden": [3]})}, "unknown MLPConfig keys"),
    ],
)
def test_bad_input_is_one_line_and_registers_nothing(settings, candidate_files, tmp_path, change, fragment):
    before = candidate_files.params.read_bytes(), candidate_files.reference.read_bytes()
    with pytest.raises(LockgateError) as e:
        _register(settings, candidate_files, **change(candidate_files, tmp_path))
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert registry_for(settings).versions(settings.model_name) == []
    assert ledger_for(settings).entries() == []
    assert (candidate_files.params.read_bytes(), candidate_files.reference.read_bytes()) == before


def _write(path, payload):
    path.write_text(json.dumps(payload))
    return path


def test_a_registration_cut_before_its_ledger_row_is_recorded_later_with_the_stored_hashes(settings, candidate_files,
                                                                                           monkeypatch):
    import tasks.registration.register as registration
    from tasks.registration.register import CONTRACT_FILE, record_registration

    def killed(point):  # the process dies here in the fault tests (SIGKILL); an exception cuts it at the same place
        if point == "version-created":
            raise SystemExit("killed")

    monkeypatch.setattr(registration, "failpoint", killed)
    with pytest.raises(SystemExit):
        _register(settings, candidate_files, extra_tags={"lockgate.demo_run": "r1"})
    registry, ledger = registry_for(settings), ledger_for(settings)
    record = registry.get(settings.model_name, 1)
    assert record.tags["lockgate.demo_run"] == "r1" and ledger.entries() == []

    row = record_registration(registry, ledger, record, actor="tester")
    assert (row.action, row.version) == ("version.registered", 1) and "interrupted" in row.reason
    assert set(row.evidence) == {"params.msgpack", "model_config.json", "feature_spec.json", "reference.parquet",
                                 CONTRACT_FILE}
    assert row.evidence["params.msgpack"] == record.tags["lockgate.params_sha256"]
    assert record_registration(registry, ledger, record, actor="tester") is None  # once only
    assert ledger.verify().ok


def test_a_policy_requiring_a_licence_refuses_a_contract_without_one(settings, candidate_files, tmp_path):
    import yaml

    from data_contracts.contract import CONTRACTS_DIR
    from tasks.policy import load_policy
    from tasks.settings import DEMO_POLICY

    policy = load_policy(DEMO_POLICY)  # the demo policy requires a licence
    assert policy.governance.require_dataset_licence
    raw = yaml.safe_load((CONTRACTS_DIR / "credit_default.yaml").read_text())
    raw["customProperties"] = [cp for cp in raw["customProperties"] if cp["property"] != "license"]
    unlicensed = tmp_path / "unlicensed.yaml"
    unlicensed.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(LockgateError) as e:
        _register(settings, candidate_files, contract_name=str(unlicensed), policy=policy)
    message = str(e.value)
    assert message.startswith(f"contract credit_default ({unlicensed}) records no dataset licence")
    assert "policy demo requires one (governance.require_dataset_licence)" in message and "\n" not in message
    assert registry_for(settings).versions(settings.model_name) == [] and ledger_for(settings).entries() == []
    # the demo contract records one (synthetic data generated by lockgate): registered under the same policy
    assert _register(settings, candidate_files, policy=policy).version == 1
