"""Flow-test fixtures: one LOCKGATE_HOME per module with a champion made by the real lifecycle flow."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory):
    from tasks.settings import Settings

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCKGATE_HOME", str(home))
        mp.setenv("LOCKGATE_POLICY_FILE", str(Path(__file__).with_name("small_policy.yaml")))
        mp.setenv("LOCKGATE_ACTOR", "tester")
        yield Settings()


@pytest.fixture(scope="module")
def register(module_settings):
    from tasks.registration import register_candidate
    from tasks.stores import ledger_for, registry_for

    def _register(files, contract="credit_default"):
        return register_candidate(
            registry_for(module_settings), ledger_for(module_settings), name=module_settings.model_name, arch="mlp",
            config_path=files.config, params_path=files.params, reference_path=files.reference,
            contract_name=str(contract), actor="tester")

    return _register


@pytest.fixture(scope="module")
def champion(prefect_harness, module_settings, register, make_candidate, tmp_path_factory):
    """A good candidate taken to champion by the lifecycle flow; returns (outcome, candidate files)."""
    from pipelines.lifecycle import lifecycle

    files = make_candidate(tmp_path_factory.mktemp("good"), hidden=(16,), epochs=6, seed=1, n=1200)
    outcome = lifecycle(version=register(files).version, golden=str(files.golden))
    return outcome, files


def stored_file(settings, record, filename) -> Path:
    """Path of a version's file inside the local MLflow artifact store (to tamper with it in tests)."""
    from urllib.parse import urlparse

    from tasks.stores import registry_for

    uri = registry_for(settings).client.get_run(record.run_id).info.artifact_uri
    return Path(urlparse(uri).path) / "model" / filename


@pytest.fixture(scope="session")
def stored_file_path():
    return stored_file
