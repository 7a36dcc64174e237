"""`lockgate init` on tables lockgate has never seen (scikit-learn's bundled wine and diabetes tables, and a table
of strings with nulls), then the commands a user runs next, from the project folder or with --project: the
contract lints clean (but for the provenance placeholders), the policy lints clean, the same data validates, the input is never modified."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.exit_codes import EXIT_OK, EXIT_USAGE


@pytest.fixture(autouse=True)
def project_env(monkeypatch):
    """main() exports LOCKGATE_PROJECT (and the runtime's defaults) for its flows: put the environment back after."""
    saved = dict(os.environ)
    for key in ("LOCKGATE_PROJECT", "LOCKGATE_HOME", "LOCKGATE_POLICY_FILE", "LOCKGATE_MODEL_NAME"):
        monkeypatch.delenv(key, raising=False)
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)


def _tables(folder: Path) -> dict[str, tuple[Path, str, Path | None]]:
    """name -> (data file, label, golden file or None), written once."""
    from sklearn.datasets import load_diabetes, load_wine

    folder.mkdir(parents=True, exist_ok=True)
    wine = load_wine(as_frame=True).frame
    wine["target"] = (wine["target"] == 0).astype(int)  # binary: class 0 or not
    wine.insert(0, "id", range(len(wine)))
    wine.iloc[:120].to_parquet(folder / "wine.parquet", index=False)
    wine.iloc[120:].to_parquet(folder / "wine-golden.parquet", index=False)
    diabetes = load_diabetes(as_frame=True).frame
    diabetes.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(diabetes))])
    diabetes.to_parquet(folder / "diabetes.parquet", index=False)
    n = 150
    orders = pd.DataFrame({
        "order_id": range(1000, 1000 + n),
        "placed_at": pd.date_range("2026-03-01", periods=n, freq="37min"),
        "amount": [float(i % 37) * 2.5 for i in range(n)],
        "channel": [None if i % 9 == 0 else ["web", "shop", "phone"][i % 3] for i in range(n)],
        "region": [["north", "south"][i % 2] for i in range(n)],
        "returned": [i % 4 == 0 for i in range(n)],
    })
    orders.to_parquet(folder / "orders.parquet", index=False)
    return {"wine": (folder / "wine.parquet", "target", folder / "wine-golden.parquet"),
            "diabetes": (folder / "diabetes.parquet", "target", None),
            "orders": (folder / "orders.parquet", "returned", None)}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return _tables(tmp_path_factory.mktemp("tables"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in out + err, out + err
    return code, out, err


def one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("table", ["wine", "diabetes", "orders"])
def test_init_then_lint_and_validate_from_the_project_folder(tables, table, tmp_path, capsys, project_env):
    data, label, golden = tables[table]
    inputs = {p: p.read_bytes() for p in (data, golden) if p is not None}
    folder = tmp_path / f"{table}-project"
    code, out, _ = run(capsys, "init", folder, "--from", data, "--label", label,
                       *(["--golden", golden] if golden else []))
    assert code == EXIT_OK and f"project {table}-project in {folder}" in out
    assert {p.name for p in folder.iterdir()} == {"lockgate.yaml", "contract.yaml", "policy.yaml", "data"}
    assert (folder / "data" / "reference.parquet").read_bytes() == data.read_bytes()

    project_env.chdir(folder)  # every command below finds lockgate.yaml here
    code, out, _ = run(capsys, "contract", "lint")
    # clean but for the provenance only the user knows, written as `unknown` placeholders
    assert code == EXIT_OK and "ok (0 error(s), 4 warning(s))" in out
    assert "warning: customProperties: license: no dataset licence (unknown)" in out
    assert "warning: customProperties: dataSource: no data source" in out
    assert "warning: customProperties: personalData: personal data not classified" in out
    assert "no classification on" in out
    code, out, _ = run(capsys, "policy", "lint")
    assert code == EXIT_OK and f"ok (policy {table}-project-policy;" in out
    code, out, _ = run(capsys, "validate", "data/reference.parquet", "--include-label")
    assert code == EXIT_OK and ": pass (" in out
    assert (folder / ".lockgate" / "validation" / f"{table}-project" / "reference" / "validation.json").is_file()
    if golden:
        code, out, _ = run(capsys, "validate", "data/golden.parquet", "--include-label")
        assert code == EXIT_OK and ": pass (" in out

    project_env.chdir(tmp_path)  # elsewhere: --project names it
    code, out, _ = run(capsys, "--project", folder, "validate", data, "--include-label")
    assert code == EXIT_OK and f"against {table}-project v0.1.0" in out
    assert (folder / ".lockgate" / "validation" / f"{table}-project" / data.stem / "validation.json").is_file()
    os.environ.pop("LOCKGATE_PROJECT", None)  # exported by the last command for its flows
    code, _, err = run(capsys, "validate", data)  # no project here, no contract given
    assert code == EXIT_USAGE and "CONTRACT is required here" in one_line(err)
    assert {p: p.read_bytes() for p in inputs} == inputs  # the input was only read


def test_register_and_lifecycle_take_the_projects_paths(tables, tmp_path, capsys, project_env):
    """Without a project, register needs --contract and --reference, and run lifecycle --golden; in one, the
    project's are used (here they get as far as the next missing thing: the config file, the version)."""
    data, label, golden = tables["wine"]
    project_env.chdir(tmp_path)
    code, _, err = run(capsys, "register", "--arch", "mlp", "--config", "c.json", "--params", "p.msgpack")
    assert code == EXIT_USAGE and "--contract is required here" in one_line(err)
    code, _, err = run(capsys, "run", "lifecycle", "--version", "1")
    assert code == EXIT_USAGE and "--golden is required here" in one_line(err)
    folder = tmp_path / "p"
    assert run(capsys, "init", folder, "--from", data, "--label", label, "--golden", golden)[0] == EXIT_OK
    project_env.chdir(folder)
    code, _, err = run(capsys, "register", "--arch", "mlp", "--config", "c.json", "--params", "p.msgpack")
    assert code == EXIT_USAGE and "model config file not found: c.json" in one_line(err)
    code, _, err = run(capsys, "run", "lifecycle", "--version", "1")
    assert code == EXIT_USAGE and "p v1 not found" in one_line(err)


def test_a_hive_folder_is_copied_as_a_folder(tables, tmp_path, capsys, project_env):
    data, label, _ = tables["orders"]
    frame = pd.read_parquet(data)
    hive = tmp_path / "orders"
    for i, part in enumerate((frame.iloc[:70], frame.iloc[70:])):
        (hive / f"day={i}").mkdir(parents=True)
        part.to_parquet(hive / f"day={i}" / "part.parquet", index=False)
    folder = tmp_path / "p"
    assert run(capsys, "init", folder, "--from", hive, "--label", label)[0] == EXIT_OK
    assert "reference: data/reference " in (folder / "lockgate.yaml").read_text()
    assert sorted(p.relative_to(folder / "data" / "reference").as_posix()
                  for p in (folder / "data" / "reference").rglob("*.parquet")) == ["day=0/part.parquet",
                                                                                   "day=1/part.parquet"]
    project_env.chdir(folder)
    code, out, _ = run(capsys, "validate", "data/reference", "--include-label")
    assert code == EXIT_OK and ": pass (150 rows" in out


def test_init_never_overwrites_a_project(tables, tmp_path, capsys):
    data, label, _ = tables["wine"]
    folder = tmp_path / "p"
    assert run(capsys, "init", folder, "--from", data, "--label", label)[0] == EXIT_OK
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    code, _, err = run(capsys, "init", folder, "--from", tables["diabetes"][0], "--label", "target")
    assert code == EXIT_USAGE and "already exists: init never overwrites a project" in one_line(err)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_init_without_an_id_column_says_what_to_do_and_writes_nothing(tables, tmp_path, capsys):
    data, label, _ = tables["wine"]
    no_id = tmp_path / "no-id.parquet"
    pd.read_parquet(data).drop(columns="id").to_parquet(no_id, index=False)
    before = no_id.read_bytes()
    code, _, err = run(capsys, "init", tmp_path / "p", "--from", no_id, "--label", label)
    assert code == EXIT_USAGE and "df.insert(0, 'id', range(len(df)))" in one_line(err)
    assert not (tmp_path / "p").exists() and no_id.read_bytes() == before
    code, out, _ = run(capsys, "init", tmp_path / "p", "--from", no_id, "--label", label, "--id", "proline")
    assert code == EXIT_USAGE  # not unique: refused too
    code, _, err = run(capsys, "init", tmp_path / "p", "--from", no_id, "--label", "nope")
    assert code == EXIT_USAGE and "no label column 'nope'" in one_line(err)


@pytest.mark.parametrize("line,fragment", [("golde: data/x.parquet", "golde: unknown key"),
                                           ("reference: ../elsewhere.parquet", "reference: '../elsewhere.parquet' "
                                            "leads outside the project folder")])
def test_a_bad_project_file_is_one_line_naming_the_key(tables, tmp_path, capsys, project_env, line, fragment):
    data, label, _ = tables["diabetes"]
    folder = tmp_path / "p"
    assert run(capsys, "init", folder, "--from", data, "--label", label)[0] == EXIT_OK
    text = (folder / "lockgate.yaml").read_text()
    (folder / "lockgate.yaml").write_text(text.replace("reference: data/reference.parquet", line))
    project_env.chdir(folder)
    code, _, err = run(capsys, "status")
    assert code == EXIT_USAGE and fragment in one_line(err) and "lockgate.yaml" in err
    project_env.chdir(tmp_path)
    code, _, err = run(capsys, "--project", folder, "policy", "lint")
    assert code == EXIT_USAGE and fragment in one_line(err)
    assert not (folder / ".lockgate").exists()  # refused before anything was made
