"""The label loop's last step: the fraud reports the service holds (received over the API, or recorded by a
review case resolved as fraud) into a data directory's ``fraud_reports`` table, where the next training reads
them (``riskgate labels pull``).

Reports go through the data directory's own import path (:func:`events.importer.import_files`: validated
against the event contract, written as a new part, whole or not at all), so the table gets nothing an import
would refuse. A pull is idempotent by ``report_id``: reports the table has are left out, and pulling again
adds nothing. A report whose attempt the data directory does not have (yet) is left out and counted: import
the attempts first, the next pull takes it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.errors import RiskgateError
from events.importer import ImportResult, import_files
from events.mapping import ColumnMapping
from events.schema import EventKind
from events.validate import existing_attempt_times, existing_ids
from serving.store.labels import ReportSource

logger = logging.getLogger(__name__)


class LabelPullError(RiskgateError):
    """The data directory's import refused the reports (its problems are in the message)."""


@dataclass(frozen=True)
class Pulled:
    """What a pull did: reports the log holds, those the table had, those without their attempt in the data
    directory, and those written (with the import's result, None when there was nothing to write)."""

    in_log: int
    known: int
    no_attempt: int
    written: int
    result: ImportResult | None = None

    def summary(self) -> list[str]:
        lines = [
            f"{self.in_log} fraud report(s) in the decision log: {self.written} new written, {self.known} "
            f"already in the data directory, {self.no_attempt} left out (their attempt is not in the data "
            "directory: import it, then pull again)"
        ]
        return lines + ([] if self.result is None else self.result.summary())


def pull_labels(source: ReportSource, data_dir: Path) -> Pulled:
    """Write the reports of ``source`` that ``data_dir``'s ``fraud_reports`` lacks (see the module's
    docstring); :class:`LabelPullError` if the import refuses them."""
    reports = source.reports()
    known = set(existing_ids(data_dir, EventKind.FRAUD_REPORTS))
    attempts = existing_attempt_times(data_dir)
    present = set() if attempts is None else set(attempts.index)
    fresh = [report for report in reports if report.report_id not in known]
    new = [report for report in fresh if report.attempt_id in present]
    pulled = Pulled(len(reports), len(reports) - len(fresh), len(fresh) - len(new), 0)
    if not new:
        return pulled
    frame = pd.DataFrame(
        {
            "report_id": [r.report_id for r in new],
            "attempt_id": [r.attempt_id for r in new],
            "reported_at": pd.to_datetime([r.reported_at for r in new], utc=True),
            "report_type": [r.report_type for r in new],
        }
    )
    with tempfile.TemporaryDirectory(prefix="riskgate-labels-") as scratch:
        file = Path(scratch) / "fraud_reports.parquet"
        frame.to_parquet(file, index=False)
        result = import_files({EventKind.FRAUD_REPORTS: file}, ColumnMapping(), data_dir)
    if result.refused:
        raise LabelPullError("\n".join(["the data directory refused the reports:", *result.summary()]))
    logger.info("labels pulled into %s: %d new fraud reports", data_dir, len(new))
    return Pulled(pulled.in_log, pulled.known, pulled.no_attempt, len(new), result)
