"""Fixtures for the data contract tests.

Great Expectations takes ~9 s to import and its context is a process-wide singleton
(:func:`data_contracts.ge_suite.ge_runtime`), so GE fixtures are module-scoped and
frames are small.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import yaml

from data_contracts.contract import Contract, load_contract
from data_contracts.synthetic_credit import generate_frame

DAY = date(2024, 5, 1)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract("credit_default")


@pytest.fixture(scope="module")
def contract_raw(contract: Contract) -> dict:
    """The contract YAML as plain data, for building variants."""
    assert contract.source is not None
    return yaml.safe_load(contract.source.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ge_runtime():
    from data_contracts.ge_suite import ge_runtime

    return ge_runtime()


@pytest.fixture(scope="module")
def clean_frame() -> pd.DataFrame:
    """400 labeled rows without incidents (numpy-backed dtypes, as pandas reads parquet)."""
    return generate_frame(400, seed=21, day=DAY, id_offset=1_000)
