"""GE's ``convert_to_json_serializable`` with a fast path for plain Python values.

GE 1.x turns every metric's keyword arguments into JSON to name the metric (``IDDict.to_id``), tens of thousands of
times per validation. Its converter tries ~20 type checks in turn, four of them ``numpy.issubdtype``, before it
reaches ``data is None``, the most common metric argument. A validation of a 2,000-row batch against the credit
contract spent ~27% of its CPU in the converter (cProfile, warm).

:func:`use_fast_json_values` puts a converter in front of GE's that answers for values of exactly ``None``,
``str``, ``int``, ``bool`` or ``float`` (NaN -> ``None``, as GE does), and walks exactly-``dict``, ``list`` and
``tuple`` containers itself the way GE does (keys through ``str``; a list for both sequence types). Anything else,
subclasses included, goes to GE's own converter, whose inner recursion then comes back through the fast path. The
results are equal (tests/data_contracts/test_ge_json.py compares both converters over every kind of value GE
converts, and a whole validation with either).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any, Callable

_PLAIN = (str, int, bool)


def fast_converter(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A converter equal to ``original`` (GE's) for every value, faster for plain Python values."""

    def convert_to_json_serializable(data: Any) -> Any:
        kind = type(data)
        if data is None or kind in _PLAIN:
            return data
        if kind is float:
            return None if data != data else data  # NaN, as GE's np.isnan
        if kind is dict:
            return {str(key): convert_to_json_serializable(value) for key, value in data.items()}
        if kind is list or kind is tuple:
            return [convert_to_json_serializable(value) for value in data]
        return original(data)

    convert_to_json_serializable.__wrapped__ = original  # type: ignore[attr-defined]
    convert_to_json_serializable.__doc__ = original.__doc__
    return convert_to_json_serializable


def ge_modules_naming(converter: Callable[[Any], Any]) -> list:
    """GE's loaded modules whose ``convert_to_json_serializable`` is ``converter`` (those that imported it by name)."""
    return [module for name, module in list(sys.modules.items())
            if (name == "great_expectations" or name.startswith("great_expectations."))
            and getattr(module, "convert_to_json_serializable", None) is converter]


@lru_cache(maxsize=1)
def use_fast_json_values() -> bool:
    """Install :func:`fast_converter` (once per process) in GE's ``util`` and in every GE module that imported the
    converter by name. False, and nothing changed, if GE no longer has the function."""
    import great_expectations.util as ge_util

    original = getattr(ge_util, "convert_to_json_serializable", None)
    if not callable(original):
        return False
    fast = fast_converter(original)
    for module in ge_modules_naming(original):
        module.convert_to_json_serializable = fast
    return True
