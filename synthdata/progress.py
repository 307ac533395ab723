"""Progress display for long work: a rich bar on a terminal, periodic plain lines in a log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from synthdata import faults

_LOG_EVERY_SECONDS = 30.0


class _Bar:
    def __init__(self, progress: Progress, task: int, console: Console, description: str, total: float | None):
        self._progress, self._task = progress, task
        self._console, self._description, self._total = console, description, total
        self._done, self._started = 0.0, time.monotonic()
        self._last_line = self._started

    def advance(self, amount: float = 1) -> None:
        faults.point()
        self._progress.advance(self._task, amount)
        self._done += amount
        now = time.monotonic()
        if not self._console.is_terminal and now - self._last_line >= _LOG_EVERY_SECONDS:
            # A log file never sees rich's live bar: leave a dated line every half minute instead.
            self._last_line = now
            of = f"/{self._total:g}" if self._total else ""
            rate = self._done / max(now - self._started, 1e-9)
            self._console.print(f"{self._description}: {self._done:g}{of} ({rate:.1f}/s)", highlight=False)


@contextmanager
def progress_bar(description: str, total: float | None) -> Iterator[_Bar]:
    """A rich progress bar; ``with progress_bar("ingest", total=n) as bar: bar.advance()``."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    console = Console()
    with Progress(*columns, console=console, transient=False) as progress:
        yield _Bar(progress, progress.add_task(description, total=total), console, description, total)
