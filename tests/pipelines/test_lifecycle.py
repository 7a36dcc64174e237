"""The lifecycle flow on real Prefect, MLflow (SQLite), GE and Evidently, with small configs."""

from __future__ import annotations

import pytest

from tasks.registry import CHALLENGER, CHAMPION

pytestmark = pytest.mark.flow


def test_first_candidate_becomes_champion_with_evidence(champion, module_settings):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tasks.stores import ledger_for, registry_for

    outcome, _ = champion
    assert outcome.decision == "champion" and outcome.champion_before is None
    name, version = module_settings.model_name, outcome.version
    record = registry_for(module_settings).get(name, version)
    assert registry_for(module_settings).aliases(name) == {CHAMPION: version}
    assert len(record.tags["lockgate.artifact_sha256"]) == 64
    assert record.tags["lockgate.canary.decision"] == "pass"
    folder = module_settings.evidence_dir / name / f"v{version}"
    for role in ("validation-golden", "validation-reference", "compilation", "canary", "drift", "approval"):
        assert (folder / f"{role}.json").is_file(), role
    assert (folder / "drift" / "drift_report.html").is_file()
    promotion = [e for e in ledger_for(module_settings).entries() if e.alias == CHAMPION][-1]
    assert "first deployment" in promotion.reason and "candidate_auc" in promotion.reason
    assert set(promotion.evidence) >= {"canary", "compilation", "drift", "approval"}

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"canary-{name}-v{version}"])))
    assert artifacts and "candidate_auc" in artifacts[0].data


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
    rejection = ledger_for(module_settings).entries()[-1]
    assert rejection.action == "candidate.rejected" and rejection.version == version
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
    assert outcome.decision == "rejected" and len(outcome.gates) == 1
    assert any("credit_score" in r for r in outcome.reasons)
    assert broken.read_bytes() == before
