"""The deployable inference artifact: a serialized ``jax.export`` of :func:`predict`.

:func:`predict` is the model's output per row for its config's task: P(y=1) for a
classifier (what :func:`predict_proba` returns too), the predicted value for a
regressor. Classifier artifacts are the same program as before regression existed.

The artifact is StableHLO for cpu+tpu with a symbolic batch dimension and the
params as call *arguments*, so it is a few KB, its sha256 identifies the program
(not the weights; the params file has its own sha256), and the exact bytes that
were canaried are the bytes that score production batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import export as jax_export
from pydantic import BaseModel, ConfigDict, Field

from models.architectures import module_for
from models.code_model import CodeModel
from models.inputs import checked_input, input_spec, num_rows, pad_rows, take_rows

DEFAULT_PLATFORMS: tuple[str, ...] = ("cpu", "tpu")
DEFAULT_BUCKETS: tuple[int, ...] = (1, 64, 1024, 8192)
_KNOWN_PLATFORMS = ("cpu", "tpu", "cuda", "rocm")


def predict(config: Any, params: Any, x: jax.Array) -> jax.Array:
    """The artifact's output per row; pure, so it can be jitted (config static) or exported.

    Args:
      config: a model config (e.g. ``MLPConfig``) or a model given by code
        (``models.code_model.CodeModel``); hashable. Its ``task`` fixes what is returned.
      params: params pytree from ``init_params`` / ``train_model`` / ``load_params``.
      x: f32[batch, num_features], or for a model declaring its inputs the dict ``{column: dtype[batch]}``
        (``models.inputs``).

    Returns:
      f32[batch]: probabilities P(y=1) in [0, 1] for ``task="classification"``, the
      predicted values (the linear head's output) for ``task="regression"``.
    """
    out = config.apply(params, x) if isinstance(config, CodeModel) else module_for(config).apply(params, x)
    return out if config.task == "regression" else jax.nn.sigmoid(out)


def predict_proba(config: Any, params: Any, x: jax.Array) -> jax.Array:
    """P(y=1) per row of a classifier (``config.task == "classification"``): :func:`predict`.

    Raises:
      ValueError: ``config`` is a regressor, whose output is a value, not a probability.
    """
    if config.task != "classification":
        raise ValueError(f"predict_proba needs a classifier; this config's task is {config.task!r} (use predict)")
    return predict(config, params, x)


_predict = predict


@contextlib.contextmanager
def _no_source_locations():
    # By default the StableHLO carries file:line locations of every traced frame,
    # including the *caller* of export_inference, so the same model exported from
    # two places (or after editing a comment) would get a different sha256.
    # Op names survive; only source locations are dropped. This config has no public
    # thread-local setter in jax 0.10 (jax.config.update is process-global).
    try:
        from jax._src.config import traceback_in_locations_limit
    except ImportError:  # pragma: no cover - private API moved; sha tests will flag it
        yield
        return
    with traceback_in_locations_limit(0):
        yield


def export_inference(config: Any, params: Any, platforms: Sequence[str] = DEFAULT_PLATFORMS) -> bytes:
    """Export ``predict(config, params, x)`` as serialized StableHLO.

    Only the *shapes/dtypes* of ``params`` are used: params stay arguments of the
    exported function, so one artifact serves every params file of this
    architecture/config.

    Args:
      config: model config (fixes the program).
      params: params pytree (its structure and leaf shapes/dtypes become the signature).
      platforms: lowering targets; lowering for tpu works on a CPU-only host.

    Returns:
      Serialized ``jax.export.Exported`` taking ``(params, x: f32[b, num_features])`` (or ``x`` the dict of
      declared columns ``{column: dtype[b]}``) and returning f32[b], where ``b >= 1`` is symbolic.
    """
    platforms = tuple(platforms)
    unknown = [p for p in platforms if p not in _KNOWN_PLATFORMS]
    if not platforms or unknown:
        raise ValueError(f"platforms must be a non-empty subset of {list(_KNOWN_PLATFORMS)}, got {list(platforms)}")

    # The jitted function's name is part of the StableHLO (so of the sha256): it stays "predict", as before
    # regression existed, so a classifier exports to the same bytes; it calls the module-level function.
    def predict(params, x):
        return _predict(config, params, x)

    params_spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)), params)
    (batch,) = jax_export.symbolic_shape("b")
    x_spec = input_spec(config, batch)
    with _no_source_locations():
        exported = jax_export.export(jax.jit(predict), platforms=platforms)(params_spec, x_spec)
    return bytes(exported.serialize())


def load_exported(blob: bytes, *, expected_sha256: str | None = None) -> jax_export.Exported:
    """Deserialize an artifact from :func:`export_inference`.

    Raises:
      ValueError: one line: sha256 mismatch (when ``expected_sha256`` is given) or
        bytes that are not a serialized ``Exported``.
    """
    if expected_sha256 is not None and hashlib.sha256(blob).hexdigest() != expected_sha256:
        raise ValueError(f"exported artifact sha256 {hashlib.sha256(blob).hexdigest()} != expected {expected_sha256}")
    try:
        return jax_export.deserialize(bytearray(blob))
    except Exception as e:  # flatbuffers/struct raise assorted types on bad bytes
        msg = " ".join(str(e).split())[:200]
        raise ValueError(f"not a valid exported artifact ({len(blob)} bytes): {type(e).__name__}: {msg}") from None


# One jitted ``exported.call`` per artifact, dropped with the artifact; jit then
# caches one executable per bucket shape.
_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _jitted_call(exported: jax_export.Exported):
    fn = _CALLS.get(exported)
    if fn is None:
        fn = _CALLS[exported] = jax.jit(exported.call)
    return fn


def _check_buckets(buckets: Sequence[int]) -> tuple[int, ...]:
    b = tuple(buckets)
    if not b or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in b):
        raise ValueError(f"buckets must be positive ints, got {list(b)}")
    if list(b) != sorted(set(b)):
        raise ValueError(f"buckets must be strictly increasing, got {list(b)}")
    return b


def score_bucketed(
    exported: jax_export.Exported,
    params: Any,
    x: np.ndarray,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    on_output: Callable[[jax.Array], None] | None = None,
) -> np.ndarray:
    """Score ``x`` with the artifact, compiling at most ``len(buckets)`` shapes.

    Rows are cut into chunks of ``max(buckets)``; each chunk is zero-padded up to
    the smallest bucket that holds it and the padding rows are dropped from the
    output (rows are independent, so padding never changes real rows' scores).

    Args:
      exported: from :func:`load_exported`.
      params: params pytree with the structure/shapes the artifact was exported with.
      x: f32[n, num_features] (other float dtypes are cast to float32), or the dict of declared columns.
      buckets: strictly increasing batch sizes.
      on_output: called with each chunk's output array (see :func:`score_in_chunks`).

    Returns:
      f32[n] outputs of the artifact (probabilities for a classifier, values for a regressor).
    """
    buckets = _check_buckets(buckets)
    x = checked_rows(exported, x)
    if num_rows(x) == 0:
        return np.zeros((0,), np.float32)
    return score_in_chunks(_jitted_call(exported), jax.device_put(params), x, buckets, on_output=on_output)


def exported_input(exported: jax_export.Exported) -> Any:
    """The artifact's shape-only ``x``: one aval f32[b, d], or a dict of avals (a model declaring its inputs)."""
    (_, x_aval), _ = exported.in_tree.unflatten(exported.in_avals)
    return x_aval


def checked_rows(exported: jax_export.Exported, x: Any) -> Any:
    """``x`` as f32[n, d] for the artifact's input width d (or the artifact's dict of columns, each cast to its
    dtype); ValueError naming the expected shape otherwise."""
    return checked_input(x, exported_input(exported))


def score_in_chunks(call, params: Any, x: Any, sizes: Sequence[int], place=lambda chunk: chunk,
                    on_output: Callable[[jax.Array], None] | None = None) -> np.ndarray:
    """Cut f32[n, d] ``x`` (or a dict of columns of n rows) into chunks of ``max(sizes)``, zero-pad each to the smallest size holding it,
    ``call(params, place(chunk))`` and drop the padding rows (rows are independent, so padding never changes
    real rows' scores). ``on_output`` sees each call's output array (its sharding: the devices that computed it).
    Returns f32[n]."""
    n = num_rows(x)
    largest = sizes[-1]
    pending = []
    for start in range(0, n, largest):
        chunk = take_rows(x, slice(start, start + largest))
        m = num_rows(chunk)
        size = next(b for b in sizes if b >= m)
        if size != m:
            chunk = pad_rows(chunk, size)
        # Dispatch is async: keep going and only block when gathering results.
        y = call(params, place(chunk))
        if on_output is not None:
            on_output(y)
        pending.append((y, m))
    out = np.empty((n,), np.float32)
    pos = 0
    for y, m in pending:
        out[pos : pos + m] = np.asarray(y)[:m]
        pos += m
    return out


class ExportInfo(BaseModel):
    """Metadata of an exported artifact, for the compile report and the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(description="sha256 hex of the serialized bytes.")
    nr_bytes: int = Field(description="Size of the serialized artifact.")
    platforms: list[str] = Field(description="Lowering platforms the artifact can run on.")
    inputs: dict[str, str] = Field(description="Argument path -> dtype[shape]; 'b' is the symbolic batch.")
    outputs: list[str] = Field(description="dtype[shape] of each output.")
    calling_convention_version: int = Field(description="jax.export calling convention of the artifact.")


def export_info(blob: bytes) -> ExportInfo:
    """Describe a serialized artifact (deserializes it; raises ValueError if corrupt)."""
    exported = load_exported(blob)
    avals = exported.in_tree.unflatten(exported.in_avals)
    # in_tree is ((params, x), {}); name args as params[...] / x.
    (params_avals, x_aval), _ = avals
    inputs = {
        f"params{jax.tree_util.keystr(kp)}": str(a) for kp, a in jax.tree_util.tree_leaves_with_path(params_avals)
    }
    if isinstance(x_aval, dict):
        inputs.update({f"x[{k!r}]": str(a) for k, a in x_aval.items()})
    else:
        inputs["x"] = str(x_aval)
    return ExportInfo(
        sha256=hashlib.sha256(blob).hexdigest(),
        nr_bytes=len(blob),
        platforms=list(exported.platforms),
        inputs=inputs,
        outputs=[str(a) for a in exported.out_avals],
        calling_convention_version=exported.calling_convention_version,
    )
