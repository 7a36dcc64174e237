"""Model configs and the architecture registry.

Configs are frozen dataclasses (as in the Flax examples): hashable, so a config is a
valid static argument to ``jax.jit``, and variants are derived with ``.replace``.
This module imports no JAX so ``import models`` stays cheap; builders import the
Flax module lazily.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

# Names only: the mapping to jax functions lives in models.mlp, so validating a
# config never needs jax.
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "silu", "tanh", "elu")
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")


def _positive_int(field: str, value: Any) -> int:
    # bool is an int subclass; True as a layer width is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{field} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True)
class MLPConfig:
    """Config of :class:`models.mlp.MLPClassifier`.

    Attributes:
      num_features: width of the input feature matrix (``FeatureSpec.num_features``).
      hidden_sizes: width of each hidden Dense layer, input to output.
      activation: hidden activation, one of ``ACTIVATIONS``.
      dtype: compute dtype, one of ``DTYPES``; params stay float32 and logits are
        returned as float32 whatever this is.
    """

    num_features: int
    hidden_sizes: tuple[int, ...] = (32, 16)
    activation: str = "relu"
    dtype: str = "float32"

    def __post_init__(self):
        _positive_int("num_features", self.num_features)
        if isinstance(self.hidden_sizes, (str, bytes)) or not hasattr(self.hidden_sizes, "__iter__"):
            raise ValueError(f"hidden_sizes must be a sequence of positive ints, got {self.hidden_sizes!r}")
        # JSON gives lists; a tuple keeps the config hashable.
        sizes = tuple(self.hidden_sizes)
        for i, s in enumerate(sizes):
            _positive_int(f"hidden_sizes[{i}]", s)
        object.__setattr__(self, "hidden_sizes", sizes)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``hidden_sizes`` as a list)."""
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MLPConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown MLPConfig keys: {unknown}; known: {sorted(known)}")
        if "num_features" not in d:
            raise ValueError("MLPConfig requires num_features")
        return cls(**d)

    def replace(self, **kw: Any) -> MLPConfig:
        """A copy with fields overridden (validated again)."""
        return dataclasses.replace(self, **kw)


def _build_mlp(config: MLPConfig):
    from models.mlp import MLPClassifier

    return MLPClassifier(config=config)


# name -> (config class, builder(config) -> flax module)
ARCHITECTURES: dict[str, tuple[type, Callable[[Any], Any]]] = {
    "mlp": (MLPConfig, _build_mlp),
}


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
