"""The demo end to end at small size, on the real embedded components."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.flow]


def test_demo_end_to_end(prefect_harness, settings):
    from pipelines.commands.demo import run_demo
    from tasks.governance.promotion_state import agreement
    from tasks.registry import CHAMPION
    from tasks.stores import ledger_for, registry_for

    assert run_demo(settings, size="small", days=2) == 0

    registry, ledger = registry_for(settings), ledger_for(settings)
    versions = registry.versions(settings.model_name)
    assert [v.version for v in versions] == [1, 2]
    champion = registry.aliases(settings.model_name)[CHAMPION]
    statuses = {v.version: v.tags["lockgate.status"] for v in versions}
    # v1 became champion first; v2 was either promoted or rejected, with a reason recorded
    assert statuses[champion] == "champion"
    if champion == 2:
        assert registry.aliases(settings.model_name).get("previous-champion") == 1
    else:
        assert statuses[2] == "rejected" and versions[1].tags["lockgate.rejected_reason"]

    entries = ledger.entries()
    actions = [e.action for e in entries]
    assert actions.count("version.registered") == 2 and actions.count("approval.auto") >= 1
    promotions = [e for e in entries if e.action == "promotion.committed"]
    assert promotions[-1].version == champion and promotions[-1].aliases[CHAMPION] == champion
    assert {"canary", "compilation", "drift", "approval"} <= set(promotions[-1].evidence)
    assert "auto-approved by policy 'demo'" in next(e.reason for e in entries if e.action == "approval.auto")
    assert ledger.verify().ok
    assert agreement(registry, ledger, settings.model_name).ok

    scored = [e for e in entries if e.action == "partition.scored"]
    assert len(scored) == 2
    for e in scored:
        assert e.version == champion and e.evidence["predictions"]
    preds = pd.read_parquet(settings.predictions_dir / settings.model_name / "date=2026-11-01" / "predictions.parquet")
    assert set(preds["model_version"]) == {str(champion)} and preds["score"].between(0, 1).all()
    assert preds["artifact_sha256"].iloc[0] == registry.get(settings.model_name, champion).tags["lockgate.artifact_sha256"]
