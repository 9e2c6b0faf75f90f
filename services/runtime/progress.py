"""Progress of long work (ingest, generate, rebuild, batch, evaluate) as a bar on the terminal.

The command opens a bar with `progress_bar`; the work, wherever it runs (in asyncio tasks
too: the bar is a context variable), reports with `advance`. Not on a terminal (a pipe, a
log file, CI) there is no bar and `advance` does nothing.

rich draws it: counts, rate and time left in one line that redraws in place, on standard
error so that results on standard output stay clean, and it knows when it is not on a terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

_current: contextvars.ContextVar[tuple[Progress, TaskID] | None] = contextvars.ContextVar(
    "riskwatch_progress", default=None)


class _Rate(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s", style="progress.data.speed")


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, unit: str = "events",
                 console: Console | None = None) -> Iterator[None]:
    """A bar for the work done inside, when standard error is a terminal."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               _Rate(unit), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        token = _current.set((bar, bar.add_task(description, total=total)))
        try:
            yield
        finally:
            _current.reset(token)


def advance(count: int = 1) -> None:
    """`count` more done, on the bar the command opened; nothing without one."""
    current = _current.get()
    if current is not None:
        bar, task = current
        bar.advance(task, count)


def count_lines(path: str) -> int | None:
    """Lines of a file, for a bar's total; None for standard input."""
    if path in ("-", "<stdin>"):
        return None
    with open(path, "rb") as lines:
        return sum(1 for line in lines if line.strip())
