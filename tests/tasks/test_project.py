"""The project file lockgate.yaml (tasks/project.py), how settings take it (tasks/settings.py), and the policy
`lockgate init` writes (tasks/project_init.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tasks.errors import LockgateError

PROJECT = "name: wine\ncontract: contract.yaml\npolicy: policy.yaml\ngolden: data/golden.parquet\n"


@pytest.fixture
def clean_env(monkeypatch):
    """No LOCKGATE_* variable that a project value would lose to (set by an earlier test or the shell)."""
    for key in ("LOCKGATE_PROJECT", "LOCKGATE_HOME", "LOCKGATE_POLICY_FILE", "LOCKGATE_MODEL_NAME",
                "LOCKGATE_CONTRACT", "LOCKGATE_GOLDEN", "LOCKGATE_REFERENCE", "LOCKGATE_MODEL", "LOCKGATE_INPUT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def _project(folder: Path, text: str = PROJECT) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockgate.yaml").write_text(text)
    return folder


def test_settings_take_the_current_folders_project_below_variables(tmp_path, clean_env):
    from tasks.settings import DEMO_POLICY, Settings

    folder = _project(tmp_path / "proj").resolve()
    clean_env.chdir(tmp_path)
    plain = Settings()
    assert plain.project is None and plain.policy_file == DEMO_POLICY and plain.contract is None
    clean_env.chdir(folder)
    s = Settings()
    assert (s.project, s.home_dir, s.model_name) == (folder, folder / ".lockgate", "wine")
    assert (s.policy_file, s.contract, s.golden) == (folder / "policy.yaml", str(folder / "contract.yaml"),
                                                     folder / "data" / "golden.parquet")
    clean_env.setenv("LOCKGATE_HOME", str(tmp_path / "elsewhere"))
    clean_env.setenv("LOCKGATE_MODEL_NAME", "other")
    s = Settings()
    assert s.home_dir == tmp_path / "elsewhere" and s.model_name == "other" and s.policy_file == folder / "policy.yaml"


@pytest.mark.parametrize("given", ["folder", "file"])
def test_the_project_variable_or_argument_names_the_folder_or_its_file(tmp_path, clean_env, given):
    from tasks.settings import Settings

    folder = _project(tmp_path / "proj").resolve()
    target = folder if given == "folder" else folder / "lockgate.yaml"
    clean_env.chdir(tmp_path)
    assert Settings(project=target).project == folder
    clean_env.setenv("LOCKGATE_PROJECT", str(target))
    s = Settings()
    assert s.project == folder and s.model_name == "wine"


def test_a_named_folder_without_a_project_file_is_one_line(tmp_path, clean_env):
    from tasks.settings import Settings

    clean_env.setenv("LOCKGATE_PROJECT", str(tmp_path))
    with pytest.raises(LockgateError, match=r"no lockgate\.yaml in .*run `lockgate init"):
        Settings()


@pytest.mark.parametrize("text,fragment", [
    (PROJECT + "golde: x.parquet\n", "golde: unknown key (known: name, model,"),
    ("name: wine\npolicy: policy.yaml\n", "contract: required key missing"),
    (PROJECT + "model: not an entry point\n", "model: Value error, 'not an entry point' is not an entry point"),
    (PROJECT.replace("name: wine", "name: ../wine"), "name: Value error, '../wine' is not a safe name"),
    (PROJECT + "name: again\n", "duplicate key 'name'"),
    ("", "expected a mapping (name, contract, policy, ...), got an empty file"),
    ("- a\n", "expected a mapping"),
])
def test_a_malformed_project_file_is_refused_naming_the_key(tmp_path, text, fragment):
    from tasks.project import load_project

    folder = _project(tmp_path / "p", text)
    with pytest.raises(LockgateError) as e:
        load_project(folder / "lockgate.yaml")
    assert fragment in str(e.value) and str(folder / "lockgate.yaml") in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("path", ["../policy.yaml", "/etc/passwd", "data/../../x.yaml", "~/policy.yaml",
                                  "data/.hidden/p.yaml", "C:/policy.yaml"])
def test_a_path_that_escapes_the_project_folder_is_refused(tmp_path, path):
    from tasks.project import load_project

    folder = _project(tmp_path / "p", PROJECT.replace("policy.yaml", path))
    with pytest.raises(LockgateError, match=r"policy: ") as e:
        load_project(folder / "lockgate.yaml")
    assert "\n" not in str(e.value)


def test_a_symlink_out_of_the_project_folder_is_refused(tmp_path):
    from tasks.project import load_project

    (tmp_path / "outside").mkdir()
    folder = _project(tmp_path / "p", PROJECT.replace("policy.yaml", "link/policy.yaml"))
    (folder / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(LockgateError, match=r"policy: .*leads outside"):
        load_project(folder / "lockgate.yaml")


def test_paths_inside_the_folder_resolve_to_absolute_paths(tmp_path):
    from tasks.project import load_project

    folder = _project(tmp_path / "p", PROJECT + "stream: ./data/stream\nmodel: mypkg.net:build\n")
    project = load_project(folder / "lockgate.yaml")
    assert project.golden == folder / "data" / "golden.parquet" and project.stream == folder / "data" / "stream"
    values = project.settings_values()
    assert values["input_root"] == str(folder / "data" / "stream") and values["model"] == "mypkg.net:build"


# -- the policy a project starts with


def _leaf_keys(model, prefix="") -> set[str]:
    from pydantic import BaseModel

    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and name not in ("approval",):
            keys |= _leaf_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


@pytest.mark.parametrize("task,std", [("classification", None), ("regression", 77.0), ("regression", 0.0)])
def test_the_project_policy_loads_and_comments_every_threshold(tmp_path, task, std):
    from tasks.policy import Policy, load_policy
    from tasks.project_init import policy_text_for

    text = policy_text_for("wine", task, std)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    policy = load_policy(path)
    assert policy.name == "wine-policy" and policy.compilation.targets == ("cpu",)
    assert policy.compilation.platforms == ("cpu",) and policy.canary.bootstrap_resamples <= 200
    raw = yaml.safe_load(text)
    written = {f"{section}.{key}" for section, keys in raw.items() if isinstance(keys, dict) for key in keys}
    written |= {f"canary.regression.{key}" for key in raw["canary"]["regression"]} | set(raw)  # approval: a section
    written |= {f"poisoning.{check}.{key}" for check, keys in raw["poisoning"].items() if isinstance(keys, dict)
                for key in keys}
    commented = set(re.findall(r"^\s*# (\w+):", text, flags=re.M))
    missing = {k for k in _leaf_keys(Policy) - {"name"}
               if k not in written and k.rsplit(".", 1)[-1] not in commented}
    assert missing == set()  # every key of tasks/policy.py is written (or shown commented out)
    for line in text.splitlines():
        if re.match(r"^\s*\w+:\s*\S", line) and not line.strip().startswith("name:"):
            assert "#" in line, f"threshold without a comment: {line}"
    if task == "regression" and std:
        assert policy.canary.regression.margins == {"rmse": pytest.approx(0.05 * std), "mae": pytest.approx(0.05 * std)}
    else:
        assert policy.canary.regression.margins == {"rmse": 0.01, "mae": 0.01}


def test_a_projects_policy_lets_shadow_checks_inform_and_sets_a_latency_floor():
    """A user's project is not the credit demo: the template says so explicitly, with keys the policy model knows."""
    from tasks.policy import CanaryPolicy
    from tasks.project_init import POLICY_TEMPLATE

    text = POLICY_TEMPLATE.read_text()
    for key, value in (("shadow_decides", "false"), ("latency_floor_ms", "1.0")):
        assert key in CanaryPolicy.model_fields
        assert re.search(rf"^\s*{key}: {re.escape(value)}\b", text, flags=re.M), key