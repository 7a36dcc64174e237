import hashlib

import jax
import numpy as np
import pytest

from models.config import MLPConfig
from models.params_io import load_params, params_bytes_sha256, params_from_bytes, params_to_bytes, save_params
from models.train import init_params


@pytest.fixture
def params():
    return init_params(MLPConfig(num_features=3, hidden_sizes=(4,)), seed=1)


def _assert_same(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_with_and_without_template(tmp_path, params):
    path = tmp_path / "sub" / "params.msgpack"
    sha = save_params(params, path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest() == params_bytes_sha256(params_to_bytes(params))
    _assert_same(load_params(path, template=params, expected_sha256=sha), params)
    _assert_same(load_params(path), params)  # plain nested dicts of numpy arrays
    assert [p.name for p in path.parent.iterdir()] == ["params.msgpack"]  # no temp file left


def _one_line_error_naming(path, fn):
    with pytest.raises(ValueError) as err:
        fn()
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    return msg


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00garbage\xff" * 10, b"\x93\x01\x02\x03", "truncated"],
    ids=["empty", "garbage", "msgpack-list", "truncated"],
)
def test_corrupt_file_is_a_one_line_value_error(tmp_path, params, content):
    path = tmp_path / "bad.msgpack"
    if content == "truncated":
        content = params_to_bytes(params)[:-7]
    path.write_bytes(content)
    _one_line_error_naming(path, lambda: load_params(path, template=params))


def test_missing_file_and_sha_mismatch(tmp_path, params):
    missing = tmp_path / "nope.msgpack"
    _one_line_error_naming(missing, lambda: load_params(missing))
    path = tmp_path / "p.msgpack"
    save_params(params, path)
    assert "does not match" in _one_line_error_naming(path, lambda: load_params(path, expected_sha256="0" * 64))


def test_template_mismatch_names_the_param(params):
    other = init_params(MLPConfig(num_features=5, hidden_sizes=(4,)), seed=1)
    with pytest.raises(ValueError, match="dense_0/kernel is float32\\[5, 4\\].*expects float32\\[3, 4\\]"):
        params_from_bytes(params_to_bytes(other), template=params)
    deeper = init_params(MLPConfig(num_features=3, hidden_sizes=(4, 4)), seed=1)
    with pytest.raises(ValueError, match="extra.*dense_1"):
        params_from_bytes(params_to_bytes(deeper), template=params)


# --- orbax checkpoints ---------------------------------------------------------------------------------------------


def _orbax_save(path, tree, *, pytree=False):
    import orbax.checkpoint as ocp

    if pytree:
        ocp.PyTreeCheckpointer().save(path, tree)
        return path
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree)
        checkpointer.wait_until_finished()
    return path


@pytest.mark.parametrize("pytree", [False, True])
def test_an_orbax_checkpoint_restores_against_the_init_params_and_stores_as_msgpack(tmp_path, params, pytree):
    from models.params_io import is_orbax_checkpoint, load_orbax_params

    as_jax = jax.tree.map(jax.numpy.asarray, params)  # what a Flax user's training state holds
    path = _orbax_save(tmp_path / "ckpt", as_jax, pytree=pytree)
    assert is_orbax_checkpoint(path) and not is_orbax_checkpoint(tmp_path / "ckpt" / "_METADATA")
    abstract = jax.eval_shape(lambda: params)
    restored = load_orbax_params(path, abstract)
    _assert_same(restored, params)
    assert all(isinstance(a, np.ndarray) for a in jax.tree.leaves(restored))
    _assert_same(params_from_bytes(params_to_bytes(restored), params), params)  # the stored form: msgpack
    _assert_same(load_orbax_params(path), params)  # no template (a plain function): as saved


def test_an_orbax_checkpoint_that_does_not_fit_the_model_is_one_line_naming_it(tmp_path, params):
    from models.params_io import load_orbax_params

    wide = init_params(MLPConfig(num_features=5, hidden_sizes=(4,)), seed=1)
    path = _orbax_save(tmp_path / "wide", jax.tree.map(np.asarray, wide))  # numpy leaves: orbax itself would
    msg = _one_line_error_naming(path, lambda: load_orbax_params(path, params))  # not compare their shapes
    assert "param params/dense_0/kernel is float32[5, 4], template expects float32[3, 4]" in msg
    stray = _orbax_save(tmp_path / "stray", {"params": {"Other": {"kernel": np.ones((3, 4), np.float32)}}})
    assert "keys differ from the template" in _one_line_error_naming(stray, lambda: load_orbax_params(stray, params))


def test_a_folder_that_is_not_an_orbax_checkpoint_is_one_line(tmp_path, params):
    from models.params_io import load_orbax_params

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a checkpoint")
    msg = _one_line_error_naming(tmp_path / "notes", lambda: load_orbax_params(tmp_path / "notes", params))
    assert "not an orbax checkpoint" in msg
    broken = _orbax_save(tmp_path / "broken", jax.tree.map(np.asarray, params))
    (broken / "_METADATA").write_text("{not json")
    assert "orbax checkpoint" in _one_line_error_naming(broken, lambda: load_orbax_params(broken, params))


def test_a_checkpoint_of_the_params_collection_alone_restores_into_the_variables(tmp_path, params):
    from models.params_io import load_orbax_params

    path = _orbax_save(tmp_path / "state_params", jax.tree.map(np.asarray, params["params"]))  # TrainState.params
    _assert_same(load_orbax_params(path, jax.eval_shape(lambda: params)), params)
