"""Arrow tables to pandas the way contract validation expects them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa


def decoded(table: pa.Table, names: list[str]) -> pa.Table:
    """``table`` with its dictionary-typed columns among ``names`` cast back to their value type (a take from the
    dictionary, no hashing): a categorical read as parquet's dictionary validates as the column the file holds."""
    import pyarrow as pa

    for name in names:
        i = table.schema.get_field_index(name)
        if i >= 0 and pa.types.is_dictionary(table.schema.field(i).type):
            table = table.set_column(i, name, table.column(i).cast(table.schema.field(i).type.value_type))
    return table


def arrow_to_pandas(table, nullable_integers: set[str] | None = None) -> pd.DataFrame:
    """Arrow -> pandas, keeping integer columns with nulls as nullable Int64.

    pandas would turn them into float64, and the contract's integer type check would then
    fail the whole batch where the nulls should only quarantine their rows.
    ``nullable_integers``: the integer columns to make Int64 (default: those with a null
    in this table); chunked validation passes the dataset-wide set so every chunk gets
    the dtype the whole dataset would.
    """
    import pyarrow as pa

    df = table.to_pandas()
    for i, field in enumerate(table.schema):
        if not pa.types.is_integer(field.type):
            continue
        wanted = table.column(i).null_count > 0 if nullable_integers is None else field.name in nullable_integers
        if wanted:
            df[field.name] = table.column(i).to_pandas(types_mapper={field.type: pd.Int64Dtype()}.get).array
    return df
