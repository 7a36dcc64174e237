"""The promotion path in a process of its own, for the fault and concurrency tests (not a test module).

    python promotion_child.py promote MODEL VERSION EXPECTED   # approval row, then promote (EXPECTED: a version or none)
    python promotion_child.py rollback MODEL
    python promotion_child.py race MODEL VERSION START_FILE    # wait for START_FILE, then promote until committed
    python promotion_child.py lifecycle MODEL VERSION GOLDEN   # the whole `lifecycle` flow (needs PREFECT_API_URL)
    python promotion_child.py serve [lifecycle]                # a preloaded parent that forks the commands above

Settings come from the LOCKGATE_* environment; LOCKGATE_FAILPOINT=<point> SIGKILLs the process at that point.
Prints one JSON line with the outcome.

``serve`` imports MLflow, JAX and lockgate once (20 s on a busy 2-core machine) and then forks one child per
command: each child is a real process of its own (its own database connections, locks and SIGKILL), without
paying for the imports again. Nothing but the main thread exists in the parent when it forks.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


def main(argv: list[str]) -> None:
    from tasks.ledger.entry import LedgerEntry
    from tasks.governance.promotion import failpoint, promote, rollback
    from tasks.registry import CHAMPION
    from tasks.settings import Settings
    from tasks.stores import ledger_for, registry_for

    settings = Settings()
    registry, ledger = registry_for(settings), ledger_for(settings)
    mode, name = argv[0], argv[1]
    if mode == "lifecycle":
        from pipelines.lifecycle import lifecycle

        outcome = lifecycle(version=int(argv[2]), golden=argv[3], model_name=name)
        print(json.dumps({"decision": outcome.decision, "reasons": outcome.reasons}))
        return
    common = dict(actor=settings.actor, policy="test", evidence={"canary": "c" * 64}, flow_run_id=None)
    if mode == "promote":
        version, expected = int(argv[2]), None if argv[3] == "none" else int(argv[3])
        ledger.append(LedgerEntry(action="approval.auto", model_name=name, version=version, reason="auto-approved",
                                  **common))
        failpoint("approved")
        result = promote(registry, ledger, name=name, version=version, reason=f"v{version} passed",
                         expected_champion=expected, **common)
        print(json.dumps({"status": result.status, "seqs": result.ledger_seqs}))
    elif mode == "rollback":
        result = rollback(registry, ledger, name=name, actor=settings.actor, reason="monitor breach")
        print(json.dumps({"status": result.status, "seqs": result.ledger_seqs}))
    elif mode == "race":
        version, start = int(argv[2]), Path(argv[3])
        registry.aliases(name)  # the MLflow store is open before the start
        Path(f"{start}.{version}.ready").touch()
        while not start.exists():
            time.sleep(0.01)
        refusals = 0
        while True:
            champion = registry.aliases(name).get(CHAMPION)  # the "decision" is made against this champion
            result = promote(registry, ledger, name=name, version=version, reason=f"v{version} passed",
                             expected_champion=champion, **common)
            if result.status == "committed":
                break
            refusals += 1
        print(json.dumps({"version": version, "refusals": refusals, "seqs": result.ledger_seqs}))
    else:
        raise SystemExit(f"unknown mode {mode}")


def serve(lifecycle: bool = False) -> None:
    """Per line on stdin, a JSON list of commands ({"args": [...], "env": {...}}): fork them all at once, wait for
    them, and print one JSON line: per command its exit code (negative: killed by that signal), stdout and stderr.

    ``lifecycle``: also preload what the lifecycle flow imports (Prefect, Great Expectations, Evidently: ~20 s), so
    each forked lifecycle starts at once. Prefect reads its settings (PREFECT_API_URL) from this process's
    environment at import."""
    import gc
    import threading

    from pipelines.gc_thresholds import tune_gc

    tune_gc()  # as the CLI's main, which each child runs
    if lifecycle:
        import evidently  # noqa: F401
        import great_expectations  # noqa: F401

        import pipelines.lifecycle  # noqa: F401
        import tasks.canary.gate  # noqa: F401
        import tasks.compilation.gate  # noqa: F401
        import tasks.drift.gate  # noqa: F401
        import tasks.validation.gate  # noqa: F401
        # What each lifecycle imported again after the fork (py-spy over a whole run: ~2.5 CPU-s per child): the
        # canary's matplotlib canvas and MLflow's map of installed distributions (its requirement check).
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        from mlflow.utils.requirements_utils import _init_packages_to_modules_map

        _init_packages_to_modules_map()
        # And what each lifecycle built again on its first validation (GE's runtime: context, datasource, batch
        # definition; its expectation classes' first use), warmed by validating a few rows here: each forked
        # lifecycle's CPU 3.24 -> 2.95 s killed, 3.79 -> 3.42 s whole (os.wait4, 38 children each way). No thread is
        # left running (asserted below) and no file is open that the children would share.
        from datetime import date

        import tqdm

        from data_contracts.contract import load_contract
        from data_contracts.synthetic_credit import generate_frame
        from data_contracts.validate import validate_frame

        tqdm.tqdm.monitor_interval = 0  # else GE's first tqdm starts its monitor thread (a stall watchdog)
        validate_frame(generate_frame(50, seed=0, day=date(2026, 1, 1)), load_contract("credit_default"),
                       include_label=True)
    import jax  # noqa: F401
    import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    import models.export  # noqa: F401
    import model_signing  # noqa: F401  (the version's signature, signed and verified)
    import models.params_io  # noqa: F401
    import tasks.registration.inference  # noqa: F401
    import tasks.governance.promotion  # noqa: F401
    import tasks.stores  # noqa: F401

    assert threading.active_count() == 1, f"threads before fork: {threading.enumerate()}"
    # What the children inherit is frozen (Python's advice for fork without exec): their full collections walk only
    # their own objects, not the ~1 million preloaded here, and leave those pages shared.
    gc.freeze()
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        running = []
        for command in json.loads(line):
            out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.dup2(out.fileno(), 1)
                    os.dup2(err.fileno(), 2)
                    os.environ.pop("LOCKGATE_FAILPOINT", None)
                    os.environ.update(command.get("env", {}))
                    main(command["args"])
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            running.append((pid, out, err))
        results = []
        for pid, out, err in running:
            _, status = os.waitpid(pid, 0)
            out.seek(0)
            err.seek(0)
            results.append({"returncode": os.waitstatus_to_exitcode(status), "stdout": out.read(),
                            "stderr": err.read()[-3000:]})
        print(json.dumps(results), flush=True)


if __name__ == "__main__":
    serve(lifecycle=sys.argv[2:] == ["lifecycle"]) if sys.argv[1:2] == ["serve"] else main(sys.argv[1:])
