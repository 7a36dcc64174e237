"""FT-Transformer binary classifier for tabular features (Gorishniy et al. 2021,
"Revisiting Deep Learning Models for Tabular Data"), in flax.linen.

Each standardized feature becomes a token, a learned [CLS] token is prepended, and
pre-norm transformer blocks mix the tokens; the logit is read off the [CLS] token.
Differences from the paper, all to keep it a plain deterministic inference
function: no dropout, GELU MLP instead of ReGLU, the first block keeps its
attention LayerNorm, numeric features only (categoricals arrive one-hot/encoded
by ``models.features``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.config import FTTransformerConfig


def _uniform_fan(d: int):
    # The paper's tokenizer init: U(-1/sqrt(d), 1/sqrt(d)).
    bound = d**-0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class FeatureTokenizer(nn.Module):
    """``x[b, f] -> weight[f, :] * x[b, f] + bias[f, :]``, one token per feature."""

    num_features: int
    d_model: int
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x):
        """f32[batch, num_features] -> dtype[batch, num_features, d_model]."""
        init = _uniform_fan(self.d_model)
        weight = self.param("weight", init, (self.num_features, self.d_model), jnp.float32)
        bias = self.param("bias", init, (self.num_features, self.d_model), jnp.float32)
        x = jnp.asarray(x, self.dtype)
        return x[:, :, None] * weight.astype(self.dtype) + bias.astype(self.dtype)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``h += MHA(LN(h)); h += MLP(LN(h))``."""

    config: FTTransformerConfig

    @nn.compact
    def __call__(self, h):
        """dtype[batch, tokens, d_model] -> same shape and dtype."""
        cfg = self.config
        dtype = jnp.dtype(cfg.dtype)
        a = nn.LayerNorm(dtype=dtype, param_dtype=jnp.float32, name="attn_norm")(h)
        a = nn.MultiHeadDotProductAttention(
            num_heads=cfg.num_heads,
            dtype=dtype,
            param_dtype=jnp.float32,
            # Softmax over bf16/f16 logits loses the small attention weights.
            force_fp32_for_softmax=True,
            deterministic=True,
            name="attn",
        )(a)
        h = h + a
        m = nn.LayerNorm(dtype=dtype, param_dtype=jnp.float32, name="mlp_norm")(h)
        m = nn.Dense(cfg.mlp_ratio * cfg.d_model, dtype=dtype, param_dtype=jnp.float32, name="mlp_in")(m)
        m = nn.Dense(cfg.d_model, dtype=dtype, param_dtype=jnp.float32, name="mlp_out")(nn.gelu(m))
        return h + m


class _ScannedBlock(TransformerBlock):
    # nn.scan wants (carry, x) -> (carry, y).
    def __call__(self, h, _):
        return super().__call__(h), None


class FTTransformerClassifier(nn.Module):
    """Feature tokens + [CLS] -> blocks -> LayerNorm -> ReLU -> Dense(1) on [CLS]
    (the paper's prediction head).

    Params are float32 regardless of ``config.dtype`` (only the compute dtype
    changes), so params files and exported signatures don't depend on precision.
    With ``config.use_scan`` the blocks' params are stacked on a leading
    ``num_layers`` axis under ``blocks``; otherwise they are ``block_0`` ...
    """

    config: FTTransformerConfig

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
        tokens = FeatureTokenizer(cfg.num_features, cfg.d_model, dtype, name="tokenizer")(x)
        cls = self.param("cls", _uniform_fan(cfg.d_model), (cfg.d_model,), jnp.float32)
        cls = jnp.broadcast_to(cls.astype(dtype), (tokens.shape[0], 1, cfg.d_model))
        h = jnp.concatenate([cls, tokens], axis=1)  # [batch, 1 + num_features, d_model]
        if cfg.use_scan:
            blocks = nn.scan(
                _ScannedBlock,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                length=cfg.num_layers,
            )
            h, _ = blocks(cfg, name="blocks")(h, None)
        else:
            for i in range(cfg.num_layers):
                h = TransformerBlock(cfg, name=f"block_{i}")(h)
        h = nn.LayerNorm(dtype=dtype, param_dtype=jnp.float32, name="final_norm")(h[:, 0])
        logits = nn.Dense(1, dtype=dtype, param_dtype=jnp.float32, name="head")(nn.relu(h))
        return logits[:, 0].astype(jnp.float32)
