"""Registry reads of a lifecycle on the embedded SQLite store: lockgate's registry (reads with sqlite3,
tasks/registry_sql.py) against MLflow's client for the same reads, on the everyday benchmark's demo home.

``registry_reads``: one round of the reads a gate makes (aliases, versions, one version, the champion by alias,
the model's tags), CPU time per round, interleaved in one process; notes give whether both answered the same."""

from __future__ import annotations

import os
import resource
import time

from benchmarks.harness import Comparison


def registry_reads(rounds: int = 60, repeats: int = 7) -> Comparison:
    import statistics

    from benchmarks.bench_everyday import demo_home
    from tasks.registry import CHAMPION
    from tasks.settings import Settings
    from tasks.stores import mlflow_registry_for, registry_for

    os.environ["LOCKGATE_HOME"] = str(demo_home())
    settings = Settings()
    name = settings.model_name
    ours, mlflow = registry_for(settings), mlflow_registry_for(settings)

    def reads(registry) -> tuple:
        versions = registry.versions(name)
        return (registry.aliases(name), versions, registry.get(name, versions[-1].version),
                registry.by_alias(name, CHAMPION), registry.model_tags(name))

    same = reads(ours) == reads(mlflow)  # also the warm-up: imports, MLflow's engine

    def cpu_per_round(registry) -> float:
        start = time.process_time()
        for _ in range(rounds):
            reads(registry)
        return (time.process_time() - start) / rounds

    a, b = [], []
    for _ in range(repeats):
        b.append(cpu_per_round(mlflow))
        a.append(cpu_per_round(ours))
    cand, base = statistics.median(a), statistics.median(b)
    return Comparison("registry_reads", f"lockgate's registry ({type(ours).__name__})", "MLflow's client", cand, base,
                      base / cand, repeats, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      f"CPU s per round of 5 reads x {rounds}; same answers: {same}")


def run() -> list[Comparison]:
    return [registry_reads()]


if __name__ == "__main__":
    for result in run():
        print(result.line())
