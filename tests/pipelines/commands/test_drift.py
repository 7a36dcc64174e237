"""`lockgate drift REFERENCE CURRENT`, in-process: the table, the decision, exit codes, reports, input untouched."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts.synthetic_credit import generate_frame
from pipelines.cli import main
from pipelines.exit_codes import EXIT_DRIFT_BREACH, EXIT_OK, EXIT_USAGE

N = 3000


def _write(df, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift-cli")
    day = date(2026, 1, 5)
    reference = _write(generate_frame(N, seed=1, day=day), root / "reference.parquet")
    same = _write(generate_frame(N, seed=2, day=day, id_offset=N), root / "same.parquet")
    for i in range(3):  # a hive-partitioned current with a covariate shift
        _write(generate_frame(N // 3, seed=10 + i, day=day, covariate_drift=1.0, id_offset=(i + 2) * N),
               root / "shifted" / f"day={i}" / "part-0.parquet")
    return root, reference, same, root / "shifted"


def run(capsys, argv, inputs=()):
    before = {p: p.read_bytes() for p in inputs if Path(p).is_file()}
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for p, content in before.items():
        assert p.read_bytes() == content, f"{p} was modified"
    return code, out, err


def test_no_drift_exits_zero_and_writes_reports(settings, capsys, data, tmp_path):
    _, reference, same, _ = data
    code, out, err = run(capsys, ["drift", reference, same, "--contract", "credit_default", "--out", tmp_path],
                         [reference, same])
    assert code == EXIT_OK, out + err
    assert "decision: ok" in out and "drift per column" in out
    assert "psi" in out and "wasserstein" in out and "jensenshannon" in out  # the contract's methods
    for name in ("drift_report.html", "drift_snapshot.json", "drift.json"):
        assert (tmp_path / name).is_file()
    result = json.loads((tmp_path / "drift.json").read_text())
    assert result["decision"] == "ok" and len(result["columns"]) == 11


def test_shift_breaches_with_exit_three_naming_columns(settings, capsys, data, tmp_path):
    _, reference, _, shifted = data
    code, out, _ = run(capsys, ["drift", reference, shifted, "--contract", "credit_default", "--out", tmp_path],
                       [reference])
    assert code == EXIT_DRIFT_BREACH
    assert "decision: breach" in out and "DRIFT" in out
    result = json.loads((tmp_path / "drift.json").read_text())
    assert result["decision"] == "breach"
    for column in result["drifted_columns"]:
        assert f"column {column} drifted" in out


def test_without_contract_columns_come_from_the_schema(settings, capsys, data, tmp_path):
    _, reference, same, _ = data
    code, out, _ = run(capsys, ["drift", reference, same, "--out", tmp_path])
    assert code in (EXIT_OK, EXIT_DRIFT_BREACH)
    assert "inferred from the reference schema" in out and "not compared: applied_at (timestamp" in out
    assert f"application_id (identifier: {N:,} values, all distinct)" in out  # every current id is unseen
    names = {c["column"] for c in json.loads((tmp_path / "drift.json").read_text())["columns"]}
    assert {"age", "region", "defaulted"} <= names and not {"applied_at", "application_id"} & names


def test_identifiers_are_told_from_categories(tmp_path):
    """All distinct (at least IDENTIFIER_MIN non-null values, nulls aside, in any string type): an identifier; a
    repeated value, or too few values to tell: a category. Only the first IDENTIFIER_ROWS rows are read."""
    from pipelines.commands.drift import IDENTIFIER_MIN, IDENTIFIER_ROWS, identifier_columns
    from tasks.drift.source import open_source

    n = IDENTIFIER_MIN + 10
    ids = [f"id-{i}" for i in range(n)]
    table = pa.table({
        "plain": ids,
        "with_nulls": [None if i % 7 == 0 else v for i, v in enumerate(ids)],
        "dictionary": pa.array(ids).dictionary_encode(),
        "one_repeat": ids[:-1] + ids[:1],
        "category": [f"c{i % 5}" for i in range(n)],
    })
    few = pa.table({"plain": ids[: IDENTIFIER_MIN - 1]})
    _write(table.to_pandas(), tmp_path / "ids" / "part-0.parquet")
    _write(few.to_pandas(), tmp_path / "few.parquet")
    source = open_source(str(tmp_path / "ids"), [], "reference")
    found = identifier_columns(source, ["plain", "with_nulls", "dictionary", "one_repeat", "category"])
    assert found == {"plain": n, "with_nulls": n - len(range(0, n, 7)), "dictionary": n}
    assert identifier_columns(open_source(str(tmp_path / "few.parquet"), [], "reference"), ["plain"]) == {}
    # beyond the rows read, a repeat is not looked for: ids then a repeat of the first after IDENTIFIER_ROWS
    long = pa.table({"late_repeat": [f"x{i}" for i in range(IDENTIFIER_ROWS)] + ["x0"]})
    _write(long.to_pandas(), tmp_path / "long.parquet")
    assert identifier_columns(open_source(str(tmp_path / "long.parquet"), [], "reference"),
                              ["late_repeat"]) == {"late_repeat": IDENTIFIER_ROWS}


@pytest.mark.parametrize("case, fragment", [
    ("missing", "current data not found"),
    ("junk", "is not readable parquet"),
    ("schema", "current data is missing column(s) ['age']"),
])
def test_bad_input_is_one_line(settings, capsys, data, tmp_path, case, fragment):
    root, reference, same, _ = data
    current = {"missing": tmp_path / "nope.parquet", "junk": tmp_path / "junk.parquet",
               "schema": tmp_path / "narrow.parquet"}[case]
    if case == "junk":
        current.write_bytes(b"PAR1 but not really")
    if case == "schema":
        _write(pq.read_table(same).drop(["age"]).to_pandas(), current)
    code, out, err = run(capsys, ["drift", reference, current, "--contract", "credit_default", "--out", tmp_path],
                         [reference, current])
    assert code == EXIT_USAGE
    err = err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_without_contract_a_bad_reference_is_one_line(settings, capsys, data, tmp_path):
    """The schema inference (and its identifier check) reads the reference: a file that is not parquet is a one-line
    usage error, and neither input is changed."""
    _, _, same, _ = data
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 but not really")
    code, out, err = run(capsys, ["drift", junk, same, "--out", tmp_path / "out"], [junk, same])
    assert code == EXIT_USAGE
    err = err.strip()
    assert len(err.splitlines()) == 1 and "reference data" in err and "is not readable parquet" in err, err
