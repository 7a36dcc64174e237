"""A user's Flax module that declares its own inputs (raw columns as a dict of arrays), with params from an orbax
checkpoint, on a hand-made table lockgate has never seen (a string categorical and nulls): registered, compiled by
the real compile gate, scored by batch scoring, and loaded by plain MLflow in a process that has only the bundle.

The package is written into the test's tmp folder (not one of models/); real SQLite MLflow, ledger, jax.export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tasks.errors import LockgateError

PKG = "shop_rawnet"
NET = '''
import flax.linen as nn
import jax.numpy as jnp


class RawNet(nn.Module):
    """{"amount": f32[b], "items": f32[b], "region": i32[b]} -> one logit per row."""
    regions: int = 3

    @nn.compact
    def __call__(self, cols):
        numbers = jnp.stack([jnp.nan_to_num(cols["amount"]), cols["items"]], axis=1)
        region = nn.Embed(self.regions + 1, 3)(cols["region"])  # code 0: null or unseen
        return nn.Dense(1)(nn.tanh(nn.Dense(6)(jnp.concatenate([numbers, region], axis=1))))


class Wide(RawNet):
    @nn.compact
    def __call__(self, cols):
        return jnp.stack([cols["items"]] * 3, axis=1)  # (batch, 3): not one output per row
'''
SIGNATURE = {"amount": "float32", "items": "float32", "region": "int32"}
REGIONS = ["south", "north", "east"]  # the contract's order (not sorted): codes 1, 2, 3


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 20.0, n).round(2)
    amount[rng.random(n) < 0.1] = np.nan
    region = rng.choice(np.array(REGIONS, dtype=object), n)
    region[rng.random(n) < 0.1] = None
    items = rng.integers(1, 9, n).astype(np.int64)
    y = (np.nan_to_num(amount) / 40 + items / 8 + rng.normal(0, 0.3, n) > 1.2).astype(np.int64)
    return pd.DataFrame({"order_id": np.arange(seed * 10_000, seed * 10_000 + n), "amount": amount, "items": items,
                         "region": pd.Series(region, dtype=object), "bought": y})


def _contract(folder: Path, reference: pd.DataFrame) -> Path:
    import yaml

    from data_contracts.infer import infer_contract

    inferred = infer_contract(pa.Table.from_pandas(reference, preserve_index=False), name="shop_raw", label="bought",
                              source="hand-made", id_column="order_id", owner="tester")
    for prop in inferred.document["schema"][0]["properties"]:
        for rule in prop.get("quality", []):
            if prop["name"] == "region" and "validValues" in rule.get("arguments", {}):
                rule["arguments"]["validValues"] = REGIONS
    for prop in inferred.document["customProperties"]:  # the demo policy requires a dataset licence
        if prop["property"] == "license":
            prop["value"] = "CC0-1.0"
    path = folder / "shop_raw.yaml"
    path.write_text(yaml.safe_dump(inferred.document, sort_keys=False))
    return path


def _save_orbax(path: Path, params) -> Path:
    import jax
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, jax.tree.map(jax.numpy.asarray, params))
        checkpointer.wait_until_finished()
    return path


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The user's project folder: package, config, orbax checkpoint, data, contract; and what the model gives."""
    import jax

    from models.code_model import load_model
    from models.train import init_params

    root = tmp_path_factory.mktemp("shop")
    (root / PKG).mkdir()
    (root / PKG / "__init__.py").write_text("")
    (root / PKG / "net.py").write_text(NET)
    reference, golden = _table(160, 1), _table(80, 2)
    golden.loc[3, "region"] = "mars"  # a value outside the contract's set in the rows scored below: code 0
    reference.to_parquet(root / "reference.parquet")
    golden.to_parquet(root / "golden.parquet")
    config = {"inputs": SIGNATURE, "regions": 3}
    (root / "config.json").write_text(json.dumps(config))
    model = load_model(f"{PKG}.net:RawNet", config, num_features=3, code_dir=root)
    params = jax.tree.map(np.asarray, init_params(model, 3))
    ckpt = _save_orbax(root / "ckpt", params)
    cols = {"amount": golden["amount"].to_numpy(np.float32), "items": golden["items"].to_numpy(np.float32),
            "region": golden["region"].map({v: i + 1 for i, v in enumerate(REGIONS)}).fillna(0).to_numpy(np.int32)}
    expected = np.asarray(jax.nn.sigmoid(model.apply(params, cols)))
    return {"root": root, "contract": _contract(root, reference), "ckpt": ckpt, "params": params,
            "expected": expected, "golden": golden, "cols": cols}


def _register(settings, shop, *, name, **overrides):
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    kwargs = dict(name=name, model=f"{PKG}.net:RawNet", code_root=shop["root"], config_path=shop["root"] / "config.json",
                  params_path=shop["ckpt"], reference_path=shop["root"] / "reference.parquet",
                  contract_name=str(shop["contract"]), actor="tester")
    kwargs.update(overrides)
    return register_candidate(registry_for(settings), ledger_for(settings), **kwargs)


@pytest.fixture(scope="module")
def compiled(shared_home, shop):
    from tasks import gates
    from tasks.policy import CompilationPolicy, Policy
    from tasks.stores import new_lifecycle_dir, registry_for

    settings = shared_home
    record = _register(settings, shop, name="shop-raw")
    policy = Policy(compilation=CompilationPolicy(platforms=("cpu",), batch_buckets=(1, 64), targets=("cpu",),
                                                  required_targets=("cpu",), variants=("f32", "bf16", "int8")))
    run = new_lifecycle_dir(settings, "shop-raw", record.version)
    result = gates.compile_model.fn(settings, policy, record, str(shop["root"] / "golden.parquet"), run)
    registry = registry_for(settings)
    registry.set_alias("shop-raw", "champion", record.version)
    return settings, registry.get("shop-raw", record.version), result


def test_the_version_holds_the_declared_columns_and_the_checkpoint_as_msgpack(compiled, shop):
    from models.features import FeatureSpec
    from models.params_io import load_params, params_to_bytes
    from tasks.evidence import sha256_file
    from tasks.stores import cache_dir, registry_for

    settings, record, _ = compiled
    registry = registry_for(settings)
    spec = FeatureSpec.model_validate(registry.fetch_json(record, "feature_spec.json"))
    assert [(f.name, f.dtype, f.values) for f in spec.inputs] == [
        ("amount", "float32", None), ("items", "float32", None), ("region", "int32", REGIONS)]
    assert registry.fetch_json(record, "model_config.json")["config"]["inputs"] == SIGNATURE
    stored = registry.fetch(record, "params.msgpack", cache_dir(settings) / "check")
    assert sha256_file(stored) == record.tags["lockgate.params_sha256"]
    assert stored.read_bytes() == params_to_bytes(shop["params"])  # the checkpoint, stored pickle-free
    load_params(stored, template=shop["params"])


def test_compiled_with_a_dict_input_and_scored_like_the_users_model(compiled, shop):
    from models.export import export_info
    from tasks.registration.inference import load_compiled, variant_scores
    from tasks.stores import cache_dir, registry_for

    settings, record, result = compiled
    assert result.passed, result.reasons
    assert {v.variant for v in result.variants} == {"bf16", "int8"}
    blob = Path(result.evidence["artifact"].path).read_bytes()
    assert export_info(blob).inputs["x['region']"] == "int32[b]"
    model = load_compiled(registry_for(settings), record, cache_dir(settings), (1, 64))
    np.testing.assert_allclose(model.score(shop["golden"]), shop["expected"], rtol=1e-5, atol=1e-6)
    for _, p32, pv in variant_scores(registry_for(settings), record, shop["golden"], cache_dir(settings), (1, 64)):
        assert np.max(np.abs(pv - p32)) < 0.05


def test_batch_scoring_from_arrow_gives_the_same_scores(compiled, shop, tmp_path):
    from tasks.batch.scoring import LINEAGE_COLUMNS, score_to_parquet, table_batches
    from tasks.registration.inference import load_compiled
    from tasks.stores import cache_dir, registry_for

    settings, record, _ = compiled
    model = load_compiled(registry_for(settings), record, cache_dir(settings), (1, 64))
    table = pa.Table.from_pandas(shop["golden"], preserve_index=False)
    table = table.set_column(table.schema.get_field_index("region"), "region",  # as parquet reads categoricals
                             table.column("region").dictionary_encode())
    rows = table.select(["order_id", *model.feature_spec.columns])
    written, scores = score_to_parquet(table_batches(rows, 32), str(tmp_path / "p.parquet"), features=model.features,
                                       score=model.scorer(), id_column="order_id", id_type=pa.int64(),
                                       lineage={c: "t" for c in LINEAGE_COLUMNS}, decision=None, keep_scores=True)
    assert written == len(shop["golden"])
    np.testing.assert_allclose(scores, shop["expected"], rtol=1e-5, atol=1e-6)


def test_the_champion_loads_by_plain_mlflow_in_a_process_with_only_the_bundle(compiled, shop, tmp_path):
    settings, *_ = compiled
    golden_path = tmp_path / "golden.parquet"
    shop["golden"].to_parquet(golden_path)
    repo = Path(__file__).resolve().parents[3]
    script = f"""
import importlib.util, sys
from pathlib import Path
repo = Path({str(repo)!r}).resolve()
sys.path = [p for p in sys.path if Path(p or '.').resolve() != repo]
for name in ('models', 'tasks', {PKG!r}):
    assert importlib.util.find_spec(name) is None, name + ' importable before loading'
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model('models:/shop-raw@champion')
model.predict(pd.read_parquet({str(golden_path)!r})).to_parquet('scores.parquet')
"""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "JAX_PLATFORMS": "cpu",
           "MLFLOW_TRACKING_URI": settings.tracking_uri}
    proc = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = pd.read_parquet(tmp_path / "scores.parquet")["score"].to_numpy()
    np.testing.assert_allclose(got, shop["expected"], rtol=1e-5, atol=1e-6)


def _config(shop, name: str, payload: dict) -> dict:
    path = shop["root"] / name
    path.write_text(json.dumps(payload))
    return {"config_path": path}


def _params(shop, tmp: Path, kind: str) -> dict:
    import orbax.checkpoint  # noqa: F401 - the misfit below is an orbax checkpoint of another model

    if kind == "misfit":
        wrong = {"params": {**shop["params"]["params"], "Embed_0": {"embedding": np.ones((9, 3), np.float32)}}}
        return {"params_path": _save_orbax(tmp / "misfit", wrong)}
    if kind == "msgpack":
        from models.params_io import save_params

        save_params(shop["params"], tmp / "p.msgpack")
        return {"params_path": tmp / "p.msgpack"}
    if kind == "notes":
        (tmp / "notes").mkdir()
        (tmp / "notes" / "readme.txt").write_text("weights are on the shared drive")
        return {"params_path": tmp / "notes"}
    raise AssertionError(kind)


@pytest.mark.parametrize("change,fragment", [
    (lambda s, t: _config(s, "c1.json", {"inputs": {**SIGNATURE, "coupon": "float32"}}),
     "inputs ['coupon'] are not columns of contract shop_raw"),
    (lambda s, t: _config(s, "c2.json", {"inputs": {**SIGNATURE, "bought": "int32"}}),
     "input 'bought' is not a feature column"),
    (lambda s, t: _config(s, "c3.json", {"inputs": {**SIGNATURE, "amount": "float64"}}),
     "input 'amount' is a numeric column: lockgate gives it as one of ['float32', 'bfloat16', 'float16'], not "
     "'float64'"),
    (lambda s, t: _config(s, "c4.json", {"inputs": {"amount": "float32", "region": "int32"}}),
     "inputs declare no dtype for contract shop_raw's feature columns ['items']"),
    (lambda s, t: _config(s, "c5.json", {"inputs": "amount"}), "inputs must be"),
    (lambda s, t: {**_config(s, "c6.json", {"inputs": SIGNATURE}), **_params(s, t, "msgpack"),
                   "model": f"{PKG}.net:Wide"},
     f"model {PKG}.net:Wide: Wide returned shape (8, 3) for 8 rows; it must return (batch,) or (batch, 1)"),
    (lambda s, t: _params(s, t, "misfit"),
     "param params/Embed_0/embedding is float32[9, 3], template expects float32[4, 3]"),
    (lambda s, t: _params(s, t, "notes"), "a folder but not an orbax checkpoint (no _METADATA file"),
])
def test_bad_raw_input_or_checkpoint_is_one_line_and_registers_nothing(settings, shop, tmp_path, change, fragment):
    from tasks.stores import ledger_for, registry_for

    with pytest.raises(LockgateError) as e:
        _register(settings, shop, name="shop-bad", **change(shop, tmp_path))
    message = str(e.value)
    assert fragment in message and "\n" not in message, message
    assert registry_for(settings).versions("shop-bad") == []
    assert ledger_for(settings).entries() == []


def test_register_command_and_api_take_an_orbax_folder(settings, shop, tmp_path, monkeypatch, capsys):
    import lockgate
    from pipelines.cli import main
    from pipelines.exit_codes import EXIT_USAGE

    base = ["register", "--model", f"{PKG}.net:RawNet", "--code-root", str(shop["root"]), "--config",
            str(shop["root"] / "config.json"), "--reference", str(shop["root"] / "reference.parquet"),
            "--contract", str(shop["contract"])]
    (tmp_path / "empty").mkdir()
    assert main([*base, "--params", str(tmp_path / "empty")]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an orbax checkpoint" in err and "Traceback" not in err
    monkeypatch.chdir(shop["root"])
    monkeypatch.setenv("LOCKGATE_MODEL_NAME", "shop-api")
    record = lockgate.register(config=shop["root"] / "config.json", params=shop["ckpt"], model=f"{PKG}.net:RawNet",
                               reference=shop["root"] / "reference.parquet", contract=str(shop["contract"]))
    assert record.name == "shop-api" and record.version == 1


def test_the_canary_times_the_raw_input_model_on_golden_rows(compiled, shop):
    from tasks.canary.evidence import latency_report
    from tasks.policy import CanaryPolicy
    from tasks.registration.inference import load_compiled
    from tasks.stores import cache_dir, registry_for

    settings, record, _ = compiled
    model = load_compiled(registry_for(settings), record, cache_dir(settings), (1, 64))
    report, _ = latency_report(model, None, shop["golden"], CanaryPolicy(latency_buckets=(1, 8), latency_repeats=3))
    assert report is not None
