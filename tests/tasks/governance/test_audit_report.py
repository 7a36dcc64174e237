"""Pure parts of the audit report and model card: time range parsing, the champion timeline, classification."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tasks.governance.audit_evidence import partition_of
from tasks.governance.audit_report import champion_timeline, clip_spans, is_decision, parse_when
from tasks.errors import LockgateError
from tasks.ledger.entry import LedgerEntry


def _entry(seq, when, action, version=None, alias="champion", reason="r", model="m"):
    return LedgerEntry(seq=seq, recorded_at=f"2026-11-0{when}T00:00:00+00:00", actor="a", action=action,
                       model_name=model, version=version, alias=alias, reason=reason)


@pytest.mark.parametrize("text,end,expected", [
    ("2026-11-01", False, datetime(2026, 11, 1, tzinfo=timezone.utc)),
    ("2026-11-01", True, datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=timezone.utc)),
    ("2026-11-01T08:30", True, datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc)),
    ("2026-11-01T08:30+02:00", False, datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)),
    (None, False, None),
])
def test_parse_when(text, end, expected):
    assert parse_when(text, end=end) == expected


def test_parse_when_rejects_garbage_with_an_example():
    with pytest.raises(LockgateError, match="not an ISO date.*e.g. 2026-11-01"):
        parse_when("last tuesday")


def test_champion_timeline_promotions_rollback_and_removal():
    entries = [
        _entry(1, 1, "alias.set", 1),
        _entry(2, 1, "alias.set", 1, alias="challenger"),  # other aliases do not count
        _entry(3, 2, "alias.set", 2),
        _entry(4, 3, "alias.set", 1, reason="operator put v1 back"),  # v1 was champion before: a rollback
        _entry(5, 4, "alias.delete", None),
        _entry(6, 5, "alias.set", 3, model="other"),
    ]
    spans = champion_timeline(entries, until=None)
    got = [(s.model_name, s.version, s.start[:10], s.end[:10] if s.end else None, s.kind) for s in spans]
    assert got == [("m", 1, "2026-11-01", "2026-11-02", "promotion"), ("m", 2, "2026-11-02", "2026-11-03", "promotion"),
                   ("m", 1, "2026-11-03", "2026-11-04", "rollback"), ("other", 3, "2026-11-05", None, "promotion")]
    # until: moves after it are not known yet, the span running then stays open
    assert [(s.version, s.end) for s in champion_timeline(entries, until=parse_when("2026-11-02", end=True))] == [
        (1, "2026-11-02T00:00:00+00:00"), (2, None)]
    # since: spans that ended before it are left out, the one running at it is kept
    assert [s.version for s in clip_spans(spans, parse_when("2026-11-03T12:00"))] == [1, 3]


@pytest.mark.parametrize("action,expected", [
    ("approval.auto", True), ("approval.granted", True), ("approval.expired", True), ("candidate.rejected", True),
    ("promotion.reverted", True), ("rollback", True), ("champion.refused", True), ("alias.set", False),
    ("partition.scored", False), ("monitor.breach", False), ("version.registered", False),
])
def test_is_decision(action, expected):
    assert is_decision(action) is expected


@pytest.mark.parametrize("reason,expected", [
    ("v1 scored partition date=2026-11-01: 600 rows scored, 0 quarantined; drift ok", "date=2026-11-01"),
    ("v2 failed partition corrupt: not a readable parquet", "corrupt"),
    ("v1 entered the lifecycle", None),
])
def test_partition_of(reason, expected):
    assert partition_of(reason) == expected


def test_model_card_markdown_tables_survive_pipes_in_cells():
    from tasks.governance.model_card import _md_table, _split_row

    row = _md_table(["a", "b"], [["x | y", "max |Δp| 0.1"]])[-1]
    assert _split_row(row) == ["x | y", "max |Δp| 0.1"]
