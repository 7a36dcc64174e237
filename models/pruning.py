"""Pruned variants of a model version: magnitude pruning beside the precision variants.

Three kinds, each post-training and generic over models that are a Flax module or a plain JAX function:

- ``prune-50``: unstructured magnitude pruning. In every matmul weight the 50% of entries with the smallest
  magnitude become 0. The weight stays a dense float32 array of the same shape, so the exported program, its
  argument memory and its speed on CPU/TPU are those of f32: XLA's dense kernels multiply the zeros like any other
  number. What it buys is a weight that compresses (about half the nonzeros; ``nonzero_fraction`` in the compile
  report) and a measure of how much of the model the task needs.
- ``prune-2of4``: 2:4 structured sparsity. In every run of 4 consecutive weights along a matmul weight's
  contracting (input) axis the 2 smallest become 0 (a trailing run of fewer than 4 is left as is). This is the
  pattern NVIDIA's sparse tensor cores run at up to twice the speed; XLA on CPU and TPU has no 2:4 kernel, so here
  it is stored and run dense like ``prune-50``.
- ``prune-neurons``: whole-neuron pruning of a chain of dense layers, which really shrinks the matrices: in each
  hidden layer the 25% of neurons with the smallest ``|incoming column| * |outgoing row|`` are removed (their
  kernel column, bias entry and the next kernel's row), so the artifact's params, its FLOPs and its argument memory
  shrink. It needs the params to be one chain of 2-axis weights ``[num_features, h1] -> [h1, h2] -> ... -> [hk, 1]``
  in name order (natural sort, e.g. ``dense_0 .. dense_9, head`` or ``w1, w2``); a Flax module must also declare
  its hidden widths in the config as ``hidden_sizes`` (the built-in MLP does) so it can be built at the smaller
  sizes; a plain JAX function reads them from the params. Activations between the layers must be elementwise.
  Any other model gets a one-line reason and no such variant (the compile gate reports it; f32 still stands).

The matmul weights of a Flax module are the ones qwix's PTQ plan finds (the params that reach a ``dot_general``,
with their contracting axes, as for int8); of a plain function, every float param of two or more axes (contracting
axis: the second to last, the input axis of ``[.., in, out]``). Every function here is written with ``jax.numpy``
on static shapes, so it runs on shape-only params too (``jax.eval_shape``: the compile child process and the
params template never materialise weights).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

PRUNED_VARIANTS: tuple[str, ...] = ("prune-50", "prune-2of4", "prune-neurons")
UNSTRUCTURED_FRACTION = 0.5
NEURON_FRACTION = 0.25

DESCRIPTIONS = {
    "prune-50": ("Unstructured magnitude pruning: the 50% smallest-magnitude entries of every matmul weight are 0; "
                 "stored and run dense (same size and speed as f32 on CPU/TPU), half the nonzeros."),
    "prune-2of4": ("2:4 structured magnitude pruning along each matmul weight's input axis (2 of every 4 kept); "
                   "stored and run dense here: XLA on CPU/TPU has no 2:4 sparse kernel."),
    "prune-neurons": ("Whole-neuron pruning of the dense chain: 25% of each hidden layer's neurons (smallest "
                      "|in| x |out| norm) removed, so the matrices, FLOPs and argument memory shrink."),
}

Path = tuple[str, ...]


def _floating(a: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(a), jnp.floating)


def matmul_weights(config: Any, params: Any, weight_plan: Callable[[Any], dict]) -> dict[Path, int]:
    """Param path -> the contracting (input) axis, for every matmul weight of the model (``weight_plan``: qwix's
    plan of a Flax module's matmul weights, ``models.variants._int8_plan``)."""
    from models.code_model import CodeModel

    flat = traverse_util.flatten_dict(params)
    if isinstance(config, CodeModel) and config.module is None:
        return {p: np.ndim(a) - 2 for p, a in flat.items() if np.ndim(a) >= 2 and _floating(a)}
    weights = {}
    for path, leaf in weight_plan(config).items():
        if path not in flat:
            raise ValueError(f"params lack a weight the model uses: {'/'.join(path)}")
        if tuple(leaf.shape) != tuple(np.shape(flat[path])):
            continue  # reshaped inside the module before its matmul: its input axis is not known here; left as is
        kept = set(leaf.how.channelwise_axes)
        contracting = [ax for ax in range(len(leaf.shape)) if ax not in kept]
        if contracting:
            weights[path] = contracting[-1]
    return weights


def magnitude_prune(w: jax.Array, fraction: float = UNSTRUCTURED_FRACTION) -> jax.Array:
    """``w`` with exactly ``floor(fraction * size)`` of its smallest-magnitude entries set to 0."""
    n = int(np.floor(fraction * int(np.prod(np.shape(w)))))
    if n == 0:
        return w
    flat = jnp.ravel(w)
    drop = jnp.argsort(jnp.abs(flat), stable=True)[:n]
    return flat.at[drop].set(0).reshape(jnp.shape(w))


def two_of_four(w: jax.Array, axis: int) -> jax.Array:
    """``w`` with the 2 smallest-magnitude of every 4 consecutive entries along ``axis`` set to 0 (a trailing run
    of fewer than 4 is kept whole)."""
    moved = jnp.moveaxis(w, axis, 0)
    size = moved.shape[0]
    whole = size - size % 4
    if whole == 0:
        return w
    head = moved[:whole].reshape((whole // 4, 4) + moved.shape[1:])
    rank = jnp.argsort(jnp.argsort(-jnp.abs(head), axis=1, stable=True), axis=1, stable=True)  # 0 = largest
    head = jnp.where(rank < 2, head, 0).reshape((whole,) + moved.shape[1:])
    return jnp.moveaxis(jnp.concatenate([head, moved[whole:]], axis=0), 0, axis)


def _natural(path: Path) -> list:
    return [[int(t) if t.isdigit() else t for t in re.split(r"(\d+)", part)] for part in path]


def _chain_order(kernels: list[Path], shapes: dict[Path, tuple], num_features: int | None) -> list[Path]:
    """``kernels`` in chain order: by name when the names chain (``dense_0, dense_1, head``), else by shapes when
    each next layer is the only one taking the last one's width (Flax names ``Dense_0`` in creation order, which
    need not be the order the layers run in); else as named (and refused by the caller)."""
    def chains(order):
        return all(shapes[a][1] == shapes[b][0] for a, b in zip(order, order[1:]))

    if chains(kernels) or num_features is None:
        return kernels
    order, left, width = [], list(kernels), num_features
    while left:
        nxt = [k for k in left if shapes[k][0] == width]
        if len(nxt) != 1:
            return kernels
        order.append(nxt[0])
        left.remove(nxt[0])
        width = shapes[nxt[0]][1]
    return order


def dense_chain(config: Any, params: Any) -> list[tuple[Path, Path | None]]:
    """The model's dense layers in order, as ``(kernel path, bias path or None)``; ValueError (one line) when the
    params are not one chain ``[num_features, h1] -> ... -> [hk, out]``."""
    flat = traverse_util.flatten_dict(params)
    num_features = getattr(config, "num_features", None)
    kernels = _chain_order(sorted((p for p, a in flat.items() if np.ndim(a) == 2 and _floating(a)), key=_natural),
                           {p: tuple(np.shape(a)) for p, a in flat.items()}, num_features)
    shapes = [tuple(np.shape(flat[p])) for p in kernels]
    chained = len(kernels) >= 2 and all(shapes[i][1] == shapes[i + 1][0] for i in range(len(shapes) - 1))
    if not chained or (num_features is not None and shapes[0][0] != num_features):
        raise ValueError("prune-neurons needs the params to be one chain of dense layers [num_features, h1] -> "
                         f"[h1, h2] -> ... in name order; found 2-axis weights {dict(zip(map('/'.join, kernels), shapes))}")
    others = [p for p, a in flat.items() if np.ndim(a) >= 2 and p not in kernels]
    if others:
        raise ValueError(f"prune-neurons needs a plain dense chain; the params also hold {['/'.join(p) for p in others[:3]]}")
    chain = []
    for path, shape in zip(kernels, shapes):
        siblings = [p for p, a in flat.items() if p[:-1] == path[:-1] and np.ndim(a) == 1 and np.shape(a) == (shape[1],)]
        named = [p for p in siblings if p[-1] in ("bias", "b") or p[-1] == re.sub(r"^(kernel|w|weight)", "b", path[-1])]
        chain.append((path, (named or siblings)[0] if len(named or siblings) == 1 else None))
    return chain


def _declared_widths(config: Any) -> list[int] | None:
    """A Flax module's hidden widths from its config (None for a plain function: it reads them from the params)."""
    from models.code_model import CodeModel

    if isinstance(config, CodeModel):
        if config.module is None:
            return None
        declared = config.config.get("hidden_sizes")
    else:
        declared = getattr(config, "hidden_sizes", None)
    if declared is None:
        raise ValueError("prune-neurons needs a Flax module's hidden widths in its config as 'hidden_sizes' "
                         "(to build it at the smaller widths); this config has none")
    return [int(w) for w in declared]


def prune_neurons(config: Any, params: Any, fraction: float = NEURON_FRACTION) -> tuple[Any, Any]:
    """``(config at the smaller widths, params with the weakest neurons of every hidden layer removed)``."""
    chain = dense_chain(config, params)
    flat = dict(traverse_util.flatten_dict(params))
    widths = [int(np.shape(flat[k])[1]) for k, _ in chain[:-1]]
    declared = _declared_widths(config)
    if declared is not None and declared != widths:
        raise ValueError(f"prune-neurons: the config's hidden_sizes {declared} are not the dense chain's hidden widths "
                         f"{widths}")
    kept_widths = []
    for i, h in enumerate(widths):
        keep_n = max(1, h - int(np.floor(fraction * h)))
        (k_in, b_in), (k_out, _) = chain[i], chain[i + 1]
        w_in, w_out = jnp.asarray(flat[k_in]), jnp.asarray(flat[k_out])
        score = jnp.linalg.norm(w_in, axis=0) * jnp.linalg.norm(w_out, axis=1)
        keep = jnp.sort(jnp.argsort(-score, stable=True)[:keep_n])
        flat[k_in], flat[k_out] = jnp.take(w_in, keep, axis=1), jnp.take(w_out, keep, axis=0)
        if b_in is not None:
            flat[b_in] = jnp.take(jnp.asarray(flat[b_in]), keep, axis=0)
        kept_widths.append(keep_n)
    if declared is None:
        new_config = config
    elif hasattr(config, "config"):  # a CodeModel: config keys are JSON
        new_config = config.replace(hidden_sizes=kept_widths)
    else:
        new_config = config.replace(hidden_sizes=tuple(kept_widths))
    return new_config, traverse_util.unflatten_dict(flat)


def pruned_model(variant: str, config: Any, params: Any,
                 model_output: Callable[[Any, Any, jax.Array], jax.Array],
                 weight_plan: Callable[[Any], dict]) -> tuple[Callable, Any]:
    """``(predict(variant_params, x), variant_params)`` of one pruned variant (see the module docstring)."""
    if variant == "prune-neurons":
        small_config, small_params = prune_neurons(config, params)

        def predict(p, x):
            return model_output(small_config, p, x)

        return predict, small_params
    prune = (lambda w, axis: magnitude_prune(w)) if variant == "prune-50" else two_of_four
    weights = matmul_weights(config, params, weight_plan)
    flat = dict(traverse_util.flatten_dict(params))
    for path, axis in weights.items():
        flat[path] = prune(jnp.asarray(flat[path]), axis)

    def predict(p, x):
        return model_output(config, p, x)

    return predict, traverse_util.unflatten_dict(flat)


def nonzero_fraction(variant_params: Any) -> float:
    """Share of the params' entries that are not 0 (1.0 for a dense model)."""
    leaves = [np.asarray(a) for a in jax.tree.leaves(variant_params)]
    total = sum(a.size for a in leaves)
    return float(sum(int(np.count_nonzero(a)) for a in leaves) / total) if total else 1.0
