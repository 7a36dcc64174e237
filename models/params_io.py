"""Params <-> msgpack bytes on disk. Never pickle: a params file from a store must
not be able to run code when loaded (see DESIGN.md, security stance).

A user's params may also come as an orbax checkpoint folder (:func:`load_orbax_params`); lockgate
stores them as msgpack all the same."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from flax import serialization, traverse_util


def params_bytes_sha256(data: bytes) -> str:
    """sha256 hex of serialized params (what :func:`save_params` returns)."""
    return hashlib.sha256(data).hexdigest()


def params_to_bytes(params: Any) -> bytes:
    """Serialize a params pytree (dicts of arrays) to msgpack bytes."""
    return serialization.to_bytes(params)


def save_params(params: Any, path: str | os.PathLike) -> str:
    """Write params as msgpack; returns the sha256 hex of the written bytes.

    The write is atomic (temp file + rename) so a reader never sees half a file.
    """
    path = Path(path)
    data = params_to_bytes(params)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return params_bytes_sha256(data)


def params_from_bytes(data: bytes, template: Any = None, *, source: str = "<bytes>") -> Any:
    """Inverse of :func:`params_to_bytes`.

    Args:
      data: msgpack bytes.
      template: optional params pytree (e.g. from ``init_params``); when given, the
        result has its structure and every leaf must match its shape and dtype.
      source: name used in error messages (the path when loading a file).

    Returns:
      Nested dict of numpy arrays (or the template's structure).

    Raises:
      ValueError: one line naming ``source``: not msgpack, or not matching the template.
    """
    try:
        state = serialization.msgpack_restore(bytes(data))
    except Exception as e:  # msgpack raises several unrelated types on bad input
        raise ValueError(f"{source}: not a valid params file ({_one_line(e)})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{source}: not a valid params file (top level is {type(state).__name__}, not a dict)")
    if template is None:
        return state
    _check_like(state, template, source)
    try:
        return serialization.from_state_dict(template, state)
    except Exception as e:
        raise ValueError(f"{source}: params do not match the template ({_one_line(e)})") from None


def load_params(path: str | os.PathLike, template: Any = None, *, expected_sha256: str | None = None) -> Any:
    """Load params written by :func:`save_params`.

    Args:
      path: params file.
      template: see :func:`params_from_bytes`.
      expected_sha256: when given, the file's sha256 must equal it (artifacts are
        verified before use).

    Raises:
      ValueError: one line naming ``path``: missing, unreadable, sha mismatch,
        corrupt, or not matching the template.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read params file ({e.strerror or type(e).__name__})") from None
    if expected_sha256 is not None:
        actual = params_bytes_sha256(data)
        if actual != expected_sha256:
            raise ValueError(f"{path}: sha256 {actual} does not match expected {expected_sha256}")
    return params_from_bytes(data, template, source=str(path))


def _check_like(state: dict, template: Any, source: str) -> None:
    # from_state_dict ignores extra keys and never compares shapes; a wrong-shaped
    # leaf would only fail later, deep inside a jitted apply.
    got = traverse_util.flatten_dict(state, sep="/")
    want = traverse_util.flatten_dict(serialization.to_state_dict(template), sep="/")
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        raise ValueError(f"{source}: params keys differ from the template (missing {missing[:5]}, extra {extra[:5]})")
    for key, b in want.items():
        (shape_a, dtype_a), (shape_b, dtype_b) = _shape_dtype(got[key]), _shape_dtype(b)
        if shape_a != shape_b or dtype_a != dtype_b:
            raise ValueError(f"{source}: param {key} is {dtype_a}{list(shape_a)}, "
                             f"template expects {dtype_b}{list(shape_b)}")


def _shape_dtype(a: Any) -> tuple[tuple[int, ...], np.dtype]:
    # arrays, jax.ShapeDtypeStruct and orbax's ArrayMetadata all carry .shape and .dtype
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        return tuple(a.shape), np.dtype(a.dtype)
    a = np.asarray(a)
    return a.shape, a.dtype


def is_orbax_checkpoint(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder (lockgate then reads it as an orbax checkpoint, not a msgpack file)."""
    return Path(path).is_dir()


def load_orbax_params(path: str | os.PathLike, template: Any = None) -> Any:
    """Params restored from an orbax checkpoint folder (``orbax.checkpoint.StandardCheckpointer`` or
    ``PyTreeCheckpointer``), as nested dicts of numpy arrays (what :func:`params_to_bytes` stores).

    Args:
      path: the checkpoint folder (holding orbax's ``_METADATA``).
      template: params pytree or its ``jax.eval_shape`` (a Flax module's init): the checkpoint's tree, shapes
        and dtypes must match it leaf for leaf (read from the checkpoint's metadata, before any array is read),
        and it is the restore target. A checkpoint of the ``"params"`` collection alone (a Flax ``TrainState``'s
        ``state.params``) fits a template ``{"params": ...}`` and is returned wrapped as ``{"params": ...}``.
        None (a plain function, no init): restored as saved.

    Raises:
      ValueError: one line naming ``path``: not a folder, not an orbax checkpoint, unreadable, or not matching
        the template.
    """
    import jax

    path = Path(path).resolve()
    if not path.is_dir():
        raise ValueError(f"{path}: not an orbax checkpoint folder")
    if not (path / "_METADATA").is_file():
        raise ValueError(f"{path}: a folder but not an orbax checkpoint (no _METADATA file; give the folder "
                         "StandardCheckpointer/PyTreeCheckpointer.save wrote)")
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        try:
            meta = checkpointer.metadata(path)
            tree = getattr(getattr(meta, "item_metadata", meta), "tree", None)
        except Exception as e:  # orbax and tensorstore raise assorted types on a damaged folder
            raise ValueError(f"{path}: unreadable orbax checkpoint ({_one_line(e)})") from None
        if not isinstance(tree, dict):
            raise ValueError(f"{path}: orbax checkpoint does not hold a tree of arrays (got {type(tree).__name__})")
        target, wrap = None, False
        if template is not None:
            # a Flax TrainState's ``state.params`` is the "params" collection alone: restored into the variables
            wrap = (isinstance(template, dict) and set(template) == {"params"} and "params" not in tree
                    and set(tree) == set(template["params"]))
            template = template["params"] if wrap else template
            _check_like(tree, template, f"orbax checkpoint {path}")
            target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(*_shape_dtype(a)), template)
        try:
            restored = checkpointer.restore(path, target) if target is not None else checkpointer.restore(path)
        except Exception as e:
            raise ValueError(f"{path}: cannot restore orbax checkpoint ({_one_line(e)})") from None
    params = jax.tree.map(np.asarray, restored)
    params = {"params": params} if wrap else params
    if not isinstance(params, dict):
        raise ValueError(f"{path}: orbax checkpoint does not hold a dict of arrays (got {type(params).__name__})")
    return params


def _one_line(e: Exception, limit: int = 200) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[:limit]}"
