"""`lockgate serve`: the batch-inference deployment served from this process on the prefect.yaml schedule.

Prefect's ``flow.serve`` pauses the deployment's schedules when the process gets
SIGTERM (``pause_on_shutdown``), so after a routine restart nothing would run until
someone resumed it. lockgate serves with ``pause_on_shutdown=False`` and ``paused=False``
(a schedule paused earlier is active again when serving starts). On SIGTERM or Ctrl-C
Prefect's runner cancels in-flight runs and returns; their outputs are atomic, so a
cancelled partition has no output and is scored by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from tasks.errors import LockgateError
from tasks.settings import PACKAGE_ROOT

PREFECT_YAML = PACKAGE_ROOT / "prefect.yaml"
ENTRYPOINT = "pipelines/batch_inference.py:batch_inference"


@dataclass(frozen=True)
class Schedule:
    deployment: str
    cron: str
    timezone: str
    work_pool: str


def deployment_schedule(path: Path = PREFECT_YAML) -> Schedule:
    """The batch-inference deployment of prefect.yaml: its name, cron, timezone and work pool."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise LockgateError(f"{path} cannot be read: {str(e).splitlines()[0]}") from None
    for d in doc.get("deployments") or []:
        if d.get("entrypoint") == ENTRYPOINT:
            schedule = (d.get("schedules") or [{}])[0]
            if "cron" not in schedule:
                raise LockgateError(f"{path}: deployment {d.get('name')} has no cron schedule")
            return Schedule(d["name"], schedule["cron"], schedule.get("timezone", "UTC"), d["work_pool"]["name"])
    raise LockgateError(f"{path} has no deployment with entrypoint {ENTRYPOINT}")
