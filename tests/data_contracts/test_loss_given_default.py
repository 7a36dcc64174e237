"""The regression dataset: loss given default from a known ground truth, and its contract with a numeric label."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from data_contracts.contract import load_contract
from data_contracts.lint import lint_contract
from data_contracts.synthetic_credit import (
    LABEL_COLUMN,
    LGD_COLUMN,
    generate_frame,
    generate_lgd_frame,
    loss_given_default_mean,
)

DAY = date(2024, 5, 1)


def test_lgd_frame_has_the_same_features_and_the_known_ground_truth():
    lgd = generate_lgd_frame(20_000, seed=3, day=DAY, id_offset=7)
    clean = generate_frame(20_000, seed=3, day=DAY, id_offset=7)
    assert LABEL_COLUMN not in lgd.columns and lgd[LGD_COLUMN].between(0, 1).all()
    assert lgd.drop(columns=[LGD_COLUMN]).equals(clean.drop(columns=[LABEL_COLUMN]))
    residual = lgd[LGD_COLUMN].to_numpy() - loss_given_default_mean(lgd)
    assert abs(residual.mean()) < 0.002 and residual.std() == pytest.approx(0.05, abs=0.003)
    # the same rows as each product: secured products lose less, other things equal
    as_product = {p: loss_given_default_mean(lgd.head(100).assign(product=p)) for p in ("mortgage", "auto", "card")}
    assert (as_product["mortgage"] < as_product["auto"]).all() and (as_product["auto"] < as_product["card"]).all()
    assert generate_lgd_frame(50, seed=3, day=DAY).equals(generate_lgd_frame(50, seed=3, day=DAY))
    with pytest.raises(ValueError, match="noise_sd"):
        generate_lgd_frame(5, seed=0, day=DAY, noise_sd=-1)


def test_contract_declares_the_numeric_label_and_validates_the_frame():
    from data_contracts.validate import validate_frame

    contract = load_contract("loss_given_default")
    assert contract.label_column == LGD_COLUMN and contract.column_spec(LGD_COLUMN).logicalType == "number"
    assert contract.slice_columns == ["region", "product"] and LGD_COLUMN not in contract.feature_columns
    assert not [f for f in lint_contract(contract.source) if f.level == "error"]
    df = generate_lgd_frame(300, seed=1, day=DAY)
    assert validate_frame(df, contract, include_label=True).passed
    bad = df.assign(**{LGD_COLUMN: np.where(np.arange(300) < 3, 1.5, df[LGD_COLUMN])})
    result = validate_frame(bad, contract, include_label=True)
    assert not result.passed and sorted(result.row_failures) == [0, 1, 2]
