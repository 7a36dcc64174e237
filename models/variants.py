"""Precision variants of a model version: f32 (as trained), bf16 and int8 weight-only; and the pruned variants
of :mod:`models.pruning` (prune-50, prune-2of4, prune-neurons), made and exported the same way.

A variant is a pure ``predict(variant_params, x: f32[b, F]) -> f32[b]`` plus the
params it is called with. It is exported with the same conventions as
:func:`models.export.export_inference` (params are call *arguments*, batch is
symbolic, no source locations in the StableHLO), so an int8 artifact's argument
memory really is int8: its signature takes ``int8`` weights and ``f32`` scales,
not float weights quantized inside the program.

int8 is post-training, weight-only, and generic over architectures: for a Flax module, qwix's linen
PTQ provider (``qwix.quantize_model(module, qwix.PtqProvider(rules))``, shape-only
``init``) decides which params are matmul weights and their per-channel axes;
``qwix.quantize`` makes int8 values + float32 absmax scales; inside the program
``qwix.dequantize`` restores float weights and the *unmodified* model runs on them.
Biases, norms, embeddings and any weight not used in a matmul stay float32;
activations are never quantized. qwix's own apply-time interception is not used:
in qwix 0.1.8 it fails on ``self.param(...).astype(dtype)`` (``WithAux.astype``
on a ``QArray`` raises in ``update_boxed``), which ``models/moe.py`` does, and
dequantize-then-matmul is what its weight-only ``dot_general`` computes anyway.
A model that is a plain JAX function has no module for qwix to trace: every float
param of two or more axes is quantized per slice of its last axis instead
(:func:`_int8_function_model`).

Variant params are plain nested dicts of arrays (a quantized weight ``w`` becomes
``{"qvalue": int8[...], "scale": f32[...]}`` under the same path), so they
serialize with msgpack (:func:`variant_params_to_bytes`) and name themselves in
:func:`models.export.export_info`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, traverse_util
from jax import export as jax_export
from pydantic import BaseModel, ConfigDict, Field

from models.export import (
    _KNOWN_PLATFORMS,
    DEFAULT_PLATFORMS,
    _no_source_locations,
)
from models.export import predict as model_output  # the local "predict" programs below keep their exported name
from models.architectures import module_for
from models.code_model import CodeModel
from models.inputs import checked_input, example_input, input_spec, num_rows
from models.params_io import params_from_bytes
from models.pruning import DESCRIPTIONS as _PRUNED_DESCRIPTIONS
from models.pruning import PRUNED_VARIANTS, nonzero_fraction, pruned_model

PRECISION_VARIANTS: tuple[str, ...] = ("f32", "bf16", "int8")
VARIANTS: tuple[str, ...] = PRECISION_VARIANTS + PRUNED_VARIANTS

_DESCRIPTIONS = {
    "f32": "The model as trained: float32 params, the config's compute dtype.",
    "bf16": "Params cast to bfloat16 and bfloat16 compute (config dtype field); float32 outputs.",
    "int8": (
        "Weight-only int8 PTQ with qwix: matmul weights int8 with one float32 absmax scale per output "
        "channel, dequantized in the program; biases/norms/embeddings and activations stay float."
    ),
    **_PRUNED_DESCRIPTIONS,
}
_WEIGHT_DTYPES = {"f32": "float32", "bf16": "bfloat16", "int8": "int8", **{v: "float32" for v in PRUNED_VARIANTS}}

PredictFn = Callable[[Any, jax.Array], jax.Array]


class Variant(BaseModel):
    """Description of one precision variant, for the compile report and the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description=f"Variant name, one of {list(VARIANTS)}.")
    description: str = Field(description="How the variant's params and compute differ from f32.")
    weight_dtype: str = Field(description="Storage dtype of the matmul weights (kernels).")
    param_bytes: int = Field(description="Sum of the variant params' array sizes: the artifact's argument memory.")
    nonzero_fraction: float = Field(1.0, description="Share of the params' entries that are not 0 (pruned variants).")


class OutputError(BaseModel):
    """How far a variant's probabilities are from the f32 model's on the same rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str = Field(description="Variant compared against f32.")
    n_rows: int = Field(description="Rows scored.")
    max_abs_diff: float = Field(description="max |p_variant - p_f32| over rows.")
    mean_abs_diff: float = Field(description="mean |p_variant - p_f32| over rows.")


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
    return variant


def _x_spec(config: Any, batch: Any = 1) -> Any:
    return input_spec(config, batch)


def _spec(a: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a))


# --- int8 via qwix -----------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _qwix():
    import qwix  # noqa: PLC0415 - ~1 s import; only int8 needs it

    return qwix


def _int8_plan(config: Any) -> dict[tuple[str, ...], Any]:
    """Param path -> qwix's abstract quantized weight (compute shape + ``how``).

    qwix's linen PTQ provider decides at ``init`` time: a param that reaches a
    ``dot_general``/``einsum`` as an operand gets int8 with one scale per
    non-contracting axis (read from that op's dimension numbers): per output
    channel for a Dense kernel, per layer and output for a scanned stack, per
    expert and output for ``[experts, in, out]``. ``eval_shape`` keeps it shape-only.
    """
    qwix = _qwix()
    # One rule for every module: qwix only quantizes a matmul operand that is a
    # param, so this means "every matmul weight"; act_qtype stays None (weight-only).
    rules = [qwix.QuantizationRule(module_path=".*", weight_qtype="int8")]
    # Traced in float32: qwix recognises a weight by identity with the param, which
    # a compute-dtype cast like ``self.param(...).astype(bf16)`` would break.
    if hasattr(config, "dtype"):
        config = config.replace(dtype="float32")
    ptq = qwix.quantize_model(module_for(config), qwix.PtqProvider(rules))
    x = example_input(config)
    abstract = jax.eval_shape(ptq.init, jax.random.PRNGKey(0), x)
    return {
        path: leaf
        for path, leaf in traverse_util.flatten_dict(abstract).items()
        if hasattr(leaf, "how")  # qwix's (private) WithAux wrapper of a weight to quantize
    }


def _int8_function_model(config: Any, params: Any) -> tuple[PredictFn, dict]:
    """int8 of a model that is a plain JAX function (no Flax module for qwix to trace): every floating param of
    two or more axes (the matmul weights and embeddings of any ordinary model) becomes int8 with one float32 absmax
    scale per slice of its last axis (per output channel of an ``[in, out]`` weight), dequantized in the program;
    vectors (biases, norms) stay float32. Same stored layout as the qwix path (``{"qvalue", "scale"}``)."""
    flat = traverse_util.flatten_dict(params)
    plan = {path for path, a in flat.items() if np.ndim(a) >= 2 and jnp.issubdtype(jnp.result_type(a), jnp.floating)}

    @jax.jit
    def quantize(weights):
        out = {}
        for path, w in weights.items():
            w = w.astype(jnp.float32)
            scale = jnp.max(jnp.abs(w), axis=tuple(range(w.ndim - 1)), keepdims=True) / 127.0
            scale = jnp.where(scale == 0, 1.0, scale)
            out[(*path, "qvalue")] = jnp.clip(jnp.round(w / scale), -127, 127).astype(jnp.int8)
            out[(*path, "scale")] = scale
        return out

    quantized = quantize({path: jnp.asarray(flat[path]) for path in plan})
    quantized.update({path: leaf for path, leaf in flat.items() if path not in plan})
    dtypes = {path: jnp.result_type(flat[path]) for path in plan}

    def predict(params, x):
        vflat = traverse_util.flatten_dict(params)
        full = {path: leaf for path, leaf in vflat.items() if path[:-1] not in plan}
        for path in plan:
            full[path] = (vflat[(*path, "qvalue")].astype(jnp.float32) * vflat[(*path, "scale")]).astype(dtypes[path])
        return model_output(config, traverse_util.unflatten_dict(full), x)

    return predict, traverse_util.unflatten_dict(quantized)


def _int8_model(config: Any, params: Any) -> tuple[PredictFn, dict]:
    if isinstance(config, CodeModel) and config.module is None:
        return _int8_function_model(config, params)
    qwix = _qwix()
    plan = _int8_plan(config)
    flat = traverse_util.flatten_dict(params)
    shapes = {path: np.shape(a) for path, a in flat.items()}
    missing = sorted("/".join(p) for p in set(plan) - set(flat))
    if missing:
        raise ValueError(f"params lack weights the model uses: {missing[:5]}")

    def quantize(weights):
        # Same call qwix.quantize_params makes; the reshape is a no-op unless a
        # module reshapes its weight before the matmul.
        out = {}
        for path, w in weights.items():
            how = plan[path].how
            q = qwix.quantize(
                w.reshape(plan[path].shape),
                how.qtype,
                channelwise_axes=how.channelwise_axes,
                tiled_axes=how.tiled_axes,
                calibration_method=how.calibration_method,
            )
            out[(*path, "qvalue")], out[(*path, "scale")] = q.qvalue, q.scale
            if q.zero_point is not None:  # pragma: no cover - absmax is symmetric
                out[(*path, "zero_point")] = q.zero_point
        return out

    # One jit for all weights: eager, every op of every weight shape compiles on
    # its own, which costs seconds on a transformer.
    quantized = jax.jit(quantize)({path: jnp.asarray(flat[path]) for path in plan})
    quantized.update({path: leaf for path, leaf in flat.items() if path not in plan})

    def predict(params, x):
        # Dequantize then run the unmodified float model: the weights are int8 in
        # memory and XLA fuses convert*scale into the matmul operand, which is what
        # qwix's own weight-only dot_general does for float activations.
        vflat = traverse_util.flatten_dict(params)
        full = {}
        for path, shape in shapes.items():
            if path in plan:
                q = qwix.QArray(
                    qvalue=vflat[(*path, "qvalue")],
                    scale=vflat[(*path, "scale")],
                    zero_point=vflat.get((*path, "zero_point")),
                    qtype=plan[path].how.qtype,
                )
                full[path] = qwix.dequantize(q).reshape(shape)
            else:
                full[path] = vflat[path]
        return model_output(config, traverse_util.unflatten_dict(full), x)

    return predict, traverse_util.unflatten_dict(quantized)


@jax.jit
def _to_bfloat16(params: Any) -> Any:
    # jit: one compile for the whole tree instead of one eager convert per shape.
    return jax.tree.map(lambda a: a.astype(jnp.bfloat16) if jnp.issubdtype(a.dtype, jnp.floating) else a, params)


# --- public API --------------------------------------------------------------


def variant_model(variant: str, config: Any, params: Any) -> tuple[PredictFn, Any]:
    """The predict function and params of one precision variant.

    Args:
      variant: one of ``VARIANTS``.
      config: a registered model config (hashable; fixes the program).
      params: the f32 params pytree of ``config`` (``{"params": {...}}``).

    Returns:
      ``(predict_fn, variant_params)``: ``predict_fn(variant_params, x)`` maps
      f32[b, num_features] to f32[b] outputs (probabilities or values, by
      ``config.task``), is pure (params are an
      argument, not closed over) and exportable with a symbolic batch.
      ``variant_params`` is a nested dict of arrays: the f32 params unchanged for
      "f32"; every floating leaf as bfloat16 for "bf16"; for "int8", each matmul
      weight becomes ``{"qvalue": int8[same shape], "scale": f32[1 on contracting
      axes, else same]}`` and every other leaf is unchanged.

    Raises:
      ValueError: unknown variant (the message lists the known ones).
    """
    _check_variant(variant)
    if variant == "f32":

        def predict(params, x):
            return model_output(config, params, x)

        return predict, params
    if variant == "bf16":
        # Configs without a dtype field get bf16 params only; flax then computes
        # in the promoted dtype of inputs and params.
        cfg = config.replace(dtype="bfloat16") if hasattr(config, "dtype") else config

        def predict(params, x):
            return model_output(cfg, params, x).astype(jnp.float32)

        return predict, _to_bfloat16(params)
    if variant in PRUNED_VARIANTS:
        return pruned_model(variant, config, params, model_output, _int8_plan)
    return _int8_model(config, params)


def variant_info(variant: str, variant_params: Any) -> Variant:
    """Describe ``variant_params`` (from :func:`variant_model`) of ``variant``."""
    _check_variant(variant)
    leaves = jax.tree.leaves(variant_params)
    nbytes = sum(int(np.prod(np.shape(a))) * jnp.dtype(jnp.result_type(a)).itemsize for a in leaves)
    return Variant(
        name=variant,
        description=_DESCRIPTIONS[variant],
        weight_dtype=_WEIGHT_DTYPES[variant],
        param_bytes=nbytes,
        nonzero_fraction=nonzero_fraction(variant_params),
    )


def export_variant(
    variant: str, config: Any, params: Any, platforms: Sequence[str] = DEFAULT_PLATFORMS
) -> tuple[bytes, Any]:
    """Export one variant as serialized StableHLO (conventions of ``export_inference``).

    Args:
      variant: one of ``VARIANTS``.
      config: model config.
      params: f32 params; converted with :func:`variant_model`.
      platforms: lowering targets; lowering for tpu works on a CPU-only host.

    Returns:
      ``(blob, variant_params)``: ``blob`` is a serialized ``jax.export.Exported``
      taking ``(variant_params, x: f32[b, num_features])`` and returning f32[b]
      (``b >= 1`` symbolic), loadable with :func:`models.export.load_exported` and
      runnable with :func:`models.export.score_bucketed` given ``variant_params``.
      For "f32" the blob is byte-identical to ``export_inference(config, params)``.
      Its sha256 depends on the program, not on param values.
    """
    platforms = tuple(platforms)
    unknown = [p for p in platforms if p not in _KNOWN_PLATFORMS]
    if not platforms or unknown:
        raise ValueError(f"platforms must be a non-empty subset of {list(_KNOWN_PLATFORMS)}, got {list(platforms)}")
    predict, vparams = variant_model(variant, config, params)
    (batch,) = jax_export.symbolic_shape("b")
    with _no_source_locations():
        exported = jax_export.export(jax.jit(predict), platforms=platforms)(
            jax.tree.map(_spec, vparams), _x_spec(config, batch)
        )
    return bytes(exported.serialize()), vparams


def variant_params_template(variant: str, config: Any, params: Any = None) -> Any:
    """Abstract (``jax.ShapeDtypeStruct``) variant params of ``config``, without weights: from the f32
    ``params`` when given (a model that is a plain function has no ``init``), else from the module's ``init``."""
    _check_variant(variant)
    if params is not None:
        abstract_f32 = jax.tree.map(_spec, params)
    else:
        module = module_for(config)
        x = example_input(config)
        abstract_f32 = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    return jax.eval_shape(lambda p: variant_model(variant, config, p)[1], abstract_f32)


def variant_params_to_bytes(variant_params: Any) -> bytes:
    """msgpack bytes of variant params (never pickle), to store beside the artifact."""
    return serialization.to_bytes(variant_params)


def variant_params_from_bytes(
    data: bytes, variant: str | None = None, config: Any = None, *, source: str = "<bytes>", params: Any = None
) -> Any:
    """Inverse of :func:`variant_params_to_bytes`.

    Args:
      data: msgpack bytes.
      variant, config: when both are given, every leaf must have the shape and
        dtype the variant of ``config`` expects (checked before any compute).
      source: name used in error messages.
      params: the f32 params the variant was made from (see :func:`variant_params_template`).

    Returns:
      Nested dict of numpy arrays, ready for ``score_bucketed``.

    Raises:
      ValueError: one line naming ``source``: not msgpack, or not matching.
    """
    if (variant is None) != (config is None):
        raise ValueError("give both variant and config, or neither")
    if variant is None:
        return params_from_bytes(data, source=source)
    # np.zeros is calloc-backed: a full-size template costs no memory until touched.
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), variant_params_template(variant, config, params))
    return params_from_bytes(data, template, source=source)


def relative_output_error(config: Any, params: Any, variant: str, x: np.ndarray) -> OutputError:
    """Max and mean ``|p_variant - p_f32|`` on ``x`` (the canary's accuracy budget input).

    Args:
      config: model config.
      params: f32 params.
      variant: one of ``VARIANTS``.
      x: f32[n, num_features] (or the dict of declared columns), n >= 1.
    """
    _check_variant(variant)
    if not isinstance(x, dict):
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != config.num_features or x.shape[0] == 0:
            raise ValueError(f"x must be [n >= 1, {config.num_features}], got shape {list(x.shape)}")
    x = checked_input(x, input_spec(config, 1))
    if num_rows(x) == 0:
        raise ValueError("x must have at least one row")
    ref_fn, ref_params = variant_model("f32", config, params)
    fn, vparams = variant_model(variant, config, params)
    diff = np.abs(np.asarray(jax.jit(fn)(vparams, x), np.float64) - np.asarray(jax.jit(ref_fn)(ref_params, x), np.float64))
    return OutputError(
        variant=variant, n_rows=num_rows(x), max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean())
    )
