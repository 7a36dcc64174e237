"""The lifecycle flow on real Prefect, MLflow (SQLite), GE and Evidently, with small configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.registry import CHALLENGER, CHAMPION

pytestmark = pytest.mark.flow


def this_run(settings, version: int) -> str:
    """The flow run of the lifecycle that decided ``version`` (its ledger rows name it)."""
    from tasks.stores import ledger_for

    (run,) = {e.flow_run_id for e in ledger_for(settings).entries(model_name=settings.model_name)
              if e.version == version and e.flow_run_id}
    return run


def test_first_candidate_becomes_champion_with_evidence(champion, module_settings):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from tasks.stores import ledger_for, registry_for

    outcome, _ = champion
    assert outcome.decision == "champion" and outcome.champion_before is None
    name, version = module_settings.model_name, outcome.version
    record = registry_for(module_settings).get(name, version)
    assert registry_for(module_settings).aliases(name) == {CHAMPION: version}
    assert len(record.tags["lockgate.artifact_sha256"]) == 64
    assert record.tags["lockgate.canary.decision"] == "pass"
    # the compile gate exported bf16, int8 and neuron-pruned variants; the canary held them to the accuracy budget
    assert {"bf16", "int8", "prune-neurons"} <= {k.split(".")[2] for k in record.tags if k.startswith("lockgate.variant.")}

    from tasks.stores import latest_evidence_dir

    folder = latest_evidence_dir(module_settings, name, version)
    assert folder.name == "lifecycle-1"  # the version's first lifecycle run
    canary = json.loads((folder / "canary.json").read_text())
    assert [v["variant"] for v in canary["variants"]] == ["bf16", "int8", "prune-neurons"]
    accepted = [v["variant"] for v in canary["variants"] if v["accepted"]]
    assert record.tags["lockgate.variants_accepted"] == (",".join(accepted) or "none")
    compilation = json.loads((folder / "compilation.json").read_text())
    assert {(r["target"], r["variant"]) for r in compilation["report"]["rows"]} == {
        (t, v) for t in ("cpu", "v5e-4") for v in ("f32", "bf16", "int8", "prune-neurons")}
    pruned = next(v for v in compilation["variants"] if v["variant"] == "prune-neurons")
    f32_bytes = {r["variant"]: r["memory_bytes"] for r in compilation["report"]["rows"]
                 if r["target"] == "cpu" and r["bucket"] == 1}
    assert pruned["param_bytes"] < next(v for v in compilation["variants"] if v["variant"] == "bf16")["param_bytes"] * 2
    assert f32_bytes["prune-neurons"] < f32_bytes["f32"]  # smaller matrices: less memory in the compiled program
    assert "| prune-neurons |" in next(folder.rglob("compile_report.md")).read_text()
    for role in ("validation-golden", "validation-reference", "compilation", "canary", "drift", "approval"):
        assert (folder / f"{role}.json").is_file(), role
    assert (folder / "drift" / "drift_report.html").is_file()
    promotion = [e for e in ledger_for(module_settings).entries() if e.alias == CHAMPION][-1]
    assert promotion.action == "promotion.committed" and promotion.aliases == {CHAMPION: version}
    assert "first deployment" in promotion.reason and "candidate_auc" in promotion.reason
    assert "smoke test: v1 artifact" in promotion.reason
    assert set(promotion.evidence) >= {"canary", "compilation", "drift", "approval", "contract.fingerprint"}
    assert outcome.gates[-1].startswith("promotion: committed")

    with get_client(sync_client=True) as client:  # the session's server holds other modules' runs: this one's
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"canary-{name}-v{version}"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[promotion.flow_run_id])))
    assert artifacts and "candidate_auc" in artifacts[0].data


def test_validation_table_artifact_and_counts_as_mlflow_metrics(champion, module_settings):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from tasks.stores import registry_for

    outcome, _ = champion
    name, version = module_settings.model_name, outcome.version
    # The session's Prefect server also holds these keys from other modules' homes: this lifecycle's flow run.
    run = this_run(module_settings, version)
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"validation-golden-table-{name}-v{version}"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[run])))
    assert artifact.type == "table"
    rows = artifact.data if isinstance(artifact.data, list) else json.loads(artifact.data)
    by_name = {r["expectation"]: r for r in rows}
    assert by_name["age in range"] == {"expectation": "age in range", "level": "row", "success": True,
                                       "failing_rows": 0, "observed_value": None, "note": ""}
    assert by_name["row count in range"]["level"] == "dataset" and by_name["row count in range"]["observed_value"] == 600
    record = registry_for(module_settings).get(name, version)
    metrics = registry_for(module_settings).client.get_run(record.run_id).data.metrics
    assert metrics["validation-golden.rows"] == 600 and metrics["validation-golden.quarantined_rows"] == 0
    assert metrics["validation-golden.failing_rows_age in range"] == 0
    assert metrics["validation-reference.rows"] == 1200

    with get_client(sync_client=True) as client:  # drift: the per-column table
        (drift_table,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"drift-table-{name}-v{version}"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[run])))
    drift_rows = drift_table.data if isinstance(drift_table.data, list) else json.loads(drift_table.data)
    by_column = {r["column"]: r for r in drift_rows}
    assert by_column["credit_score"]["method"] == "psi" and by_column["credit_score"]["threshold"] == 0.2  # contract
    assert by_column["score"]["role"] == "prediction" and by_column["score"]["verdict"] in ("ok", "DRIFT")
    assert {"score", "drift if", "verdict", "accuracy", "null share"} <= set(by_column["age"])
    assert metrics["drift.column_credit_score"] == pytest.approx(by_column["credit_score"]["score"], abs=1e-6)


def test_worse_candidate_is_rejected_with_values_and_thresholds(champion, module_settings, register, make_candidate,
                                                                tmp_path):
    from pipelines.lifecycle import lifecycle
    from tasks.stores import ledger_for, registry_for

    first, files = champion
    weak = make_candidate(tmp_path / "weak", hidden=(2,), epochs=0, seed=5, n=1200)  # untrained
    version = register(weak).version
    outcome = lifecycle(version=version, golden=str(files.golden))
    assert outcome.decision == "rejected"
    assert registry_for(module_settings).aliases(module_settings.model_name)[CHAMPION] == first.version
    assert CHALLENGER not in registry_for(module_settings).aliases(module_settings.model_name)
    rejection = [e for e in ledger_for(module_settings).entries() if not e.action.startswith("incident.")][-1]  # the decision; the incident's rows follow it
    assert rejection.action == "candidate.rejected" and rejection.version == version
    from tasks.governance.incidents import incidents_from

    (incident,) = [i for i in incidents_from(ledger_for(module_settings).entries()) if i.version == version]
    assert incident.kind == "promotion-rejected" and incident.summary.startswith(f"v{version} rejected: canary gate")
    assert incident.evidence["canary"].endswith("canary.json") and incident.status == "open"
    assert "canary gate" in rejection.reason and "FAILED" in rejection.reason and "auc" in rejection.reason
    assert ledger_for(module_settings).verify().ok


def test_golden_set_breaking_the_contract_rejects_at_validation(champion, module_settings, register, tmp_path):
    import pandas as pd

    from pipelines.lifecycle import lifecycle

    _, files = champion
    broken = tmp_path / "golden_missing_column.parquet"
    pd.read_parquet(files.golden).drop(columns=["credit_score"]).to_parquet(broken)
    before = broken.read_bytes()
    outcome = lifecycle(version=register(files).version, golden=str(broken))
    assert outcome.decision == "rejected" and outcome.gates[0].startswith("contract: compatible")
    assert len(outcome.gates) == 2 and outcome.gates[1].startswith("validation: fail")
    assert any("credit_score" in r for r in outcome.reasons)
    assert broken.read_bytes() == before


def test_champion_loads_with_plain_mlflow_pyfunc(champion, module_settings, monkeypatch):
    import mlflow
    import numpy as np
    import pandas as pd

    from tasks.registration.inference import load_compiled
    from tasks.stores import cache_dir, registry_for

    outcome, files = champion
    golden = pd.read_parquet(files.golden).head(100)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", module_settings.tracking_uri)  # not set_tracking_uri: no global state
    model = mlflow.pyfunc.load_model(f"models:/{module_settings.model_name}@champion")
    scores = np.asarray(model.predict(golden)["score"])
    record = registry_for(module_settings).get(module_settings.model_name, outcome.version)
    expected = load_compiled(registry_for(module_settings), record, cache_dir(module_settings), (1, 64, 1024)).score(golden)
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_tampered_params_reject_the_candidate_with_the_hash_mismatch(champion, module_settings, register,
                                                                     stored_file_path):
    from pipelines.lifecycle import lifecycle
    from tasks.stores import ledger_for

    _, files = champion
    record = register(files)
    params = stored_file_path(module_settings, record, "params.msgpack")
    params.write_bytes(params.read_bytes()[:-1] + b"\x00")
    outcome = lifecycle(version=record.version, golden=str(files.golden))
    assert outcome.decision == "rejected" and outcome.gates[-1].startswith("compilation: error")
    assert "refusing to use a changed artifact" in outcome.reasons[0]
    assert [e for e in ledger_for(module_settings).entries() if not e.action.startswith("incident.")][-1].action == "candidate.rejected"


@pytest.mark.parametrize("bad", ["one_class_golden", "empty_shadow"])
def test_canary_bad_input_is_a_recorded_rejection(champion, module_settings, register, tmp_path, bad):
    import pandas as pd

    from pipelines.lifecycle import lifecycle
    from tasks.stores import ledger_for

    _, files = champion
    golden, current = files.golden, None
    if bad == "one_class_golden":
        golden = tmp_path / "one_class.parquet"
        pd.read_parquet(files.golden).assign(defaulted=0).to_parquet(golden)
    else:
        current = tmp_path / "empty.parquet"
        pd.read_parquet(files.golden).drop(columns=["defaulted"]).head(0).to_parquet(current)
    outcome = lifecycle(version=register(files).version, golden=str(golden), current=str(current) if current else None)
    assert outcome.decision == "rejected" and outcome.gates[-1].startswith("canary: error")
    expected = "one class" if bad == "one_class_golden" else "no rows"
    assert expected in outcome.reasons[0]
    assert [e for e in ledger_for(module_settings).entries() if not e.action.startswith("incident.")][-1].action == "candidate.rejected"


@pytest.mark.parametrize("allow", [False, True], ids=["refused", "allowed-by-policy"])
def test_candidate_with_a_breaking_contract_change(champion, module_settings, register, tmp_path, monkeypatch, allow):
    """The candidate's registered contract tightens age to <= 20: the contract gate names the change; a policy that
    allows breaking changes lets it on, and validation then applies the candidate's own contract."""
    from data_contracts.contract import CONTRACTS_DIR
    from pipelines.lifecycle import lifecycle
    from tasks.stores import ledger_for

    _, files = champion
    tightened = tmp_path / "credit_default.yaml"
    text = (CONTRACTS_DIR / "credit_default.yaml").read_text()
    tightened.write_text(text.replace("          minimum: 18\n          maximum: 90\n", "          minimum: 18\n          maximum: 20\n"))
    if allow:
        policy = tmp_path / "policy.yaml"
        policy.write_text(Path(__file__).with_name("small_policy.yaml").read_text()
                          + "validation:\n  allow_breaking_contract_change: true\n")
        monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(policy))
    outcome = lifecycle(version=register(files, contract=tightened).version, golden=str(files.golden))
    assert outcome.decision == "rejected"
    if not allow:
        assert len(outcome.gates) == 1 and outcome.gates[0].startswith("contract: breaking")
        assert any("maximum age: 90 -> 20 (range tightened)" in r for r in outcome.reasons)
        assert "contract gate: breaking" in [e for e in ledger_for(module_settings).entries() if not e.action.startswith("incident.")][-1].reason
    else:
        assert outcome.gates[0].startswith("contract: breaking-allowed") and "maximum age: 90 -> 20" in outcome.gates[0]
        assert outcome.gates[1].startswith("validation: fail") and any("age in range" in r or "rows failed" in r
                                                                       for r in outcome.reasons)
