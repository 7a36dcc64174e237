"""`lockgate contract lint|diff` and `lockgate validate`, in-process: exit codes, one-line errors, input untouched."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.cli import main
from pipelines.exit_codes import EXIT_OK, EXIT_USAGE, EXIT_VALIDATION_FAILED

CONTRACT_FILE = Path(__file__).resolve().parents[3] / "data_contracts" / "credit_default.yaml"
N = 200


def _one_line_error(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def run(capsys, argv, inputs=()):
    """main(argv) -> (exit code, stdout, stderr), asserting each input file's bytes are unchanged."""
    before = {p: p.read_bytes() for p in inputs if Path(p).is_file()}
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p} was modified"
    return code, out, err


@pytest.fixture(scope="module")
def raw_contract() -> dict:
    return yaml.safe_load(CONTRACT_FILE.read_text(encoding="utf-8"))


@pytest.fixture
def contract_file(raw_contract, tmp_path):
    def _write(edit=None, name="contract.yaml", version=None):
        raw = copy.deepcopy(raw_contract)
        if version:
            raw["version"] = version
        if edit is not None:
            edit(raw)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    return _write


def _age(key, value):
    def edit(raw):
        next(p for p in raw["schema"][0]["properties"] if p["name"] == "age")["logicalTypeOptions"][key] = value
    return edit


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from data_contracts.synthetic_credit import generate_frame

    return generate_frame(N, seed=5, day=date(2024, 5, 1))


# ------------------------------------------------------------------------- lint


def test_lint_clean(settings, capsys):
    code, out, _ = run(capsys, ["contract", "lint", CONTRACT_FILE], [CONTRACT_FILE])
    assert code == EXIT_OK and "0 error(s), 0 warning(s)" in out


def test_lint_warnings_exit_zero(settings, capsys, contract_file):
    path = contract_file(lambda raw: raw.pop("team"))
    code, out, _ = run(capsys, ["contract", "lint", path], [path])
    assert code == EXIT_OK and "warning: team: no owner" in out and "0 error(s), 1 warning(s)" in out


@pytest.mark.parametrize("edit,fragment", [
    (_age("minimum", 95), "minimum 95 > maximum 90"),
    (lambda raw: raw["schema"][0]["properties"][0]["logicalTypeOptions"].update(pattern="^APP-[0-9"), "invalid regex"),
    (lambda raw: raw.update(owner="me"), "owner: unknown key"),
    (lambda raw: raw["schema"][0]["properties"][2].update(logicalType="int"), "logicalType"),
    (lambda raw: next(cp for cp in raw["customProperties"] if cp["property"] == "license").update(value="MIT2"),
     "(license).value: 'MIT2' is not an SPDX license expression"),
])
def test_lint_errors_exit_two(settings, capsys, contract_file, edit, fragment):
    path = contract_file(edit)
    code, out, _ = run(capsys, ["contract", "lint", path], [path])
    assert code == EXIT_USAGE and fragment in out and "1 error(s)" in out
    assert [line for line in out.splitlines() if line.startswith("error:")][0].count("\n") == 0


# ------------------------------------------------------------------------- diff


def test_diff_breaking_exits_three(settings, capsys, contract_file):
    new = contract_file(_age("maximum", 80), version="2.0.0")
    code, out, _ = run(capsys, ["contract", "diff", CONTRACT_FILE, new], [CONTRACT_FILE, new])
    assert code == 3 and "range tightened" in out and "1 breaking of 1 changes" in out


def test_diff_non_breaking_exits_zero(settings, capsys, contract_file):
    new = contract_file(_age("maximum", 100), version="1.1.0")
    code, out, _ = run(capsys, ["contract", "diff", "credit_default", new], [new])
    assert code == EXIT_OK and "range loosened" in out and "0 breaking of 1 changes" in out


def test_diff_identical(settings, capsys):
    code, out, _ = run(capsys, ["contract", "diff", "credit_default", CONTRACT_FILE])
    assert code == EXIT_OK and "no changes" in out


@pytest.mark.parametrize("edit,fragment", [
    (_age("minimum", 95), "minimum 95 > maximum 90"),
    (lambda raw: raw.update(owner="me"), "owner: unknown key"),
])
def test_diff_bad_contract_is_one_line(settings, capsys, contract_file, edit, fragment):
    bad = contract_file(edit)
    code, _, err = run(capsys, ["contract", "diff", "credit_default", bad], [bad])
    assert code == EXIT_USAGE and fragment in _one_line_error(err)


# --------------------------------------------------------------------- validate


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_parquet(path, index=False)
    return path


def test_validate_pass(settings, capsys, frame, tmp_path):
    data = _write(frame, tmp_path / "day1.parquet")
    code, out, err = run(capsys, ["validate", "credit_default", data, "--include-label"], [data])
    assert code == EXIT_OK and f": pass ({N} rows, 0 quarantined)" in out, out + err
    folder = settings.home_dir / "validation" / "credit_default" / "day1"
    assert (folder / "ge_validation_result.json").is_file() and not (folder / "quarantine.parquet").exists()
    assert json.loads((folder / "validation.json").read_text())["decision"] == "pass"


def test_validate_data_docs_on_failures(settings, capsys, frame, tmp_path, monkeypatch):
    """The policy's ``validation.data_docs: on_failures``: GE's page only for a dataset with failing rows."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("validation: {data_docs: on_failures}\n")
    monkeypatch.setenv("LOCKGATE_POLICY_FILE", str(policy))
    clean = _write(frame, tmp_path / "clean.parquet")
    dirty = _write(frame.assign(age=frame["age"].where(frame.index != 3, 150)), tmp_path / "dirty.parquet")
    root = settings.home_dir / "validation" / "credit_default"
    assert run(capsys, ["validate", "credit_default", clean, "--include-label"], [clean])[0] == EXIT_OK
    assert (root / "clean" / "ge_validation_result.json").is_file() and not list((root / "clean").rglob("*.html"))
    assert run(capsys, ["validate", "credit_default", dirty, "--include-label"], [dirty])[0] == EXIT_OK
    assert [p.name for p in (root / "dirty").rglob("*.html")] == ["data_docs.html"]
    _write(frame, tmp_path / "dirty.parquet")  # fixed upstream: the earlier page is not this validation's
    assert run(capsys, ["validate", "credit_default", dirty, "--include-label"], [dirty])[0] == EXIT_OK
    assert (root / "dirty" / "ge_validation_result.json").is_file() and not list((root / "dirty").rglob("*.html"))


def test_validate_hive_folder(settings, capsys, frame, tmp_path):
    folder = tmp_path / "stream"
    for day, part in ((1, frame.iloc[:100]), (2, frame.iloc[100:])):
        (folder / f"day={day}").mkdir(parents=True)
        _write(part, folder / f"day={day}" / "part-0.parquet")
    code, out, _ = run(capsys, ["validate", "credit_default", folder, "--include-label"],
                       list(folder.rglob("*.parquet")))
    assert code == EXIT_OK and f": pass ({N} rows" in out
    assert (settings.home_dir / "validation" / "credit_default" / "stream" / "validation.json").is_file()


def test_validate_reads_a_pyarrow_filesystem_uri(settings, capsys, frame, tmp_path):
    """A URI goes to pyarrow's filesystem layer (file:// here; s3:// and gs:// take the same path)."""
    df = frame.copy()
    df.loc[3, "age"] = 150
    (tmp_path / "remote").mkdir()
    data = _write(df, tmp_path / "remote" / "batch.parquet")
    code, out, _ = run(capsys, ["validate", "credit_default", f"file://{data}", "--include-label"], [data])
    assert code == EXIT_OK and f": quarantine ({N} rows, 1 quarantined)" in out
    out_dir = settings.home_dir / "validation" / "credit_default" / "batch"
    assert len(pd.read_parquet(out_dir / "quarantine.parquet")) == 1


def test_validate_quarantine_within_limit(settings, capsys, frame, tmp_path):
    df = frame.copy()
    df.loc[[3, 7], "age"] = 200  # out of range
    df.loc[[11], "annual_income"] = np.nan  # null in a required number column
    df.loc[[12], "annual_income"] = np.inf  # out of range
    data = _write(df, tmp_path / "q.parquet")
    code, out, _ = run(capsys, ["validate", "credit_default", data], [data])
    assert code == EXIT_OK and ": quarantine (200 rows, 4 quarantined)" in out
    assert "warning: 4 row(s) quarantined" in out and "age in range" in out and "annual_income not null" in out
    quarantine = settings.home_dir / "validation" / "credit_default" / "q" / "quarantine.parquet"
    bad = pd.read_parquet(quarantine)
    assert sorted(bad["application_id"]) == sorted(df.loc[[3, 7, 11, 12], "application_id"])
    assert "_lockgate_failed_expectations" in bad.columns and str(quarantine) in out


def test_nulls_in_an_integer_parquet_column_are_quarantined(settings, capsys, frame, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    ages = table.column("age").to_pylist()
    ages[5] = None
    table = table.set_column(table.schema.get_field_index("age"), "age", pa.array(ages, pa.int64()))
    data = tmp_path / "int_nulls.parquet"
    pq.write_table(table, data)
    code, out, _ = run(capsys, ["validate", "credit_default", data], [data])
    assert code == EXIT_OK and "1 quarantined" in out and "age not null" in out


def test_validate_too_many_quarantined_fails(settings, capsys, frame, tmp_path):
    df = frame.copy()
    df.loc[: N // 5, "region"] = "atlantis"  # 20% > the demo policy's 5%
    data = _write(df, tmp_path / "many.parquet")
    code, out, _ = run(capsys, ["validate", "credit_default", data], [data])
    assert code == EXIT_VALIDATION_FAILED and ": fail (" in out and "region in set" in out


def _set(column, value, rows=(0, 1)):
    def edit(df):
        df[column] = df[column].astype(object) if isinstance(value, str) else df[column]
        df.loc[list(rows), column] = value
        return df
    return edit


@pytest.mark.parametrize("edit,fragment", [
    (lambda df: df.iloc[0:0], "row count in range"),
    (lambda df: df.drop(columns=["credit_score"]), "credit_score exists"),
    (lambda df: df.assign(age=df["age"].astype(str)), "age dtype"),
    (lambda df: df.assign(application_id=df["application_id"].iloc[0]), "application_id unique"),
    (_set("age", None), "age"),  # pandas writes an int column with nulls as float64: a type change in the file
], ids=["zero rows", "missing column", "strings in numeric column", "duplicate ids", "float written for integer"])
def test_validate_dataset_failures(settings, capsys, frame, tmp_path, edit, fragment):
    data = _write(edit(frame.copy()), tmp_path / "bad.parquet")
    code, out, err = run(capsys, ["validate", "credit_default", data], [data])
    assert code == EXIT_VALIDATION_FAILED and ": fail (" in out and fragment in out, out + err


@pytest.mark.parametrize("content,fragment", [
    (b"", "not a readable parquet file"),
    (b"id,age\n1,2\n", "not a readable parquet file"),
    (None, "not a readable parquet file"),  # truncated
], ids=["empty file", "not parquet", "truncated parquet"])
def test_validate_unreadable_data(settings, capsys, frame, tmp_path, content, fragment):
    data = tmp_path / "bad.parquet"
    if content is None:
        full = _write(frame, tmp_path / "full.parquet").read_bytes()
        content = full[: len(full) // 2]
    data.write_bytes(content)
    code, _, err = run(capsys, ["validate", "credit_default", data], [data])
    assert code == EXIT_USAGE and fragment in _one_line_error(err)


def test_validate_missing_data(settings, capsys, tmp_path):
    code, _, err = run(capsys, ["validate", "credit_default", tmp_path / "nope.parquet"])
    assert code == EXIT_USAGE and "not found" in _one_line_error(err)


@pytest.mark.parametrize("edit,fragment", [
    (lambda raw: raw["schema"][0]["properties"][0]["logicalTypeOptions"].update(pattern="^APP-[0-9"), "invalid regex"),
    (_age("minimum", 95), "minimum 95 > maximum 90"),
    (lambda raw: raw.update(owner="me"), "owner: unknown key"),
    (lambda raw: raw["schema"][0]["properties"][2].update(logicalType="int"), "logicalType"),
])
def test_validate_bad_contract(settings, capsys, frame, tmp_path, contract_file, edit, fragment):
    bad = contract_file(edit)
    data = _write(frame, tmp_path / "d.parquet")
    code, _, err = run(capsys, ["validate", bad, data], [bad, data])
    assert code == EXIT_USAGE and fragment in _one_line_error(err)


@pytest.mark.parametrize("name", ["../../../x/evil", "a/b", "..", ".hidden", "with space", "x" * 129])
def test_a_contract_name_that_would_leave_lockgate_home_is_refused(settings, capsys, frame, tmp_path, contract_file,
                                                                   name):
    bad = contract_file(lambda raw: raw.update(name=name))
    data = _write(frame, tmp_path / "d.parquet")
    before = {p for p in tmp_path.rglob("*")}
    code, _, err = run(capsys, ["validate", bad, data], [bad, data])
    assert code == EXIT_USAGE and "name: Value error" in _one_line_error(err) and "is not a safe name" in err
    home = settings.home_dir
    assert all(p == home or home in p.parents for p in set(tmp_path.rglob("*")) - before)  # nothing written outside
    code, out, _ = run(capsys, ["contract", "lint", bad], [bad])
    assert code == EXIT_USAGE and "is not a safe name" in out


def test_a_data_file_name_that_is_not_a_safe_name_is_refused(settings, capsys, frame, tmp_path):
    data = _write(frame, tmp_path / "day one.parquet")
    code, _, err = run(capsys, ["validate", "credit_default", data], [data])
    assert code == EXIT_USAGE and "'day one' is not a safe name" in _one_line_error(err)
    assert not (settings.home_dir / "validation" / "credit_default").exists()


@pytest.mark.parametrize("edit,fragment", [
    (lambda raw: raw["schema"][0]["quality"][0].update(mustBeBetween=[1, float("inf")]),
     "quality[0](row_count).mustBeBetween[1]: inf is not a finite number"),
    (lambda raw: raw["schema"][0]["properties"][10]["quality"][0].update(mustBe=float("nan")),
     "mustBe: nan is not a finite number"),
])
def test_a_nan_or_inf_bound_is_a_one_line_error(settings, capsys, contract_file, frame, tmp_path, edit, fragment):
    bad = contract_file(edit)
    data = _write(frame, tmp_path / "d.parquet")
    for argv in (["contract", "lint", bad], ["contract", "diff", "credit_default", bad], ["validate", bad, data]):
        code, out, err = run(capsys, argv, [bad, data])
        assert code == EXIT_USAGE and fragment in out + err and "unexpected error" not in out + err


def test_a_deeply_nested_contract_is_a_one_line_error(settings, capsys, tmp_path):
    bad = tmp_path / "deep.yaml"
    bad.write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    code, _, err = run(capsys, ["contract", "diff", "credit_default", bad], [bad])
    assert code == EXIT_USAGE and "nesting deeper than 64 levels" in _one_line_error(err)


def test_validate_unknown_contract_name(settings, capsys, frame, tmp_path):
    data = _write(frame, tmp_path / "d.parquet")
    code, _, err = run(capsys, ["validate", "no_such_contract", data], [data])
    assert code == EXIT_USAGE and "no no_such_contract.yaml" in _one_line_error(err)


@pytest.mark.parametrize("argv", [["contract", "--help"], ["contract", "lint", "--help"], ["contract", "diff", "--help"],
                                  ["validate", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0 and "usage: lockgate" in capsys.readouterr().out


def _binary_ids(df):
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    ids = [b"\xff\xfe-not-utf8"] + [s.encode() for s in df["application_id"].iloc[1:]]
    return table.set_column(table.schema.get_field_index("application_id"), "application_id", pa.array(ids, pa.binary()))


@pytest.mark.parametrize("build,fragment", [
    (lambda df: df.assign(applied_at=df["applied_at"].dt.tz_localize("Europe/Berlin")), "applied_at dtype"),
    (lambda df: df.assign(applied_at=df["applied_at"].astype("int64")), "applied_at dtype"),  # epoch numbers
    (lambda df: pd.DataFrame(np.random.default_rng(0).normal(size=(50, 2000)),
                             columns=[f"junk_{i}" for i in range(2000)]), "application_id exists"),
    (_binary_ids, "application_id dtype"),  # bytes that are not UTF-8, stored as binary
], ids=["timestamp in another time zone", "timestamp as a number", "very wide junk file", "invalid UTF-8"])
def test_validate_more_bad_input(settings, capsys, frame, tmp_path, build, fragment):
    import pyarrow as pa
    import pyarrow.parquet as pq

    built = build(frame.copy())
    data = tmp_path / "bad.parquet"
    if isinstance(built, pa.Table):
        pq.write_table(built, data)
    else:
        built.to_parquet(data, index=False)
    code, out, err = run(capsys, ["validate", "credit_default", data], [data])
    assert code == EXIT_VALIDATION_FAILED and ": fail (" in out and fragment in out, out + err
