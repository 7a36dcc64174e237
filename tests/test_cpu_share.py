"""tests/cpu_share.py: the demo test's busy-host CPU limit holds a whole process tree back and lets it go at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.cpu_share import CpuShare, process_tree, stat_fields

SPIN = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'while True: pass']); exec('while True: pass')"


def _cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _state(pid: int) -> str:
    return stat_fields(pid)[0]


def test_a_tree_held_to_a_fifth_uses_at_most_about_that_and_runs_freely_after():
    spinner = subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True)  # no SIGHUP: tests/cpu_share.py
    try:
        while len(process_tree(spinner.pid)) < 2:  # the grandchild started (a readiness check, not a sleep)
            time.sleep(0.01)
        tree = process_tree(spinner.pid)
        before = {pid: _cpu_seconds(pid) for pid in tree}
        started = time.monotonic()
        with CpuShare(spinner.pid, share=0.2, period=0.1) as held:
            while held.stops < 20:
                time.sleep(0.05)
        wall = time.monotonic() - started
        used = {pid: _cpu_seconds(pid) - before[pid] for pid in tree}
        # a busy host only lowers what they get; unheld, each spinner would use about the whole wall time
        assert all(cpu < 0.5 * wall for cpu in used.values()), (used, wall)
        assert all(_state(pid) != "T" for pid in tree)  # let go at the end
    finally:
        for pid in reversed(process_tree(spinner.pid)):
            os.kill(pid, 9)
        spinner.wait()


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        CpuShare(os.getpid(), share=1.0)
