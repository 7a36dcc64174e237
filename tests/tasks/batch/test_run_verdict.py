"""A batch run's verdict (pure): precedence failed/missing > blocked > rolled back > ok, and the line naming all."""

from __future__ import annotations

import pytest


def _run(statuses, *, rollback=False, before=None, after=None, in_flight=()):
    from tasks.batch.monitoring import MonitoringState
    from tasks.batch.partition import PartitionOutcome
    from tasks.batch.run import BatchRun, Rollback

    outcomes = [PartitionOutcome(partition=f"date=2026-11-0{i + 1}", status=s, model_version=2,
                                 block_seq=7 if s == "blocked" or i in in_flight else None)
                for i, s in enumerate(statuses)]
    return BatchRun(outcomes=outcomes,
                    rollback=Rollback(from_version=2, to_version=1, partitions=["date=2026-11-01"], rescored=True)
                    if rollback else None,
                    monitoring_before=MonitoringState(**(before or {})),
                    monitoring_after=MonitoringState(**(after or {})))


BLOCK = {"blocked": True, "block_seq": 7, "block_reason": "partition date=2026-11-01 (v2): drift breach"}


@pytest.mark.parametrize("statuses,kw,verdict,first", [
    (["scored", "skipped", "empty"], {}, "ok", "3 partition(s): 1 scored, 1 skipped, 1 empty"),
    (["scored", "failed", "missing"], {}, "partitions_failed", "2 partition(s) failed or missing (1 failed, 1 missing)"),
    (["scored"], {"rollback": True}, "rolled_back", "the champion was rolled back v2 -> v1 during this run "
     "(monitoring breach in date=2026-11-01); re-scored with v1"),
    (["scored", "blocked"], {"after": BLOCK}, "blocked", "scoring blocked by monitoring (ledger #7: partition "
     "date=2026-11-01 (v2): drift breach): 1 partition(s) not scored: date=2026-11-02"),
    (["blocked", "blocked"], {"before": BLOCK, "after": BLOCK}, "blocked", "scoring blocked by monitoring (ledger #7"),
    (["scored"], {"after": BLOCK}, "blocked", "a monitoring block was raised during this run (ledger #7: "),
    (["scored", "scored", "blocked"], {"after": BLOCK, "in_flight": (1,)}, "blocked",
     "scoring blocked by monitoring (ledger #7: partition date=2026-11-01 (v2): drift breach): 1 partition(s) not "
     "scored: date=2026-11-03; 1 partition(s) in flight when it was raised finished and are recorded scored: "
     "date=2026-11-02"),
    (["scored", "blocked"], {"rollback": True}, "blocked", "scoring blocked by monitoring (ledger #7 (lifted since))"),
    (["failed", "blocked"], {"rollback": True, "after": BLOCK}, "partitions_failed", "1 partition(s) failed"),
])
def test_verdict_by_precedence(statuses, kw, verdict, first):
    from tasks.batch.run import run_verdict

    v = run_verdict(_run(statuses, **kw))
    assert v.verdict == verdict and v.line.startswith(first), v.line
    assert "\n" not in v.line
    assert ("rolled back v2 -> v1" in v.line) == kw.get("rollback", False)  # named also when it is not the verdict


def test_a_block_in_force_before_and_after_with_nothing_blocked_is_not_a_verdict():
    from tasks.batch.run import run_verdict

    assert run_verdict(_run([], before=BLOCK, after=BLOCK)).verdict == "ok"  # no partition asked for
