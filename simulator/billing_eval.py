"""The billing checks measured against a simulated world's truth: caught, missed and false alarms per check.

The truth table marks every attempt the simulator's billing system got wrong
(:mod:`simulator.billing_errors`); a check *catches* an error when it flags an attempt the truth marks with
it, *misses* it otherwise, and raises a *false alarm* when it flags an attempt the truth does not mark. An
attempt the check could not make (None) is not flagged.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from billing.replay import BillingReport, CheckFigures, ReplayResult
from events.io import read_table, table_dir
from simulator.billing_errors import ERROR_COLUMNS
from simulator.tables import TRUTH_TABLE


def has_truth(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a simulated world's truth with its billing errors."""
    parts = sorted(table_dir(data_dir, TRUTH_TABLE).glob("part-*.parquet"))
    return bool(parts) and all(column in pq.read_schema(parts[0]).names for column in ERROR_COLUMNS)


def against_truth(result: ReplayResult, report: BillingReport, data_dir: Path) -> BillingReport:
    """``report`` with each check's caught / missed / false alarms against the truth of ``data_dir``."""
    truth = read_table(data_dir, TRUTH_TABLE, ["attempt_id", *ERROR_COLUMNS]).to_pandas()
    joined = result.fields.merge(truth, on="attempt_id", how="left", suffixes=("", "_truth"))
    checks: dict[str, CheckFigures] = {}
    for column in ERROR_COLUMNS:
        flagged = (joined[column] == True).to_numpy()  # noqa: E712 (None: not checked)
        error = joined[f"{column}_truth"].fillna(False).astype(bool).to_numpy()  # an attempt without truth
        errors, caught = int(error.sum()), int((flagged & error).sum())
        false_alarms = int((flagged & ~error).sum())
        checks[column] = report.checks[column].model_copy(
            update={
                "errors": errors,
                "caught": caught,
                "missed": errors - caught,
                "false_alarms": false_alarms,
                "caught_share": caught / errors if errors else None,
                "false_alarm_share": false_alarms / max(len(error) - errors, 1),
            }
        )
    return report.model_copy(update={"checks": checks, "against_truth": True})
