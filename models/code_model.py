"""A model given by code: ``MODULE:ATTR`` plus a config dict, loaded from a stored copy of its source.

What ``MODULE:ATTR`` may name (the convention ``lockgate register --model`` documents):

- a Flax module class: built as ``ATTR(**config)`` (the config's keys are its fields; lockgate's own keys
  ``task`` and ``num_features`` are passed only when the class declares them); its ``apply`` is used;
- a factory ``ATTR(config: dict)`` (one required argument) returning a Flax module (its ``apply`` is used)
  or a function ``f(params, x)``;
- a function ``ATTR(params, x) -> y`` (two required arguments), used as it is;
- a Flax module instance.

The model gets ``x``: f32[batch, num_features] (the contract's feature encoding, ``models.features``), or, when
its config declares ``"inputs": {"column": "dtype", ...}``, a dict of those raw columns ``{column: dtype[batch]}``
(``models.inputs``), and returns f32[batch] or f32[batch, 1]: a logit for ``task="classification"`` (lockgate applies the sigmoid) or
the predicted value for ``task="regression"``. ``params`` are the msgpack params file as nested dicts (for a
Flax module: its variables, ``{"params": {...}}``).

User code lives in one top-level package (a folder, stored whole: its ``.py`` files) or one module file under
a code root the user names. It is imported from a copy, never from the user's ``sys.path``: while it is
imported, the package's names are swapped out of ``sys.modules`` and back, so two versions of one package load
side by side and a version keeps the code it was registered with. The built-in architectures are lockgate's own
code (``models.architectures:mlp`` etc.) and load the same way, from lockgate's ``models`` package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.machinery
import inspect
import json
import keyword
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from models.architectures import ARCHITECTURES
from models.config import TASKS

BUILTIN_MODULE = "models.architectures"
# Top-level names a user's package may not take: lockgate's own packages (a copy would shadow them).
RESERVED_NAMES = frozenset({"models", "tasks", "pipelines", "data_contracts", "benchmarks", "tests", "lockgate"})
LOCKGATE_KEYS = ("task", "num_features", "inputs")  # config keys lockgate reads itself
MAX_SOURCE_FILES = 500
MAX_SOURCE_BYTES = 5 * 1024 * 1024
_IMPORT_LOCK = threading.RLock()


class ModelCodeError(ValueError):
    """One-line error about a model given by code. ``kind``: ``ref`` (the reference or its files), ``import``,
    ``attr``, ``config`` (the config does not build the model), ``params``, ``input``, ``output``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def one_line(e: BaseException, limit: int = 300) -> str:
    """``Type: first words of the message`` on one line, without Flax's documentation links."""
    text = re.sub(r"\s*\(https?://\S+\)", "", str(e))
    return f"{type(e).__name__}: {' '.join(text.split())[:limit]}"


def _identifier(s: str) -> bool:
    return s.isidentifier() and not keyword.iskeyword(s)


def parse_ref(ref: str) -> tuple[str, str]:
    """``"pkg.mod:attr"`` -> ``("pkg.mod", "attr")``; ModelCodeError unless both are Python identifiers."""
    module, sep, attr = str(ref).partition(":")
    if not sep or not module or not all(_identifier(p) for p in module.split(".")) or not _identifier(attr):
        raise ModelCodeError("ref", f"model {ref!r} is not MODULE:ATTR with a dotted module name of Python "
                                    "identifiers and an attribute name (e.g. mypkg.net:build)")
    return module, attr


def builtin_ref(arch: str) -> str:
    """The reference of a built-in architecture: ``"mlp"`` -> ``"models.architectures:mlp"``."""
    if arch not in ARCHITECTURES:
        raise ModelCodeError("ref", f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    return f"{BUILTIN_MODULE}:{arch}"


def is_lockgate_code(ref: str) -> bool:
    """True for a model in lockgate's own ``models`` package (the built-ins): its code is lockgate's, not stored."""
    return parse_ref(ref)[0].split(".")[0] == "models"


# --- the user's source files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """The files of the top-level package (or module file) holding a model, under the code root."""

    ref: str
    root: Path
    top: str
    files: dict[str, Path]  # posix path relative to root (starting with the top name) -> file

    def copy_to(self, dst: Path) -> dict[str, str]:
        """Copy the files under ``dst`` (same relative paths); returns relative path -> sha256 of the copied bytes."""
        hashes = {}
        for rel, path in sorted(self.files.items()):
            data = path.read_bytes()
            out = dst / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            hashes[rel] = hashlib.sha256(data).hexdigest()
        return hashes


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def model_source(ref: str, code_root: str | Path) -> ModelSource:
    """Find the files of ``ref``'s top-level package (every ``.py`` file in its folder) or module file.

    Refused with a one-line ModelCodeError: a reference that is not ``MODULE:ATTR``; a code root that is not a
    folder; a top-level name lockgate, the standard library or an installed package already uses; a module with no
    file under the root; a file that resolves outside the root (a symlink); a package over
    ``MAX_SOURCE_FILES`` files or ``MAX_SOURCE_BYTES`` bytes.
    """
    module, _ = parse_ref(ref)
    root_given = Path(code_root)
    if not root_given.is_dir():
        raise ModelCodeError("ref", f"model {ref}: code root {root_given} is not a folder")
    root = root_given.resolve()
    parts = module.split(".")
    top = parts[0]
    if top in RESERVED_NAMES or top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise ModelCodeError("ref", f"model {ref}: the top-level name {top!r} is taken by lockgate or Python; "
                                    "rename your package")
    elsewhere = importlib.machinery.PathFinder.find_spec(
        top, [p for p in sys.path if not _same_dir(p, root)])
    if elsewhere is not None and elsewhere.origin and not _under(Path(elsewhere.origin), root):
        raise ModelCodeError("ref", f"model {ref}: the top-level name {top!r} is already an installed module "
                                    f"({elsewhere.origin}); rename your package")
    package = root / top
    if package.is_dir():
        candidates = [root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")]
        files = {}
        for path in sorted(package.rglob("*.py")):
            rel = path.relative_to(root)
            if any(p == "__pycache__" or p.startswith(".") for p in rel.parts):
                continue
            if not path.is_file() or not _under(path, root):
                raise ModelCodeError("ref", f"model {ref}: {path} is not a file under the code root {root}")
            files[rel.as_posix()] = path
    elif len(parts) == 1:
        candidates = [root / f"{top}.py"]
        files = {f"{top}.py": candidates[0]} if candidates[0].is_file() else {}
        if files and not _under(candidates[0], root):
            raise ModelCodeError("ref", f"model {ref}: {candidates[0]} is not a file under the code root {root}")
    else:
        candidates, files = [package], {}
    found = [c for c in candidates if c.relative_to(root).as_posix() in files]
    if not found:
        raise ModelCodeError("ref", f"model {ref}: no file {' or '.join(str(c.relative_to(root)) for c in candidates)} "
                                    f"under the code root {root}")
    if len(files) > MAX_SOURCE_FILES or sum(p.stat().st_size for p in files.values()) > MAX_SOURCE_BYTES:
        raise ModelCodeError("ref", f"model {ref}: package {top} holds {len(files)} .py files; lockgate stores the "
                                    f"whole package with the version (at most {MAX_SOURCE_FILES} files, "
                                    f"{MAX_SOURCE_BYTES // 2**20} MiB)")
    return ModelSource(ref=ref, root=root, top=top, files=files)


def _same_dir(entry: str, root: Path) -> bool:
    try:
        return Path(entry or ".").resolve() == root
    except OSError:
        return False


# --- importing it from a stored copy -----------------------------------------------------------------------------


@contextlib.contextmanager
def _isolated_import(top: str, code_dir: Path):
    """``code_dir`` first on ``sys.path`` and ``top``'s modules out of ``sys.modules`` while importing; both put
    back afterwards, so the copy never replaces a package of the same name the process already holds."""
    def ours(name: str) -> bool:
        return name == top or name.startswith(top + ".")

    saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if ours(k)]}
    entry = str(code_dir)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
        for k in [k for k in sys.modules if ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def import_attr(ref: str, code_dir: str | Path | None = None) -> Any:
    """The object ``ref`` names, its module imported from ``code_dir`` (a stored copy) or, for lockgate's own
    code (``code_dir`` None), from lockgate. ModelCodeError (``import`` / ``attr``) naming the module."""
    module_name, attr = parse_ref(ref)
    top = module_name.split(".")[0]
    try:
        if code_dir is None:
            if not is_lockgate_code(ref):
                raise ModelCodeError("ref", f"model {ref}: no stored code to import it from")
            module = importlib.import_module(module_name)
        else:
            if top in RESERVED_NAMES or top in sys.stdlib_module_names:
                raise ModelCodeError("ref", f"model {ref}: the top-level name {top!r} is taken by lockgate or Python")
            with _IMPORT_LOCK, _isolated_import(top, Path(code_dir)):
                module = importlib.import_module(module_name)
    except ModelCodeError:
        raise
    except Exception as e:  # whatever the user's module raises while it is imported
        raise ModelCodeError("import", f"model {ref}: module {module_name} does not import: {one_line(e)}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ModelCodeError("attr", f"model {ref}: module {module_name} has no attribute {attr!r}") from None


def _required_positional(fn: Callable) -> int | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in sig.parameters.values() if p.kind in kinds and p.default is inspect.Parameter.empty)


def build(obj: Any, config: dict, ref: str) -> tuple[Any, Callable]:
    """``(flax module or None, fn(params, x) -> raw output)`` of the object ``ref`` names (see the module doc)."""
    import flax.linen as nn

    def from_result(result: Any, how: str):
        if isinstance(result, nn.Module):
            return result, result.apply
        if callable(result) and _required_positional(result) == 2:
            return None, result
        raise ModelCodeError("config", f"model {ref}: {how} returned {type(result).__name__}, not a Flax module "
                                       "or a function f(params, x)")

    try:
        if isinstance(obj, nn.Module):
            return obj, obj.apply
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            fields = {f.name for f in dataclasses.fields(obj)}
            kwargs = {k: v for k, v in config.items() if k not in LOCKGATE_KEYS or k in fields}
            module = obj(**kwargs)
            return module, module.apply
        n = _required_positional(obj) if callable(obj) else None
        if n == 2:
            return None, obj
        if n == 1:
            return from_result(obj(dict(config)), f"{ref.partition(':')[2]}(config)")
    except ModelCodeError:
        raise
    except Exception as e:  # the user's constructor or factory refused the config
        raise ModelCodeError("config", f"the config does not build model {ref}: {one_line(e)}") from None
    what = type(obj).__name__ if not callable(obj) else f"a callable with {n} required arguments"
    raise ModelCodeError("ref", f"model {ref} is {what}: it must be a Flax module class, a factory "
                                "build(config) or a function f(params, x)")


# --- the model object the gates use ------------------------------------------------------------------------------


def _canonical(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class CodeModel:
    """A registered model: reference, config, and where its code is. Hashable (a static ``jax.jit`` argument);
    the code is imported on first use (``module`` / ``apply``), so the canary and batch scoring, which run the
    exported artifact, never import it.

    Attributes:
      ref: ``MODULE:ATTR``.
      config_json: the config dict as canonical JSON (``config`` gives the dict).
      num_features: width of ``x`` (the contract's feature encoding); the number of columns of a model declaring
        its inputs (config ``"inputs"``, see :attr:`inputs`).
      task: ``"classification"`` (the output is a logit) or ``"regression"`` (the value).
      code_sha256: sha256 of the stored code's manifest (None for lockgate's own code).
      code_dir: folder holding the stored copy of the code (the top package or module file inside it).
    """

    ref: str
    config_json: str
    num_features: int
    task: str = "classification"
    code_sha256: str | None = None
    code_dir: str | None = field(default=None, compare=False)
    _built: dict = field(default_factory=dict, compare=False, repr=False)

    def __getstate__(self) -> dict:
        # pickled (a process pool, Dask) without what was built: the user's classes are not importable by name
        # elsewhere; the copy builds again from code_dir on first use
        return {**self.__dict__, "_built": {}}

    @property
    def config(self) -> dict:
        return json.loads(self.config_json)

    @property
    def arch(self) -> str:
        """Short name: the built-in architecture (``mlp``) or the reference."""
        module, attr = parse_ref(self.ref)
        return attr if module == BUILTIN_MODULE else self.ref

    @property
    def code_path(self) -> Path | None:
        """The stored copy's top-level package folder or module file (None for lockgate's own code)."""
        if self.code_dir is None:
            return None
        top = parse_ref(self.ref)[0].split(".")[0]
        folder = Path(self.code_dir) / top
        return folder if folder.is_dir() else Path(self.code_dir) / f"{top}.py"

    @property
    def dtype(self) -> str:
        """The config's compute dtype; AttributeError when it has none (variants then cast only the params)."""
        config = self.config
        if "dtype" not in config:
            raise AttributeError("dtype")
        return config["dtype"]

    def replace(self, **changes: Any) -> CodeModel:
        """A copy with config keys overridden (built again on first use); e.g. ``replace(dtype="bfloat16")``."""
        return dataclasses.replace(self, config_json=_canonical({**self.config, **changes}), _built={})

    def _build(self) -> tuple[Any, Callable]:
        if "fn" not in self._built:
            obj = import_attr(self.ref, self.code_dir)
            self._built["module"], self._built["fn"] = build(obj, self.config, self.ref)
        return self._built["module"], self._built["fn"]

    @property
    def inputs(self) -> tuple[tuple[str, str], ...] | None:
        """The declared raw inputs ``((column, dtype), ...)`` (config ``"inputs"``), None for the matrix."""
        from models.inputs import parse_signature

        return parse_signature(self.config.get("inputs"))

    @property
    def module(self):
        """The Flax module, or None for a plain function."""
        return self._build()[0]

    def raw_output(self, params: Any, x: Any) -> Any:
        """What the user's code returns for ``x`` (f32[b, num_features] or the dict of declared columns), unchecked."""
        return self._build()[1](params, x)

    def apply(self, params: Any, x: Any) -> Any:
        """The model's output per row, f32[b] (``(b, 1)`` flattened); traceable (``jit``, ``jax.export``).

        Raises:
          ModelCodeError (``output``): the output is not shaped (b,) or (b, 1).
        """
        import jax.numpy as jnp

        from models.inputs import describe

        y = jnp.asarray(self.raw_output(params, x))
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ModelCodeError("output", f"model {self.ref} returned shape {tuple(y.shape)} for x "
                                           f"{describe(x)}; it must return (batch,) or (batch, 1)")
        return y if y.dtype == jnp.float32 else y.astype(jnp.float32)

    def to_dict(self) -> dict:
        """The stored description (``model_config.json``); :func:`model_from_dict` is its inverse."""
        out = {"model": self.ref, "config": self.config, "task": self.task, "num_features": self.num_features,
               "code_sha256": self.code_sha256}
        module, attr = parse_ref(self.ref)
        if module == BUILTIN_MODULE:  # readers of versions registered before models were code read "arch"
            out["arch"] = attr
        return out


def inputs_of(config: dict, ref: str) -> tuple[tuple[str, str], ...] | None:
    """The config's declared raw inputs (``models.inputs.parse_signature``); ModelCodeError (``config``)."""
    from models.inputs import parse_signature

    try:
        return parse_signature(config.get("inputs"))
    except ValueError as e:
        raise ModelCodeError("config", f"model {ref}: config {e}") from None


def task_of(config: dict, ref: str) -> str:
    task = config.get("task", "classification")
    if task not in TASKS:
        raise ModelCodeError("config", f"model {ref}: config task must be one of {list(TASKS)}, got {task!r}")
    return task


def load_model(ref: str, config: dict, *, num_features: int, code_dir: str | Path | None = None,
               code_sha256: str | None = None, build_now: bool = True) -> CodeModel:
    """A :class:`CodeModel` for ``ref`` and ``config``; with ``build_now`` its code is imported and the config
    built here, so a bad reference, module or config fails now (ModelCodeError) rather than at first use."""
    parse_ref(ref)
    inputs_of(config, ref)
    model = CodeModel(ref=ref, config_json=_canonical(config), num_features=int(num_features),
                      task=task_of(config, ref), code_sha256=code_sha256,
                      code_dir=None if code_dir is None else str(code_dir))
    if build_now:
        model._build()
    return model


def model_from_dict(stored: dict, *, code_dir: str | Path | None = None, build_now: bool = False) -> CodeModel:
    """The model of a stored ``model_config.json``: ``{"model", "config", "num_features", ...}``, or the form
    versions had before models were code, ``{"arch": "mlp", "config": {...}}``."""
    config = dict(stored["config"])
    ref = stored.get("model") or builtin_ref(stored["arch"])
    num_features = stored.get("num_features", config.get("num_features"))
    if num_features is None:
        raise ModelCodeError("config", f"model {ref}: the stored description gives no num_features")
    return load_model(ref, config, num_features=num_features, code_dir=code_dir,
                      code_sha256=stored.get("code_sha256"), build_now=build_now)


def probe(model: CodeModel, params: Any, x: Any) -> Any:
    """Run ``model`` once on ``x`` (a few rows: the matrix or the dict of declared columns) and return its f32[n]
    outputs, or a one-line ModelCodeError:
    ``params`` (Flax cannot find or shape a param, a missing key), ``input`` (anything else failing on ``x``, e.g.
    a matmul of the wrong width), ``output`` (not shaped (n,) or (n, 1), or not finite)."""
    import flax.errors
    import jax.numpy as jnp
    import numpy as np

    from models.inputs import is_named, num_rows

    x = {k: jnp.asarray(v) for k, v in x.items()} if is_named(x) else jnp.asarray(x, jnp.float32)
    n = num_rows(x)
    try:
        raw = model.raw_output(params, x)
        shape = tuple(np.shape(raw))
        if shape not in ((n,), (n, 1)):
            name = parse_ref(model.ref)[1]
            raise ModelCodeError("output", f"model {model.ref}: {name} returned shape {shape} for {n} rows; "
                                           "it must return (batch,) or (batch, 1)")
        out = np.asarray(model.apply(params, x))
    except ModelCodeError:
        raise
    except Exception as e:
        params_error = isinstance(e, (KeyError, flax.errors.ScopeParamNotFoundError, flax.errors.ScopeParamShapeError,
                                      flax.errors.ScopeCollectionNotFound,
                                      flax.errors.ApplyScopeInvalidVariablesStructureError,
                                      flax.errors.ApplyScopeInvalidVariablesTypeError))
        hint = ""
        if params_error and model.module is not None and isinstance(params, dict) and "params" not in params:
            hint = " (a Flax module's params file holds its variables: {'params': {...}})"
        raise ModelCodeError("params" if params_error else "input", one_line(e) + hint) from None
    if not np.all(np.isfinite(out)):
        raise ModelCodeError("output", f"model {model.ref} returned {int(np.sum(~np.isfinite(out)))} non-finite "
                                       f"outputs for {n} rows")
    return out
