"""tests/suite_run.py: a fresh clone orders the heaviest modules first from the checked-in module seconds."""

from __future__ import annotations

import json

from tests import suite_run


def test_without_a_last_run_the_checked_in_seconds_order_the_units(tmp_path, monkeypatch):
    monkeypatch.setattr(suite_run, "LAST_RUN", tmp_path / "none.json")
    seconds = suite_run._last_modules()
    assert seconds == json.loads(suite_run.MODULE_SECONDS.read_text())["modules"]
    assert max(seconds, key=seconds.get).startswith("tests/pipelines/")  # an end-to-end module, not a unit test's
    (tmp_path / "none.json").write_text(json.dumps({"modules": {"tests/a.py": 3}}))
    assert suite_run._last_modules() == {"tests/a.py": 3.0}  # this checkout's own last run wins


def test_every_module_named_in_the_checked_in_seconds_exists():
    root = suite_run.TESTS.parent
    named = json.loads(suite_run.MODULE_SECONDS.read_text())["modules"]
    assert [m for m in named if not (root / m).is_file()] == []  # else: python -m tests.suite_run after a whole run


def test_malformed_seconds_files_fall_back_to_the_next_source(tmp_path, monkeypatch):
    """A last run or checked-in file that is cut, not JSON, or of the wrong shape is skipped, never a crash."""
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"modules": {"tests/b.py": 2}}))
    monkeypatch.setattr(suite_run, "MODULE_SECONDS", good)
    for text in ('{"modules": {"tests/a.py": 3', "not json", "[1, 2]", '{"modules": [1]}', '{"modules": {"a": "x"}}'):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        monkeypatch.setattr(suite_run, "LAST_RUN", bad)
        assert suite_run._last_modules() == {"tests/b.py": 2.0}, text
    monkeypatch.setattr(suite_run, "MODULE_SECONDS", bad)
    assert suite_run._last_modules() == {}  # neither: the marker guess orders the units


def test_the_machine_busy_clock_counts_what_no_worker_waits_for():
    """``machine_cpu_s`` comes from /proc/stat: it grows with CPU burnt by any process, here a child nobody waits for."""
    import subprocess
    import sys

    before = suite_run._machine_busy_s()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.5: pass"])
    child.wait()
    assert before is not None and suite_run._machine_busy_s() - before >= 0.4


def test_the_suite_benchmark_tells_idle_from_busy_by_the_machines_other_cpu():
    from benchmarks.everyday_suite import other_load

    after_a_setup_step = {"load_start": [1.33], "load_end": [2.45], "workers": 2, "wall_s": 570.0, "cpu_s": 982.0,
                          "machine_cpu_s": 1038.0}
    assert round(other_load(after_a_setup_step), 2) == 0.1  # idle: a load of 1.33 left by uv's bytecode compile
    beside_two_hogs = dict(after_a_setup_step, machine_cpu_s=982.0 + 2 * 570.0)
    assert round(other_load(beside_two_hogs), 2) == 2.0
    assert other_load({"load_start": [1.5], "load_end": [2.0], "workers": 2}) == 1.5  # older runs: the load average


def test_the_host_speed_is_shown_beside_the_figures_and_older_runs_have_none():
    from benchmarks.everyday_suite import host_speed

    assert suite_run.host_seconds() > 0
    (figure,) = host_speed({"host_s": [0.0198, 0.0251]})
    assert figure.verdict == "info" and figure.seconds is None and "20 ms and 25 ms" in figure.note
    assert host_speed({"host_s": [None, 0.02]})[0].note.endswith("end: 20 ms (lower is faster)")
    assert host_speed({}) == [] and host_speed({"host_s": None}) == []  # runs from before it was recorded


def test_the_shared_prefect_server_s_cpu_is_read_from_proc(monkeypatch):
    import subprocess
    import sys

    from tests import shared_prefect

    monkeypatch.setattr(shared_prefect, "_SERVER", {})
    assert shared_prefect.server_cpu_s() == 0.0  # no server started by this process: nothing counted
    # it spins 0.5 CPU-s by its own clock; /proc counts whole clock ticks, sampled (it once read 0.29 of 0.3)
    server = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                               "while time.process_time() - t < 0.5:\n    pass\nprint(flush=True)\ninput()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()  # it has spun 0.5 CPU-s and waits
        monkeypatch.setitem(shared_prefect._SERVER, "proc", server)
        assert shared_prefect.server_cpu_s() >= 0.3
    finally:
        server.communicate("\n", timeout=60)
    assert shared_prefect.server_cpu_s() == 0.0  # gone (reaped): nothing left to read
