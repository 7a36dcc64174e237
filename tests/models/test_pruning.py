"""Pruned variants (models/pruning.py): what each prunes, that the neuron-pruned model is the f32 model without
those neurons, and that a pruned artifact runs as its pure function, on the built-in MLP, a user's Flax module
and a plain JAX function."""

import jax
import numpy as np
import pytest

from models.code_model import load_model
from models.export import load_exported, score_bucketed
from models.pruning import PRUNED_VARIANTS, dense_chain, magnitude_prune, nonzero_fraction, two_of_four
from models.variants import export_variant, variant_info, variant_model, variant_params_template

pytestmark = pytest.mark.filterwarnings("ignore:'VariableState' was removed:DeprecationWarning")

USER_CODE = """
import flax.linen as nn
import jax


class Net(nn.Module):  # hidden width fixed in code: no hidden_sizes in its config
    hidden: int = 8

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(self.hidden)(x)))[:, 0]


def two_layer(params, x):  # a plain JAX function with a dense chain w1 -> w2
    return (jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"])[:, 0]
"""


def test_magnitude_pruning_zeros_exactly_the_smallest_half():
    w = np.array([[0.1, -5.0, 0.3], [-0.2, 4.0, 0.05]], np.float32)
    got = np.asarray(magnitude_prune(w))
    np.testing.assert_array_equal(got, np.array([[0.0, -5.0, 0.3], [0.0, 4.0, 0.0]], np.float32))


def test_two_of_four_keeps_the_two_largest_of_every_four_along_the_input_axis():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(10, 3)).astype(np.float32)  # 2 whole runs of 4 + a trailing run of 2
    got = np.asarray(two_of_four(w, axis=0))
    for start in (0, 4):
        block, kept = w[start:start + 4], got[start:start + 4]
        assert (np.count_nonzero(kept, axis=0) == 2).all()
        for col in range(3):
            top2 = set(np.argsort(-np.abs(block[:, col]))[:2])
            assert set(np.flatnonzero(kept[:, col])) == top2
    np.testing.assert_array_equal(got[8:], w[8:])  # a run shorter than 4 is left whole


def _zero_pruned_neurons(params, chain, small):
    """The f32 params with the removed neurons' outgoing rows set to 0: the same function as the shrunk model."""
    from flax import traverse_util

    flat, small_flat = traverse_util.flatten_dict(params), traverse_util.flatten_dict(small)
    out = {k: np.array(v) for k, v in flat.items()}
    rows = None  # the kept inputs of the layer: all for the first
    for (k_in, _), (k_out, _) in zip(chain[:-1], chain[1:]):
        w_in, kept_in = out[k_in], np.asarray(small_flat[k_in])
        w_in = w_in if rows is None else w_in[rows]
        kept = [j for j in range(w_in.shape[1]) if any(np.array_equal(w_in[:, j], kept_in[:, i])
                                                       for i in range(kept_in.shape[1]))]
        assert len(kept) == kept_in.shape[1]
        removed = sorted(set(range(w_in.shape[1])) - set(kept))
        out[k_out][removed, :] = 0.0
        rows = kept
    return traverse_util.unflatten_dict(out)


def _check_neurons_removed(model, params, x):
    fn32, p32 = variant_model("f32", model, params)
    fn, small = variant_model("prune-neurons", model, params)
    chain = dense_chain(model, params)
    flat_small = dict(zip(map(tuple, [k for k, _ in chain]), [None] * len(chain)))
    assert flat_small  # a chain was found
    np.testing.assert_allclose(np.asarray(fn(small, x)), np.asarray(fn32(_zero_pruned_neurons(params, chain, small), x)),
                               rtol=1e-5, atol=1e-6)
    info, base = variant_info("prune-neurons", small), variant_info("f32", p32)
    assert info.param_bytes < base.param_bytes
    return small


def test_neuron_pruning_of_the_builtin_mlp_shrinks_each_hidden_layer_by_a_quarter(small_config, trained_params,
                                                                                   make_data):
    x = make_data(256, seed=3)[0]
    small = _check_neurons_removed(small_config, trained_params, x)
    p = small["params"]
    assert p["dense_0"]["kernel"].shape == (small_config.num_features, 6) and p["dense_1"]["kernel"].shape == (6, 3)
    assert p["head"]["kernel"].shape == (3, 1) and p["dense_0"]["bias"].shape == (6,)
    template = variant_params_template("prune-neurons", small_config, trained_params)
    assert template["params"]["dense_1"]["kernel"].shape == (6, 3)


def test_a_plain_function_gets_every_pruned_variant(tmp_path):
    (tmp_path / "acme_prune.py").write_text(USER_CODE)
    model = load_model("acme_prune:two_layer", {"task": "regression"}, num_features=5, code_dir=tmp_path)
    rng = np.random.default_rng(1)
    params = {"w1": rng.normal(size=(5, 12)).astype(np.float32), "b1": rng.normal(size=12).astype(np.float32),
              "w2": rng.normal(size=(12, 1)).astype(np.float32), "b2": np.zeros(1, np.float32)}
    x = rng.normal(size=(64, 5)).astype(np.float32)
    small = _check_neurons_removed(model, params, x)
    assert small["w1"].shape == (5, 9) and small["b1"].shape == (9,) and small["w2"].shape == (9, 1)
    _, p50 = variant_model("prune-50", model, params)
    assert np.count_nonzero(p50["w1"]) == 30 and np.count_nonzero(p50["w2"]) == 6
    np.testing.assert_array_equal(p50["b1"], params["b1"])  # vectors are not pruned
    _, p24 = variant_model("prune-2of4", model, params)
    assert np.count_nonzero(p24["w2"]) == 6  # 12 inputs -> 3 runs of 4, 2 kept each


def test_a_flax_module_without_hidden_sizes_gets_the_unstructured_variants_and_a_reason_for_neurons(tmp_path):
    (tmp_path / "acme_prune.py").write_text(USER_CODE)
    model = load_model("acme_prune:Net", {}, num_features=4, code_dir=tmp_path)
    x = np.ones((2, 4), np.float32)
    params = model.module.init(jax.random.PRNGKey(0), x)
    _, p50 = variant_model("prune-50", model, params)
    assert nonzero_fraction(p50["params"]["Dense_0"]["kernel"]) == 0.5
    np.testing.assert_array_equal(p50["params"]["Dense_0"]["bias"], params["params"]["Dense_0"]["bias"])
    with pytest.raises(ValueError, match="hidden widths in its config as 'hidden_sizes'") as e:
        variant_model("prune-neurons", model, params)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("variant", PRUNED_VARIANTS)
def test_a_pruned_artifact_runs_its_pure_function(small_config, trained_params, make_data, variant):
    x = make_data(300, seed=4)[0]
    blob, vparams = export_variant(variant, small_config, trained_params, platforms=("cpu",))
    got = score_bucketed(load_exported(blob), vparams, x, buckets=(1, 64, 1024))
    fn, _ = variant_model(variant, small_config, trained_params)
    np.testing.assert_allclose(got, np.asarray(jax.jit(fn)(vparams, x)), rtol=1e-6, atol=1e-6)
    info = variant_info(variant, vparams)
    if variant == "prune-neurons":
        assert info.nonzero_fraction > 0.9  # smaller matrices, not zeros
    else:
        kernels = [vparams["params"][k]["kernel"] for k in ("dense_0", "dense_1")]
        # 2:4 along 6 inputs: one run of 4 (2 kept) and a run of 2 kept whole
        want = [0.5, 0.5] if variant == "prune-50" else [4 / 6, 0.5]
        assert [round(nonzero_fraction(k), 3) for k in kernels] == [round(w, 3) for w in want]
