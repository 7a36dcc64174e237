"""Models given by code (models/code_model.py): references, the files stored, imports from a copy, the probe."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from models.code_model import ModelCodeError, import_attr, load_model, model_source, parse_ref, probe

NET = """
import flax.linen as nn

from {pkg}.layers import Block


class Net(nn.Module):
    hidden: int = 4

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(Block(self.hidden)(x)) {sign}
"""
LAYERS = """
import flax.linen as nn


class Block(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Dense(self.width)(x))
"""


def _package(root, pkg="acme_code_net", sign=""):
    (root / pkg).mkdir(parents=True, exist_ok=True)
    (root / pkg / "__init__.py").write_text("")
    (root / pkg / "layers.py").write_text(LAYERS)
    (root / pkg / "net.py").write_text(NET.format(pkg=pkg, sign=sign))
    return root


@pytest.mark.parametrize("ref", ["mypkg.net:build", "a:b", "a.b.c:Net_2"])
def test_valid_references_parse(ref):
    module, attr = parse_ref(ref)
    assert f"{module}:{attr}" == ref


@pytest.mark.parametrize("ref", ["mypkg.net", "my-pkg.net:build", "mypkg..net:build", "mypkg.net:", ":build",
                                 "../evil:build", "mypkg.net:a.b", "class.net:build", "/tmp/x:build"])
def test_invalid_references_are_refused(ref):
    with pytest.raises(ModelCodeError, match="is not MODULE:ATTR"):
        parse_ref(ref)


def test_the_whole_top_package_is_stored_and_nothing_else(tmp_path):
    root = _package(tmp_path)
    (root / "acme_code_net" / "__pycache__").mkdir()
    (root / "acme_code_net" / "__pycache__" / "net.cpython-311.pyc").write_bytes(b"x")
    (root / "acme_code_net" / "notes.txt").write_text("not code")
    (root / "unrelated.py").write_text("")
    source = model_source("acme_code_net.net:Net", root)
    assert sorted(source.files) == ["acme_code_net/__init__.py", "acme_code_net/layers.py", "acme_code_net/net.py"]
    hashes = source.copy_to(tmp_path / "copy")
    assert (tmp_path / "copy" / "acme_code_net" / "net.py").read_text() == (root / "acme_code_net" / "net.py").read_text()
    assert len(hashes) == 3 and all(len(h) == 64 for h in hashes.values())


def test_a_single_module_file_is_stored_alone(tmp_path):
    (tmp_path / "acme_single.py").write_text("def f(params, x):\n    return x @ params['w']\n")
    assert list(model_source("acme_single:f", tmp_path).files) == ["acme_single.py"]


@pytest.mark.parametrize("ref,fragment", [
    ("acme_code_net.nope:Net", "no file acme_code_net/nope.py or acme_code_net/nope/__init__.py"),
    ("acme_missing:Net", "no file acme_missing.py"),
    ("json:loads", "taken by lockgate or Python"),
    ("tasks.registry:x", "taken by lockgate or Python"),
    ("numpy.linalg:norm", "already an installed module"),
])
def test_sources_that_are_not_files_of_the_users_package_are_refused(tmp_path, ref, fragment):
    root = _package(tmp_path)
    with pytest.raises(ModelCodeError) as e:
        model_source(ref, root)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_a_symlink_out_of_the_code_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("TOKEN = 1\n")
    root = _package(tmp_path / "root")
    (root / "acme_code_net" / "leak.py").symlink_to(outside / "secret.py")
    with pytest.raises(ModelCodeError, match="leak.py is not a file under the code root"):
        model_source("acme_code_net.net:Net", root)


def test_a_code_root_that_is_not_a_folder_is_refused(tmp_path):
    with pytest.raises(ModelCodeError, match="is not a folder"):
        model_source("acme_code_net.net:Net", tmp_path / "nowhere")


def test_two_copies_of_one_package_load_side_by_side_and_leave_sys_modules_alone(tmp_path):
    import jax

    one = _package(tmp_path / "one")
    two = _package(tmp_path / "two", sign="* -1.0")
    sys.modules["acme_code_net"] = sentinel = type(sys)("acme_code_net")  # the process's own package of that name
    try:
        a = load_model("acme_code_net.net:Net", {"hidden": 4}, num_features=3, code_dir=one)
        b = load_model("acme_code_net.net:Net", {"hidden": 4}, num_features=3, code_dir=two)
        assert sys.modules["acme_code_net"] is sentinel and "acme_code_net.net" not in sys.modules
    finally:
        del sys.modules["acme_code_net"]
    params = a.module.init(jax.random.PRNGKey(0), np.zeros((1, 3), np.float32))
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(a.apply(params, x)), -np.asarray(b.apply(params, x)), rtol=1e-6)
    assert a.apply(params, x).shape == (5,)  # (batch, 1) flattened


@pytest.mark.parametrize("body,kind,fragment", [
    ("import not_a_real_dependency_xyz\n", "import", "does not import: ModuleNotFoundError: No module named "
                                                     "'not_a_real_dependency_xyz'"),
    ("def f(params, x)\n    return x\n", "import", "does not import: SyntaxError"),
    ("def g(params, x):\n    return x\n", "attr", "has no attribute 'f'"),
    ("f = 3\n", "ref", "must be a Flax module class, a factory build(config) or a function f(params, x)"),
    ("def f(a, b, c):\n    return a\n", "ref", "a callable with 3 required arguments"),
    ("def f(config):\n    return config['missing']\n", "config", "does not build model acme_bad_mod:f: KeyError"),
])
def test_bad_code_is_one_line_naming_the_module(tmp_path, body, kind, fragment):
    (tmp_path / "acme_bad_mod.py").write_text(body)
    with pytest.raises(ModelCodeError) as e:
        load_model("acme_bad_mod:f", {}, num_features=3, code_dir=tmp_path)
    assert e.value.kind == kind and fragment in str(e.value) and "\n" not in str(e.value)
    assert "acme_bad_mod" not in sys.modules


CONVENTIONS = """
import flax.linen as nn
import jax.numpy as jnp


class Net(nn.Module):
    hidden: int = 4

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(x)))[:, 0]


def build(config):
    return Net(hidden=config["hidden"])


def build_fn(config):
    scale = config["scale"]
    return lambda params, x: scale * (x @ params["w"])


def linear(params, x):
    return x @ params["w"] + params["b"]


def three(params, x):
    return jnp.tile(x @ params["w"], (1, 3))


instance = Net(hidden=4)
"""


@pytest.mark.parametrize("attr,config,flax", [("Net", {"hidden": 4, "task": "regression"}, True),
                                              ("build", {"hidden": 4}, True), ("instance", {}, True),
                                              ("build_fn", {"scale": 2.0}, False), ("linear", {}, False)])
def test_every_documented_convention_builds_a_model(tmp_path, attr, config, flax):
    import jax

    (tmp_path / "acme_conv.py").write_text(CONVENTIONS)
    model = load_model(f"acme_conv:{attr}", config, num_features=3, code_dir=tmp_path)
    assert (model.module is not None) == flax
    assert model.task == config.get("task", "classification")
    x = np.ones((4, 3), np.float32)
    params = (model.module.init(jax.random.PRNGKey(0), x) if flax
              else {"w": np.ones((3, 1), np.float32), "b": np.zeros((1,), np.float32)})
    assert probe(model, params, x).shape == (4,)


@pytest.mark.parametrize("attr,params,kind,fragment", [
    ("three", {"w": np.ones((3, 1), np.float32)}, "output", "three returned shape (4, 3) for 4 rows"),
    ("linear", {"w": np.ones((3, 1), np.float32)}, "params", "KeyError: 'b'"),
    ("linear", {"w": np.ones((5, 1), np.float32), "b": np.zeros(1, np.float32)}, "input", "dot_general"),
    ("Net", {"params": {"Dense_9": {}}}, "params", "ScopeParamNotFoundError"),
    ("Net", {"Dense_0": {"kernel": np.ones((3, 4), np.float32)}}, "params", "{'params': {...}}"),
])
def test_the_probe_names_what_does_not_fit(tmp_path, attr, params, kind, fragment):
    (tmp_path / "acme_conv.py").write_text(CONVENTIONS)
    model = load_model(f"acme_conv:{attr}", {}, num_features=3, code_dir=tmp_path)
    with pytest.raises(ModelCodeError) as e:
        probe(model, params, np.ones((4, 3), np.float32))
    assert e.value.kind == kind and fragment in str(e.value) and "\n" not in str(e.value)
    assert "https://" not in str(e.value)


def test_builtins_are_the_same_kind_of_model(tmp_path):
    import hashlib

    from models.config import MLPConfig
    from models.export import export_inference
    from models.train import init_params

    config = MLPConfig(num_features=5, hidden_sizes=(4,))
    model = load_model("models.architectures:mlp", config.to_dict(), num_features=5)
    params = init_params(config, 0)
    assert model.arch == "mlp" and model.code_sha256 is None and import_attr(model.ref) is not None
    # the same program, byte for byte, whichever way the built-in is given
    assert hashlib.sha256(export_inference(model, params, ("cpu",))).digest() == \
        hashlib.sha256(export_inference(config, params, ("cpu",))).digest()


def test_a_plain_function_gets_bf16_and_int8_variants(tmp_path):
    from models.variants import variant_model, variant_params_template

    (tmp_path / "acme_conv.py").write_text(CONVENTIONS)
    model = load_model("acme_conv:linear", {"task": "regression"}, num_features=3, code_dir=tmp_path)
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 1)).astype(np.float32), "b": np.full((1,), 0.5, np.float32)}
    x = rng.normal(size=(6, 3)).astype(np.float32)
    want = x @ params["w"][:, 0] + 0.5
    for variant in ("bf16", "int8"):
        fn, vparams = variant_model(variant, model, params)
        np.testing.assert_allclose(np.asarray(fn(vparams, x)), want, atol=0.05)
    _, int8 = variant_model("int8", model, params)
    assert int8["w"]["qvalue"].dtype == np.int8 and int8["b"].dtype == np.float32  # vectors stay float
    template = variant_params_template("int8", model, params)
    assert template["w"]["qvalue"].shape == (3, 1) and template["w"]["scale"].shape == (1, 1)


def test_readme_example_module_registers_as_written(tmp_path):
    """The user module shown in README ("Bring your own model and contract") builds and runs as shown."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("# mypkg/net.py", 1)[1].split("```", 1)[0]
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "net.py").write_text(textwrap.dedent(block))
    import jax

    model = load_model("mypkg.net:build", {"hidden": 8}, num_features=3, code_dir=tmp_path)
    params = model.module.init(jax.random.PRNGKey(0), np.zeros((1, 3), np.float32))
    assert probe(model, params, np.ones((2, 3), np.float32)).shape == (2,)
    linear = load_model("mypkg.net:linear", {"task": "regression"}, num_features=3, code_dir=tmp_path)
    assert probe(linear, {"w": np.ones((3,), np.float32), "b": np.zeros((), np.float32)},
                 np.ones((2, 3), np.float32)).shape == (2,)


def test_a_built_model_pickles_without_the_users_classes_and_builds_again(tmp_path):
    import pickle

    root = _package(tmp_path)
    model = load_model("acme_code_net.net:Net", {"hidden": 4}, num_features=3, code_dir=root)
    assert model.module is not None
    copy = pickle.loads(pickle.dumps(model))
    assert copy == model and hash(copy) == hash(model) and copy._built == {}
    assert type(copy.module).__name__ == "Net"
