"""Progress of long commands: the interface library code reports to (the CLI draws it: riskgate.progress).

Library functions take ``progress: Progress = NO_PROGRESS`` and call :meth:`Progress.stage` when a named step
starts (with its count of units when known) and :meth:`Progress.advance` per unit done: per stage, block,
partition, fold, model or trial, never per event, so the default no-op costs nothing measurable. Library code
never prints: only ``riskgate.progress.RichProgress``, created by the CLI, draws bars (on stderr).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Where a long function reports its steps."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A named step starts; ``total`` units of it (None: unknown, a spinner)."""

    def advance(self, n: int = 1) -> None:
        """``n`` units of the current step are done."""


class NoProgress:
    """The default: reports go nowhere."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Ignore the step."""

    def advance(self, n: int = 1) -> None:
        """Ignore the units."""


#: The shared no-op default of every ``progress`` keyword argument.
NO_PROGRESS: Progress = NoProgress()


class Prefixed:
    """Another progress's stages under a common prefix, e.g. ``fraud: search trials``."""

    def __init__(self, inner: Progress, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    def stage(self, name: str, total: int | None = None) -> None:
        """The inner progress's stage ``prefix + name``."""
        self._inner.stage(f"{self._prefix}{name}", total)

    def advance(self, n: int = 1) -> None:
        """Advance the inner progress."""
        self._inner.advance(n)
