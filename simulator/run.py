"""Simulate a whole world block by block and write its tables under an output folder."""

from __future__ import annotations

import json
import logging
import resource
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Final

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from billing.catalogue import CATALOGUE_FILE, write_catalogue
from core.errors import EXIT_FAILURE, RiskgateError
from core.progress import NO_PROGRESS, Progress
from events.io import write_part
from events.schema import EventKind
from simulator.billing_errors import ERROR_COLUMNS, add_billing_errors, catalogue_prices
from simulator.catalog import build_bin_table
from simulator.config import WorldConfig
from simulator.engine import BlockSimulator, World
from simulator.state import SCHEMES, SEGMENT_NAMES
from simulator.tables import ACCOUNTS_TABLE, METHODS_TABLE, TRUTH_TABLE, block_tables
from simulator.truth import build_incidents

logger = logging.getLogger(__name__)

#: Everything the simulator writes under its output folder.
TABLES: Final = (*(kind.value for kind in EventKind), TRUTH_TABLE, ACCOUNTS_TABLE, METHODS_TABLE)
SUMMARY_FILE: Final = "summary.json"
CONFIG_FILE: Final = "world.yaml"


class OutputExistsError(RiskgateError, FileExistsError):
    """The output folder already holds data and overwriting was not asked for."""

    exit_code = EXIT_FAILURE  # riskgate simulate exits 1 on it, as on an invalid option value


class SimulationSummary(BaseModel):
    """Headline figures of a simulated world (also written to ``summary.json``)."""

    model_config = ConfigDict(frozen=True)

    seed: int
    months: int
    subscribers: int = Field(description="Legitimate subscribers asked for (config.accounts).")
    accounts: int = Field(description="Accounts with data, including those fraud scenarios created.")
    accounts_by_segment: dict[str, int]
    attempts: int
    outcomes: int
    fraud_reports: int = Field(description="Reports written (arrived before the end of the world).")
    fraud_attempts: int
    fraud_rate: float = Field(description="Share of attempts that are fraud.")
    fraud_attempts_by_scheme: dict[str, int]
    fraud_reported_share: float = Field(description="Share of fraud attempts with a report written.")
    fraud_reported_eventually_share: float = Field(
        description="Share of fraud attempts that will ever be reported (including after the end)."
    )
    mean_p_fraud: float = Field(description="Mean generative fraud probability (≈ fraud_rate).")
    failure_rate: float = Field(description="Share of attempts declined or errored.")
    error_rate: float = Field(description="Share of attempts with a technical error.")
    mean_p_fail: float = Field(description="Mean generative failure probability (≈ failure_rate).")
    first_try_renewal_decline_rate: float
    retry_recovery_rate: float = Field(
        description="Share of renewal invoices declined at the first try that a retry later recovered."
    )
    retries: int
    billing_errors: dict[str, int] = Field(
        description="Attempts with each billing error (simulator.billing_errors; truth table columns)."
    )
    involuntary_churn: int
    voluntary_cancellations: int
    generation_seconds: float
    peak_rss_mb: float = Field(description="Peak resident memory of the generating process.")


def _prepare(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty folder unless asked; then remove only what the simulator writes."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"output {out_dir} exists and is not a folder; choose another --out")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputExistsError(
                f"output folder {out_dir} is not empty; refusing to overwrite it. "
                "Choose an empty --out, or pass --force to replace the simulator's tables there."
            )
        for name in TABLES:
            shutil.rmtree(out_dir / name, ignore_errors=True)
        for name in (SUMMARY_FILE, CONFIG_FILE, CATALOGUE_FILE):
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def build_world(config: WorldConfig) -> World:
    """What every block shares (deterministic in the seed)."""
    start = np.datetime64(config.start, "s")
    end_month = np.datetime64(config.start, "M") + np.timedelta64(config.months, "M")
    end = end_month.astype("datetime64[D]").astype("datetime64[s]") + (start - start.astype("datetime64[M]"))
    return World(
        config,
        start,
        end,
        build_bin_table(config.seed, config.payment.bins_per_country_funding, config.payment.issuer_logit_sd),
        build_incidents(config.incidents, start, end, config.seed),
    )


def block_sizes(config: WorldConfig) -> list[int]:
    """Subscribers per block: full blocks of ``chunk_accounts`` and a remainder."""
    full, rest = divmod(config.accounts, config.chunk_accounts)
    return [config.chunk_accounts] * full + ([rest] if rest else [])


def simulate(
    config: WorldConfig, out_dir: Path, *, overwrite: bool = False, progress: Progress = NO_PROGRESS
) -> SimulationSummary:
    """Simulate the world of ``config`` into ``out_dir``; refuses a non-empty folder unless ``overwrite``.
    ``progress`` hears one stage per step and one unit per block."""
    started = time.perf_counter()
    _prepare(out_dir, overwrite)
    progress.stage("prepare the world")
    world = build_world(config)
    totals: Counter[str] = Counter()
    sizes = block_sizes(config)
    progress.stage("simulate blocks of subscribers", len(sizes))
    for block, subscribers in enumerate(sizes):
        simulator = BlockSimulator(world, block, subscribers)
        tables = block_tables(simulator, add_billing_errors(simulator, simulator.run()), world.end)
        for name, table in (
            (EventKind.ATTEMPTS.value, tables.attempts),
            (EventKind.OUTCOMES.value, tables.outcomes),
            (EventKind.FRAUD_REPORTS.value, tables.fraud_reports),
            (TRUTH_TABLE, tables.truth),
            (ACCOUNTS_TABLE, tables.accounts),
            (METHODS_TABLE, tables.payment_methods),
        ):
            write_part(out_dir, name, block, table)
        totals.update(tables.counts)
        logger.info(
            "block %d/%d: %d subscribers, %d attempts",
            block + 1,
            len(sizes),
            subscribers,
            tables.counts["attempts"],
        )
        progress.advance()
    summary = _summary(config, totals, time.perf_counter() - started)
    (out_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n")
    write_catalogue(out_dir / CATALOGUE_FILE, catalogue_prices(config))
    (out_dir / CONFIG_FILE).write_text(yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False))
    logger.info(
        "simulated %d accounts, %d attempts in %.1f s: fraud %.2f%%, first-try renewal declines %.1f%%, "
        "retry recovery %.1f%%",
        summary.accounts, summary.attempts, summary.generation_seconds, 100 * summary.fraud_rate,
        100 * summary.first_try_renewal_decline_rate, 100 * summary.retry_recovery_rate,
    )  # fmt: skip
    return summary


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _summary(config: WorldConfig, totals: Counter[str], seconds: float) -> SimulationSummary:
    attempts = totals["attempts"]
    fraud = totals["fraud_attempts"]
    return SimulationSummary(
        seed=config.seed,
        months=config.months,
        subscribers=config.accounts,
        accounts=totals["accounts"],
        accounts_by_segment={s: totals[f"accounts_{s}"] for s in SEGMENT_NAMES},
        attempts=attempts,
        outcomes=attempts,
        fraud_reports=totals["fraud_reports"],
        fraud_attempts=fraud,
        fraud_rate=_ratio(fraud, attempts),
        fraud_attempts_by_scheme={s: totals[f"fraud_attempts_{s}"] for s in SCHEMES},
        fraud_reported_share=_ratio(totals["fraud_reports"], fraud),
        fraud_reported_eventually_share=_ratio(totals["fraud_reported_eventually"], fraud),
        mean_p_fraud=_ratio(totals["sum_p_fraud"], attempts),
        failure_rate=_ratio(totals["failed"], attempts),
        error_rate=_ratio(totals["errors"], attempts),
        mean_p_fail=_ratio(totals["sum_p_fail"], attempts),
        first_try_renewal_decline_rate=_ratio(
            totals["first_try_renewal_declines"], totals["first_try_renewals"]
        ),
        retry_recovery_rate=_ratio(totals["recovered_by_retry"], totals["first_try_renewal_declines"]),
        retries=totals["retries"],
        billing_errors={column: totals[column] for column in ERROR_COLUMNS},
        involuntary_churn=totals["involuntary_churn"],
        voluntary_cancellations=totals["voluntary_cancellations"],
        generation_seconds=round(seconds, 2),
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
