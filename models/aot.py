"""Ahead-of-time compilation of a model's inference function for one deployment target.

Builds shape-only inputs (``jax.ShapeDtypeStruct``, ``jax.eval_shape``) and a 1-D
data-parallel mesh over the target's devices (params replicated, batch sharded), then
``jit(...).lower(...).compile()`` and reads memory and cost analysis, as MaxText's
``train_compile.py`` does. TPU targets use compile-only devices from libtpu's topology
description, so no TPU is needed. Run as ``python -m models.aot`` this module is the
child process of the compile gate: JSON request on stdin, JSON result on stdout, so a
libtpu crash or hang cannot take the caller down.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from models.targets import Target, get_target, roofline_seconds


def _devices(target: Target):
    import jax

    if target.platform == "cpu":
        return jax.devices("cpu")
    from jax.experimental import topologies

    desc = topologies.get_topology_desc(
        platform="tpu", topology_name=target.topology, chip_config_name="default",
        chips_per_host_bounds=target.chips_per_host_bounds, num_slices=1, wrap=(False, False, False),
    )
    return list(desc.devices)


def _variant_fn_and_spec(variant: str, config, params_spec):
    """(pure predict fn(params, x) -> f32[b], shape-only params of the variant) without materialising weights."""
    import jax

    from models.export import predict

    if variant == "f32":
        return (lambda p, x: predict(config, p, x)), params_spec
    from models.variants import variant_model

    holder: dict[str, Any] = {}

    def transform(p):
        fn, variant_params = variant_model(variant, config, p)
        holder["fn"] = fn
        return variant_params

    spec = jax.eval_shape(transform, params_spec)
    return holder["fn"], spec


def _is_out_of_memory(message: str) -> bool:
    return "RESOURCE_EXHAUSTED" in message or "exceeds available HBM" in message or "Ran out of memory" in message


def model_request(config: Any, params: Any = None) -> dict:
    """What the compile child needs to build a model again: reference, config, width, task, code (the stored copy's
    folder and manifest sha256) and the params' shapes (a plain function has no ``init`` to derive them from).

    Args:
      config: a built-in config (``MLPConfig`` ...) or a ``models.code_model.CodeModel``.
      params: the params pytree (only shapes and dtypes are kept); None derives them from the module's ``init``.
    """
    from flax import traverse_util

    from models.architectures import arch_name
    from models.code_model import CodeModel, builtin_ref

    if isinstance(config, CodeModel):
        out = {"model": config.ref, "config": config.config, "num_features": config.num_features,
               "code_sha256": config.code_sha256, "code_dir": config.code_dir}
    else:
        out = {"model": builtin_ref(arch_name(config)), "config": config.to_dict(),
               "num_features": config.num_features, "code_sha256": None, "code_dir": None}
    out["params"] = None if params is None else [
        [list(path), list(leaf.shape), str(leaf.dtype)]
        for path, leaf in sorted(traverse_util.flatten_dict(_abstract(params), sep=None).items())
    ]
    return out


def _abstract(params: Any):
    import jax
    import jax.numpy as jnp
    import numpy as np

    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)), params)


def _model_and_params_spec(request: dict):
    import jax
    import jax.numpy as jnp
    from flax import traverse_util

    from models.code_model import builtin_ref, load_model
    from models.train import init_params

    ref, config = request["model"], dict(request["config"])
    if ":" not in ref:  # a built-in architecture's name
        ref = builtin_ref(ref)
    model = load_model(ref, config, num_features=request.get("num_features") or config.get("num_features"),
                       code_dir=request.get("code_dir"), code_sha256=request.get("code_sha256"))
    if request.get("params") is None:
        return model, jax.eval_shape(lambda: init_params(model, 0))
    flat = {tuple(path): jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))
            for path, shape, dtype in request["params"]}
    return model, traverse_util.unflatten_dict(flat)


def compile_target(model_req: dict, target_name: str, buckets: list[int], variants: list[str]) -> dict:
    """Compile ``predict`` for every bucket x variant on ``target_name``; one measurement dict per pair.

    ``model_req``: :func:`model_request`'s dict (or ``{"model": "mlp", "config": {...}}`` for a built-in).
    Each measurement: bucket, variant, global_batch (bucket rounded up to a multiple of the
    device count), devices, compile_seconds, peak_bytes (per device), argument_bytes,
    flops and bytes_accessed (per device, from cost_analysis), status ("ok" |
    "out_of_memory" | "error") and message.
    """
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from models.inputs import input_spec

    target = get_target(target_name)
    config, params_spec = _model_and_params_spec(model_req)
    t0 = time.perf_counter()
    devices = _devices(target)
    setup_seconds = time.perf_counter() - t0
    mesh = Mesh(devices, ("data",))
    replicated, sharded = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))
    out = []
    for variant in variants:
        try:
            fn, vspec = _variant_fn_and_spec(variant, config, params_spec)
        except Exception as e:  # a variant this model cannot have is a finding for its rows, not a crash
            message = f"variant {variant}: " + " ".join(f"{type(e).__name__}: {e}".split())[:500]
            out += [{"bucket": b, "variant": variant, "status": "error", "message": message, "devices": len(devices),
                     "device_kind": devices[0].device_kind} for b in buckets]
            continue
        p_shardings = jax.tree.map(lambda _: replicated, vspec)
        for bucket in buckets:
            n = len(devices)
            global_batch = -(-bucket // n) * n
            row: dict[str, Any] = {"bucket": bucket, "variant": variant, "global_batch": global_batch,
                                   "devices": n, "device_kind": devices[0].device_kind}
            x_spec = input_spec(config, global_batch)
            t0 = time.perf_counter()
            try:
                compiled = jax.jit(fn, in_shardings=(p_shardings, sharded), out_shardings=sharded).lower(
                    vspec, x_spec).compile()
            except Exception as e:  # the compiler's verdict is data for the report
                message = " ".join(str(e).split())[:600]
                row.update(status="out_of_memory" if _is_out_of_memory(message) else "error", message=message,
                           compile_seconds=time.perf_counter() - t0)
                out.append(row)
                continue
            row["compile_seconds"] = time.perf_counter() - t0
            mem = compiled.memory_analysis()
            cost = compiled.cost_analysis()
            cost = (cost[0] if cost else {}) if isinstance(cost, list) else (cost or {})
            row.update(
                status="ok", message="",
                peak_bytes=int(getattr(mem, "peak_memory_in_bytes", 0) or 0) if mem is not None else None,
                argument_bytes=int(getattr(mem, "argument_size_in_bytes", 0) or 0) if mem is not None else None,
                temp_bytes=int(getattr(mem, "temp_size_in_bytes", 0) or 0) if mem is not None else None,
                flops=float(cost.get("flops", 0.0)), bytes_accessed=float(cost.get("bytes accessed", 0.0)),
            )
            out.append(row)
    return {"target": target_name, "setup_seconds": setup_seconds, "jax_version": jax.__version__, "rows": out}


def estimated_seconds(row: dict, target: Target) -> float | None:
    """Roofline latency per batch on one device of ``target`` (TPU only; None for the CPU)."""
    if target.platform != "tpu" or row.get("status") != "ok":
        return None
    per_chip_devices = max(1, row["devices"] // target.chips)
    return roofline_seconds(row["flops"], row["bytes_accessed"], target.chip.peak_flops / per_chip_devices,
                            target.chip.hbm_bandwidth / per_chip_devices)


def _main() -> int:
    """One target (``{"model", "target", "buckets", "variants"}``) or several in one process (``{"model",
    "requests": [...]}``, one JAX start-up for all; the caller retries them one per child if this one dies)."""
    request = json.loads(sys.stdin.read())
    if "requests" in request:
        result = {"results": [compile_target(request["model"], r["target"], r["buckets"], r["variants"])
                              for r in request["requests"]]}
    else:
        result = compile_target(request["model"], request["target"], request["buckets"], request["variants"])
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
