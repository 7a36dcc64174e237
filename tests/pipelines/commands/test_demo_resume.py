"""An interrupted demo is resumed, not repeated: where each candidate stands, and which run the next demo carries on."""

from __future__ import annotations

import json

import pytest

from pipelines.commands.demo import CANDIDATE_TAG, RUN_TAG, resume_point, start_run
from tasks.ledger.entry import LedgerEntry
from tasks.registry import ModelVersionRecord


def _version(n: int, run: str | None, label: str | None) -> ModelVersionRecord:
    tags = {k: v for k, v in ((RUN_TAG, run), (CANDIDATE_TAG, label)) if v is not None}
    return ModelVersionRecord(name="m", version=n, run_id=f"r{n}", source="s", tags=tags, aliases=(), created_at_ms=0)


def _row(action: str, version: int, seq: int) -> LedgerEntry:
    return LedgerEntry(seq=seq, actor="t", action=action, model_name="m", version=version, reason="-")


VERSIONS = [_version(1, "old", "a"), _version(2, None, None), _version(3, "run", "a"), _version(4, "run", "b")]


@pytest.mark.parametrize("rows,label,version,decided", [
    ([], "a", 3, None),  # registered, lifecycle never ended: reused, its lifecycle run again
    ([_row("version.registered", 3, 1), _row("approval.auto", 3, 2)], "a", 3, None),  # approved is not decided
    ([_row("promotion.started", 3, 1), _row("promotion.recovered", 3, 2)], "a", 3, None),  # a move cut short
    ([_row("promotion.committed", 3, 1)], "a", 3, 1),  # champion: kept as decided
    ([_row("candidate.rejected", 4, 1)], "b", 4, 1),
    ([_row("promotion.reverted", 4, 1)], "b", 4, 1),
    ([_row("promotion.refused", 4, 7)], "b", 4, 7),
    ([_row("candidate.rejected", 1, 1)], "c", None, None),  # not registered in this run: trained and registered
])
def test_where_a_candidate_of_the_run_stands(rows, label, version, decided):
    point = resume_point(VERSIONS, rows, "run", label)
    assert (point.record.version if point.record else None) == version
    assert (point.decision.seq if point.decision else None) == decided


def test_the_next_demo_resumes_an_unfinished_run_of_the_same_size_and_days(settings):
    from pipelines.commands.demo import finish_run
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(settings), ledger_for(settings)
    run, resumed = start_run(settings, registry, ledger, size="small", days=2)
    assert not resumed
    assert start_run(settings, registry, ledger, size="small", days=2) == (run, True)
    finish_run(settings, run)
    after, resumed = start_run(settings, registry, ledger, size="small", days=2)  # a finished demo is not resumed
    assert after != run and not resumed


def test_an_unfinished_run_of_another_size_is_closed_with_its_undecided_version_rejected(settings, candidate_files):
    from tasks.governance.promotion_state import decision_row
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    registry, ledger = registry_for(settings), ledger_for(settings)
    run, _ = start_run(settings, registry, ledger, size="small", days=2)
    register_candidate(registry, ledger, name=settings.model_name, arch="mlp", config_path=candidate_files.config,
                       params_path=candidate_files.params, reference_path=candidate_files.reference,
                       contract_name="credit_default", actor="tester",
                       extra_tags={RUN_TAG: run, CANDIDATE_TAG: "baseline-small"})
    other, resumed = start_run(settings, registry, ledger, size="small", days=3)
    assert other != run and not resumed
    row = decision_row(ledger.entries(model_name=settings.model_name), 1)
    assert row.action == "candidate.rejected" and "--days 3 started instead" in row.reason
    assert registry.get(settings.model_name, 1).tags["lockgate.status"] == "rejected"
    assert json.loads((settings.home_dir / "demo" / "run.json").read_text())["id"] == other
    assert ledger.verify().ok
