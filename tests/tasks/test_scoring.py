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


def _features(df):
    return df[[f"f{i}" for i in range(4)]].to_numpy(np.float32)


def test_streamed_predictions_equal_whole_frame_scoring(tmp_path, model):
    from tasks.scoring import frame_batches, score_to_parquet

    df = _frame(2500)
    seen = []
    dest = tmp_path / "out" / "predictions.parquet"
    rows, scores = score_to_parquet(frame_batches(df, 700), str(dest), features=_features, score=model,
                                    id_column="id", id_type=pa.int64(), lineage=LINEAGE, threshold=0.5,
                                    keep_scores=True, progress=seen.append)
    expected = model(_features(df))
    out = pq.read_table(dest).to_pandas()
    assert rows == 2500 and seen == [700, 700, 700, 400]
    np.testing.assert_array_equal(out["id"], df["id"]) and np.testing.assert_allclose(out["score"], expected, atol=1e-6)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert (out["predicted_default"] == (expected >= 0.5)).all()
    for k, v in LINEAGE.items():
        assert out[k].unique().tolist() == [v]
    assert [f.name for f in pq.read_schema(dest)] == ["id", "score", "predicted_default", *LINEAGE]


@pytest.mark.parametrize("dictionary_columns", [(), ("region",)])
def test_parquet_source_stays_arrow_and_regressor_output(tmp_path, model, dictionary_columns):
    """Arrow batches straight from parquet (categoricals as parquet's dictionaries or as plain strings) give the
    feature matrix and scores of the pandas frame."""
    from models.features import feature_matrix, fit_feature_spec
    from tasks.scoring import parquet_batches, score_to_parquet

    frame = _frame(1000).assign(region=np.random.default_rng(1).choice(["north", "south", None], 1000))
    spec = fit_feature_spec(frame, ["f0", "f1"], ["region"])  # 2 numerics + 2 one-hot slots: the model's 4 inputs
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), src, row_group_size=300)
    seen = []

    def features(batch):
        seen.append((type(batch), batch.schema.field("region").type))
        return feature_matrix(batch, spec)

    dest = tmp_path / "p.parquet"
    rows, kept = score_to_parquet(parquet_batches(src.as_uri(), 256, dictionary_columns=dictionary_columns),
                                  str(dest), features=features, score=model, id_column="id", id_type=pa.int64(),
                                  lineage=LINEAGE, threshold=None)
    out = pq.read_table(dest)
    assert rows == 1000 and kept is None and "predicted_default" not in out.column_names
    assert {t for t, _ in seen} == {pa.RecordBatch}
    assert pa.types.is_dictionary(seen[0][1]) == bool(dictionary_columns)
    assert out["id"].to_pylist() == frame["id"].tolist()  # ids carried through, in order
    np.testing.assert_allclose(out["score"].to_numpy(), model(feature_matrix(frame, spec)), atol=1e-6)


@pytest.mark.parametrize("stage", ["features", "score"])
def test_an_error_in_any_stage_leaves_no_output(tmp_path, model, stage):
    from tasks.scoring import frame_batches, score_to_parquet

    calls = []

    def broken(x_or_df):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError(f"{stage} broke on batch 3")
        return _features(x_or_df) if stage == "features" else model(x_or_df)

    dest = tmp_path / "predictions.parquet"
    with pytest.raises(ValueError, match="broke on batch 3"):
        score_to_parquet(frame_batches(_frame(1000), 100), str(dest), id_column="id", id_type=pa.int64(),
                         features=broken if stage == "features" else _features,
                         score=broken if stage == "score" else model, lineage=LINEAGE, threshold=0.5)
    assert list(tmp_path.iterdir()) == []
