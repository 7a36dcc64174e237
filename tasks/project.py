"""A project folder outside the repo: ``lockgate.yaml`` names the model, its contract, policy and data.

Every command (and the Python API) looks for ``lockgate.yaml`` in the current folder, or in the folder
``--project DIR`` / ``LOCKGATE_PROJECT`` names. The file is read with the strict YAML loader and a pydantic
model that refuses unknown keys, naming them. Every path in it is relative to the project folder and must stay in
it: each part is a safe name (data_contracts/names.py: no '..', no separator tricks, no absolute path) and the
resolved path is checked to be inside the folder (tasks/paths.py), so a symlink cannot lead out either.

Precedence (tasks/settings.py): an explicit flag or argument > a ``LOCKGATE_*`` variable > ``lockgate.yaml`` >
built-in defaults. ``LOCKGATE_HOME`` of a project defaults to ``DIR/.lockgate``.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from data_contracts.names import name_problem
from data_contracts.strict_yaml import load_strict, yaml_problem
from tasks.errors import LockgateError
from tasks.paths import path_under

PROJECT_FILE = "lockgate.yaml"
PROJECT_HOME = ".lockgate"
_ENTRY_POINT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class ProjectFile(BaseModel):
    """The keys of ``lockgate.yaml``; paths are relative to the project folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Registered model name (LOCKGATE_MODEL_NAME overrides it).")
    model: str | None = Field(
        None, description="The model's entry point, MODULE:ATTR (e.g. mypkg.net:build), used by `lockgate register` "
        "when no --arch/--model is given.")
    contract: str = Field(description="The data contract (ODCS YAML), relative to the project folder.")
    policy: str = Field(description="The governance policy YAML, relative to the project folder "
                        "(LOCKGATE_POLICY_FILE overrides it).")
    golden: str | None = Field(None, description="Labeled golden (holdout) set: `run lifecycle`'s default --golden.")
    reference: str | None = Field(None, description="Reference (training) data: `register`'s default --reference.")
    stream: str | None = Field(None, description="Root of the date=YYYY-MM-DD partitions batch inference scores "
                               "(LOCKGATE_INPUT_ROOT overrides it); default LOCKGATE_HOME/data/stream.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        problem = name_problem(v)
        if problem:  # a folder under LOCKGATE_HOME (evidence, predictions, quarantine)
            raise ValueError(f"{v!r} is not a safe name: it {problem}")
        return v

    @field_validator("model")
    @classmethod
    def _entry_point(cls, v: str | None) -> str | None:
        if v is not None and not _ENTRY_POINT.fullmatch(v):
            raise ValueError(f"{v!r} is not an entry point MODULE:ATTR (e.g. mypkg.net:build)")
        return v


class Project(BaseModel):
    """A loaded project: its folder, its file and the file's paths resolved inside the folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: Path = Field(description="The project folder (absolute).")
    file: ProjectFile = Field(description="What lockgate.yaml says.")
    contract: Path = Field(description="The contract file (absolute).")
    policy: Path = Field(description="The policy file (absolute).")
    golden: Path | None = Field(None, description="The golden set (absolute), if named.")
    reference: Path | None = Field(None, description="The reference data (absolute), if named.")
    stream: Path | None = Field(None, description="The partition root (absolute), if named.")

    @property
    def home(self) -> Path:
        return self.folder / PROJECT_HOME

    def settings_values(self) -> dict[str, Any]:
        """The settings this project gives (tasks/settings.py: below LOCKGATE_* variables, above defaults)."""
        values: dict[str, Any] = {"project": self.folder, "home": self.home, "model_name": self.file.name,
                                  "policy_file": self.policy, "contract": str(self.contract)}
        for key in ("golden", "reference"):
            if getattr(self, key) is not None:
                values[key] = getattr(self, key)
        if self.stream is not None:
            values["input_root"] = str(self.stream)
        if self.file.model is not None:
            values["model"] = self.file.model
        return values


def project_file_of(location: str | Path) -> Path:
    """``DIR`` or ``DIR/lockgate.yaml`` -> the project file (absolute); a one-line error when there is none."""
    path = Path(location).expanduser().resolve()
    file = path if path.name == PROJECT_FILE and not path.is_dir() else path / PROJECT_FILE
    if not file.is_file():
        raise LockgateError(f"no {PROJECT_FILE} in {file.parent} (run `lockgate init {file.parent} --from DATA "
                            "--label COLUMN` to make one)")
    return file


def find_project(location: str | Path | None, cwd: Path | None = None) -> Project | None:
    """The project ``location`` names (a folder or its lockgate.yaml), else the current folder's, else None."""
    if location is not None and str(location) != "":
        return load_project(project_file_of(location))
    here = (cwd or Path.cwd()) / PROJECT_FILE
    return load_project(here.resolve()) if here.is_file() else None


def load_project(file: Path) -> Project:
    """Read and check ``file`` (a lockgate.yaml); one-line LockgateError naming the file and the key otherwise."""
    try:
        raw = load_strict(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise LockgateError(f"{file}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
    except yaml.YAMLError as e:
        raise LockgateError(f"{file}: not valid YAML: {yaml_problem(e)}") from None
    if not isinstance(raw, dict):
        raise LockgateError(f"{file}: expected a mapping (name, contract, policy, ...), got "
                            f"{'an empty file' if raw is None else type(raw).__name__}")
    try:
        spec = ProjectFile.model_validate(raw)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = {"extra_forbidden": "unknown key", "missing": "required key missing"}.get(err["type"], err["msg"])
        known = f" (known: {', '.join(ProjectFile.model_fields)})" if err["type"] == "extra_forbidden" else ""
        raise LockgateError(f"{file}: {key}: {msg}{known}") from None
    folder = file.parent
    paths = {key: project_path(folder, getattr(spec, key), key, file)
             for key in ("contract", "policy", "golden", "reference", "stream") if getattr(spec, key) is not None}
    return Project(folder=folder, file=spec, **paths)


def project_path(folder: Path, value: str, key: str, file: Path | str = PROJECT_FILE) -> Path:
    """``folder / value`` for a relative ``value`` whose every part is a safe name and which resolves inside
    ``folder``; a one-line LockgateError naming ``key`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise LockgateError(f"{file}: {key}: must be a path relative to {folder}")
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", value) or ".." in parts:
        raise LockgateError(f"{file}: {key}: {value!r} leads outside the project folder {folder}; paths in "
                            f"{PROJECT_FILE} are relative to it and stay inside it (pass a path outside it on the "
                            "command line instead)")
    try:
        return path_under(folder, *[p for p in parts if p != "."], what=f"{key} path part").absolute()
    except LockgateError as e:
        raise LockgateError(f"{file}: {key}: {e}") from None
