"""Every flow imports and is a Prefect flow with the documented name."""

import importlib

import pytest

FLOWS = {"pipelines.lifecycle": ("lifecycle", "lifecycle"), "pipelines.batch_inference": ("batch_inference", "batch-inference")}


@pytest.mark.parametrize("module,attr,name", [(m, a, n) for m, (a, n) in FLOWS.items()])
def test_flow_imports(module, attr, name):
    from prefect import Flow

    flow = getattr(importlib.import_module(module), attr)
    assert isinstance(flow, Flow) and flow.name == name


def test_lower_layers_do_not_import_pipelines():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for pkg in ("tasks", "models", "data_contracts")
        for p in (root / pkg).rglob("*.py")
        if "import pipelines" in p.read_text() or "from pipelines" in p.read_text()
    ]
    assert offenders == []


def test_models_and_contracts_do_not_import_tasks():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for pkg in ("models", "data_contracts")
        for p in (root / pkg).rglob("*.py")
        if "from tasks" in p.read_text() or "import tasks" in p.read_text()
    ]
    assert offenders == []
