"""The lifecycle flow for a regression model (loss given default): real training, export, compile, canary with the
regression metrics, shadow, plots and the HTML report, promotion or rejection, on the session Prefect harness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.registry import CHAMPION

pytestmark = pytest.mark.flow

MODEL = "loss-given-default"


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory):
    """This module's own LOCKGATE_HOME and the regression policy (overrides the package fixture)."""
    from tasks.settings import Settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCKGATE_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("LOCKGATE_POLICY_FILE", str(Path(__file__).with_name("regression_policy.yaml")))
        mp.setenv("LOCKGATE_ACTOR", "tester")
        mp.setenv("LOCKGATE_MODEL_NAME", MODEL)
        yield Settings()


@pytest.fixture(scope="module")
def register_lgd(module_settings):
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    def _register(files):
        return register_candidate(
            registry_for(module_settings), ledger_for(module_settings), name=MODEL, arch="mlp",
            config_path=files.config, params_path=files.params, reference_path=files.reference,
            contract_name="loss_given_default", actor="tester")

    return _register


@pytest.fixture(scope="module")
def regression_champion(prefect_harness, module_settings, register_lgd, make_candidate, tmp_path_factory):
    from pipelines.lifecycle import lifecycle

    files = make_candidate(tmp_path_factory.mktemp("lgd"), hidden=(16,), epochs=12, seed=1, n=1600, task="regression")
    outcome = lifecycle(version=register_lgd(files).version, golden=str(files.golden))
    return outcome, files


def _canary(settings, version) -> dict:
    from tasks.stores import latest_evidence_dir

    return json.loads((latest_evidence_dir(settings, MODEL, version) / "canary.json").read_text())


def test_first_regressor_becomes_champion_on_the_r2_floor_with_regression_evidence(regression_champion,
                                                                                  module_settings):
    from tasks.evidence import sha256_file
    from tasks.stores import ledger_for, registry_for

    outcome, _ = regression_champion
    assert outcome.decision == "champion", outcome.reasons
    canary = _canary(module_settings, outcome.version)
    assert canary["task"] == "regression" and set(canary["candidate"]) == {"n", "rmse", "mae", "r2", "bias"}
    assert [c["name"] for c in canary["checks"] if not c["name"].startswith("latency")] == ["candidate_r2"]
    assert canary["candidate"]["r2"] >= 0.1 and 0 < canary["candidate"]["rmse"] < 0.12  # the label's sd is ~0.12
    assert {v["variant"]: v["metric"] for v in canary["variants"]} == {"int8": "rmse"}
    assert set(canary["evidence"]) == {"scatter", "residuals", "latency", "report"}
    for ev in canary["evidence"].values():
        assert sha256_file(ev["path"]) == ev["sha256"]
    promotion = [e for e in ledger_for(module_settings).entries() if e.alias == CHAMPION][-1]
    assert "first deployment" in promotion.reason and "candidate_r2" in promotion.reason
    # the canary evidence (holding the plots' and the report's sha256) is hashed into the ledger entry
    from tasks.stores import latest_evidence_dir

    folder = latest_evidence_dir(module_settings, MODEL, outcome.version)
    assert promotion.evidence["canary"] == sha256_file(folder / "canary.json")
    assert promotion.evidence_files["canary"] == str(folder / "canary.json")  # the exact file, written once
    run = registry_for(module_settings).client.get_run(registry_for(module_settings).get(MODEL, outcome.version).run_id)
    logged = {a.path for a in registry_for(module_settings).client.list_artifacts(run.info.run_id, "evidence/canary")}
    assert {"evidence/canary/canary_report.html", "evidence/canary/scatter.png"} <= logged


def test_identical_regressor_passes_the_canary_and_flips_are_not_applicable(regression_champion, module_settings,
                                                                              register_lgd):
    from pipelines.lifecycle import lifecycle

    first, files = regression_champion
    outcome = lifecycle(version=register_lgd(files).version, golden=str(files.golden))
    assert outcome.decision == "champion", outcome.reasons
    canary = _canary(module_settings, outcome.version)
    deltas = {d["metric"]: d for d in canary["deltas"]}
    assert set(deltas) == {"rmse", "mae"}
    for d in deltas.values():
        assert d["delta"] == 0 and d["ci_low"] <= 0 <= d["ci_high"]
    assert {s["metric"] for s in canary["slices"]} == {"rmse"} and canary["slices"]
    checks = {c["name"]: c for c in canary["checks"]}
    assert checks["shadow_flip_share"]["value"].startswith("not applicable") and checks["shadow_psi"]["value"] == 0
    assert canary["shadow"]["max_abs_diff"] == 0
    # regression_policy.yaml leaves canary.shadow_decides at its default: measured, reported, informational
    assert all(checks[n]["informational"] for n in ("shadow_psi", "shadow_js", "shadow_mean_abs_diff"))
    power = canary["power"]  # identical models: a CI of width 0 resolves every margin
    assert [m["metric"] for m in power["metrics"]] == ["rmse", "mae"] and all(m["resolves_margin"] for m in power["metrics"])
    assert power["n"] == canary["candidate"]["n"] and not any("golden set of" in r for r in canary["reasons"])
    assert "RMSE" in canary["reasons"][0] and f"champion v{first.version}" in canary["reasons"][0]
    html = Path(canary["evidence"]["report"]["path"]).read_text()
    assert "rmse_delta" in html and "slice:region=" in html and 'id="plot-scatter"' in html
    assert 'id="plot-slices"' in html and "http://" not in html and "https://" not in html


def test_worse_regressor_is_rejected_naming_the_rmse_delta(regression_champion, module_settings, register_lgd,
                                                           make_candidate, tmp_path):
    from pipelines.lifecycle import lifecycle
    from tasks.stores import ledger_for, registry_for

    champion_before = registry_for(module_settings).aliases(MODEL)[CHAMPION]
    _, files = regression_champion
    weak = make_candidate(tmp_path / "weak", hidden=(4,), epochs=1, seed=5, n=1600, task="regression")
    outcome = lifecycle(version=register_lgd(weak).version, golden=str(files.golden))
    assert outcome.decision == "rejected"
    assert registry_for(module_settings).aliases(MODEL)[CHAMPION] == champion_before
    rejection = [e for e in ledger_for(module_settings).entries() if not e.action.startswith("incident.")][-1]
    assert rejection.action == "candidate.rejected" and "canary gate" in rejection.reason
    assert "rmse_delta" in rejection.reason and "FAILED" in rejection.reason
    canary = _canary(module_settings, outcome.version)
    rmse = next(d for d in canary["deltas"] if d["metric"] == "rmse")
    assert rmse["ci_low"] > 0.01  # worse for sure, beyond the margin
    assert canary["evidence"]["report"]["path"].endswith("canary_report.html")


def test_a_classifier_against_the_regression_champion_is_a_recorded_rejection(regression_champion, module_settings,
                                                                               register_lgd, make_candidate, tmp_path):
    from pipelines.lifecycle import lifecycle
    from tasks.stores import ledger_for

    _, files = regression_champion
    classifier = make_candidate(tmp_path / "clf", hidden=(4,), epochs=1, seed=6, n=400, task="classification",
                                labels_from=lambda df: (df["loss_given_default"] > 0.55).astype(int).to_numpy())
    outcome = lifecycle(version=register_lgd(classifier).version, golden=str(files.golden))
    assert outcome.decision == "rejected" and outcome.gates[-1].startswith("canary: error")
    assert "is a classification model but champion" in outcome.reasons[0] and "regression model" in outcome.reasons[0]
    assert [e for e in ledger_for(module_settings).entries() if not e.action.startswith("incident.")][-1].action == "candidate.rejected"


def test_batch_inference_with_the_regression_champion_writes_predicted_values(regression_champion, module_settings,
                                                                             tmp_path):
    from datetime import date

    import numpy as np
    import pandas as pd

    from data_contracts.synthetic_credit import generate_lgd_frame
    from pipelines.batch_inference import batch_inference
    from tasks.registration.inference import load_compiled
    from tasks.stores import cache_dir, registry_for

    day = tmp_path / "date=2026-11-01"
    day.mkdir()
    rows = generate_lgd_frame(200, seed=21, day=date(2026, 11, 1), id_offset=50_000).drop(columns=["loss_given_default"])
    rows.to_parquet(day / "part-0.parquet", index=False)
    (outcome,) = batch_inference(partitions=[str(day)]).outcomes
    assert outcome.status == "scored", outcome.message
    predictions = pd.read_parquet(outcome.output)
    assert not [c for c in predictions.columns if c.startswith("predicted_")]  # no class column for a regressor
    registry = registry_for(module_settings)
    champion = load_compiled(registry, registry.require_alias(MODEL, CHAMPION), cache_dir(module_settings), (1, 64, 1024))
    np.testing.assert_allclose(predictions["score"], champion.score(rows), atol=1e-6)
