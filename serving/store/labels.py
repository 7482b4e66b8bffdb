"""The fraud reports a decision log holds, as the label pull reads them (:class:`ReportSource`): every report
the service received (``POST /v1/outcomes``) or recorded itself (a review case resolved as fraud).

The SQLite log's source is :class:`serving.store.labels_sqlite.SQLiteReports`; a second backend gives the same
rows from its own log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StoredReport:
    """A fraud report as the log keeps it (``report_type``: the event contract's, e.g. ``chargeback``)."""

    report_id: str
    attempt_id: str
    reported_at: datetime
    report_type: str


class ReportSource(Protocol):
    """The fraud reports of one decision log, read-only."""

    def reports(self) -> list[StoredReport]:
        """Every fraud report, oldest ``reported_at`` first (ties by id)."""
        ...

    def close(self) -> None: ...
