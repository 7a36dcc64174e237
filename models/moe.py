"""Mixture-of-Experts feed-forward binary classifier, in flax.linen.

Dispatch is dense: every expert runs on every row (one einsum over the stacked
expert weights) and the top-k gate weights, zero for unchosen experts, combine
the outputs. That wastes ``num_experts / top_k`` of the expert FLOPs but keeps
every shape static, so the model exports with a symbolic batch and AOT-compiles
without capacity factors, token dropping or sorts; for HBM-pressure compile
reports the dense ``[batch, num_experts, expert_hidden]`` activation is the point.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.config import MoEConfig


def top_k_gates(router_logits: jax.Array, top_k: int) -> jax.Array:
    """Sparse gate weights from router logits.

    Softmax over experts, keep the ``top_k`` largest per row, zero the rest. With
    ``top_k > 1`` the kept weights are renormalised to sum to 1. With ``top_k == 1``
    the raw softmax probability is kept (as in Switch Transformer): renormalising
    would make the gate exactly 1.0 and leave the router with no gradient.

    Args:
      router_logits: f32[batch, num_experts].
      top_k: experts kept per row, ``1 <= top_k <= num_experts``.

    Returns:
      f32[batch, num_experts], exactly ``top_k`` nonzeros per row (ties broken
      towards the lower expert index).
    """
    probs = jax.nn.softmax(router_logits.astype(jnp.float32), axis=-1)
    _, idx = jax.lax.top_k(probs, top_k)  # [batch, top_k]
    mask = jax.nn.one_hot(idx, probs.shape[-1], dtype=probs.dtype).sum(axis=-2)
    gates = probs * mask
    if top_k > 1:
        gates = gates / gates.sum(axis=-1, keepdims=True)
    return gates


class MoEBlock(nn.Module):
    """``h = LayerNorm(h + sum_e gate[b, e] * expert_e(h))``, experts GELU MLPs."""

    config: MoEConfig

    @nn.compact
    def __call__(self, h):
        """dtype[batch, d_model] -> same shape and dtype."""
        cfg = self.config
        dtype = jnp.dtype(cfg.dtype)
        e, d, f = cfg.num_experts, cfg.d_model, cfg.expert_hidden
        # Router in float32: top-k selection is a discontinuity, and bf16 logits
        # flip near-ties between experts.
        router_logits = nn.Dense(e, dtype=jnp.float32, param_dtype=jnp.float32, name="router")(h)
        gates = top_k_gates(router_logits, cfg.top_k).astype(dtype)

        # Per expert: fan_in is d (or f), not num_experts * d.
        init = nn.initializers.variance_scaling(
            1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1, batch_axis=(0,)
        )
        w_in = self.param("w_in", init, (e, d, f), jnp.float32).astype(dtype)
        b_in = self.param("b_in", nn.initializers.zeros, (e, f), jnp.float32).astype(dtype)
        w_out = self.param("w_out", init, (e, f, d), jnp.float32).astype(dtype)
        b_out = self.param("b_out", nn.initializers.zeros, (e, d), jnp.float32).astype(dtype)

        hidden = nn.gelu(jnp.einsum("bd,edf->bef", h, w_in) + b_in)  # [batch, experts, hidden]
        out = jnp.einsum("bef,efd->bed", hidden, w_out) + b_out  # [batch, experts, d_model]
        moe = jnp.einsum("be,bed->bd", gates, out)
        return nn.LayerNorm(dtype=dtype, param_dtype=jnp.float32, name="norm")(h + moe)


class MoEClassifier(nn.Module):
    """Dense(d_model) -> ``num_layers`` x :class:`MoEBlock` -> Dense(1).

    Params are float32 regardless of ``config.dtype`` (only the compute dtype
    changes), so params files and exported signatures don't depend on precision.
    """

    config: MoEConfig

    @nn.compact
    def __call__(self, x):
        """Logits.

        Args:
          x: f32[batch, num_features] standardized feature matrix.

        Returns:
          f32[batch] logits (pre-sigmoid).
        """
        cfg = self.config
        dtype = jnp.dtype(cfg.dtype)
        h = nn.Dense(cfg.d_model, dtype=dtype, param_dtype=jnp.float32, name="embed")(jnp.asarray(x, dtype))
        for i in range(cfg.num_layers):
            h = MoEBlock(cfg, name=f"moe_{i}")(h)
        logits = nn.Dense(1, dtype=dtype, param_dtype=jnp.float32, name="head")(h)
        return logits[:, 0].astype(jnp.float32)
