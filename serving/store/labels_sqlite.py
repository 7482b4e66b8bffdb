"""The fraud reports of a SQLite decision log (:class:`serving.store.labels.ReportSource`), read on a
read-only connection of their own: a pull never holds up the service writing the same file."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from serving.store.decisions import LogNotFoundError
from serving.store.labels import ReportSource, StoredReport


class SQLiteReports(ReportSource):
    """The fraud reports of the decision log at ``path`` (``STATE_DIR/decisions.sqlite``)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise LogNotFoundError(
                f"no decision log at {path}: give the state directory of a service "
                "(the log is STATE_DIR/decisions.sqlite)"
            )
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)

    def reports(self) -> list[StoredReport]:
        rows = self._db.execute("SELECT report_id, attempt_id, reported_at, report_type FROM fraud_reports")
        found = [StoredReport(str(r[0]), str(r[1]), datetime.fromisoformat(r[2]), str(r[3])) for r in rows]
        return sorted(found, key=lambda report: (report.reported_at, report.report_id))

    def close(self) -> None:
        self._db.close()
