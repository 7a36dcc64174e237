"""Model configs (the architecture registry that builds modules from them: models/architectures.py).

Configs are frozen dataclasses (as in the Flax examples): hashable, so a config is a
valid static argument to ``jax.jit``, and variants are derived with ``.replace``.
This module imports no JAX and no architecture, so ``import models`` stays cheap and
every architecture module can import its config from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Names only: the mapping to jax functions lives in models.mlp, so validating a
# config never needs jax.
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "silu", "tanh", "elu")
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
# What the one output per row means: a logit (classification: the artifact returns
# sigmoid(logit) = P(y=1)) or the predicted value itself (regression: linear head).
TASKS: tuple[str, ...] = ("classification", "regression")


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
      task: one of ``TASKS``: ``"classification"`` (the head's output is a logit,
        trained with sigmoid BCE) or ``"regression"`` (the head's linear output is the
        predicted value, trained with MSE). Configs saved without it are classifiers.
    """

    num_features: int
    hidden_sizes: tuple[int, ...] = (32, 16)
    activation: str = "relu"
    dtype: str = "float32"
    task: str = "classification"

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
        _check_task(self.task)

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


def _check_dtype(value: Any) -> None:
    if value not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {value!r}")


def _check_task(value: Any) -> None:
    if value not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {value!r}")


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {unknown}; known: {sorted(known)}")
    if "num_features" not in d:
        raise ValueError(f"{cls.__name__} requires num_features")
    return cls(**d)


@dataclass(frozen=True)
class FTTransformerConfig:
    """Config of :class:`models.ft_transformer.FTTransformerClassifier`.

    FT-Transformer (Gorishniy et al. 2021): every feature becomes a token, a [CLS]
    token is prepended, and pre-norm transformer blocks run over the
    ``num_features + 1`` tokens. Params are about ``num_layers * (4 + 2 * mlp_ratio)
    * d_model**2``; attention activations grow with ``batch * num_heads *
    (num_features + 1)**2``.

    Attributes:
      num_features: width of the input feature matrix (``FeatureSpec.num_features``).
      d_model: token width.
      num_layers: transformer blocks.
      num_heads: attention heads; must divide ``d_model``.
      mlp_ratio: hidden width of each block's MLP is ``mlp_ratio * d_model``.
      dtype: compute dtype, one of ``DTYPES``; params stay float32 and logits are
        returned as float32 whatever this is.
      use_scan: run the blocks under ``nn.scan`` (params stacked on a leading
        ``num_layers`` axis under ``blocks``) instead of unrolled ``block_{i}``.
        Same function and param count; smaller program, but XLA's cost_analysis
        counts a scanned body once, not ``num_layers`` times.
      task: one of ``TASKS`` (see :class:`MLPConfig`).
    """

    num_features: int
    d_model: int = 32
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 2
    dtype: str = "float32"
    use_scan: bool = False
    task: str = "classification"

    def __post_init__(self):
        for name in ("num_features", "d_model", "num_layers", "num_heads", "mlp_ratio"):
            _positive_int(name, getattr(self, name))
        if self.d_model % self.num_heads:
            raise ValueError(f"num_heads must divide d_model, got num_heads={self.num_heads}, d_model={self.d_model}")
        _check_dtype(self.dtype)
        if not isinstance(self.use_scan, bool):
            raise ValueError(f"use_scan must be a bool, got {self.use_scan!r}")
        _check_task(self.task)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FTTransformerConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        return _from_dict(cls, d)

    def replace(self, **kw: Any) -> FTTransformerConfig:
        """A copy with fields overridden (validated again)."""
        return dataclasses.replace(self, **kw)


@dataclass(frozen=True)
class MoEConfig:
    """Config of :class:`models.moe.MoEClassifier`.

    Input Dense to ``d_model``, then ``num_layers`` Mixture-of-Experts feed-forward
    blocks, then a Dense(1) head. Dispatch is dense: every expert runs on every row
    and the top-k gates zero out the rest, so shapes are static (export, AOT) and
    FLOPs/activation memory scale with ``num_experts``, not ``top_k``.

    Attributes:
      num_features: width of the input feature matrix (``FeatureSpec.num_features``).
      d_model: width of the residual stream.
      num_experts: experts per block.
      top_k: experts each row is routed to, ``1 <= top_k <= num_experts``.
      expert_hidden: hidden width of each expert's two-layer MLP.
      num_layers: MoE blocks.
      dtype: compute dtype, one of ``DTYPES``; params stay float32 and logits are
        returned as float32 whatever this is (the router always runs in float32).
      task: one of ``TASKS`` (see :class:`MLPConfig`).
    """

    num_features: int
    d_model: int = 64
    num_experts: int = 4
    top_k: int = 2
    expert_hidden: int = 128
    num_layers: int = 1
    dtype: str = "float32"
    task: str = "classification"

    def __post_init__(self):
        for name in ("num_features", "d_model", "num_experts", "top_k", "expert_hidden", "num_layers"):
            _positive_int(name, getattr(self, name))
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k must be <= num_experts, got top_k={self.top_k}, num_experts={self.num_experts}")
        _check_dtype(self.dtype)
        _check_task(self.task)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MoEConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        return _from_dict(cls, d)

    def replace(self, **kw: Any) -> MoEConfig:
        """A copy with fields overridden (validated again)."""
        return dataclasses.replace(self, **kw)


ModelConfig = MLPConfig | FTTransformerConfig | MoEConfig
