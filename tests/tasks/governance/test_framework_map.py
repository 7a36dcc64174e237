"""The framework map's table (tasks/governance/framework_map.py): every id is a real NIST AI RMF 1.0 subcategory or an
ISO/IEC 42001 Annex A control area, every evidence kind resolvable, and an empty period says so. That every kind
resolves to evidence in a real report is tested on the audit history in tests/pipelines/test_audit.py."""

from __future__ import annotations

import re

import pytest

from tasks.governance.framework_map import EVIDENCE_KINDS, MAPPING, NOT_COVERED, framework_map, framework_map_html

# NIST AI 100-1 (2023): the number of subcategories in each category
NIST_SUBCATEGORIES = {
    "GOVERN": {1: 7, 2: 3, 3: 2, 4: 3, 5: 2, 6: 2},
    "MAP": {1: 6, 2: 3, 3: 5, 4: 2, 5: 2},
    "MEASURE": {1: 3, 2: 13, 3: 3, 4: 3},
    "MANAGE": {1: 4, 2: 4, 3: 2, 4: 3},
}


def _real_nist(ident: str) -> bool:
    m = re.fullmatch(r"(GOVERN|MAP|MEASURE|MANAGE) (\d)\.(\d+)", ident)
    return bool(m) and 1 <= int(m.group(3)) <= NIST_SUBCATEGORIES[m.group(1)].get(int(m.group(2)), 0)


@pytest.mark.parametrize("row", MAPPING, ids=[r["id"] for r in MAPPING])
def test_every_row_names_real_ids_and_known_evidence(row):
    assert row["nist"] and all(_real_nist(i) for i in row["nist"]), row["nist"]
    # ISO/IEC 42001:2023 Annex A: A.2 to A.10, a control (A.6.2.4) or a clause area, followed by its name
    assert row["iso"] and all(re.fullmatch(r"A\.(?:[2-9]|10)(?:\.\d+){0,2} \S.*", i) for i in row["iso"]), row["iso"]
    assert row["evidence"] and all(kind in EVIDENCE_KINDS for kind in row["evidence"])
    assert row["capability"] and row["limit"]


def test_not_covered_is_plain_and_names_real_ids():
    areas = " ".join(n["area"] for n in NOT_COVERED).lower()
    for gap in ("impact assessment", "stakeholder", "ai policy", "fairness", "privacy", "explainability"):
        assert gap in areas
    for n in NOT_COVERED:
        for part in re.findall(r"(GOVERN|MAP|MEASURE|MANAGE) (\d)\.(\d+)", n["nist"]):
            assert _real_nist(f"{part[0]} {part[1]}.{part[2]}")


class _Empty:
    """An audit report's fields with nothing in range."""

    entries, decisions, champion_changes, versions, contracts, batches, evidence_problems, incidents = [], [], [], [], [], [], [], []


def test_a_period_without_evidence_says_so():
    fm = framework_map(_Empty())
    assert [r.id for r in fm.rows] == [m["id"] for m in MAPPING] and all(not r.evidence for r in fm.rows)
    html = framework_map_html(fm)
    assert html.count("no evidence in this period") == len(MAPPING)
    assert 'id="framework-not-covered"' in html and "not a conformity assessment" in html
