"""The architecture registry: a name -> (config class, builder of the Flax module).

Configs live in models/config.py, modules in models/<arch>.py; this module sits above
both, so neither imports it back. Builders import the Flax module lazily: looking up or
validating a config needs no JAX.
"""

from __future__ import annotations

from typing import Any, Callable

from models.config import FTTransformerConfig, MLPConfig, MoEConfig


def _build_mlp(config: MLPConfig):
    from models.mlp import MLPClassifier

    return MLPClassifier(config=config)


def _build_ft_transformer(config: FTTransformerConfig):
    from models.ft_transformer import FTTransformerClassifier

    return FTTransformerClassifier(config=config)


def _build_moe(config: MoEConfig):
    from models.moe import MoEClassifier

    return MoEClassifier(config=config)


# name -> (config class, builder(config) -> flax module)
ARCHITECTURES: dict[str, tuple[type, Callable[[Any], Any]]] = {
    "mlp": (MLPConfig, _build_mlp),
    "ft_transformer": (FTTransformerConfig, _build_ft_transformer),
    "moe": (MoEConfig, _build_moe),
}


def arch_name(config: Any) -> str:
    """Registered architecture name of a config instance (e.g. ``"moe"``).

    Raises:
      ValueError: the config's type is not registered.
    """
    for name, (config_cls, _) in ARCHITECTURES.items():
        if type(config) is config_cls:
            return name
    raise ValueError(f"no registered architecture for config type {type(config).__name__}")


def module_for(config: Any):
    """The Flax module of a registered config instance (the inverse lookup of
    :func:`build_model`, for code that holds a config rather than an arch name), or of a
    model given by code (``models.code_model.CodeModel``, duck-typed: its ``module``).

    Raises:
      ValueError: a model given by code that is a plain function, with no Flax module.
    """
    if hasattr(config, "ref") and hasattr(config, "module"):
        module = config.module
        if module is None:
            raise ValueError(f"model {config.ref} is a plain JAX function, not a Flax module")
        return module
    return ARCHITECTURES[arch_name(config)][1](config)


# The built-ins as models given by code (models/code_model.py): ``--arch mlp`` is ``--model models.architectures:mlp``,
# a factory from the config dict to the Flax module, like a user's ``build(config)``.
def mlp(config: dict[str, Any]):
    """Factory of the built-in MLP: config dict (``MLPConfig`` fields) -> Flax module."""
    return build_model("mlp", config)[1]


def ft_transformer(config: dict[str, Any]):
    """Factory of the built-in FT-Transformer: config dict (``FTTransformerConfig`` fields) -> Flax module."""
    return build_model("ft_transformer", config)[1]


def moe(config: dict[str, Any]):
    """Factory of the built-in Mixture-of-Experts: config dict (``MoEConfig`` fields) -> Flax module."""
    return build_model("moe", config)[1]


def build_model(arch: str, config_dict: dict[str, Any]):
    """Build ``(config, module)`` for a registered architecture from a plain dict.

    Raises:
      ValueError: unknown ``arch`` (the message lists the known ones) or an
        invalid/unknown config key.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    config_cls, builder = ARCHITECTURES[arch]
    config = config_cls.from_dict(config_dict)
    return config, builder(config)
