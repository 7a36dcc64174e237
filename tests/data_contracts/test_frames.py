"""Arrow -> pandas for validation: categoricals read as parquet's dictionaries validate as the strings the file holds."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def test_decoded_gives_back_the_column_the_file_holds(tmp_path):
    from data_contracts.frames import arrow_to_pandas, decoded
    from tasks.batch.partition_io import read_partition

    src = tmp_path / "p.parquet"
    pq.write_table(pa.table({"region": ["north", None, "south", "north"], "kind": ["a", "b", "a", "b"],
                             "n": pa.array([1, None, 3, 4], pa.int64())}), src)
    plain = read_partition(str(src))
    as_read = read_partition(str(src), dictionary_columns=["region", "kind", "n", "absent"])
    assert pa.types.is_dictionary(as_read.schema.field("region").type) and as_read.schema.field("n").type == pa.int64()

    back = decoded(as_read, ["region", "n", "absent"])
    assert back.column("region").equals(plain.column("region")) and back.column("n").equals(plain.column("n"))
    assert pa.types.is_dictionary(back.schema.field("kind").type)  # not named: left as read
    df = arrow_to_pandas(back)
    assert df["region"].dtype == object and df["region"].tolist() == ["north", None, "south", "north"]
    assert isinstance(df["kind"].dtype, pd.CategoricalDtype) and str(df["n"].dtype) == "Int64"
