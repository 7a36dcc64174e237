"""Flow-test fixtures: one LOCKGATE_HOME per module with a champion made by the real lifecycle flow, or (``home``)
with two champions made fast for the batch-inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest

BATCH_POLICY = Path(__file__).with_name("batch_policy.yaml")


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
    from tasks.registration.register import register_candidate
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


@pytest.fixture(scope="module")
def home(prefect_harness, tmp_path_factory, make_candidate):
    """LOCKGATE_HOME with v1 then v2 promoted (v2 champion, v1 previous-champion); yields the module's env.

    The champions are made fast (register -> the real compile gate, CPU only -> promote) instead of by the whole
    lifecycle, which tests/pipelines/test_lifecycle.py covers."""
    from tasks import gates
    from tasks.governance.promotion import promote
    from tasks.registration.register import register_candidate
    from tasks.settings import Settings
    from tasks.stores import ledger_for, new_lifecycle_dir, policy_for, registry_for

    root = tmp_path_factory.mktemp("batch-home")
    env = {"LOCKGATE_HOME": str(root), "LOCKGATE_POLICY_FILE": str(BATCH_POLICY), "LOCKGATE_ACTOR": "tester",
           "LOCKGATE_IO_RETRY_DELAY_SECONDS": "0.01"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        settings = Settings()
        policy, registry, ledger = policy_for(settings), registry_for(settings), ledger_for(settings)
        for seed in (1, 2):  # the same architecture and config: the second compile report comes from the cache
            hidden = (8,)
            files = make_candidate(root / f"candidate-{seed}", hidden=hidden, epochs=3, seed=seed, n=800)
            record = register_candidate(registry, ledger, name=settings.model_name, arch="mlp", config_path=files.config,
                                        params_path=files.params, reference_path=files.reference,
                                        contract_name="credit_default", actor="tester")
            run = new_lifecycle_dir(settings, settings.model_name, record.version)
            assert gates.compile_model.fn(settings, policy, record, str(files.golden), run).passed
            promote(registry, ledger, name=settings.model_name, version=record.version, actor="tester",
                    reason="test champion", policy=policy.name, evidence={}, flow_run_id=None,
                    expected_champion=registry.aliases(settings.model_name).get("champion"))
        assert registry.aliases(settings.model_name) == {"champion": 2, "previous-champion": 1}
        yield env
