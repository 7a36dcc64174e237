"""Memoised property-path parsing for plotly, under Evidently's report.

Evidently 0.7 draws every column of its drift report with plotly 5 (``plotly<6`` is its pin), twice: once for the
column's own widget and once for the legacy drift table. Each figure goes through ``make_subplots`` and
``update_layout``, and every property path there (``"xaxis2.title.text"``, ``"error_x.color"``) is parsed again by
``plotly.basedatatypes._str_to_dict_path_full``: split, chomp and rejoin, the largest single cost in plotly's part of
the report (measured side by side: a 12-column drift report on 600 rows, best of 6, 0.88 -> 0.70 CPU-s). The parse is a pure function of the string (and of
the class constant ``BaseFigure._valid_underscore_properties``), so it is memoised once per process, the way
plotly's own validators are cached; each call still gets a list of its own. A plotly without that function, or
one whose function is already wrapped, is left alone, and the report is drawn as before.
"""

from __future__ import annotations

from functools import lru_cache, wraps

PARSER = "_str_to_dict_path_full"


@lru_cache(maxsize=1)
def memoise_plotly_paths() -> bool:
    """Memoise plotly's key-path parser for this process; True when it is (now or already) memoised."""
    try:
        from plotly import basedatatypes
    except ImportError:
        return False
    parse = getattr(basedatatypes, PARSER, None)
    if parse is None or not callable(parse):
        return False
    if getattr(parse, "lockgate_memoised", False):
        return True
    cached = lru_cache(maxsize=16_384)(parse)

    @wraps(parse)
    def parse_path(key_path_str):
        if not isinstance(key_path_str, str):  # the parser takes strings; anything else keeps plotly's own error
            return parse(key_path_str)
        path, positions = cached(key_path_str)
        return path, list(positions)  # callers get their own list, as from plotly's parser

    parse_path.lockgate_memoised = True
    setattr(basedatatypes, PARSER, parse_path)
    return True
