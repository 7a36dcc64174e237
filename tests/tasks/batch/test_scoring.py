"""The batch scoring engine: overlapped read/features, artifact scoring and writing give the same predictions as
scoring the whole frame at once; an error in any stage leaves no output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

LINEAGE = {"model_name": "m", "model_version": "3", "artifact_sha256": "ab" * 32, "contract_version": "c@1.0.0",
           "flow_run_id": "run-1", "scored_at": "2026-11-02T00:00:00+00:00"}


@pytest.fixture(scope="module")
def model():
    from models.config import MLPConfig
    from models.export import export_inference, load_exported, score_bucketed
    from models.train import init_params

    config = MLPConfig(num_features=4, hidden_sizes=(8,))
    params = init_params(config, seed=0)
    exported = load_exported(export_inference(config, params, platforms=("cpu",)))
    return lambda x: score_bucketed(exported, params, x, buckets=(1, 64, 1024))


def _frame(n):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": np.arange(n, dtype=np.int64) + 100, **{f"f{i}": rng.normal(size=n) for i in range(4)}})


def _features(batch):
    return np.column_stack([batch.column(f"f{i}").to_numpy() for i in range(4)]).astype(np.float32)


def _table(df):
    return pa.Table.from_pandas(df, preserve_index=False)


def test_streamed_predictions_equal_whole_frame_scoring(tmp_path, model):
    from tasks.batch.scoring import Decision, score_to_parquet, table_batches

    df = _frame(2500)
    seen = []
    dest = tmp_path / "out" / "predictions.parquet"
    rows, scores = score_to_parquet(table_batches(_table(df), 700), str(dest), features=_features, score=model,
                                    id_column="id", id_type=pa.int64(), lineage=LINEAGE,
                                    decision=Decision("predicted_defaulted", 0.5), keep_scores=True,
                                    progress=seen.append)
    expected = model(_features(_table(df)))
    out = pq.read_table(dest).to_pandas()
    assert rows == 2500 and seen == [700, 700, 700, 400]
    np.testing.assert_array_equal(out["id"], df["id"]) and np.testing.assert_allclose(out["score"], expected, atol=1e-6)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert (out["predicted_defaulted"] == (expected >= 0.5)).all()
    for k, v in LINEAGE.items():
        assert out[k].unique().tolist() == [v]
    assert [f.name for f in pq.read_schema(dest)] == ["id", "score", "predicted_defaulted", *LINEAGE]


@pytest.mark.parametrize("dictionary_columns", [(), ("region",)])
def test_partition_table_stays_arrow_and_regressor_output(tmp_path, model, dictionary_columns):
    """Arrow batches of a partition read for validation (categoricals as parquet's dictionaries or as plain
    strings; only the valid rows when some were quarantined) give the feature matrix and scores of the frame."""
    from models.features import feature_matrix, fit_feature_spec
    from tasks.batch.partition_io import read_partition
    from tasks.batch.scoring import score_to_parquet, table_batches

    frame = _frame(1000).assign(region=np.random.default_rng(1).choice(["north", "south", None], 1000))
    spec = fit_feature_spec(frame, ["f0", "f1"], ["region"])  # 2 numerics + 2 one-hot slots: the model's 4 inputs
    src = tmp_path / "in.parquet"
    pq.write_table(_table(frame), src, row_group_size=300)
    table = read_partition(src.as_uri(), dictionary_columns=dictionary_columns)
    valid = np.flatnonzero(np.arange(1000) % 7 != 3)  # every 7th row from the 4th "quarantined"
    for positions, expected_rows in ((None, frame), (valid, frame.iloc[valid])):
        seen = []

        def features(batch):
            seen.append((type(batch), batch.schema.field("region").type, batch.num_rows))
            return feature_matrix(batch, spec)

        dest = tmp_path / f"p{positions is None}.parquet"
        rows, kept = score_to_parquet(table_batches(table, 256, positions), str(dest), features=features,
                                      score=model, id_column="id", id_type=pa.int64(), lineage=LINEAGE,
                                      decision=None)
        out = pq.read_table(dest)
        assert rows == len(expected_rows) and kept is None
        assert out.column_names == ["id", "score", *LINEAGE]  # a regressor: the value in score, no class column
        assert {t for t, _, _ in seen} == {pa.RecordBatch} and max(n for _, _, n in seen) <= 256
        assert pa.types.is_dictionary(seen[0][1]) == bool(dictionary_columns)
        assert out["id"].to_pylist() == expected_rows["id"].tolist()  # ids carried through, in order
        np.testing.assert_allclose(out["score"].to_numpy(), model(feature_matrix(expected_rows, spec)), atol=1e-6)
    assert pq.ParquetFile(dest).metadata.row_group(0).column(out.schema.get_field_index("model_name")) \
        .statistics is None  # lineage columns carry no min/max (one value per file, in the dictionary page)


@pytest.mark.parametrize("stage", ["features", "score"])
def test_an_error_in_any_stage_leaves_no_output(tmp_path, model, stage):
    from tasks.batch.scoring import Decision, score_to_parquet, table_batches

    calls = []

    def broken(x_or_df):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError(f"{stage} broke on batch 3")
        return _features(x_or_df) if stage == "features" else model(x_or_df)

    dest = tmp_path / "predictions.parquet"
    with pytest.raises(ValueError, match="broke on batch 3"):
        score_to_parquet(table_batches(_table(_frame(1000)), 100), str(dest), id_column="id", id_type=pa.int64(),
                         features=broken if stage == "features" else _features,
                         score=broken if stage == "score" else model, lineage=LINEAGE,
                         decision=Decision("predicted_class", 0.5))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("label", "column"), [("defaulted", "predicted_defaulted"), ("churned", "predicted_churned"),
                                               ("quality_good", "predicted_quality_good"), (None, "predicted_class")])
def test_the_class_column_is_named_from_the_contracts_label(label, column):
    from tasks.batch.scoring import prediction_column

    assert prediction_column(label) == column


def test_output_columns_refuse_a_name_clash_naming_it():
    from tasks.batch.scoring import Decision, output_columns

    assert output_columns("id", None) == ["id", "score", *LINEAGE]
    with pytest.raises(ValueError, match=r"two columns named \['score'\]"):
        output_columns("score", None)
    with pytest.raises(ValueError, match=r"two columns named \['predicted_y'\]"):
        output_columns("predicted_y", Decision("predicted_y", 0.5))
