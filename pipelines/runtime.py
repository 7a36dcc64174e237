"""Process set-up that must happen before Prefect or JAX is imported."""

from __future__ import annotations

import os
from pathlib import Path

from models.platforms import prefer_cpu_without_tpu
from tasks.settings import Settings


def prepare_runtime(settings: Settings, *, verbose: bool = False) -> None:
    """Point Prefect at this home's `lockgate server` when it runs, else at its temporary local API (state under
    LOCKGATE_HOME), unless PREFECT_API_URL is set.

    Only sets variables the user has not set, so a real Prefect server, profile or
    JAX platform choice always wins.
    """
    home = settings.ensure_home()
    if not os.environ.get("PREFECT_API_URL"):
        from pipelines.prefect_server import live_server_url

        if url := live_server_url(settings):
            os.environ["PREFECT_API_URL"] = url
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
        # The temporary server takes 12-20 s to start on small machines and a minute on a busy one; 20 s is
        # Prefect's default limit. Prefect's own waits follow lockgate's (pipelines/temporary_api.py).
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                              f"{settings.server_ready_timeout_seconds:g}")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Flow and task logs still reach the Prefect API (UI) at INFO; the console shows only what the CLI prints,
    # so a failing task never dumps a traceback at the CLI. `lockgate -v` shows them.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if verbose else "CRITICAL")
    process_defaults(settings.jax_cache_path)


def process_defaults(jax_cache: Path) -> None:
    """Environment defaults of a process that runs lockgate's flows, before JAX, MLflow or GE are imported: the CLI
    sets them for itself (and the flow runs `lockgate serve` starts inherit them); a flow run a work pool's worker
    starts sets them at its start (pipelines/batch_inference.py), as the worker is Prefect's and knows none of it."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per tiny file is noise
    # With libtpu installed but no TPU attached, JAX probes for one and logs errors; use the CPU then.
    prefer_cpu_without_tpu()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # JAX's persistent compilation cache (default LOCKGATE_HOME/jax_cache): bucket compiles are ~0.1-2 s each,
    # so cache all.
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(jax_cache))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
