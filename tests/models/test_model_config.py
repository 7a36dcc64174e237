import json
import subprocess
import sys

import pytest

from models.architectures import ARCHITECTURES, build_model
from models.config import MLPConfig


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_features": 0}, "num_features"),
        ({"num_features": -3}, "num_features"),
        ({"num_features": 2.5}, "num_features"),
        ({"num_features": True}, "num_features"),
        ({"num_features": 4, "hidden_sizes": (0,)}, r"hidden_sizes\[0\]"),
        ({"num_features": 4, "hidden_sizes": (8, -1)}, r"hidden_sizes\[1\]"),
        ({"num_features": 4, "hidden_sizes": (8, True)}, r"hidden_sizes\[1\]"),
        ({"num_features": 4, "hidden_sizes": "32"}, "hidden_sizes"),
        ({"num_features": 4, "activation": "sigmoidish"}, "activation"),
        ({"num_features": 4, "dtype": "int8"}, "dtype"),
    ],
)
def test_invalid_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MLPConfig(**kwargs)


@pytest.mark.parametrize(
    "d, message",
    [
        ({"num_features": 4, "hiden_sizes": [8]}, "hiden_sizes"),
        ({"num_features": 4, "lr": 1, "zz": 2}, r"\['lr', 'zz'\]"),
        ({"hidden_sizes": [8]}, "num_features"),
    ],
)
def test_from_dict_rejects_bad_keys(d, message):
    with pytest.raises(ValueError, match=message):
        MLPConfig.from_dict(d)


def test_dict_round_trip_through_json():
    cfg = MLPConfig(num_features=7, hidden_sizes=(5, 3, 2), activation="gelu", dtype="bfloat16")
    back = MLPConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    assert isinstance(back.hidden_sizes, tuple)
    assert hash(back) == hash(cfg)


def test_replace_revalidates():
    cfg = MLPConfig(num_features=3)
    assert cfg.replace(hidden_sizes=[4]).hidden_sizes == (4,)
    assert cfg.hidden_sizes == (32, 16)
    with pytest.raises(ValueError, match="activation"):
        cfg.replace(activation="nope")


def test_config_is_a_valid_static_jit_arg():
    import jax
    import jax.numpy as jnp

    width = jax.jit(lambda x, cfg: x * cfg.num_features, static_argnums=1)
    assert float(width(jnp.float32(2.0), MLPConfig(num_features=3))) == 6.0


def test_build_model_known_and_unknown():
    from models.mlp import MLPClassifier

    cfg, module = build_model("mlp", {"num_features": 5, "hidden_sizes": [3]})
    assert cfg == MLPConfig(num_features=5, hidden_sizes=(3,))
    assert isinstance(module, MLPClassifier) and module.config == cfg
    with pytest.raises(ValueError, match=r"unknown architecture 'transformer'.*\['ft_transformer', 'mlp', 'moe'\]"):
        build_model("transformer", {"num_features": 5})
    assert set(ARCHITECTURES) == {"mlp", "ft_transformer", "moe"}


def test_importing_models_does_not_import_jax():
    code = "import sys, models; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
