"""The cyclic garbage collector's thresholds in lockgate's own processes (the CLI, and flow runs a worker starts).

A lockgate command loads Prefect, MLflow, Great Expectations, Evidently and JAX: ~700,000 objects, none of them
garbage. With Python's default thresholds (700, 10, 10) the growing heap set off a full collection every time a
quarter more objects had survived, each walking every object loaded so far: 9 full collections while importing the
lifecycle's modules, which freed 135 objects. `lockgate demo` spent 3.2 CPU-s of its 31 in the collector.

A young generation of 10,000 objects (the other two thresholds as Python's) leaves the loading uninterrupted and
collects cycles as before once it is done: the same import took 8.3 -> 7.0 CPU-s (mean of 4, alternated), and the
demo's process 3.2 -> 1.3 CPU-s in the collector. Memory: at most 10,000 young objects wait for a collection
(a few MB) instead of 700. Only processes lockgate starts are changed: the Python API (``lockgate``) runs in the
user's process and leaves its collector alone, and a process that set its own thresholds keeps them.
"""

from __future__ import annotations

import gc

PYTHON_DEFAULT = (700, 10, 10)
LOCKGATE = (10_000, 10, 10)


def tune_gc() -> bool:
    """Set :data:`LOCKGATE` thresholds unless this process changed Python's defaults; True when set."""
    if gc.get_threshold() != PYTHON_DEFAULT:
        return False
    gc.set_threshold(*LOCKGATE)
    return True
