"""A user's own model code, registered, compiled by the real compile gate, scored, and loaded by plain MLflow.

The user's package is written here into a temporary project folder (not one of models/): a Flax module behind a
factory, a plain JAX function, and their bad siblings. Real SQLite MLflow, real ledger, real jax.export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.errors import LockgateError

PKG = "acme_tabnet"
FILES = {
    "__init__.py": "",
    "layers.py": """
import flax.linen as nn


class Block(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Dense(self.width)(x))
""",
    "net.py": """
import flax.linen as nn

from acme_tabnet.layers import Block


class TabNet(nn.Module):
    hidden: int = 8

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(Block(self.hidden)(x))  # (batch, 1) logits


def build(config):
    return TabNet(hidden=config["hidden"])
""",
    "linear.py": """
import jax.numpy as jnp


def score(params, x):
    return x @ params["w"] + params["b"]  # (batch, 1)


def wide(params, x):
    return jnp.tile(x @ params["w"], (1, 3))
""",
    "broken.py": "import not_a_real_dependency_xyz\n",
}
# What the user's files say after registration: a version must not notice.
EDITED = {"net.py": "raise RuntimeError('edited after registration')\n",
          "linear.py": "def score(params, x):\n    return 0 * x[:, 0]\n"}


def write_package(root: Path, files: dict[str, str] = FILES) -> Path:
    (root / PKG).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / PKG / name).write_text(text)
    return root


def _width(reference: Path) -> int:
    from data_contracts.contract import load_contract
    from models.features import fit_feature_spec

    contract = load_contract("credit_default")
    return fit_feature_spec(pd.read_parquet(reference), contract.numeric_features,
                            contract.categorical_features).num_features


def _features(reference: Path, frame: pd.DataFrame) -> np.ndarray:
    from data_contracts.contract import load_contract
    from models.features import feature_matrix, fit_feature_spec

    contract = load_contract("credit_default")
    spec = fit_feature_spec(pd.read_parquet(reference), contract.numeric_features, contract.categorical_features)
    return feature_matrix(frame, spec)


def write_inputs(root: Path, width: int) -> dict[str, Path]:
    """Params and configs of the user's models: Flax variables of TabNet, weights of the linear function."""
    import jax

    from models.code_model import load_model
    from models.params_io import save_params

    net = load_model(f"{PKG}.net:build", {"hidden": 8}, num_features=width, code_dir=root)
    rng = np.random.default_rng(0)
    out = {"net_params": root / "net.msgpack", "linear_params": root / "linear.msgpack",
           "wide_linear_params": root / "wide.msgpack", "net_config": root / "net.json",
           "linear_config": root / "linear.json"}
    save_params(net.module.init(jax.random.PRNGKey(0), np.zeros((1, width), np.float32)), out["net_params"])
    save_params({"w": (0.1 * rng.normal(size=(width, 1))).astype(np.float32), "b": np.full((1,), 0.3, np.float32)},
                out["linear_params"])
    save_params({"w": np.ones((width + 2, 1), np.float32), "b": np.zeros((1,), np.float32)}, out["wide_linear_params"])
    save_params({"params": {"Other": {"kernel": np.ones((width, 1), np.float32)}}}, root / "stray.msgpack")
    out["net_config"].write_text(json.dumps({"hidden": 8}))
    out["linear_config"].write_text(json.dumps({"task": "regression"}))
    return out


def _register(settings, candidate_files, inputs, *, name, model, kind, code_root, **overrides):
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    kwargs = dict(name=name, model=model, code_root=code_root, config_path=inputs[f"{kind}_config"],
                  params_path=inputs[f"{kind}_params"], reference_path=candidate_files.reference,
                  contract_name="credit_default", actor="tester")
    kwargs.update(overrides)
    return register_candidate(registry_for(settings), ledger_for(settings), **kwargs)


def _expected(root: Path, inputs, candidate_files, frame) -> dict[str, np.ndarray]:
    """What the user's code gives on ``frame`` (computed from their files before they edit them)."""
    import jax

    from models.code_model import load_model
    from models.params_io import load_params

    x = _features(candidate_files.reference, frame)
    width = x.shape[1]
    net = load_model(f"{PKG}.net:build", {"hidden": 8}, num_features=width, code_dir=root)
    linear = load_model(f"{PKG}.linear:score", {"task": "regression"}, num_features=width, code_dir=root)
    return {"user-flax": np.asarray(jax.nn.sigmoid(net.apply(load_params(inputs["net_params"]), x))),
            "user-linear": np.asarray(linear.apply(load_params(inputs["linear_params"]), x))}


@pytest.fixture(scope="module")
def compiled(shared_home, candidate_files, tmp_path_factory):
    """Both user models registered from a project folder, the folder edited, then each compiled by the compile gate
    and made champion of its own model name."""
    from tasks import gates
    from tasks.policy import CompilationPolicy, Policy
    from tasks.stores import new_lifecycle_dir, registry_for

    settings = shared_home
    root = write_package(tmp_path_factory.mktemp("project"))
    inputs = write_inputs(root, _width(candidate_files.reference))
    golden = pd.read_parquet(candidate_files.golden)
    expected = _expected(root, inputs, candidate_files, golden)
    records = {"user-flax": _register(settings, candidate_files, inputs, name="user-flax", model=f"{PKG}.net:build",
                                      kind="net", code_root=root),
               "user-linear": _register(settings, candidate_files, inputs, name="user-linear",
                                        model=f"{PKG}.linear:score", kind="linear", code_root=root)}
    write_package(root, EDITED)  # the user edits their files: the registered versions keep theirs
    policy = Policy(compilation=CompilationPolicy(platforms=("cpu",), batch_buckets=(1, 64), targets=("cpu",),
                                                  required_targets=("cpu",), variants=("f32", "bf16", "int8")))
    registry = registry_for(settings)
    results = {}
    for name, record in records.items():
        run = new_lifecycle_dir(settings, name, record.version)
        results[name] = gates.compile_model.fn(settings, policy, record, str(candidate_files.golden), run)
        registry.set_alias(name, "champion", record.version)
        records[name] = registry.get(name, record.version)
    return settings, root, records, results, expected, golden


def test_the_version_holds_the_users_code_with_its_hashes(compiled):
    from tasks.stores import ledger_for, registry_for

    settings, _, records, *_ = compiled
    registry = registry_for(settings)
    for name, ref in (("user-flax", f"{PKG}.net:build"), ("user-linear", f"{PKG}.linear:score")):
        record = records[name]
        assert record.tags["lockgate.model"] == ref == record.tags["lockgate.arch"]
        manifest = registry.fetch_json(record, "model_code.json")
        assert manifest["model"] == ref
        assert sorted(manifest["files"]) == [f"{PKG}/{f}" for f in sorted(FILES)]
        stored = registry.fetch_json(record, "model_config.json")
        assert stored["model"] == ref and stored["code_sha256"] == record.tags["lockgate.code_sha256"]
        row = [e for e in ledger_for(settings).entries(model_name=name) if e.action == "version.registered"][0]
        assert row.evidence["model_code.json"] == record.tags["lockgate.code_sha256"]


def test_compiled_from_the_stored_code_and_scored_like_the_users_model(compiled):
    from tasks.registration.inference import load_compiled
    from tasks.stores import cache_dir, registry_for

    settings, _, records, results, expected, golden = compiled
    for name, result in results.items():
        assert result.passed, result.reasons
        assert {v.variant for v in result.variants} == {"bf16", "int8"}
        model = load_compiled(registry_for(settings), records[name], cache_dir(settings), (1, 64))
        np.testing.assert_allclose(model.score(golden), expected[name], rtol=1e-5, atol=1e-6)
    assert records["user-linear"].tags["lockgate.artifact_sha256"]


def test_the_champion_loads_by_plain_mlflow_in_a_process_with_only_the_bundle(compiled, tmp_path,
                                                                              clean_process_predict):
    settings, root, records, _, expected, golden = compiled
    golden_path = tmp_path / "golden.parquet"
    golden.to_parquet(golden_path)
    names = ("user-flax", "user-linear")
    got, origin = clean_process_predict(settings.tracking_uri, {n: f"models:/{n}@champion" for n in names},
                                        golden_path, tmp_path, absent=("models", "tasks", PKG),
                                        origin_of=f"{PKG}.net")  # the user's package came with the bundle
    assert origin.endswith(f"/code/{PKG}/net.py") and not origin.startswith(str(root))
    assert "edited after registration" not in Path(origin).read_text()  # the registered code, not today's file
    for name in names:
        assert np.allclose(got[name]["score"].to_numpy(), expected[name], rtol=1e-5, atol=1e-6), name


@pytest.fixture
def project(tmp_path, candidate_files):
    root = write_package(tmp_path / "project")
    return root, write_inputs(root, _width(candidate_files.reference))


def _symlinked_out(root: Path) -> Path:
    outside = root.parent / "outside.py"
    outside.write_text("SECRET = 1\n")
    (root / PKG / "leak.py").symlink_to(outside)
    return root


@pytest.mark.parametrize("model,kind,change,fragment", [
    (f"{PKG}.broken:build", "net", None,
     f"model {PKG}.broken:build: module {PKG}.broken does not import: ModuleNotFoundError: No module named "
     "'not_a_real_dependency_xyz'"),
    (f"{PKG}.net:nope", "net", None, f"model {PKG}.net:nope: module {PKG}.net has no attribute 'nope'"),
    (f"{PKG}.missing:build", "net", None, f"no file {PKG}/missing.py or {PKG}/missing/__init__.py under the code root"),
    ("acme-tabnet.net:build", "net", None, "is not MODULE:ATTR"),
    ("mynet", "net", None, "model 'mynet' is neither MODULE:ATTR (e.g. mypkg.net:build) nor a built-in architecture "
                           "['ft_transformer', 'mlp', 'moe']"),
    (f"{PKG}.net:build", "net", _symlinked_out, "leak.py is not a file under the code root"),
    (f"{PKG}.linear:wide", "linear", None,
     f"model {PKG}.linear:wide: wide returned shape (8, 3) for 8 rows; it must return (batch,) or (batch, 1)"),
    (f"{PKG}.net:build", "net", lambda r: {"params_path": r / "linear.msgpack"},
     f"linear.msgpack do not fit model {PKG}.net:build: ApplyScopeInvalidVariablesTypeError"),
    (f"{PKG}.net:build", "net", lambda r: {"params_path": r / "stray.msgpack"},
     f"stray.msgpack do not fit model {PKG}.net:build: ScopeParamNotFoundError: Could not find parameter named "
     '"kernel" in scope "/Block_0/Dense_0"'),
    (f"{PKG}.linear:score", "linear", lambda r: {"params_path": r / "wide.msgpack"},
     f"model {PKG}.linear:score does not take the "),
    (f"{PKG}.net:TabNet", "net", lambda r: {"config_path": _json(r / "c.json", {"hiden": 8})},
     f"does not build model {PKG}.net:TabNet: TypeError"),
    (f"{PKG}.linear:score", "linear", lambda r: {"config_path": _json(r / "c.json", {"task": "ranking"})},
     "config task must be one of ['classification', 'regression']"),
])
def test_bad_model_code_is_one_line_and_registers_nothing(settings, candidate_files, project, model, kind, change,
                                                          fragment):
    from tasks.stores import ledger_for, registry_for

    root, inputs = project
    overrides = {}
    if change is _symlinked_out:
        change(root)
    elif change is not None:
        overrides = change(root)
    with pytest.raises(LockgateError) as e:
        _register(settings, candidate_files, inputs, name="user-bad", model=model, kind=kind, code_root=root,
                  **overrides)
    message = str(e.value)
    assert fragment in message and "\n" not in message and "https://" not in message
    assert registry_for(settings).versions("user-bad") == []
    assert ledger_for(settings).entries() == []


def test_a_contract_width_the_model_does_not_take_names_the_contract_and_the_width(settings, candidate_files, project):
    root, inputs = project
    width = _width(candidate_files.reference)
    with pytest.raises(LockgateError) as e:
        _register(settings, candidate_files, inputs, name="user-bad", model=f"{PKG}.linear:score", kind="linear",
                  code_root=root, params_path=inputs["wide_linear_params"])
    assert str(e.value).startswith(f"model {PKG}.linear:score does not take the {width} features contract "
                                   f"credit_default encodes from the reference data (x: float32[8, {width}]) ")
    assert "dot_general" in str(e.value)


def _json(path: Path, payload) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_register_command_takes_a_model_by_import_path(settings, candidate_files, project, capsys):
    from pipelines.cli import main
    from pipelines.exit_codes import EXIT_USAGE

    root, inputs = project
    base = ["register", "--code-root", str(root), "--config", str(inputs["net_config"]), "--params",
            str(inputs["net_params"]), "--reference", str(candidate_files.reference), "--contract", "credit_default"]
    assert main([*base, "--model", f"{PKG}.broken:build"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not import" in err and "Traceback" not in err
    assert main([*base, "--model", f"{PKG}.net:build"]) == 0
    assert "registered" in capsys.readouterr().out


def test_changed_stored_code_is_refused_before_the_model_is_built(settings, candidate_files, project,
                                                                 stored_artifact_path):
    from tasks.registration.inference import load_version_files
    from tasks.stores import cache_dir, registry_for

    root, inputs = project
    record = _register(settings, candidate_files, inputs, name="user-tamper", model=f"{PKG}.net:build", kind="net",
                       code_root=root)
    registry = registry_for(settings)
    _, model, _, _ = load_version_files(registry, record, cache_dir(settings))
    assert model.code_path.name == PKG and model.module is not None  # builds from the verified copy
    stored = stored_artifact_path(registry, record, f"model_code/{PKG}/layers.py")
    stored.write_text(stored.read_text() + "\n# one more line\n")
    with pytest.raises(LockgateError, match=rf"model_code/{PKG}/layers.py of user-tamper v1 has sha256 .* refusing"):
        load_version_files(registry, record, cache_dir(settings))


def test_a_registration_cut_before_its_ledger_row_records_the_code_manifest_later(settings, candidate_files, project,
                                                                                  monkeypatch):
    import tasks.registration.register as registration
    from tasks.registration.register import record_registration
    from tasks.stores import ledger_for, registry_for

    def killed(point):
        if point == "version-created":
            raise SystemExit("killed")

    root, inputs = project
    monkeypatch.setattr(registration, "failpoint", killed)
    with pytest.raises(SystemExit):
        _register(settings, candidate_files, inputs, name="user-cut", model=f"{PKG}.net:build", kind="net",
                  code_root=root)
    registry, ledger = registry_for(settings), ledger_for(settings)
    record = registry.get("user-cut", 1)
    row = record_registration(registry, ledger, record, actor="tester")
    assert row.evidence["model_code.json"] == record.tags["lockgate.code_sha256"] and ledger.verify().ok


def test_the_audit_finds_the_code_manifest_a_registration_row_names(compiled):
    from tasks.governance.audit_evidence import EvidenceLocator
    from tasks.stores import ledger_for, registry_for

    settings, _, records, *_ = compiled
    locator = EvidenceLocator(settings, registry_for(settings), None)
    for name, record in records.items():
        row = [e for e in ledger_for(settings).entries(model_name=name) if e.action == "version.registered"][0]
        checks = {c.role: c.status for c in locator.check_entry(name, record.version, row.evidence, row.reason)}
        assert checks["model_code.json"] == "ok" and set(checks.values()) == {"ok"}, checks
