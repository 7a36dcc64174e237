"""How the suite runs on two cores (pytest-xdist, `-n 2` in pyproject's addopts) and what a whole run cost.

- Scheduling: a test module is one unit of work, so its module-scoped homes are built once, on one worker; tests
  marked ``xdist_group(name)`` form one unit per name (wherever their modules are), run one after another on one
  worker. The heaviest units start first: their seconds in this checkout's last whole run, else in
  ``tests/module_seconds.json`` (checked in, as pytest-split keeps its .test_durations: a fresh clone, as on CI,
  knows them too; refresh it with ``python -m tests.suite_run`` after a whole run), else a guess from the markers.
- Figures: a run of the whole tests/ tree writes ``.pytest-last-run.json`` at the project root (git-ignored): wall and
  CPU seconds (every worker and the processes it waited for), the load average at start and end, the host's speed
  at start and end (:func:`host_seconds`), the counts, and the wall and CPU seconds of each module (the wall: the next
  run's order). ``benchmarks/everyday_suite.py`` reads it.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest

LAST_RUN = Path(__file__).resolve().parents[1] / ".pytest-last-run.json"
TESTS = Path(__file__).resolve().parent
MODULE_SECONDS = TESTS / "module_seconds.json"


def _machine_busy_s() -> float | None:
    """CPU seconds all of this machine's cores spent busy since boot (/proc/stat: user, nice, system, irq, softirq,
    steal), None off Linux. Unlike ``cpu_s`` it counts what no worker waited for: a JVM py4j killed, a server that
    daemonized, another user's processes (so it is only the suite's own on an otherwise idle machine)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / ticks


def host_seconds() -> float:
    """The thread CPU seconds of one fixed piece of pure-Python work, best of three (~0.1 s each): the host's speed
    at that moment. On this project's shared VMs it varies by up to half between hours (neighbours on the host: the
    same unchanged test module took 12.5 and 19.2 CPU-s in two whole runs), which a run's CPU and wall inherit."""
    def work() -> float:
        start = time.thread_time()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        return time.thread_time() - start

    return min(work() for _ in range(3))


_START = {"wall": time.time(), "load": os.getloadavg(), "machine_busy_s": _machine_busy_s(),
          "host_s": None if os.environ.get("PYTEST_XDIST_WORKER") else host_seconds()}
_RUN = {"worker_cpu_s": 0.0, "workers": 0, "modules": {}, "modules_cpu": {}}
_LAST_CPU = [None]  # this process's CPU seconds at its last test report


def _cpu_s(children: bool = True) -> float:
    usage = [resource.getrusage(resource.RUSAGE_SELF)]
    if children:
        usage.append(resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return (mark.args[0] if mark.args else mark.kwargs.get("name")) if mark else None


def _modules_in(path: Path) -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(path.read_text()).get("modules", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _last_modules() -> dict[str, float]:
    return _modules_in(LAST_RUN) or _modules_in(MODULE_SECONDS)


def save_module_seconds() -> str:
    """Copy the last whole run's module seconds into tests/module_seconds.json (the order of a fresh clone)."""
    try:
        last = json.loads(LAST_RUN.read_text())
        modules = {k: round(float(v), 1) for k, v in sorted(last["modules"].items())}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        modules = {}
    if not modules:
        raise SystemExit(f"no whole run's figures in {LAST_RUN}: run the suite first")
    MODULE_SECONDS.write_text(json.dumps({"from": last.get("finished_at"), "modules": modules}, indent=1) + "\n")
    return f"{len(modules)} modules written to {MODULE_SECONDS}"


def pytest_collection_modifyitems(session, config, items):
    """Heaviest units first (a stable sort: a module's tests keep their order and stay together)."""
    last = _last_modules()
    weight: dict[str, float] = {}
    counted: set[tuple[str, str]] = set()
    for item in items:
        module, group = item.nodeid.split("::", 1)[0], _group(item)
        unit = group or module
        heavy = bool(group or item.get_closest_marker("slow") or item.get_closest_marker("flow"))
        if not last:
            weight[unit] = max(weight.get(unit, 0.0), float(heavy))
        elif (unit, module) not in counted:  # a module the last run did not see: a guess from its markers
            counted.add((unit, module))
            weight[unit] = weight.get(unit, 0.0) + last.get(module, 30.0 if heavy else 1.0)
    items.sort(key=lambda i: -weight[_group(i) or i.nodeid.split("::", 1)[0]])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Units are modules or xdist_group names, handed out in collection order (see the module docstring); another
    ``--dist`` than pyproject's loadgroup keeps xdist's own scheduler."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):
                return "group:" + nodeid.split("@")[-1]
            return nodeid.split("::", 1)[0]

    config.option.loadscopereorder = False  # keep the order above (heaviest first), not "most tests first"
    return ModuleOrGroupScheduling(config, log)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # a worker: report its CPU to the controller
        session.config.workeroutput["lockgate_cpu_s"] = _cpu_s()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _RUN["worker_cpu_s"] += float(getattr(node, "workeroutput", {}).get("lockgate_cpu_s", 0.0))
    _RUN["workers"] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each report carries the CPU seconds (this process and the children it waited for) spent since the last one:
    a module's fixtures, its tests and the processes they ran, summed per module as ``modules_cpu``."""
    outcome = yield
    now = _cpu_s()
    if _LAST_CPU[0] is not None:
        outcome.get_result().user_properties.append(("cpu_s", now - _LAST_CPU[0]))
    _LAST_CPU[0] = now


def pytest_runtest_logreport(report):
    module = report.nodeid.split("::", 1)[0]
    _RUN["modules"][module] = _RUN["modules"].get(module, 0.0) + report.duration
    cpu = sum(v for k, v in report.user_properties if k == "cpu_s")
    _RUN["modules_cpu"][module] = _RUN["modules_cpu"].get(module, 0.0) + cpu


def _whole_tree(config) -> bool:
    """The run was of all of tests/, unfiltered and not stopped early."""
    root = Path(str(config.rootpath))
    args = {(root / a.split("::", 1)[0]).resolve() for a in config.args}
    o = config.option
    return (args in ({TESTS}, {root}) and not getattr(o, "collectonly", False) and not getattr(o, "keyword", "") and not getattr(o, "markexpr", "")
            and not getattr(o, "deselect", None) and not getattr(o, "lf", False) and not getattr(o, "maxfail", 0))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput") or exitstatus not in (0, 1) or not _whole_tree(config):  # 2: interrupted
        return
    stats = {k: len(terminalreporter.stats.get(k, [])) for k in ("passed", "failed", "skipped", "error", "xfailed",
                                                                 "xpassed")}
    from tests.shared_prefect import server_cpu_s

    # reaped workers are counted once; the workers' shared Prefect server (still running) too
    cpu = _cpu_s(children=not _RUN["workers"]) + _RUN["worker_cpu_s"] + server_cpu_s()
    try:
        import psutil

        started = psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - psutil is optional here; the conftest's import time is close enough
        started = _START["wall"]
    busy_now = _machine_busy_s()
    figures = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.time() - started, 1),
        "cpu_s": round(cpu, 1),
        "machine_cpu_s": (None if _START["machine_busy_s"] is None or busy_now is None
                          else round(busy_now - _START["machine_busy_s"], 1)),
        "workers": _RUN["workers"] or 1,
        "cpus": os.cpu_count(),
        "load_start": [round(x, 2) for x in _START["load"]],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "host_s": [None if _START["host_s"] is None else round(_START["host_s"], 4), round(host_seconds(), 4)],
        "exitstatus": int(exitstatus),
        "counts": stats,
        "modules": {k: round(v, 2) for k, v in sorted(_RUN["modules"].items())},
        "modules_cpu": {k: round(v, 2) for k, v in sorted(_RUN["modules_cpu"].items())},
    }
    try:
        LAST_RUN.write_text(json.dumps(figures, indent=1) + "\n")
    except OSError as e:
        terminalreporter.write_line(f"could not write {LAST_RUN}: {e}")
        return
    machine = f" ({figures['machine_cpu_s']:.0f} s on the whole machine)" if figures["machine_cpu_s"] else ""
    terminalreporter.write_line(f"suite figures: {figures['wall_s']:.0f} s wall, {figures['cpu_s']:.0f} s CPU{machine}, "
                                f"{figures['workers']} worker(s), load {figures['load_start'][0]:.2f} -> "
                                f"{figures['load_end'][0]:.2f}, host speed {_host(figures['host_s'])}; written to "
                                f"{LAST_RUN.name}")


def _host(host_s: list) -> str:
    """The fixed work's seconds at the start and end (tests/suite_run.host_seconds)."""
    return " -> ".join("-" if s is None else f"{s * 1e3:.0f} ms" for s in host_s)


if __name__ == "__main__":
    print(save_module_seconds())
