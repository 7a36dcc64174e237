"""Progress of a batch run: partitions done, rows, rows/s; a line per partition in the Prefect log, and a bar
on the CLI when a command installs one (``with progress_bar(console): ...``)."""

from __future__ import annotations

import contextlib
import time


class BatchProgress:
    """Counts partitions and rows as outcomes arrive; the base class only formats the log line."""

    def __init__(self):
        self.total = self.done = self.rows = 0
        self.started = time.perf_counter()
        self.label = ""

    def start(self, total: int, label: str) -> None:
        self.total, self.done, self.rows, self.label = total, 0, 0, label
        self.started = time.perf_counter()

    def advance(self, outcome) -> str:
        self.done += 1
        self.rows += outcome.rows
        rate = self.rows / max(time.perf_counter() - self.started, 1e-9)
        return (f"{self.done}/{self.total} partitions ({self.label}), {self.rows:,} rows, {rate:,.0f} rows/s; "
                f"{outcome.partition}: {outcome.status}")

    def finish(self) -> None:
        pass


class RichProgress(BatchProgress):
    def __init__(self, console):
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("partitions  {task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
                            TimeElapsedColumn(), console=console, transient=False)
        self.task = None

    def start(self, total: int, label: str) -> None:
        super().start(total, label)
        if self.task is None:
            self.bar.start()
        else:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(f"scoring with {label}", total=total, rows=0, rate=0.0)

    def advance(self, outcome) -> str:
        line = super().advance(outcome)
        rate = self.rows / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(self.task, advance=1, rows=self.rows, rate=rate)
        return line

    def finish(self) -> None:
        self.bar.refresh()


_current: BatchProgress | None = None


def reporter() -> BatchProgress:
    """The installed progress reporter, or a log-only one."""
    return _current or BatchProgress()


@contextlib.contextmanager
def progress_bar(console):
    global _current
    previous, _current = _current, RichProgress(console)
    try:
        yield _current
    finally:
        _current.bar.stop()
        _current = previous
