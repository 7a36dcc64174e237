"""The registry interface on a real SQLite MLflow: fetching a version's files into a cache shared by processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

from tasks.registration.register import REFERENCE_FILE, register_candidate
from tasks.stores import ledger_for, mlflow_registry_for, registry_for

# Both registries fetch: every process's (its reads with sqlite3 over this SQLite store) and MLflow's own client (what
# a tracking server's store gets).
REGISTRIES = {"registry_for": registry_for, "mlflow_registry_for": mlflow_registry_for}


def _registered(settings, files):
    return register_candidate(registry_for(settings), ledger_for(settings), name=settings.model_name, arch="mlp",
                              config_path=files.config, params_path=files.params, reference_path=files.reference,
                              contract_name="credit_default", actor="tester")


@pytest.mark.parametrize("which", sorted(REGISTRIES))
def test_fetch_replaces_the_cached_file_instead_of_rewriting_it(settings, candidate_files, tmp_path, which):
    """A reader holding the cached file keeps whole bytes while another fetch lands (MLflow's copy truncates in place)."""
    registry, record = REGISTRIES[which](settings), _registered(settings, candidate_files)
    first = registry.fetch(record, REFERENCE_FILE, tmp_path / "cache")
    expected = first.read_bytes()
    with first.open("rb") as held:
        again = registry.fetch(record, REFERENCE_FILE, tmp_path / "cache")
        assert again == first and again.read_bytes() == expected
        assert held.read() == expected  # still the first copy's inode, never truncated under the reader
        assert again.stat().st_ino != os.fstat(held.fileno()).st_ino
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["model"]  # no staging folders left behind


def _fetch_and_hash(args) -> set[str]:
    version, dst, rounds, which = args  # the spawned process inherits LOCKGATE_HOME from the test
    from tasks.settings import Settings

    registry = REGISTRIES[which](Settings())
    record = next(r for r in registry.versions(Settings().model_name) if r.version == version)
    return {hashlib.sha256(registry.fetch(record, REFERENCE_FILE, Path(dst)).read_bytes()).hexdigest()
            for _ in range(rounds)}


@pytest.mark.parametrize("which", sorted(REGISTRIES))
def test_processes_fetching_into_one_cache_always_read_whole_files(settings, candidate_files, tmp_path, which):
    record = _registered(settings, candidate_files)
    args = (record.version, str(tmp_path / "shared"), 40, which)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        seen = set().union(*pool.map(_fetch_and_hash, [args] * 3))
    assert seen == {record.tags["lockgate.reference_sha256"]}


def test_tags_are_written_as_mlflow_writes_them_and_a_prompt_is_refused(settings):
    """set_version_tags and set_model_tag check once per name that it is a model, not a prompt (MLflow checks before
    every tag); the tags read back as set, and a prompt's name is refused with MLflow's own error, every time."""
    from mlflow.exceptions import MlflowException

    registry = registry_for(settings)
    client = registry.client
    client.create_registered_model("a-model")
    run = client.create_run(registry.experiment_id)
    client.create_model_version("a-model", source="file:///nowhere", run_id=run.info.run_id)
    registry.set_version_tags("a-model", 1, {"lockgate.status": "candidate", "n": 3})
    registry.set_version_tags("a-model", 1, {"lockgate.status": "champion"})
    registry.set_model_tag("a-model", "lockgate.ledger_head", "{}")
    assert client.get_model_version("a-model", "1").tags == {"lockgate.status": "champion", "n": "3"}
    assert client.get_registered_model("a-model").tags == {"lockgate.ledger_head": "{}"}

    client.register_prompt("a-prompt", template="Hello {{name}}")  # MLflow keeps prompts beside models
    for write in (lambda: registry.set_model_tag("a-prompt", "k", "v"),
                  lambda: registry.set_version_tags("a-prompt", 1, {"k": "v"})):
        with pytest.raises(MlflowException, match="a-prompt"):  # MlflowClient's "not found" for a prompt
            write()
    assert "k" not in client.get_prompt_version("a-prompt", 1).tags
    with pytest.raises(MlflowException):  # a name that is nothing: MLflow's error too
        registry.set_version_tags("nothing", 1, {"k": "v"})
