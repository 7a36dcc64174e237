"""The test suite's figures for `benchmarks.run everyday`: wall and CPU time of the last whole run of tests/.

Goals (issue 18): under 8 minutes on an idle 2-core machine, under 30 minutes with both cores busy. A run of the whole
tests/ tree writes ``.pytest-last-run.json`` (tests/suite_run.py): wall and CPU seconds, the load average at its start
and end, and the whole machine's CPU seconds. Which goal applies comes from the load other processes put on the
machine: the machine's CPU less the suite's own over the wall time (else the 1-minute load at the start, or at the end
less the suite's own workers, whichever is higher); under one core's worth it is the idle goal.

`python -m benchmarks.everyday_suite` prints the figures of the last run; `--run-suite` runs the suite first (the
README's command, in this environment: minutes, not seconds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    from benchmarks.bench_everyday import Figure
except ImportError:  # bench_everyday.py not there yet: the same fields
    @dataclass(frozen=True)
    class Figure:
        name: str
        seconds: float | None
        goal_s: float | None
        floor_s: float | None
        note: str
        verdict: str

ROOT = Path(__file__).resolve().parents[1]
LAST_RUN = ROOT / ".pytest-last-run.json"
IDLE_GOAL_S = 8 * 60
BUSY_GOAL_S = 30 * 60


def other_load(run: dict) -> float:
    """The cores other processes kept busy during the run: the whole machine's CPU seconds less the suite's own, over
    the wall time, where the run recorded ``machine_cpu_s``; else the 1-minute load averages (at the start, or at the
    end less the suite's workers), which a set-up step just before the run (uv compiling bytecode) lifts too."""
    machine, own, wall = run.get("machine_cpu_s"), run.get("cpu_s"), run.get("wall_s")
    if machine and own is not None and wall:
        return max(0.0, float(machine) - float(own)) / float(wall)
    start, end = run.get("load_start", [0.0])[0], run.get("load_end", [0.0])[0]
    return max(start, end - run.get("workers", 1))


def figures(run_suite: bool = False, last_run: Path = LAST_RUN) -> list[Figure]:
    """The suite's wall time against its goal, and its CPU time (user+sys of every process it waited for), from
    ``last_run``; ``run_suite`` runs the whole suite first."""
    if run_suite:
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT, check=False)
    try:
        run = json.loads(last_run.read_text())
    except (OSError, ValueError):
        note = f"no {last_run.name}: run the whole suite (`uv run --frozen --extra spark pytest`) or pass --run-suite"
        return [Figure("test suite, wall", None, IDLE_GOAL_S, None, note, "not measured")]
    load, cpus, workers = other_load(run), run.get("cpus") or 1, run.get("workers", 1)
    busy = load >= 1.0
    goal = BUSY_GOAL_S if busy else IDLE_GOAL_S
    counts = run.get("counts", {})
    outcome = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    wall, cpu = float(run["wall_s"]), float(run["cpu_s"])
    state = (f"{'busy' if busy else 'idle'} machine: other processes {load:.2f} cores, load {run['load_start'][0]:.2f} "
             f"at start, {run['load_end'][0]:.2f} at end, {cpus} cores, {workers} worker(s)")
    failed = counts.get("failed", 0) or counts.get("error", 0) or run.get("exitstatus", 0) not in (0, 5)
    wall_verdict = "fail" if failed else ("pass" if wall < goal else "fail")
    return [
        Figure("test suite, wall", wall, goal, round(cpu / max(1, min(cpus, workers)), 1),
               f"{state}; {outcome}; floor = CPU time over the workers; run finished {run.get('finished_at')}",
               wall_verdict),
        Figure("test suite, CPU (user+sys)", cpu, None, None,
               "every worker and the processes it waited for (servers, CLI runs, CPU hogs)", "info"),
    ] + ([Figure("test suite, CPU of the whole machine", float(run["machine_cpu_s"]), None, None,
                 "/proc/stat over the run: also what no worker waited for (a JVM, a daemonized server), and any other "
                 "user's processes", "info")] if run.get("machine_cpu_s") else []) + host_speed(run)


def host_speed(run: dict) -> list[Figure]:
    """The host's speed during the run: a fixed piece of work's CPU seconds at its start and end
    (tests/suite_run.host_seconds). Runs of one code compare only at a similar host speed: on shared VMs it varies by
    up to half between hours, and the run's CPU and wall with it."""
    host = [s for s in run.get("host_s") or [] if s is not None]
    if not host:
        return []
    shown = " and ".join(f"{s * 1e3:.0f} ms" for s in run["host_s"] if s is not None)
    return [Figure("host speed, fixed work", None, None, None,
                   f"CPU of the same pure-Python work at the run's start and end: {shown} (lower is faster)", "info")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-suite", action="store_true", help="run the whole test suite first (minutes)")
    args = parser.parse_args()
    for f in figures(run_suite=args.run_suite):
        shown = "-" if f.seconds is None else f"{f.seconds:.0f} s"
        goal = "" if f.goal_s is None else f" (goal < {f.goal_s:.0f} s)"
        floor = "" if f.floor_s is None else f" [floor {f.floor_s:.0f} s]"
        print(f"{f.name}: {shown}{goal}{floor} {f.verdict}: {f.note}")


if __name__ == "__main__":
    main()
