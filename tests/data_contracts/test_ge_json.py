"""GE's JSON converter with lockgate's fast path for plain values: equal to GE's own for every value, and a whole
validation's results equal with either."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
import uuid
from collections import OrderedDict
from datetime import date

import numpy as np
import pandas as pd
import pytest

from data_contracts.ge_json import fast_converter, ge_modules_naming


class Colour(enum.Enum):
    RED = "red"


class Name(str):
    pass


class Count(int):
    pass


def _values() -> list:
    plain = [None, "", "a", 0, 7, -3, True, False, 1.5, -0.0, float("nan"), float("inf")]
    numpy = [np.int64(4), np.int32(5), np.uint8(6), np.float64(2.5), np.float32(0.25), np.float64("nan"), np.bool_(True),
             np.array([1, 2, 3]), np.array([0.5, np.nan]), np.datetime64("2026-12-07")]
    other = [Colour.RED, Name("sub"), Count(3), range(3), {1, 2}, (1, "b", None), datetime.date(2026, 12, 7),
             datetime.datetime(2026, 12, 7, 1, 2, 3), uuid.UUID(int=5), b"raw", decimal.Decimal("1.25"),
             pd.Series([1, None, 3], name="v"), pd.DataFrame({"a": [1, 2], "b": ["x", None]}), pd.NA, pd.NaT,
             OrderedDict([("k", 1), (2, None)])]
    nested = {"column": "age", "min_value": None, "max_value": 120, "mostly": 0.99, "parse": False, 3: [None, 1.0],
              "inner": {"values": ["a", None, np.int64(2)], "tuple": (np.float64(1.5), Colour.RED), "nan": math.nan},
              "series": pd.Series([0.5, np.nan]), "sub": Name("s"), "od": OrderedDict(x=[None])}
    return [*plain, *numpy, *other, nested, [nested, (nested,)], {"deep": [[[None, {"x": (1, np.int64(2))}]]]}]


@pytest.mark.parametrize("value", _values(), ids=lambda v: type(v).__name__)
def test_equal_to_ges_converter_for_every_kind_of_value(value):
    from great_expectations import util

    ge = getattr(util.convert_to_json_serializable, "__wrapped__", util.convert_to_json_serializable)
    expected, got = ge(value), fast_converter(ge)(value)
    assert json.dumps(got, sort_keys=True, default=repr) == json.dumps(expected, sort_keys=True, default=repr)
    assert type(got) is type(expected)


def test_installed_in_the_runtime_and_a_validation_gives_ges_own_results(monkeypatch):
    """After the GE runtime is made, GE's modules use the fast converter; a whole validation (row and dataset failures,
    GE's result JSON) is the same with GE's own converter put back."""
    from great_expectations import util
    from great_expectations.core import id_dict

    from data_contracts.contract import load_contract
    from data_contracts.ge_suite import ge_runtime
    from data_contracts.synthetic_credit import generate_frame
    from data_contracts.validate import validate_frame

    ge_runtime()
    fast = util.convert_to_json_serializable
    ge = fast.__wrapped__  # installed: GE's own behind it
    assert id_dict.convert_to_json_serializable is fast  # the module that names every metric
    frame = generate_frame(300, seed=11, day=date(2024, 5, 1))
    frame.loc[:20, "age"] = -4  # row failures
    frame.loc[30:40, "income"] = None
    contract = load_contract("credit_default")

    def validated() -> dict:
        out = validate_frame(frame, contract, include_label=True).model_dump()
        out.pop("seconds")
        out["ge_result"]["meta"]["batch_markers"].pop("ge_load_time")
        out["ge_result"]["meta"].pop("validation_time", None)
        return out

    with_fast = validated()
    with monkeypatch.context() as mp:
        for module in ge_modules_naming(fast):
            mp.setattr(module, "convert_to_json_serializable", ge)
        with_ge = validated()
    assert with_fast["row_failures"] and not with_fast["errors"]
    assert json.dumps(with_fast, sort_keys=True, default=str) == json.dumps(with_ge, sort_keys=True, default=str)
