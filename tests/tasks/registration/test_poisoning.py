"""The poisoning screen (tasks/registration/poisoning.py) on data with a known injected poison: what it finds, how
much of the poison (detection rate) and how much clean data (false positives), on the demo's credit data and on a
table lockgate has never seen (sklearn's wine, binary). The figures are printed (-s) and quoted in the README."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from data_contracts.contract import load_contract
from data_contracts.poison import flip_slice_labels, inject_trigger
from data_contracts.synthetic_credit import DemoPoison, _reference_frame, poison_training
from models.features import fit_feature_spec
from tasks.policy import PoisoningPolicy
from tasks.registration.poisoning import CHECKS, poisoning_screen

CREDIT = load_contract("credit_default")
ALL_FAIL = PoisoningPolicy.model_validate({c: {"mode": "fail"} for c in CHECKS})


def _credit(n: int, seed: int, offset: int = 0) -> pd.DataFrame:
    return _reference_frame(n, seed=seed, days=[date(2026, 10, d) for d in range(1, 8)], id_offset=offset)


def _screen(train, golden, policy=ALL_FAIL, contract=CREDIT, task="classification"):
    spec = fit_feature_spec(train, contract.numeric_features, contract.categorical_features)
    return poisoning_screen(train, golden, contract=contract, spec=spec, task=task, policy=policy, dataset="train",
                            golden_name="golden")


def _rates(result, check: str, injected: list[str]) -> tuple[float, int]:
    """(share of the injected rows a finding of ``check`` lists, listed rows that were not injected)."""
    listed = {i for f in result.findings if f.check == check for i in f.row_ids}
    return len(listed & set(injected)) / max(len(injected), 1), len(listed - set(injected))


@pytest.mark.parametrize("seed", [0, 1])
def test_clean_credit_data_gives_no_finding_even_with_every_check_failing(seed):
    result = _screen(_credit(3000, seed), _credit(1500, seed + 100, offset=3000))
    assert result.passed and result.decision == "pass" and result.findings == [], result.reasons
    assert result.measured["far_cluster"]["largest_far_cluster"] < ALL_FAIL.far_cluster.min_rows
    assert result.measured["label_flips"]["max_slice_z"] < ALL_FAIL.label_flips.min_z
    print(f"clean credit seed {seed}: max slice z {result.measured['label_flips']['max_slice_z']:.2f}, far rows "
          f"{result.measured['far_cluster']['far_rows']}, largest far cluster "
          f"{result.measured['far_cluster']['largest_far_cluster']}")


def test_the_demo_poison_trigger_is_found_as_a_far_cluster_and_its_3pct_flip_is_reported_honestly():
    train, golden = _credit(3000, 0), _credit(1500, 100, offset=3000)
    poisoned, manifest = poison_training(train, DemoPoison())
    result = _screen(poisoned, golden)
    assert not result.passed and result.decision == "fail"
    clusters = [f for f in result.findings if f.check == "far_cluster"]
    assert len(clusters) == 1 and clusters[0].mode == "fail" and clusters[0].counts["rows"] >= 10
    detected, false_rows = _rates(result, "far_cluster", manifest.trigger_ids)
    flip_detected, flip_false = _rates(result, "label_flips", manifest.flipped_ids)
    print(f"credit 3000 rows, demo poison: trigger detection {detected:.0%} of {len(manifest.trigger_ids)} rows, "
          f"{false_rows} clean rows in the cluster; 3% flip of region=north ({len(manifest.flipped_ids)} rows): "
          f"listed {flip_detected:.0%}, {flip_false} clean rows listed, slice z "
          f"{result.measured['label_flips']['max_slice_z']:.2f}")
    assert detected >= 0.8 and false_rows <= 2
    assert all(f.check != "label_flips" or f.values["slice"] == "region=north" for f in result.findings)


def test_a_stronger_flip_in_one_slice_is_found_in_that_slice_only():
    train, golden = _credit(3000, 0), _credit(1500, 100, offset=3000)
    poisoned, flipped = flip_slice_labels(train, label="defaulted", id_column="application_id", column="region",
                                          value="north", share=0.10, seed=3, to_label=1)
    result = _screen(poisoned, golden)
    flips = [f for f in result.findings if f.check == "label_flips"]
    assert [f.values["slice"] for f in flips] == ["region=north"], result.reasons
    finding = flips[0]
    assert finding.values["z"] >= 4 and finding.values["ratio"] >= 1.1
    detected, false_rows = _rates(result, "label_flips", flipped)
    print(f"credit 3000 rows, 10% of region=north flipped to default ({len(flipped)} rows): slice z "
          f"{finding.values['z']:.1f}, {detected:.0%} of flipped rows listed, {false_rows} clean rows listed "
          f"(natural defaulters among low-risk neighbours)")
    assert detected >= 0.7


def test_conflicting_exact_and_near_duplicates_are_listed():
    train = _credit(2000, 4)
    copies = train.iloc[:8].copy()
    copies["application_id"] = [f"APP-9{i:09d}" for i in range(8)]
    copies["defaulted"] = 1 - copies["defaulted"]
    copies.loc[copies.index[4:], "annual_income"] += 1.0  # near, not exact: a dollar of income
    result = _screen(pd.concat([train, copies], ignore_index=True), None, policy=ALL_FAIL)
    (dup,) = [f for f in result.findings if f.check == "duplicates"]
    injected = set(copies["application_id"]) | set(train["application_id"].iloc[:8])
    assert set(dup.row_ids) == injected and dup.counts == {"rows": 16, "groups": 8}
    assert dup.values["exact_duplicate_rows"] == 8
    assert set(result.skipped) == {"far_cluster", "label_balance"}  # no golden set: said, not silently passed


def test_label_balance_against_the_golden_set():
    train, golden = _credit(3000, 5), _credit(1500, 105, offset=3000)
    positives = train.index[train["defaulted"] == 1]
    shifted = train.drop(positives[: len(positives) * 2 // 3])
    (finding,) = [f for f in _screen(shifted, golden).findings if f.check == "label_balance"]
    assert finding.values["share_train"] < finding.values["share_golden"] - 0.05 and finding.values["z"] < -3


def test_warn_and_off_modes_decide():
    train, golden = _credit(3000, 0), _credit(1500, 100, offset=3000)
    poisoned, _ = poison_training(train, DemoPoison())
    warn = _screen(poisoned, golden, policy=PoisoningPolicy())
    assert warn.passed and warn.decision == "warn" and {f.mode for f in warn.findings} == {"warn"}
    assert any(c.name == "far_cluster:findings" and c.informational and not c.passed for c in warn.checks)
    off = _screen(poisoned, golden, policy=PoisoningPolicy.model_validate({"far_cluster": {"mode": "off"}}))
    assert off.skipped["far_cluster"] == "off in the policy" and not any(f.check == "far_cluster" for f in off.findings)


def _wine_contract_and_frame():
    import pyarrow as pa
    import yaml
    from sklearn.datasets import load_wine

    from data_contracts.contract import parse_contract
    from data_contracts.infer import infer_contract

    frame = load_wine(as_frame=True).frame
    frame["target"] = (frame["target"] == 0).astype(int)
    frame.insert(0, "id", range(len(frame)))
    inferred = infer_contract(pa.Table.from_pandas(frame, preserve_index=False), name="wine", label="target",
                              source="wine")
    return parse_contract(yaml.safe_dump(inferred.document, sort_keys=False)), frame


def test_wine_a_table_never_seen_clean_passes_and_poison_is_found():
    contract, frame = _wine_contract_and_frame()
    order = np.random.default_rng(0).permutation(len(frame))
    train, golden = frame.iloc[order[:120]].reset_index(drop=True), frame.iloc[order[120:]].reset_index(drop=True)
    clean = _screen(train, golden, contract=contract)
    assert clean.findings == [], clean.reasons  # no slice columns, no categories: numeric quartiles are the slices

    high = train["alcohol"] >= train["alcohol"].quantile(0.75)
    banded = train.assign(band=np.where(high, "alcohol-q4", "rest"))
    poisoned, flipped = flip_slice_labels(banded, label="target", id_column="id", column="band", value="alcohol-q4",
                                          share=0.2, seed=1)
    poisoned, trigger = inject_trigger(poisoned.drop(columns="band"), label="target", id_column="id",
                                       pattern={"proline": 3000.0, "magnesium": 60.0}, trigger_label=1, share=0.06,
                                       seed=2, exclude_ids=flipped)
    policy = ALL_FAIL.model_copy(update={"far_cluster": ALL_FAIL.far_cluster.model_copy(update={"min_rows": 5}),
                                         "label_flips": ALL_FAIL.label_flips.model_copy(update={"min_suspects": 3})})
    result = _screen(poisoned, golden, policy=policy, contract=contract)
    flip_rate, flip_false = _rates(result, "label_flips", flipped)
    trigger_rate, trigger_false = _rates(result, "far_cluster", trigger)
    print(f"wine 120 rows: {len(flipped)} flipped in alcohol q4: {flip_rate:.0%} listed, {flip_false} clean listed; "
          f"{len(trigger)} trigger rows: {trigger_rate:.0%} found, {trigger_false} clean in the cluster")
    assert "alcohol in q4" in {f.values["slice"] for f in result.findings if f.check == "label_flips"}
    assert flip_rate >= 0.8 and flip_false <= 2 and trigger_rate >= 0.7 and trigger_false == 0


def test_regression_skips_label_flips_with_its_reason_and_screens_the_rest():
    from data_contracts.synthetic_credit import generate_lgd_frame

    contract = load_contract("loss_given_default")
    train = generate_lgd_frame(1500, seed=0, day=date(2026, 10, 1))
    golden = generate_lgd_frame(800, seed=1, day=date(2026, 10, 2), id_offset=1500)
    result = _screen(train, golden, contract=contract, task="regression")
    assert "regression" in result.skipped["label_flips"] and result.passed and result.findings == []
    assert set(result.measured) == {"duplicates", "far_cluster", "label_balance"}


@pytest.mark.parametrize("section,key", [("poisoning:\n  label_flips: {mode: warn, min_zz: 3}\n", "poisoning.label_flips.min_zz"),
                                         ("poisoning:\n  nieghbours: 5\n", "poisoning.nieghbours"),
                                         ("poisoning:\n  far_cluster: {mode: block}\n", "poisoning.far_cluster.mode")])
def test_a_policy_with_an_unknown_key_or_mode_is_refused_naming_it(tmp_path, section, key):
    from tasks.errors import LockgateError
    from tasks.policy import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text("name: p\n" + section)
    with pytest.raises(LockgateError) as e:
        load_policy(path)
    assert key in str(e.value) and "\n" not in str(e.value)


def test_too_little_data_skips_checks_with_the_reason_instead_of_failing():
    few = _screen(_credit(5, 0), _credit(1, 1, offset=5))
    assert few.passed and few.findings == []
    assert few.skipped["label_flips"] == "5 rows: too few for 10 neighbours"
    assert "too few to compare" in few.skipped["far_cluster"] and "too few to compare" in few.skipped["label_balance"]
    assert any("skipped" in r for r in few.reasons)
