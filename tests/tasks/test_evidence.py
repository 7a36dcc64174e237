"""Check wording: a check prints the relation that holds, so a failed check never reads as a true statement."""

import pytest

from tasks.evidence import Check, GateResult, as_informational, held_to


@pytest.mark.parametrize(
    "name,value,op,limit,text",
    [
        ("shadow_psi", 0.76, "<=", 0.6, "shadow_psi: value 0.76 > limit 0.60: FAILED"),
        ("shadow_psi", 0.21, "<=", 0.3, "shadow_psi: value 0.21 <= limit 0.30: ok"),
        ("candidate_auc", 0.39, ">=", 0.65, "candidate_auc: value 0.39 < limit 0.65: FAILED"),
        ("quality:income:null_share_increase", 0.2, "<", 0.05,
         "quality:income:null_share_increase: value 0.2 >= limit 0.05: FAILED"),
        ("rows", 3, ">", 5, "rows: value 3 <= limit 5: FAILED"),
        ("authorised_rejects", 1, "==", 0, "authorised_rejects: value 1 != limit 0: FAILED"),
        ("latency_p99_ratio:b64", 1.5, "<=", 100.0, "latency_p99_ratio:b64: value 1.5 <= limit 100.0: ok"),
        ("latency_p99_ms:b8192", None, "<=", 50, "latency_p99_ms:b8192: no value measured (limit: <= 50): FAILED"),
    ],
)
def test_describe_prints_the_relation_that_holds(name, value, op, limit, text):
    assert held_to(name, value, op, limit).describe() == text


def test_info_and_noted_checks():
    assert Check(name="slice:region=tiny:auc_delta", value="too small", threshold="too small",
                 passed=True).describe() == "slice:region=tiny:auc_delta: too small: ok"
    noted = Check(name="auc_delta", value=-0.01, threshold=0.005, passed=False, note="CI low -0.03 < -0.005")
    assert noted.describe() == "auc_delta: CI low -0.03 < -0.005: FAILED"


def test_informational_checks_are_reported_and_never_fail_the_gate():
    over, within = as_informational([held_to("shadow_psi", 0.76, "<=", 0.6), held_to("shadow_js", 0.1, "<=", 0.4)])
    assert over.informational and not over.passed and within.informational and within.passed
    assert over.describe() == "shadow_psi: value 0.76 > limit 0.60 (informational)"
    result = GateResult(gate="canary", passed=True, decision="pass", checks=[over, within])
    assert result.failed_checks() == []
    assert "| shadow_psi | 0.76 | <= | 0.6 | NO (informational) |" in result.markdown()
    # evidence written before the field existed still loads, as deciding checks
    old = Check.model_validate({"name": "x", "value": 1, "threshold": 2, "comparison": "<=", "passed": True})
    assert not old.informational and old.note is None
