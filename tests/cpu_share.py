"""A process tree held to a share of the CPU, the way `cpulimit` does it: the whole tree is stopped (SIGSTOP) and
continued (SIGCONT) in turn, so it runs ``share`` of every wall-clock period. A test sees what a busy host does to it
(every wall-clock timeout, readiness wait and lock wait of the tree runs 1/share times longer than its work) without
burning the cores it stands for: CPU hogs would take them from the other xdist worker too. Linux only (/proc).
Start the held process in a session of its own (``start_new_session=True``): while stopped in pytest's process group,
it is sent SIGHUP by the kernel if that group is orphaned (a run in the background of a shell that exits)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...; see proc(5)), None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant, from /proc (children started since the last call are in the next)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = stat_fields(entry.name)
        if fields is not None:  # else it ended meanwhile
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting to be reaped (its pid is not reused before that, so no stranger is stopped)."""
    fields = stat_fields(pid)
    return fields is None or fields[0] == "Z"


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


class CpuShare:
    """``with CpuShare(pid, 0.5):`` the tree under ``pid`` runs half of each ``period`` seconds; on exit it runs
    freely again. ``stops`` counts the periods it was held for (a test can show the limit took effect).

    The default period, 0.2 s, stalls the tree for 100 ms at a time at share 0.5: longer than a scheduler's time
    slice beside hogs, which only matters to what is timed by the wall clock (the canary times by the busy clock on
    the CPU, which leaves stopped time out). A 20 ms period was measured dearer for the demo test (115 against 101
    CPU-s, 150 against 133 s) for nothing it proves. The tree is looked up again every ``rescan`` seconds (reading
    /proc for every process is the costly part), so a child started meanwhile runs freely until then."""

    def __init__(self, root: int, share: float, period: float = 0.2, rescan: float = 0.5):
        if not 0 < share < 1:
            raise ValueError(f"share must be between 0 and 1, not {share}")
        self.root, self.share, self.period, self.rescan, self.stops = root, share, period, rescan, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._hold, name="cpu-share", daemon=True)

    def _hold(self) -> None:
        tree: list[int] = []
        scanned = -float("inf")
        try:
            while not self._done.is_set() and not _ended(self.root):
                if time.monotonic() - scanned >= self.rescan:
                    tree, scanned = process_tree(self.root), time.monotonic()
                _signal(tree, signal.SIGCONT)
                if self._done.wait(self.share * self.period):
                    break
                _signal(tree, signal.SIGSTOP)
                self.stops += 1
                self._done.wait((1 - self.share) * self.period)
        finally:
            _signal(tree, signal.SIGCONT)

    def __enter__(self) -> CpuShare:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        _signal(process_tree(self.root), signal.SIGCONT)
