"""Property-based tests (Hypothesis) of what a user hands the CLI: contracts, policies, data files and names.

Every generated input must end in a clear outcome - exit 0, a one-line `lockgate: error:` (2), or a failed or
quarantined batch (3) - never `unexpected error` or a traceback; the input file is byte-for-byte unchanged; and
nothing is written outside LOCKGATE_HOME. Derandomized, so CI runs the same cases every time; FUZZ_CASES (the sum of
max_examples) is the count the README reports.
"""

from __future__ import annotations

import copy
import math
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from pipelines.cli import main
from pipelines.exit_codes import EXIT_OK, EXIT_USAGE, EXIT_VALIDATION_FAILED
from tasks.errors import LockgateError
from tasks.paths import checked_name, path_under
from tasks.validation.gate import FAILURES_COLUMN

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = yaml.safe_load((ROOT / "data_contracts" / "credit_default.yaml").read_text())
POLICY = yaml.safe_load((ROOT / "pipelines" / "policies" / "demo.yaml").read_text())
EXAMPLES = {"contract": 60, "policy": 200, "data": 25, "names": 500}
FUZZ_CASES = sum(EXAMPLES.values())
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _paths(node, prefix=()):
    """Every key path into a parsed YAML document."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _at(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def _edited(doc, path, value, delete):
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


SPECIAL = st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 2 ** 64, -(2 ** 64), -1, 0])
WEIRD = st.one_of(
    SPECIAL,
    st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 63), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["../../x", "", " ", "-1", ".nan", "1e999", "a/b", "\x00", "é" * 3]),
    st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=40),
)


HOT = ("quality", "logicalTypeOptions", "customProperties", "mustBe", "arguments", "canary", "approval", "name")


def _document(doc, paths):
    """1-3 edits at key paths: a weird value or a deletion anywhere, more often where values reach checks the schema
    cannot express (quality rules, options, custom properties, budgets, approvers, names), and NaN, infinities and
    out-of-range numbers in place of numbers (bounds, thresholds, budgets)."""
    hot = [p for p in paths if any(h in map(str, p) for h in HOT)] or paths
    numeric = [p for p in paths if isinstance(_at(doc, p), (int, float)) and not isinstance(_at(doc, p), bool)]
    edit = st.one_of(st.tuples(st.one_of(st.sampled_from(paths), st.sampled_from(hot)), WEIRD, st.booleans()),
                     st.tuples(st.sampled_from(numeric), SPECIAL, st.just(False)))
    return st.lists(edit, min_size=1, max_size=3).map(
        lambda edits: _apply(doc, edits))


def _apply(doc, edits):
    for path, value, delete in edits:
        try:
            doc = _edited(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):  # an earlier edit removed or replaced the parent
            pass
    return doc


def _text(doc, tail: str) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True) + tail


TAILS = st.sampled_from(["", "version: 9.9.9\n", "name: twice\n", "deep: " + "[" * 100 + "]" * 100 + "\n"])


class Watch:
    """Runs the CLI in-process on one file and checks the promises: a clear outcome, the file untouched, no write
    outside the home."""

    def __init__(self, root: Path, home: Path, capsys):
        self.root, self.home, self.capsys = root, home, capsys

    def run(self, argv, files, allowed=(EXIT_OK, EXIT_USAGE)):
        before = {p: p.read_bytes() for p in files}
        existing = set(self.root.rglob("*"))
        code = main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        assert code in allowed, (code, out, err)
        assert "unexpected error" not in out + err and "Traceback" not in out + err, out + err
        if code == EXIT_USAGE and err:
            assert len(err.strip().splitlines()) == 1 and err.startswith("lockgate: error: "), err
        for p, data in before.items():
            assert p.read_bytes() == data, f"{p} was modified"
        new = set(self.root.rglob("*")) - existing
        assert all(p == self.home or self.home in p.parents for p in new), sorted(new)[:3]
        return code, out, err


@pytest.fixture
def watch(settings, tmp_path, capsys):
    return Watch(tmp_path, settings.home_dir, capsys)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from data_contracts.synthetic_credit import generate_frame

    return generate_frame(60, seed=11, day=date(2024, 5, 1))


@hsettings(max_examples=EXAMPLES["contract"], **FUZZ)
@given(doc=_document(CONTRACT, _paths(CONTRACT)), tail=TAILS)
def test_any_contract_is_linted_validated_or_refused_in_one_line(watch, frame, doc, tail):
    path = watch.root / "fuzz_contract.yaml"
    path.write_text(_text(doc, tail), encoding="utf-8")
    data = watch.root / "fuzz_data.parquet"
    if not data.exists():
        frame.to_parquet(data, index=False)
    watch.run(["contract", "lint", path], [path])
    watch.run(["validate", path, data], [path, data], allowed=(EXIT_OK, EXIT_USAGE, EXIT_VALIDATION_FAILED))


@hsettings(max_examples=EXAMPLES["policy"], **FUZZ)
@given(doc=_document(POLICY, _paths(POLICY)), tail=TAILS)
def test_any_policy_is_accepted_or_refused_naming_a_key(watch, doc, tail):
    from tasks.policy import load_policy

    path = watch.root / "fuzz_policy.yaml"
    path.write_text(_text(doc, tail), encoding="utf-8")
    code, out, _ = watch.run(["policy", "lint", path], [path])
    try:
        policy = load_policy(path)
    except LockgateError as e:
        assert code == EXIT_USAGE and "\n" not in str(e)
    else:
        assert code == EXIT_OK and "ok (policy" in out
        for value in _numbers(policy.model_dump()):  # whatever loads holds finite numbers only
            assert math.isfinite(value)


def _numbers(node):
    if isinstance(node, bool):
        return
    if isinstance(node, (int, float)):
        yield float(node)
    elif isinstance(node, dict):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _numbers(v)


COLUMN_EDITS = st.sampled_from(["drop", "nulls", "strings", "negative", "huge", "nan", "inf", "empty", "dup", "bool"])


@hsettings(max_examples=EXAMPLES["data"], **FUZZ)
@given(edits=st.lists(st.tuples(st.integers(0, 30), COLUMN_EDITS), min_size=1, max_size=3),
       rows=st.integers(0, 60))
def test_any_data_file_is_validated_with_quarantine_or_refused(watch, frame, edits, rows):
    df = frame.head(rows).copy()
    for index, edit in edits:
        if df.shape[1] == 0:
            break
        column = df.columns[index % df.shape[1]]
        if edit == "drop":
            df = df.drop(columns=[column])
        elif edit == "nulls":
            df[column] = None
        elif edit == "strings":
            df[column] = "x"
        elif edit == "negative":
            df[column] = -1
        elif edit == "huge":
            df[column] = 2 ** 62
        elif edit == "nan":
            df[column] = float("nan")
        elif edit == "inf":
            df[column] = float("inf")
        elif edit == "empty":
            df = df.iloc[0:0]
        elif edit == "dup":
            df = pd.concat([df, df.head(2)])
        elif edit == "bool":
            df[column] = True
    data = watch.root / "fuzz_batch.parquet"
    data.unlink(missing_ok=True)
    df.to_parquet(data, index=False)
    code, out, _ = watch.run(["validate", "credit_default", data], [data],
                             allowed=(EXIT_OK, EXIT_USAGE, EXIT_VALIDATION_FAILED))
    if code in (EXIT_OK, EXIT_VALIDATION_FAILED) and " quarantined)" in out and " 0 quarantined)" not in out:
        quarantine = watch.home / "validation" / "credit_default" / "fuzz_batch" / "quarantine.parquet"
        kept = pd.read_parquet(quarantine)  # quarantined rows are kept with their reasons, never dropped silently
        assert len(kept) and kept[FAILURES_COLUMN].str.len().min() > 0


@hsettings(max_examples=EXAMPLES["names"], **FUZZ)
@given(name=st.one_of(st.text(max_size=140), st.sampled_from(["..", "../x", "a/../../b", "/etc", "~", ".", "a\\b"])))
def test_a_name_is_a_safe_path_component_or_a_one_line_error(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "names-root"
    try:
        checked = checked_name(name, "model name")
    except LockgateError as e:
        assert str(e).startswith("model name ") and "\n" not in str(e)
        return
    path = path_under(root, checked, "v1")
    assert path.parent.parent == root and path.resolve().is_relative_to(root.resolve())
    assert checked == name and "/" not in name and "\\" not in name and ".." not in name
