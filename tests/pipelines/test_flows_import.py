"""Every flow imports and is a Prefect flow with the documented name."""

import importlib

import pytest

FLOWS = {"pipelines.lifecycle": ("lifecycle", "lifecycle"), "pipelines.batch_inference": ("batch_inference", "batch-inference")}


@pytest.mark.parametrize("module,attr,name", [(m, a, n) for m, (a, n) in FLOWS.items()])
def test_flow_imports(module, attr, name):
    from prefect import Flow

    flow = getattr(importlib.import_module(module), attr)
    assert isinstance(flow, Flow) and flow.name == name


def test_prefect_yaml_deployment_loads_its_flow_and_schedule():
    import yaml
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    from pipelines.serve import PREFECT_YAML, deployment_schedule

    doc = yaml.safe_load(PREFECT_YAML.read_text())
    (deployment,) = doc["deployments"]
    flow = load_flow_from_entrypoint(str(PREFECT_YAML.parent / deployment["entrypoint"]))
    assert flow.name == "batch-inference"
    spec = deployment_schedule()
    assert (spec.deployment, spec.work_pool) == (deployment["name"], "lockgate-process")
    assert Cron(spec.cron, timezone=spec.timezone).cron == "0 2 * * *"
    # the scheduled run needs no parameter: every flow parameter has a default
    assert flow.parameters.required == []
