"""`lockgate init DIR --from DATA --label COLUMN`: a project folder with a draft contract, a policy and lockgate.yaml.

Writes, in DIR (created if needed):

- ``contract.yaml``: a draft ODCS contract inferred from DATA (and the golden set, when given), see
  data_contracts/infer.py; it loads (ODCS and lockgate's checks) before anything is written;
- ``policy.yaml``: every gate threshold with a comment (pipelines/policies/project.yaml.template), with a
  regressor's margins sized from the label's spread; it passes the policy checks before anything is written;
- ``data/reference.parquet`` (and ``data/golden.parquet``): byte copies of the inputs (a hive folder is copied to
  ``data/reference/``), unless the input is already inside DIR, where lockgate.yaml names it in place;
- ``lockgate.yaml`` last (tasks/project.py), so an interrupted init leaves no project file.

The inputs are only read. Nothing is overwritten: an existing project file refuses the whole init in one line.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import tempfile
from pathlib import Path
from string import Template

from pydantic import BaseModel, ConfigDict, Field

from data_contracts.contract import ContractError, parse_contract
from data_contracts.names import name_problem
from tasks.errors import LockgateError
from tasks.project import PROJECT_FILE, load_project, project_path
from tasks.settings import PACKAGE_ROOT

POLICY_TEMPLATE = PACKAGE_ROOT / "pipelines" / "policies" / "project.yaml.template"
CONTRACT_FILE, POLICY_FILE = "contract.yaml", "policy.yaml"
REFERENCE_COPY, GOLDEN_COPY = "data/reference.parquet", "data/golden.parquet"
COPIES = {("reference", False): REFERENCE_COPY, ("golden", False): GOLDEN_COPY,  # (role, a hive folder?) -> path
          ("reference", True): "data/reference", ("golden", True): "data/golden"}


class ProjectInit(BaseModel):
    """What `lockgate init` wrote and inferred."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: Path = Field(description="The project folder.")
    project_file: Path = Field(description="lockgate.yaml.")
    contract: Path = Field(description="The draft contract.")
    policy: Path = Field(description="The policy.")
    reference: Path = Field(description="The reference data lockgate.yaml names.")
    golden: Path | None = Field(None, description="The golden set lockgate.yaml names, if one was given.")
    name: str = Field(description="Model and contract name.")
    rows: int = Field(description="Rows the contract was inferred from.")
    label: str = Field(description="The label column.")
    task: str = Field(description="What the label looks like: classification (few values) or regression.")
    id_column: str = Field(description="The column naming rows.")
    numeric_features: list[str] = Field(description="Numeric feature columns.")
    categorical_features: list[str] = Field(description="Categorical feature columns.")
    slice_columns: list[str] = Field(description="Slice columns (low-cardinality categoricals).")
    notes: list[str] = Field(description="What the user should look at (columns left out of the features, ...).")


def init_project(folder: str | Path, data: str | Path, *, label: str, golden: str | Path | None = None,
                 name: str | None = None, id_column: str | None = None) -> ProjectInit:
    """Write a new project in ``folder`` from ``data`` (module docstring); a one-line LockgateError otherwise.

    Args:
      folder: the project folder (created; must not hold lockgate.yaml, contract.yaml or policy.yaml yet).
      data: a parquet file or hive folder with the label: the reference (training) data.
      label: the label column.
      golden: a labeled holdout (same columns), also read for the contract and named as the golden set.
      name: the model and contract name (default: the folder's name, made safe).
      id_column: the column that names rows (default: a unique non-null ``id`` / ``*_id`` column).
    """
    folder = Path(folder).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise LockgateError(f"{folder} is a file, not a project folder")
    for existing in (PROJECT_FILE, CONTRACT_FILE, POLICY_FILE, *COPIES.values()):
        if (folder / existing).exists():
            raise LockgateError(f"{folder / existing} already exists: init never overwrites a project (edit it, "
                                "or init another folder)")
    name = name or _name_from(folder)
    if problem := name_problem(name):
        raise LockgateError(f"project name {name!r} is not a safe name: it {problem}; give one with --name")
    data = Path(data).expanduser()
    table = _read(data, "data")
    sources = [data.name]
    if golden is not None:
        golden = Path(golden).expanduser()
        table = _with_golden(table, _read(golden, "golden set"), golden)
        sources.append(golden.name)
    try:
        from data_contracts.infer import infer_contract

        inferred = infer_contract(table, name=name, label=label, source=" + ".join(sources), id_column=id_column,
                                  owner=_login())
    except ContractError as e:
        raise LockgateError(str(e)) from None

    contract_text = _contract_text(inferred.document, sources, table.num_rows)
    try:
        parse_contract(contract_text, source=folder / CONTRACT_FILE)
    except ContractError as e:  # a bug of the inference, never the user's: say so
        raise LockgateError(f"the inferred contract does not load ({e}); please report it") from None
    policy_text = policy_text_for(name, inferred.task, inferred.label_std)
    _check_policy(policy_text)
    reference_rel = _in_place(folder, data) or COPIES["reference", data.is_dir()]
    golden_rel = None if golden is None else (_in_place(folder, golden) or COPIES["golden", golden.is_dir()])
    project_text = _project_text(name, reference_rel, golden_rel, sources)

    folder.mkdir(parents=True, exist_ok=True)
    _write_new(folder / CONTRACT_FILE, contract_text)
    _write_new(folder / POLICY_FILE, policy_text)
    for source, rel in ((data, reference_rel), (golden, golden_rel)):
        if source is not None and rel in COPIES.values():
            _copy(source, folder / rel)
    _write_new(folder / PROJECT_FILE, project_text)
    project = load_project(folder / PROJECT_FILE)
    return ProjectInit(folder=folder, project_file=folder / PROJECT_FILE, contract=project.contract,
                       policy=project.policy, reference=project.reference, golden=project.golden, name=name,
                       rows=table.num_rows, label=label, task=inferred.task, id_column=inferred.id_column,
                       numeric_features=inferred.numeric_features,
                       categorical_features=inferred.categorical_features, slice_columns=inferred.slice_columns,
                       notes=inferred.notes)


def policy_text_for(name: str, task: str, label_std: float | None) -> str:
    """The project policy: the template with a regressor's margins in label units (5% of the label's standard
    deviation; slices 10%; variant budgets 2.5% and 25%), or tasks/policy.py's unit-scale defaults for a label that
    does not look like a regression target."""
    scale = label_std if task == "regression" and label_std and label_std > 0 else None
    unit = scale or 0.2  # the unit-scale defaults of tasks/policy.py: rmse/mae margin 0.01 = 5% of 0.2
    note = (f"sized from the label's standard deviation in the data ({scale:.4g}): 5% (rmse, mae), 10% (slices), "
            "2.5% and 25% (variants)" if scale else "the label looks like classes: margins for a label of about unit "
            "scale (a regressor's are in label units)")
    return Template(POLICY_TEMPLATE.read_text(encoding="utf-8")).substitute(
        name=name, regression_note=note, rmse_margin=_num(0.05 * unit), mae_margin=_num(0.05 * unit),
        slice_margin=_num(0.1 * unit), variant_rmse=_num(0.025 * unit), variant_abs=_num(0.25 * unit))


def _num(x: float) -> str:
    return f"{float(f'{x:.3g}'):g}"


def _check_policy(text: str) -> None:
    from tasks.policy import policy_problems

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / POLICY_FILE
        path.write_text(text, encoding="utf-8")
        policy, problems = policy_problems(path)
    if policy is None:
        raise LockgateError(f"the project policy does not load ({'; '.join(problems)}); please report it")


def _name_from(folder: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-._").lower() or "model"


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _read(path: Path, what: str):
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not path.exists():
        raise LockgateError(f"{what} not found: {path}")
    try:
        return ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        raise LockgateError(f"{what} {path} is not a readable parquet file: {str(e).splitlines()[0]}") from None


def _with_golden(table, golden_table, golden: Path):
    import pyarrow as pa

    if golden_table.column_names != table.column_names:
        missing = [c for c in table.column_names if c not in golden_table.column_names]
        extra = [c for c in golden_table.column_names if c not in table.column_names]
        raise LockgateError(f"golden set {golden} has other columns than the data (missing {missing}, extra {extra}"
                            f"{', or another order' if not (missing or extra) else ''})")
    try:
        return pa.concat_tables([table, golden_table.cast(table.schema)])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise LockgateError(f"golden set {golden} has other column types than the data: "
                            f"{str(e).splitlines()[0]}") from None


def _in_place(folder: Path, path: Path) -> str | None:
    """``path`` relative to ``folder`` when it is inside it and lockgate.yaml may name it there, else None."""
    try:
        rel = path.resolve().relative_to(folder.resolve()).as_posix()
        project_path(folder.resolve(), rel, "data")
        return rel
    except (ValueError, LockgateError):
        return None


def _write_new(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as f:  # "x": never replaces a file
        f.write(text)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        os.link(tmp, target)  # fails if target appeared meanwhile: never replaced
        tmp.unlink()


def _contract_text(document: dict, sources: list[str], rows: int) -> str:
    import yaml

    header = (
        f"# Draft data contract inferred by `lockgate init` from {' + '.join(sources)} ({rows} rows).\n"
        "# Review it before relying on it: number ranges are the data's widened by 10% of the range, allowed sets are\n"
        "# the values seen, `required` is what the data showed (no null), features and slices are guesses.\n"
        "# Fill in what only you know, written as `unknown`: customProperties dataSource (where the data comes from),\n"
        "# license (an SPDX id such as CC-BY-4.0, or LicenseRef-<name> for your own terms), personalData (none,\n"
        "# anonymised, pseudonymised, personal, special_category) and each column's classification.\n"
        "# Check it with `lockgate contract lint contract.yaml`; every rule lockgate reads is listed at the top of\n"
        "# data_contracts/credit_default.yaml (Open Data Contract Standard v3.1).\n")
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def _project_text(name: str, reference: str, golden: str | None, sources: list[str]) -> str:
    golden_line = (f"golden: {golden}" if golden else "golden: null").ljust(40)
    return (
        f"# lockgate project {name}, written by `lockgate init` from {' + '.join(sources)}.\n"
        "# Commands run in this folder (or with --project DIR) use it; LOCKGATE_* variables and command flags\n"
        "# override it. Paths are relative to this folder and must stay inside it. Unknown keys are errors.\n"
        f"{f'name: {name}'.ljust(40)}# registered model name\n"
        f"{'model: null'.ljust(40)}# your model's entry point MODULE:ATTR, e.g. mypkg.net:build\n"
        f"{f'contract: {CONTRACT_FILE}'.ljust(40)}# data contract: `lockgate contract lint {CONTRACT_FILE}`\n"
        f"{f'policy: {POLICY_FILE}'.ljust(40)}# gate thresholds: `lockgate policy lint {POLICY_FILE}`\n"
        f"{f'reference: {reference}'.ljust(40)}# training data snapshot: `register`'s --reference\n"
        f"{golden_line}# labeled holdout: `run lifecycle`'s --golden\n"
        f"{'# stream: data/stream'.ljust(40)}# date=YYYY-MM-DD partitions to score (default .lockgate/data/stream)\n")

