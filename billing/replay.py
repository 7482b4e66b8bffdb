"""A data directory's attempts and outcomes replayed through the billing checks, in time order.

Offline, every attempt of the data went to the gateway (it has an outcome), so each is recorded as submitted.
At equal times an attempt comes before an outcome (an event counts for an attempt only if strictly before it,
as for the features). The answer is the checks' fields for every attempt, in the order of the attempts table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from billing.catalogue import Catalogue
from billing.checks import (
    BILLING_FIELD_NAMES,
    BillingCheck,
    BillingChecks,
    BillingPolicy,
    Charge,
    MemoryBillingState,
)
from core.progress import NO_PROGRESS, Progress
from events.io import read_table
from events.schema import EventKind

ATTEMPT_COLUMNS: Final = [
    "attempt_id", "occurred_at", "account_id", "kind", "invoice_id", "retry_number", "amount", "currency",
    "plan_tier", "plan_period",
]  # fmt: skip
OUTCOME_COLUMNS: Final = ["attempt_id", "occurred_at", "status"]
_ATTEMPT, _OUTCOME = 0, 1


class CheckFigures(BaseModel):
    """One check over a data directory; the truth's figures only where the data has a truth (simulated)."""

    model_config = ConfigDict(frozen=True)

    checked: int = Field(description="Attempts the check could be made on.")
    not_checked: int = Field(
        description="Attempts it could not be made on (no invoice, catalogue entry or known paid period)."
    )
    flagged: int = Field(description="Attempts the check flags (a built-in rule blocks them).")
    errors: int | None = Field(None, description="Attempts with this billing error in the truth.")
    caught: int | None = Field(None, description="Errors flagged.")
    missed: int | None = Field(None, description="Errors not flagged.")
    false_alarms: int | None = Field(None, description="Attempts flagged without this error.")
    caught_share: float | None = Field(None, description="caught / errors.")
    false_alarm_share: float | None = Field(None, description="false_alarms / attempts without the error.")


class BillingReport(BaseModel):
    """What ``riskgate billing check`` reports: per check, by its name."""

    model_config = ConfigDict(frozen=True)

    data_dir: str
    catalogue: str | None = Field(description="The catalogue the prices were checked against (None: none).")
    attempts: int
    against_truth: bool = Field(description="Whether the figures include the simulator's truth.")
    checks: dict[str, CheckFigures]

    def headline(self) -> str:
        """One line per check."""
        lines = []
        for name, figures in self.checks.items():
            line = f"{name}: {figures.flagged} flagged of {figures.checked} checked"
            if figures.errors is not None:
                line += (
                    f"; truth {figures.errors} errors: {figures.caught} caught, {figures.missed} missed, "
                    f"{figures.false_alarms} false alarms"
                )
            lines.append(line)
        return "\n".join(lines)


@dataclass(frozen=True)
class ReplayResult:
    """The billing fields of every attempt (one row per attempt, ``attempt_id`` first)."""

    fields: pd.DataFrame

    def flagged(self, check: BillingCheck) -> int:
        return int((self.fields[check.value] == True).sum())  # noqa: E712 (None is not checked)

    def checked(self, check: BillingCheck) -> int:
        return int(self.fields[check.value].notna().sum())

    def report(self, data_dir: Path, catalogue: Catalogue | None) -> BillingReport:
        """The plain counts (no truth) per check."""
        return BillingReport(
            data_dir=str(data_dir),
            catalogue=None if catalogue is None else catalogue.source,
            attempts=len(self.fields),
            against_truth=False,
            checks={
                check.value: CheckFigures(
                    checked=self.checked(check),
                    not_checked=len(self.fields) - self.checked(check),
                    flagged=self.flagged(check),
                )
                for check in BillingCheck
            },
        )


def _micros(column: pa.ChunkedArray) -> list[int]:
    values: list[int] = pc.cast(column, pa.int64()).to_pylist()
    return values


def replay(
    data_dir: Path,
    catalogue: Catalogue | None,
    policy: BillingPolicy | None = None,
    progress: Progress = NO_PROGRESS,
) -> ReplayResult:
    """Replay the attempts and outcomes of ``data_dir`` through fresh checks (state in memory)."""
    progress.stage("read attempts and outcomes")
    attempts = read_table(data_dir, EventKind.ATTEMPTS.value, ATTEMPT_COLUMNS)
    outcomes = read_table(data_dir, EventKind.OUTCOMES.value, OUTCOME_COLUMNS)
    columns = {name: attempts.column(name).to_pylist() for name in ATTEMPT_COLUMNS if name != "occurred_at"}
    attempt_us, outcome_us = _micros(attempts.column("occurred_at")), _micros(outcomes.column("occurred_at"))
    outcome_ids, statuses = outcomes.column("attempt_id").to_pylist(), outcomes.column("status").to_pylist()
    times = np.array(attempt_us + outcome_us, dtype=np.int64)
    sides = np.repeat([_ATTEMPT, _OUTCOME], [len(attempt_us), len(outcome_us)])
    order = np.lexsort((np.arange(len(times)), sides, times)).tolist()
    checks = BillingChecks(MemoryBillingState(), catalogue, policy)
    rows: list[tuple[bool | float | None, ...]] = [()] * len(attempt_us)
    progress.stage("replay through the billing checks", len(order))
    for position in order:
        if position >= len(attempt_us):
            k = position - len(attempt_us)
            checks.record_outcome(outcome_ids[k], statuses[k])
            continue
        charge = Charge(
            attempt_id=columns["attempt_id"][position],
            occurred_us=attempt_us[position],
            account_id=columns["account_id"][position],
            kind=columns["kind"][position],
            invoice_id=columns["invoice_id"][position],
            retry_number=columns["retry_number"][position] or 0,
            amount=columns["amount"][position],
            currency=columns["currency"][position],
            plan_tier=columns["plan_tier"][position],
            plan_period=columns["plan_period"][position],
        )
        rows[position] = tuple(checks.check(charge).values().values())
        checks.record_attempt(charge, submitted=True)
    progress.advance(len(order))
    frame = pd.DataFrame(rows, columns=list(BILLING_FIELD_NAMES), dtype=object)
    frame.insert(0, "attempt_id", columns["attempt_id"])
    return ReplayResult(frame)
