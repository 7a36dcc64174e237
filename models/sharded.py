"""Data-parallel batch scoring of the exported artifact over a mesh of devices.

The artifact (``models.export``) is exported for one device with no sharding
annotations, which ``jax.export`` allows to be called from a multi-device
computation: under ``jit`` with the batch sharded over a 1-D ``data`` mesh axis and
the params replicated, XLA partitions the call so each device scores its slice of
the rows. Rows are independent, so results equal :func:`models.export.score_bucketed`.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax import export as jax_export
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from models.export import DEFAULT_BUCKETS, _check_buckets, checked_rows, score_in_chunks
from models.inputs import num_rows

DATA_AXIS = "data"


def data_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """1-D mesh with axis ``data`` over ``devices`` (default: ``jax.devices()``).

    The axis is ``Auto`` (``jax.make_mesh`` defaults to ``Explicit`` in jax 0.10, under
    which slicing a sharded output is a sharding-type error).
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must not be empty")
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def sharded_buckets(buckets: Sequence[int], num_devices: int) -> tuple[int, ...]:
    """Each bucket rounded up to a multiple of ``num_devices``, deduplicated and sorted.

    So every padded chunk splits evenly over the devices, e.g. ``(1, 64, 1000)`` on 8
    devices -> ``(8, 64, 1000)``, on 3 -> ``(3, 66, 1002)``.
    """
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices <= 0:
        raise ValueError(f"num_devices must be a positive int, got {num_devices!r}")
    return tuple(sorted({-(-b // num_devices) * num_devices for b in _check_buckets(buckets)}))


# One jitted call per (artifact, device set), dropped with the artifact; jit then caches
# one executable per bucket shape.
_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _sharded_call(exported: jax_export.Exported, mesh: Mesh):
    per_artifact = _CALLS.setdefault(exported, {})
    key = tuple(d.id for d in mesh.devices.flat)
    fn = per_artifact.get(key)
    if fn is None:
        replicated = NamedSharding(mesh, PartitionSpec())
        rows = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
        fn = per_artifact[key] = (
            jax.jit(exported.call, in_shardings=(replicated, rows), out_shardings=rows),
            replicated,
            rows,
        )
    return fn


def score_sharded(
    exported: jax_export.Exported,
    params: Any,
    x: np.ndarray,
    *,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    devices: Sequence[Any] | None = None,
    on_output: Callable[[jax.Array], None] | None = None,
) -> np.ndarray:
    """Score ``x`` with the artifact, rows split over ``devices``, params replicated.

    Rows are cut into chunks of the largest (device-rounded) bucket; each chunk is
    zero-padded to the smallest bucket holding it, rounded up to a multiple of the
    device count (see :func:`sharded_buckets`), and the padding is dropped.

    Args:
      exported: from :func:`models.export.load_exported` (exported for one device).
      params: params pytree with the structure/shapes the artifact was exported with.
      x: f32[n, num_features] (other float dtypes are cast to float32), or the dict of declared columns.
      buckets: strictly increasing batch sizes, before rounding to the device count.
      devices: devices of the mesh (default ``jax.devices()``; a multi-process program passes
        ``jax.local_devices()``).
      on_output: called with each chunk's output array, sharded over the mesh (see
        :func:`models.export.score_in_chunks`).

    Returns:
      f32[n] probabilities, equal to :func:`models.export.score_bucketed`'s.
    """
    mesh = data_mesh(devices)
    sizes = sharded_buckets(buckets, mesh.size)
    x = checked_rows(exported, x)
    if num_rows(x) == 0:
        return np.zeros((0,), np.float32)
    call, replicated, rows = _sharded_call(exported, mesh)
    params = jax.device_put(params, replicated)  # once, not once per chunk
    return score_in_chunks(call, params, x, sizes, place=lambda chunk: jax.device_put(chunk, rows), on_output=on_output)
