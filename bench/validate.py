"""Validation speed: a generated 1,000,000-row attempts export (CSV and Parquet), read and validated whole.

Also times the card-number scan on its own (vectorised, over a column of 16-digit tokens where every value
is a candidate, the worst case) and the scalar check the API runs on each request field.
Run: ``python -m bench validate`` (or ``make bench``).
"""

from __future__ import annotations

import logging
import statistics
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from events.cardnumbers import card_number_mask, contains_card_number
from events.mapping import TableMapping
from events.schema import EventKind
from events.sources import read_source
from events.validate import validate_source

ROWS = 1_000_000
REPEATS = 3


def attempts_export(rows: int, seed: int = 7) -> pa.Table:
    """A valid attempts export in contract column names, as text (as a CSV holds it), built with numpy."""
    rng = np.random.default_rng(seed)
    ids = np.arange(rows)
    start = np.datetime64("2025-01-01T00:00:00")
    occurred = start + np.sort(rng.integers(0, 365 * 86_400, rows)).astype("timedelta64[s]")
    cents = rng.integers(199, 4_999, rows)

    def text(prefix: str, values: np.ndarray) -> pd.Series:
        return prefix + pd.Series(values).astype("str")

    def pick(choices: list[str]) -> np.ndarray:
        return np.array(choices)[rng.integers(0, len(choices), rows)]

    frame = pd.DataFrame(
        {
            "attempt_id": text("att_", ids),
            "occurred_at": pd.Series(occurred).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account_id": text("acc_", rng.integers(0, rows // 10, rows)),
            "kind": pick(["signup", "renewal", "retry", "upgrade", "one_off"]),
            "plan_tier": pick(["basic", "standard", "premium"]),
            "plan_period": pick(["monthly", "quarterly", "annual"]),
            "amount": (cents // 100).astype(str) + "." + pd.Series(cents % 100).astype(str).str.zfill(2),
            "currency": pick(["EUR", "USD", "GBP", "BRL"]),
            "payment_method_id": text("pm_", rng.integers(10**9, 10**10, rows)),
            "method_type": pick(["card", "wallet", "paypal"]),
            "card_bin": text("", rng.integers(400_000, 560_000, rows)),
            "card_funding": pick(["credit", "debit", "prepaid"]),
            "card_country": pick(["DE", "US", "GB", "BR", "FR"]),
            "card_exp": pick(["2026-01", "2027-06", "2028-12"]),
            "device_id": text("dev_", rng.integers(0, rows // 5, rows)),
            "ip": text("10.", rng.integers(0, 255, rows))
            + "."
            + pd.Series(rng.integers(0, 255, rows)).astype(str)
            + ".7",
            "ip_country": pick(["DE", "US", "GB", "BR", "FR"]),
            "billing_country": pick(["DE", "US", "GB", "BR", "FR"]),
            "invoice_id": text("inv_", ids),
            "retry_number": pick(["0", "0", "0", "1", "2"]),
        }
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


def _median_seconds(work: Callable[[], Any], repeats: int = REPEATS) -> dict[str, float]:
    """Median wall and CPU seconds of ``work``: CPU time is the steadier figure on a shared machine."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"wall_median": round(statistics.median(wall), 3), "cpu_median": round(statistics.median(cpu), 3)}


def _validate(path: Path) -> int:
    validation = validate_source(read_source(path), EventKind.ATTEMPTS, TableMapping())
    if not validation.accepted:
        raise RuntimeError(f"the generated export should be valid: {validation.problems.head()}")
    return validation.rows


def run(scratch: Path) -> dict[str, Any]:
    logging.getLogger("events").setLevel(logging.WARNING)
    table = attempts_export(ROWS)
    csv_path, parquet_path = scratch / "attempts.csv", scratch / "attempts.parquet"
    pa_csv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    tokens = pd.Series("pm_" + pd.Series(np.random.default_rng(1).integers(10**15, 10**16, ROWS)).astype(str))
    short = "pm_1a2b3c4d5e"
    token = "pm_4111111111111111"
    scalar_calls = 100_000
    return {
        "rows": ROWS,
        "csv_megabytes": round(csv_path.stat().st_size / 1e6, 1),
        "read_and_validate_csv_seconds": _median_seconds(lambda: _validate(csv_path)),
        "read_and_validate_parquet_seconds": _median_seconds(lambda: _validate(parquet_path)),
        "card_scan_of_1m_16_digit_tokens_seconds": _median_seconds(lambda: card_number_mask(tokens)),
        "scalar_check_short_string_microseconds": round(
            timeit.timeit(lambda: contains_card_number(short), number=scalar_calls) / scalar_calls * 1e6, 3
        ),
        "scalar_check_pan_token_microseconds": round(
            timeit.timeit(lambda: contains_card_number(token), number=scalar_calls) / scalar_calls * 1e6, 3
        ),
        "repeats": REPEATS,
    }
