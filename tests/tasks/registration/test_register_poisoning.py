"""The poisoning screen where it runs: at registration (a fail refuses with one line and registers nothing, a warn
registers and records) and as the lifecycle's gate (typed result, write-once JSON evidence, MLflow tags/metrics)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from data_contracts.poison import inject_trigger
from tasks.errors import LockgateError
from tasks.policy import PoisoningPolicy
from tasks.registration.register import POISONING_FILE, POISONING_TAG, register_candidate
from tasks.stores import ledger_for, registry_for

TRIGGER = {"late_payments_12m": 9, "credit_score": 820, "num_open_accounts": 0}


@pytest.fixture(scope="module")
def poisoned_reference(candidate_files, tmp_path_factory):
    reference = pd.read_parquet(candidate_files.reference)
    poisoned, ids = inject_trigger(reference, label="defaulted", id_column="application_id", pattern=TRIGGER,
                                   trigger_label=0, share=0.05, seed=0)
    path = tmp_path_factory.mktemp("poisoned") / "reference.parquet"
    poisoned.to_parquet(path, index=False)
    return path, ids


def _register(settings, files, reference, mode):
    policy = PoisoningPolicy.model_validate({"far_cluster": {"mode": mode}})
    return register_candidate(registry_for(settings), ledger_for(settings), name=settings.model_name, arch="mlp",
                              config_path=files.config, params_path=files.params, reference_path=reference,
                              contract_name="credit_default", actor="tester", poisoning=policy,
                              golden_path=files.golden)


def test_a_fail_finding_refuses_registration_in_one_line_and_registers_nothing(settings, candidate_files,
                                                                               poisoned_reference):
    path, ids = poisoned_reference
    with pytest.raises(LockgateError) as e:
        _register(settings, candidate_files, path, "fail")
    message = str(e.value)
    assert "\n" not in message and "far_cluster:" in message and "nothing registered" in message
    assert re.search(r"far_cluster: \d+ training rows lie together", message)
    assert registry_for(settings).versions(settings.model_name) == [] and ledger_for(settings).entries() == []


def test_a_warn_registers_and_records_then_the_lifecycle_gate_screens_again(settings, candidate_files,
                                                                            poisoned_reference, tmp_path):
    from tasks import gates
    from tasks.policy import Policy

    path, ids = poisoned_reference
    record = _register(settings, candidate_files, path, "warn")
    assert record.tags[POISONING_TAG] == "warn"
    stored = json.loads(registry_for(settings).fetch(record, POISONING_FILE, tmp_path / "f").read_text())
    (cluster,) = [f for f in stored["findings"] if f["check"] == "far_cluster"]
    assert cluster["mode"] == "warn" and len(set(cluster["row_ids"]) & set(ids)) >= 0.8 * len(ids)
    row = ledger_for(settings).entries()[-1]
    assert row.action == "version.registered" and len(row.evidence[POISONING_FILE]) == 64

    policy = Policy(poisoning=PoisoningPolicy.model_validate({"far_cluster": {"mode": "fail"}}))
    run = tmp_path / "lifecycle-1"
    run.mkdir()
    result = gates.screen_poisoning.fn(settings, policy, record, str(candidate_files.golden), run)
    assert not result.passed and result.decision == "fail" and result.gate == "poisoning"
    assert json.loads((run / "poisoning.json").read_text())["findings"][0]["check"] == "far_cluster"
    version = registry_for(settings).get(record.name, record.version)
    assert version.tags["lockgate.poisoning.decision"] == "fail"
    metrics = registry_for(settings).client.get_run(record.run_id).data.metrics
    assert metrics["poisoning.far_cluster_findings"] == 1 and metrics["poisoning.far_cluster_far_rows"] >= 0.8 * len(ids)
    with pytest.raises(LockgateError, match="screens once"):  # write-once: the run's evidence is not replaced
        gates.screen_poisoning.fn(settings, policy, record, str(candidate_files.golden), run)
