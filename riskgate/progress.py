"""The CLI's progress bars (rich, on stderr) behind the interface of :mod:`core.progress`."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType
    from typing import TextIO

    from rich.console import Console
    from rich.progress import Progress as RichBars
    from rich.progress import TaskID


class RichProgress:
    """Rich bars, one per stage (the finished ones stay on screen, completed), on the given console.

    Use as a context manager: the bars are drawn while it is open and the last stage is completed on exit.
    Meanwhile log lines bound for stderr go through the console, above the bars (not through them); stdout is
    left alone.
    """

    def __init__(self, console: Console) -> None:
        from rich.progress import (  # noqa: PLC0415 (rich only where bars are drawn)
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichBars  # noqa: PLC0415

        self._bars: RichBars = RichBars(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            redirect_stdout=False,
        )
        self._task: TaskID | None = None
        self._moved: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []

    def stage(self, name: str, total: int | None = None) -> None:
        """Complete the current bar and start one for ``name``."""
        self._finish()
        self._task = self._bars.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        """Move the current bar ``n`` units on."""
        if self._task is not None:
            self._bars.advance(self._task, n)

    def _finish(self) -> None:
        if self._task is None:
            return
        total = self._bars.tasks[-1].total or 1  # a spinner (no total) ends as one full unit
        self._bars.update(self._task, total=total, completed=total)

    def __enter__(self) -> RichProgress:
        stderr = sys.stderr
        self._bars.start()  # on a terminal, sys.stderr is now a proxy printing above the bars
        self._moved = [
            (handler, stderr)
            for handler in logging.getLogger().handlers
            if isinstance(handler, logging.StreamHandler) and handler.stream is stderr
        ]
        for handler, _ in self._moved:
            handler.setStream(sys.stderr)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self._finish()
        for handler, stream in self._moved:
            handler.setStream(stream)
        self._bars.stop()
