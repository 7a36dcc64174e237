"""MLP with one output per row (flax.linen, so ``apply(params, x)`` is a pure function
that ``jax.export`` can serialize with params as call arguments): a binary classifier's
logit or, with ``MLPConfig(task="regression")``, the predicted value."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from models.config import MLPConfig

_ACTIVATIONS = {
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "tanh": nn.tanh,
    "elu": nn.elu,
}


class MLPClassifier(nn.Module):
    """Dense stack -> a linear Dense(1) head: one output per row.

    The head is linear for both tasks; what the output means is ``config.task``'s:
    a logit (classification; ``models.export.predict`` applies the sigmoid) or the
    predicted value (regression; returned as is).

    Params are float32 regardless of ``config.dtype`` (only the compute dtype
    changes), so params files and exported signatures don't depend on precision.
    """

    config: MLPConfig

    @nn.compact
    def __call__(self, x):
        """Head outputs.

        Args:
          x: f32[batch, num_features] standardized feature matrix.

        Returns:
          f32[batch]: logits (pre-sigmoid) for classification, predicted values for regression.
        """
        cfg = self.config
        dtype = jnp.dtype(cfg.dtype)
        act = _ACTIVATIONS[cfg.activation]
        h = jnp.asarray(x, dtype)
        for i, width in enumerate(cfg.hidden_sizes):
            h = act(nn.Dense(width, dtype=dtype, param_dtype=jnp.float32, name=f"dense_{i}")(h))
        out = nn.Dense(1, dtype=dtype, param_dtype=jnp.float32, name="head")(h)
        return out[:, 0].astype(jnp.float32)
