"""Where the command-line tools read a service's decision log (``riskgate report``, ``riskgate rules
backtest`` over the log, ``riskgate labels pull``): the SQLite file of a state directory, or the fleet's
PostgreSQL database when ``RISKGATE_DATABASE_URL`` is set (and no state directory is named explicitly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from serving.store.base import DecisionRanges
from serving.store.labels import ReportSource

#: The decision log's file in a state directory.
LOG_FILE = "decisions.sqlite"
#: Connections a command-line reader opens to PostgreSQL (it reads on one).
_READER_POOL = 2


@dataclass(frozen=True)
class DecisionSource:
    """A decision log to read: the SQLite file at ``path``, or the PostgreSQL database at ``url`` (never
    shown: ``str()`` redacts its password)."""

    path: Path | None = None
    url: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        if self.url is not None:
            from serving.store.postgres.database import redact  # noqa: PLC0415 (SQLite needs no driver)

            return redact(self.url)
        return str(self.path)

    def ranges(self) -> DecisionRanges:
        """A range reader over the log (closed by its ``with`` block); a missing SQLite file is a
        :class:`serving.store.decisions.LogNotFoundError`, a PostgreSQL schema of another version a
        :class:`serving.store.postgres.schema.SchemaVersionError`."""
        if self.url is None:
            from serving.store.decisions import DecisionReader  # noqa: PLC0415

            return DecisionReader(self._file())
        from serving.store.postgres.decisions import PostgresRanges  # noqa: PLC0415
        from serving.store.postgres.schema import open_checked  # noqa: PLC0415

        return PostgresRanges(open_checked(self.url, _READER_POOL), owned=True)

    def reports(self) -> ReportSource:
        """The log's fraud reports (closed by the caller)."""
        if self.url is None:
            from serving.store.labels_sqlite import SQLiteReports  # noqa: PLC0415

            return SQLiteReports(self._file())
        from serving.store.postgres.decisions import PostgresReports  # noqa: PLC0415
        from serving.store.postgres.schema import open_checked  # noqa: PLC0415

        return PostgresReports(open_checked(self.url, _READER_POOL), owned=True)

    def _file(self) -> Path:
        if self.path is None:  # pragma: no cover - decision_source() gives a path or a URL
            raise ValueError("a decision source names a SQLite file or a PostgreSQL URL")
        return self.path


def decision_source(settings: Settings, state_dir: Path | None = None) -> DecisionSource:
    """The log a command reads: ``state_dir``'s file when given, else PostgreSQL when
    ``RISKGATE_DATABASE_URL`` is set, else the file of ``RISKGATE_STATE_DIR``."""
    if state_dir is not None:
        return DecisionSource(path=state_dir / LOG_FILE)
    if settings.database_url is not None:
        return DecisionSource(url=settings.database_url.get_secret_value())
    return DecisionSource(path=settings.state_dir / LOG_FILE)
