"""Everyday speed (issue 18): what a user waits for many times a day, each figure against its goal.

Every command runs in a fresh process, with Python's bytecode cache on (see ``_env``), (``lockgate ...`` as a user types it) on a small demo home built once
(``lockgate demo --size small --days 2``, a champion and a challenger) under ``LOCKGATE_BENCH_DATA`` (default: a
folder in the temp dir, kept for the next run): a cold first run, then a warm second one. A floor, where there is
one, is what the command cannot go below measured alone in a fresh process (e.g. GE's import for ``validate``).
Then the sections other modules add, each a module with ``figures() -> list[Figure]``
(``benchmarks.everyday_lifecycle``, ``benchmarks.everyday_suite``); a missing one is skipped, saying so.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("benchmarks.everyday_lifecycle", "benchmarks.everyday_suite")
COMMAND_GOAL_S, VALIDATE_GOAL_S, LOAD_GOAL_S = 2.0, 5.0, 5.0
DEMO_ARGS = ("demo", "--size", "small", "--days", "2")  # days 2: the lifecycle's drift data is a clean day
VALIDATE_ROWS = 150


@dataclass
class Figure:
    """One everyday figure: measured ``seconds`` against ``goal_s`` (met when below it), with the ``floor_s`` the
    command cannot go below (None when there is none to show) and a ``note`` (e.g. the issue's figure, the load).
    The lifecycle and suite sections make the same Figures: a figure with no goal is "info", one not measured
    (``seconds`` None) "not measured"; a section may also give its own verdict."""

    name: str
    seconds: float | None
    goal_s: float | None = None
    floor_s: float | None = None
    note: str = ""
    verdict: str = ""

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = ("not measured" if self.seconds is None else "info" if self.goal_s is None
                            else "met" if self.seconds < self.goal_s else "NOT met")

    def line(self) -> str:
        measured = "not measured" if self.seconds is None else f"{self.seconds:.2f} s"
        goal = "" if self.goal_s is None else f"goal < {self.goal_s:g} s"
        floor = "" if self.floor_s is None else f"floor {self.floor_s:.2f} s"
        detail = ", ".join(x for x in (goal, floor) if x)
        note = f" [{self.note}]" if self.note else ""
        return f"{self.name}: {measured}{f' ({detail})' if detail else ''} -> {self.verdict}{note}"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _base() -> Path:
    return Path(os.environ.get("LOCKGATE_BENCH_DATA") or Path(tempfile.gettempdir()) / "lockgate-bench") / "everyday"


def _env(home: Path) -> dict[str, str]:
    """A user's environment: no LOCKGATE_/PREFECT_/MLFLOW_ variables of this process, and Python's bytecode cache
    on (a process with PYTHONDONTWRITEBYTECODE=1 and no .pyc files compiles every module it imports from source,
    seconds per command), kept under the bench folder (PYTHONPYCACHEPREFIX) rather than in the installed packages."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOCKGATE_", "PREFECT_", "MLFLOW_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LOCKGATE_HOME=str(home), LOCKGATE_ACTOR="bench", JAX_PLATFORMS=env.get("JAX_PLATFORMS", "cpu"),
               PYTHONPYCACHEPREFIX=str(_base() / "pycache"))
    return env


def _lockgate() -> list[str]:
    exe = Path(sys.executable).with_name("lockgate")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pipelines.cli"]


def timed(argv: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,), cwd: Path | None = None) -> float:
    """Wall seconds of one fresh process; RuntimeError naming it unless its exit code is in ``ok``."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd or ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout)[-600:]}")
    return seconds


def python_seconds(code: str, env: dict[str, str]) -> float:
    """What a fresh interpreter running ``code`` reports on its last line (seconds it timed itself)."""
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code[:80]!r} exited {done.returncode}: {done.stderr[-600:]}")
    return float(done.stdout.strip().splitlines()[-1])


@lru_cache(maxsize=1)
def demo_home() -> Path:
    """The bench's demo home (champion and challenger), built once under LOCKGATE_BENCH_DATA/everyday; sections
    may share it read-only."""
    base = _base()
    home, done = base / "home", base / "home.built"
    if not done.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        print(f"everyday: building the demo home {home} (`lockgate {' '.join(DEMO_ARGS)}`) ...", file=sys.stderr,
              flush=True)
        seconds = timed([*_lockgate(), *DEMO_ARGS], _env(home))
        done.write_text(json.dumps({"seconds": seconds}))
    return home


def _rows_file(home: Path) -> Path:
    path = home.parent / f"rows{VALIDATE_ROWS}.parquet"
    if not path.exists():
        import pandas as pd

        pd.read_parquet(home / "data" / "golden.parquet").head(VALIDATE_ROWS).to_parquet(path, index=False)
    return path


def _cold_warm(name: str, argv: list[str], env: dict[str, str], goal: float, *, floor: float | None, baseline: str,
               ok: tuple[int, ...] = (0,)) -> list[Figure]:
    cold = timed(argv, env, ok=ok)
    warm = timed(argv, env, ok=ok)
    return [Figure(f"{name} (cold)", cold, goal, floor, baseline), Figure(f"{name} (warm)", warm, goal, floor, baseline)]


LOAD_CODE = """
import os, sys, time
import mlflow, mlflow.pyfunc
mlflow.set_tracking_uri(os.environ["BENCH_TRACKING_URI"])
t0 = time.perf_counter()
model = mlflow.pyfunc.load_model(os.environ["BENCH_MODEL_URI"])
print(time.perf_counter() - t0)
"""
# What loading the champion cannot avoid after `import mlflow`: JAX and jax.export (the artifact is StableHLO).
LOAD_FLOOR_CODE = """
import time
import mlflow, mlflow.pyfunc
t0 = time.perf_counter()
import jax
from jax import export
print(time.perf_counter() - t0)
"""


def command_figures() -> list[Figure]:
    """lockgate's everyday commands, validate and the champion's plain-MLflow load on the demo home."""
    home = demo_home()
    env, lg = _env(home), _lockgate()
    startup = statistics.median(timed([sys.executable, "-c", "pass"], env) for _ in range(3))
    figures: list[Figure] = []
    note = f"floor: Python's start {startup:.2f} s"
    for name, args, ok, baseline in (
        ("lockgate --help", ["--help"], (0,), ""),
        ("lockgate status --help", ["status", "--help"], (0,), ""),
        ("lockgate validate --help", ["validate", "--help"], (0,), ""),
        ("lockgate status", ["status"], (0,), "issue: 7 s idle, 82 s busy"),
        ("lockgate pending (no server)", ["pending"], (2,), "exit 2: no Prefect server to ask"),
        ("lockgate audit verify", ["audit", "verify"], (0,), ""),
        ("lockgate contract lint", ["contract", "lint", "credit_default"], (0,), ""),
    ):
        figures += _cold_warm(name, [*lg, *args], env, COMMAND_GOAL_S, floor=startup,
                              baseline="; ".join(x for x in (baseline, note) if x), ok=ok)
    rows = _rows_file(home)
    validate = [*lg, "validate", "credit_default", str(rows), "--include-label"]
    cold, warm = timed(validate, env), timed(validate, env)
    # the floors after the runs, so their bytecode is cached as the warm run's was: an import, not a compile
    ge_import = min(python_seconds("import time; t = time.perf_counter(); import great_expectations; "
                                   "print(time.perf_counter() - t)", env) for _ in range(2))
    note = f"issue: ~23 s; floor: `import great_expectations` {ge_import:.2f} s"
    figures += [Figure(f"lockgate validate {VALIDATE_ROWS} rows (cold)", cold, VALIDATE_GOAL_S, ge_import, note),
                Figure(f"lockgate validate {VALIDATE_ROWS} rows (warm)", warm, VALIDATE_GOAL_S, ge_import, note)]
    load_env = {**env, "BENCH_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
                "BENCH_MODEL_URI": "models:/credit-default@champion"}
    loads = [python_seconds(LOAD_CODE, load_env) for _ in range(2)]
    mlflow_import = min(python_seconds("import time; t = time.perf_counter(); import mlflow, mlflow.pyfunc; "
                                       "print(time.perf_counter() - t)", env) for _ in range(2))
    load_floor = min(python_seconds(LOAD_FLOOR_CODE, env) for _ in range(2))
    note = (f"issue: 32 s after a 39 s import; `import mlflow` {mlflow_import:.2f} s here; floor: `import jax` "
            f"after mlflow {load_floor:.2f} s")
    figures += [Figure("mlflow.pyfunc.load_model champion, after import (cold)", loads[0], LOAD_GOAL_S, load_floor,
                       note),
                Figure("mlflow.pyfunc.load_model champion, after import (warm)", loads[1], LOAD_GOAL_S, load_floor,
                       note)]
    return figures


def section_figures(module: str) -> list[Figure]:
    """A section's figures, or none (saying so) when its module is not there."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        print(f"everyday: section {module} is missing ({module.replace('.', '/')}.py): skipped", flush=True)
        return []
    return list(mod.figures())


def run() -> list[Figure]:
    print(f"everyday: start, {load_average()}", flush=True)
    figures = command_figures()
    for module in SECTIONS:
        figures += section_figures(module)
    print(f"everyday: end, {load_average()}", flush=True)
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
