"""The batch monitor step (tasks.batch.partition.monitor_partition) on real drift measurements: its files and its alert."""

from __future__ import annotations

from datetime import date

from data_contracts.contract import load_contract
from data_contracts.synthetic_credit import generate_frame
from tasks.batch.partition import monitor_partition
from tasks.drift.gate import HTML_NAME, RESULT_NAME, SNAPSHOT_NAME
from tasks.policy import Policy

CONTRACT = load_contract("credit_default")


def _frame(seed: int):
    return generate_frame(400, seed=seed, day=date(2026, 11, 1)).assign(score=0.5)


def _earlier_run(folder):
    folder.mkdir(parents=True)
    for name in (HTML_NAME, SNAPSHOT_NAME, RESULT_NAME):
        (folder / name).write_text("an earlier run's")


def test_unmeasurable_drift_is_an_alert_and_leaves_no_earlier_drift_file(tmp_path):
    _earlier_run(tmp_path / "drift")
    current = _frame(2).drop(columns=["annual_income"])
    drift, decision = monitor_partition(current, _frame(1), CONTRACT, Policy(), tmp_path / "drift")
    assert drift is None and decision.action == "alert" and decision.triggers == ["monitoring error"]
    assert "drift could not be measured" in decision.reasons[0] and "annual_income" in decision.reasons[0]
    assert list((tmp_path / "drift").iterdir()) == []


def test_measurements_always_and_the_report_as_the_policy_says(tmp_path):
    policy = Policy.model_validate({"monitoring": {"evidently_report": "warn_or_breach"},
                                    "drift": {"warn_drifted_share": 0.5, "max_drifted_share": 0.6}})
    _earlier_run(tmp_path / "drift")
    drift, decision = monitor_partition(_frame(2), _frame(1), CONTRACT, policy, tmp_path / "drift")
    assert drift.decision == "ok" and decision.action == "none"
    assert [p.name for p in (tmp_path / "drift").iterdir()] == [RESULT_NAME] and set(drift.evidence) == {"result"}
    assert (tmp_path / "drift" / RESULT_NAME).read_text() != "an earlier run's"

    drift, _ = monitor_partition(_frame(2), _frame(1), CONTRACT, Policy(), tmp_path / "drift")  # every_partition
    assert set(drift.evidence) == {"html", "json", "result"}
    assert {p.name for p in (tmp_path / "drift").iterdir()} == {HTML_NAME, SNAPSHOT_NAME, RESULT_NAME}


def test_an_error_inside_the_report_is_an_alert_naming_it(tmp_path):
    """Not a lockgate error (here the report's file name is taken by a folder): the partition's monitor alerts with
    the error's type and message, removes the earlier run's files and leaves no temporary file."""
    _earlier_run(tmp_path / "drift")
    (tmp_path / "drift" / HTML_NAME).unlink()
    (tmp_path / "drift" / HTML_NAME).mkdir()
    drift, decision = monitor_partition(_frame(2), _frame(1), CONTRACT, Policy(), tmp_path / "drift")
    assert drift is None and decision.action == "alert" and decision.triggers == ["monitoring error"]
    assert decision.reasons[0].startswith("drift could not be measured: IsADirectoryError: ")
    assert HTML_NAME in decision.reasons[0] and "\n" not in decision.reasons[0]
    assert [p.name for p in (tmp_path / "drift").iterdir()] == [HTML_NAME]  # the folder; no file of an earlier run
