"""The task runner partitions fan out over, chosen by settings: threads (default) or Dask (prefect-dask).

``LOCKGATE_TASK_RUNNER=dask`` starts a local multi-process Dask cluster
(``LOCKGATE_DASK_WORKERS`` processes x ``LOCKGATE_DASK_THREADS_PER_WORKER`` threads) for
the flow run, or connects to an existing cluster at ``LOCKGATE_DASK_ADDRESS``. Tasks
get their arguments pickled; the champion travels by reference and each worker loads
and verifies it once (tasks.gates.champion_model).
"""

from __future__ import annotations

from tasks.settings import Settings


def task_runner_for(settings: Settings | None):
    """A fresh task runner for ``settings`` (None: read the LOCKGATE_* environment now; threads if it is invalid)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    if settings is None:
        try:
            settings = Settings()
        except ValueError:  # a bad setting is reported by the CLI or the flow itself, with its name
            return ThreadPoolTaskRunner(max_workers=4)
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": settings.dask_workers, "processes": True,
                                              "threads_per_worker": settings.dask_threads_per_worker,
                                              "dashboard_address": ":0"})
    return ThreadPoolTaskRunner(max_workers=settings.max_workers)
