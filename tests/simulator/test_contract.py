"""The small world conforms to the event contract and to the billing rules other engineers rely on."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pycountry
import pytest

from events.io import part_files, read_events, read_table
from events.schema import DECLINE_CODES, DeclineCode, EventKind, arrow_schema
from simulator import SimulationSummary, WorldConfig, simulate
from simulator.run import TABLES
from simulator.tables import TRUTH_SCHEMA

World = tuple[Path, SimulationSummary]
LONG_DIGIT_RUN = re.compile(r"\d{13,}")


@pytest.fixture(scope="module")
def attempts(small_world: World) -> pd.DataFrame:
    return read_events(small_world[0], EventKind.ATTEMPTS)


@pytest.fixture(scope="module")
def outcomes(small_world: World) -> pd.DataFrame:
    return read_events(small_world[0], EventKind.OUTCOMES)


@pytest.fixture(scope="module")
def history(attempts: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Attempts with their outcome, in invoice order."""
    joined = attempts.merge(outcomes, on="attempt_id", suffixes=("", "_outcome"), validate="one_to_one")
    return joined.sort_values(["invoice_id", "retry_number"]).reset_index(drop=True)


def test_every_table_has_the_contract_schema(small_world: World) -> None:
    out, _ = small_world
    for kind in EventKind:
        for part in part_files(out, kind.value):
            assert pq.read_schema(part).remove_metadata() == arrow_schema(kind)
    for part in part_files(out, "truth"):
        assert pq.read_schema(part).remove_metadata() == TRUTH_SCHEMA
    assert {path.name for path in out.iterdir()} >= {*TABLES, "summary.json", "world.yaml"}
    assert WorldConfig.from_yaml(out / "world.yaml").seed == 7


def test_sizes_match_the_summary(small_world: World, attempts: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    out, summary = small_world
    assert len(attempts) == summary.attempts == len(outcomes) == read_table(out, "truth").num_rows
    assert read_table(out, "fraud_reports").num_rows == summary.fraud_reports
    assert read_table(out, "accounts").num_rows == summary.accounts
    assert attempts["account_id"].nunique() <= summary.accounts
    assert summary.attempts > 5000


def test_every_attempt_has_exactly_one_outcome_seconds_later(
    history: pd.DataFrame, attempts: pd.DataFrame
) -> None:
    assert len(history) == len(attempts)
    delay = (history["occurred_at_outcome"] - history["occurred_at"]).dt.total_seconds()
    assert delay.between(1, 10).all()


def test_outcome_codes_follow_the_status(outcomes: pd.DataFrame) -> None:
    approved = outcomes["status"] == "approved"
    assert outcomes.loc[approved, "decline_code"].isna().all()
    assert outcomes.loc[~approved, "decline_code"].notna().all()
    errors = outcomes.loc[outcomes["status"] == "error", "decline_code"]
    assert len(errors) > 0
    assert {DECLINE_CODES[DeclineCode(code)].family.value for code in errors} == {"technical"}
    assert {"insufficient_funds", "expired_card", "do_not_honor"} <= set(outcomes["decline_code"].dropna())


def test_reports_reference_attempts_and_come_after_them(small_world: World, attempts: pd.DataFrame) -> None:
    reports = read_events(small_world[0], EventKind.FRAUD_REPORTS)
    assert len(reports) > 10
    joined = reports.merge(attempts, on="attempt_id", validate="one_to_one")
    assert len(joined) == len(reports)
    delay = (joined["reported_at"] - joined["occurred_at"]).dt.total_seconds() / 86400
    assert delay.min() >= 1.9
    assert delay.max() <= 131
    assert reports["report_id"].is_unique


def test_retries_follow_a_failed_try_of_the_same_invoice_within_the_window(history: pd.DataFrame) -> None:
    window = max(WorldConfig().dunning.retry_days) + 1
    previous = history.groupby("invoice_id").shift(1)
    retries = history["kind"] == "retry"
    assert retries.sum() > 100
    assert (history.loc[retries, "retry_number"] == previous.loc[retries, "retry_number"] + 1).all()
    assert (previous.loc[retries, "status"] != "approved").all()
    first = history.groupby("invoice_id")["occurred_at"].transform("min")
    since = (history["occurred_at"] - first).dt.total_seconds() / 86400
    assert (since[retries] <= window).all()
    assert (history.loc[~retries, "retry_number"] == 0).all()
    assert (history.loc[history["retry_number"] == 0, "kind"] != "retry").all()


def test_no_retry_of_a_method_after_a_hard_decline(history: pd.DataFrame) -> None:
    previous = history.groupby("invoice_id").shift(1)
    retries = history["kind"] == "retry"
    hard_codes = {code.value for code, rule in DECLINE_CODES.items() if rule.hard}
    after_hard = retries & previous["decline_code"].isin(hard_codes)
    same_method = history["payment_method_id"] == previous["payment_method_id"]
    assert after_hard.sum() > 0, "the world should show customers replacing a card after a hard decline"
    assert not (after_hard & same_method).any()


def test_no_attempt_after_an_invoice_is_paid(history: pd.DataFrame, small_world: World) -> None:
    """But for the billing system's double charges, which the truth marks (simulator.billing_errors)."""
    truth = read_table(small_world[0], "truth", ["attempt_id", "billing_double_charge"]).to_pandas()
    history = history.merge(truth, on="attempt_id").sort_values(["invoice_id", "retry_number", "occurred_at"])
    approved = (history["status"] == "approved").astype(int)
    paid_before = approved.groupby(history["invoice_id"]).cumsum() - approved
    assert ((paid_before == 0) | history["billing_double_charge"]).all()
    assert approved.sum() > 0


def test_ids_never_look_like_card_numbers(attempts: pd.DataFrame) -> None:
    for column in (
        "attempt_id",
        "account_id",
        "payment_method_id",
        "device_id",
        "invoice_id",
        "ip",
        "card_bin",
    ):
        values = attempts[column].dropna().astype(str)
        assert not values.str.contains(LONG_DIGIT_RUN).any(), column
    assert attempts["attempt_id"].str.match(r"^att_\d{4}_\d{7}$").all()
    assert attempts["account_id"].str.match(r"^acc_").all()


def test_field_formats(attempts: pd.DataFrame) -> None:
    for ip in attempts["ip"].sample(2000, random_state=1):
        assert isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    countries = (
        set(attempts["ip_country"])
        | set(attempts["billing_country"])
        | set(attempts["card_country"].dropna())
    )
    assert all(pycountry.countries.get(alpha_2=code) for code in countries)
    assert all(pycountry.currencies.get(alpha_3=code) for code in attempts["currency"].unique())
    assert ((attempts["amount"] * 100).round(6) % 1 == 0).all()
    assert (attempts["amount"] > 0).all()
    cards = attempts["method_type"] == "card"
    card_columns = ["card_bin", "card_funding", "card_country", "card_exp"]
    assert attempts.loc[cards, card_columns].notna().all().all()
    assert attempts.loc[~cards, card_columns].isna().all().all()
    assert (~cards).sum() > 0
    assert attempts.loc[cards, "card_bin"].str.match(r"^\d{6}(\d{2})?$").all()
    assert attempts.loc[cards, "card_exp"].str.match(r"^20\d\d-(0[1-9]|1[0-2])$").all()
    assert set(attempts["kind"]) == {"signup", "renewal", "retry", "upgrade", "one_off"}
    assert attempts["attempt_id"].is_unique
    assert attempts["occurred_at"].min() >= pd.Timestamp("2025-01-01", tz="UTC")
    assert attempts["occurred_at"].max() < pd.Timestamp("2025-07-01", tz="UTC")


def test_truth_is_consistent(small_world: World, attempts: pd.DataFrame) -> None:
    truth = read_table(small_world[0], "truth").to_pandas()
    assert (truth["attempt_id"] == attempts["attempt_id"]).all()
    assert truth["p_fraud"].between(0, 1).all()
    assert truth["p_fail"].between(0, 1).all()
    assert (truth["fraud_scheme"].notna() == truth["is_fraud"]).all()
    assert set(truth["fraud_scheme"].dropna()) <= {
        "card_testing",
        "stolen_card",
        "account_takeover",
        "reseller",
        "friendly",
    }


@pytest.mark.parametrize("start", [date(2025, 2, 1), date(2024, 12, 15)])
def test_a_one_month_world_stays_inside_its_period(tmp_path: Path, start: date) -> None:
    config = WorldConfig(accounts=3000, months=1, seed=5, start=start)
    simulate(config, tmp_path / "world")
    end = pd.Timestamp(start, tz="UTC") + pd.DateOffset(months=1)
    attempts = read_events(tmp_path / "world", EventKind.ATTEMPTS)
    outcomes = read_events(tmp_path / "world", EventKind.OUTCOMES)
    assert attempts["occurred_at"].min() >= pd.Timestamp(start, tz="UTC")
    assert attempts["occurred_at"].max() < end
    assert outcomes["occurred_at"].max() < end + pd.Timedelta(seconds=10)


def test_each_attempt_carries_its_accounts_known_start(small_world: World, attempts: pd.DataFrame) -> None:
    created = pd.to_datetime(attempts["account_created_at"], utc=True)
    occurred = pd.to_datetime(attempts["occurred_at"], utc=True)
    assert created.notna().all()
    assert (created <= occurred).all()
    assert (attempts.groupby("account_id")["account_created_at"].nunique() == 1).all()
    assert (created < occurred.min()).any()  # subscribers who joined before the export began
