"""Contracts are judged valid ODCS by the `open-data-contract-standard` package before lockgate's own checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from data_contracts.contract import ContractError, load_contract, parse_contract
from data_contracts.ge_suite import expectation_specs
from data_contracts.odcs import ODCS_PACKAGE_VERSION

WHERE = Path("variant.yaml")


@pytest.mark.parametrize("name", ["credit_default", "loss_given_default"])
def test_shipped_contracts_parse_with_the_odcs_package(name):
    contract = load_contract(name)
    assert isinstance(contract.odcs, OpenDataContractStandard)
    assert (contract.odcs.apiVersion, contract.odcs.id, contract.odcs.name) == (
        contract.apiVersion, contract.id, contract.name)
    assert [p.name for p in contract.odcs.schema_[0].properties] == contract.columns
    assert ODCS_PACKAGE_VERSION == "3.2.0"


def _variant(raw: dict, mutate) -> str:
    data = copy.deepcopy(raw)
    mutate(data)
    return yaml.safe_dump(data, sort_keys=False)


def _age(raw: dict) -> dict:
    return raw["schema"][0]["properties"][2]


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r.pop("apiVersion"), "variant.yaml: apiVersion: required key missing (not valid ODCS)"),
    (lambda r: r.pop("id"), "variant.yaml: id: required key missing (not valid ODCS)"),
    (lambda r: r.update(schema="applications"), "variant.yaml: schema: Input should be a valid list (not valid ODCS)"),
    (lambda r: r.update(apiVersion="v9.9.9"), "variant.yaml: apiVersion: 'v9.9.9' is not one of ['v3.2.0',"),
    (lambda r: _age(r).update(required="sometimes"),
     "variant.yaml: schema[0](applications).properties[2](age).required: Input should be a valid boolean"),
    # ODCS v3.1 made exclusiveMinimum/-Maximum numbers; v3.0's boolean form is not valid ODCS any more
    (lambda r: _age(r)["logicalTypeOptions"].update(exclusiveMinimum=True),
     "properties[2](age).logicalTypeOptions.exclusiveMinimum: True is not of type 'number' (not valid ODCS)"),
    (lambda r: r["schema"][0]["quality"][0].update(mustNotBe=0),
     "schema[0](applications).quality[0](row_count): more than one comparison operator; ODCS allows one per rule"),
], ids=["no apiVersion", "no id", "schema not a list", "unknown apiVersion", "required not boolean",
        "boolean exclusiveMinimum", "two operators"])
def test_a_document_that_is_not_odcs_is_one_line_naming_the_path(contract_raw, mutate, expected):
    with pytest.raises(ContractError) as info:
        parse_contract(_variant(contract_raw, mutate), source=WHERE)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_lockgate_checks_still_run_after_odcs(contract_raw):
    """Valid ODCS, refused by lockgate: both bounds of one side, an unknown lockgate custom property."""
    both = _variant(contract_raw, lambda r: _age(r)["logicalTypeOptions"].update(exclusiveMinimum=17))
    with pytest.raises(ContractError, match=r"age\)\.logicalTypeOptions\.exclusiveMinimum: give minimum or "):
        parse_contract(both, source=WHERE)
    unknown = _variant(contract_raw, lambda r: r["customProperties"].append({"property": "labelColum", "value": "x"}))
    with pytest.raises(ContractError, match=r"customProperties\[10\]\(labelColum\)\.property: unknown lockgate"):
        parse_contract(unknown, source=WHERE)


def test_exclusive_bound_in_the_v3_1_number_form_is_a_strict_range(contract_raw):
    def strict(raw):
        opts = _age(raw)["logicalTypeOptions"]
        opts["exclusiveMinimum"], opts["exclusiveMaximum"] = opts.pop("minimum"), opts.pop("maximum")

    contract = parse_contract(_variant(contract_raw, strict), source=WHERE)
    age = next(s for s in expectation_specs(contract, include_label=True) if s.name == "age in range")
    assert age.kwargs == {"column": "age", "min_value": 18, "max_value": 90, "strict_min": True, "strict_max": True}
    empty = _variant(contract_raw, lambda r: _age(r).update(logicalTypeOptions={"exclusiveMinimum": 5, "maximum": 5}))
    with pytest.raises(ContractError, match="no value fits exclusiveMinimum 5, maximum 5"):
        parse_contract(empty, source=WHERE)
