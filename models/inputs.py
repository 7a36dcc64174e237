"""The model input: the contract's encoded matrix, or named raw columns when the model declares its signature.

A model gets one of two inputs, fixed when it is registered:

- ``x``: f32[batch, num_features], the contract's feature encoding (``models.features.feature_matrix``), the
  default;
- a dict of named arrays ``{column: dtype[batch]}``, when the model's config declares ``"inputs"``: each name a
  contract feature column, numbers as the declared float dtype (``float32``, ``bfloat16`` or ``float16``; a null
  is NaN), categoricals as ``int32`` codes (``1..K`` in the order of the contract's allowed values, ``0`` for a null
  or a value outside them; ``UNSEEN_CODE``).

``"inputs"`` is ``{"alcohol": "float32", "region": "int32"}`` or ``[["alcohol", "float32"], ...]`` (JSON keeps
either order; the dict's keys are the pytree's, so jax sorts them). The helpers here treat both forms alike
(rows, padding, shapes), so scoring, the canary and the compile gate never branch on which one a model takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NUMERIC_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
CATEGORICAL_DTYPES: tuple[str, ...] = ("int32",)
UNSEEN_CODE = 0  # the code of a null or of a category outside the contract's allowed values


def parse_signature(raw: Any) -> tuple[tuple[str, str], ...] | None:
    """The declared inputs ``((column, dtype), ...)`` of a config's ``"inputs"`` value (None: the matrix).

    Raises:
      ValueError: one line saying what is wrong (not a dict or list of pairs, a name or dtype not a string,
        a column declared twice, no inputs).
    """
    if raw is None:
        return None
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in raw):
        pairs = [tuple(p) for p in raw]
    else:
        raise ValueError('inputs must be {"column": "dtype", ...} or [["column", "dtype"], ...], '
                         f"got {type(raw).__name__}")
    if not pairs:
        raise ValueError("inputs declares no columns")
    bad = [p for p in pairs if not all(isinstance(s, str) and s for s in p)]
    if bad:
        raise ValueError(f"inputs {bad[0]!r}: the column and the dtype must be non-empty strings")
    names = [n for n, _ in pairs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"inputs declares {dupes} more than once")
    return tuple((str(n), str(d)) for n, d in pairs)


def signature_of(model: Any) -> tuple[tuple[str, str], ...] | None:
    """The declared inputs of a model (a ``CodeModel``'s ``inputs``), None for one taking the matrix."""
    return getattr(model, "inputs", None)


def input_spec(model: Any, batch: Any) -> Any:
    """Shape-only input of ``model`` for ``batch`` rows (an int or a symbolic dimension): a
    ``jax.ShapeDtypeStruct`` f32[batch, num_features], or ``{column: ShapeDtypeStruct(dtype[batch])}``."""
    import jax
    import jax.numpy as jnp

    signature = signature_of(model)
    if signature is None:
        return jax.ShapeDtypeStruct((batch, model.num_features), jnp.float32)
    return {name: jax.ShapeDtypeStruct((batch,), jnp.dtype(dtype)) for name, dtype in signature}


def example_input(model: Any, rows: int = 1) -> Any:
    """Zeros shaped like ``model``'s input for ``rows`` rows (jax arrays; for ``init`` and tracing)."""
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), input_spec(model, rows))


def is_named(x: Any) -> bool:
    return isinstance(x, dict)


def num_rows(x: Any) -> int:
    """Rows of a matrix or of a dict of columns."""
    if is_named(x):
        return int(np.shape(next(iter(x.values())))[0]) if x else 0
    return int(np.shape(x)[0])


def take_rows(x: Any, index: Any) -> Any:
    """``x[index]`` of a matrix, or of every column of a dict (a slice or an integer array)."""
    return {k: v[index] for k, v in x.items()} if is_named(x) else x[index]


def pad_rows(x: Any, size: int) -> Any:
    """``x`` with zero rows appended up to ``size`` rows (scores of padding rows are dropped)."""
    def pad(a):
        a = np.asarray(a)
        return a if a.shape[0] == size else np.concatenate([a, np.zeros((size - a.shape[0], *a.shape[1:]), a.dtype)])

    return {k: pad(v) for k, v in x.items()} if is_named(x) else pad(x)


def resize_rows(x: Any, rows: int) -> Any:
    """``x`` with its rows repeated (or cut) to ``rows`` rows, as ``np.resize`` does per column."""
    def resize(a):
        a = np.asarray(a)
        return np.resize(a, (rows, *a.shape[1:]))

    return {k: resize(v) for k, v in x.items()} if is_named(x) else resize(x)


def describe(x: Any) -> str:
    """``float32[8, 12]`` or ``{alcohol: float32[8], region: int32[8]}``."""
    def one(a):
        return f"{np.asarray(a).dtype}{list(np.shape(a))}"

    if is_named(x):
        return "{" + ", ".join(f"{k}: {one(v)}" for k, v in x.items()) + "}"
    return one(x)


def checked_input(x: Any, expected: Any) -> Any:
    """``x`` checked against the shape-only input ``expected`` (from ``Exported.in_avals`` or :func:`input_spec`):
    a matrix as f32[n, d]; a dict with exactly the expected columns, each cast to its dtype and 1-D of one length.

    Raises:
      ValueError: one line naming the expected input.
    """
    if not is_named(expected):
        a = np.asarray(x, dtype=np.float32)
        d = expected.shape[-1]
        if a.ndim != 2 or a.shape[1] != d:
            raise ValueError(f"x must be [n, {d}], got shape {list(a.shape)}")
        return a
    if not is_named(x) or set(x) != set(expected):
        got = sorted(x) if is_named(x) else describe(x)
        raise ValueError(f"the model takes the columns {sorted(expected)}, got {got}")
    out = {k: np.asarray(x[k], dtype=expected[k].dtype) for k in expected}
    lengths = {k: v.shape for k, v in out.items()}
    if any(len(s) != 1 for s in lengths.values()) or len({s[0] for s in lengths.values()}) > 1:
        raise ValueError(f"each input column must be 1-D, all of one length; got shapes {lengths}")
    return out
