"""The card-not-present merchant's export: its files as a provider hands them over, and its mechanisms."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.cardnumbers import card_number_mask, contains_card_number
from simulator.merchant import (
    CHARGEBACKS_FILE,
    FILES,
    HOME_COUNTRIES,
    LOCAL_FORMAT,
    RESULTS_FILE,
    SUMMARY_FILE,
    TRANSACTIONS_FILE,
    TRUTH_FILE,
    Mechanisms,
    MerchantConfig,
    MerchantConfigError,
    MerchantSummary,
    generate,
    in_repeated_hour,
    local_text,
    main,
    out_of_repeated_hours,
)
from simulator.run import OutputExistsError

DEFAULT = MerchantConfig()
Export = tuple[Path, MerchantSummary]
COLUMNS = {
    TRANSACTIONS_FILE: [
        "TX_ID",
        "TX_DATETIME",
        "CUSTOMER_ID",
        "CUSTOMER_SINCE",
        "TERMINAL_ID",
        "CARD_TOKEN",
        "CARD_BIN",
        "TX_AMOUNT",
        "TX_TYPE",
        "CHANNEL",
        "IP_COUNTRY",
    ],
    RESULTS_FILE: ["TX_ID", "RESPONDED_AT", "RESULT", "REASON_CODE"],
    CHARGEBACKS_FILE: ["CASE_ID", "TX_ID", "RECEIVED_AT", "TYPE"],
    TRUTH_FILE: ["TX_ID", "IS_FRAUD", "SCENARIO"],
}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    out = tmp_path_factory.mktemp("merchant") / "export"
    return out, generate(DEFAULT, out)


def raw(out: Path, name: str) -> pd.DataFrame:
    """A file as text, exactly as written (empty fields stay empty strings)."""
    return pd.read_csv(out / name, dtype=str, keep_default_na=False)


def utc(local: pd.Series, zone: str = DEFAULT.zone) -> pd.Series:
    """Local wall times read the way riskgate's importer reads them (a repeated or skipped time is NaT)."""
    naive = pd.to_datetime(local, format=LOCAL_FORMAT)
    return naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


@pytest.fixture(scope="module")
def joined(export: Export) -> pd.DataFrame:
    """Transactions with their result and truth, amounts as integers and times as UTC instants."""
    out = export[0]
    frame = (
        raw(out, TRANSACTIONS_FILE)
        .merge(raw(out, RESULTS_FILE), on="TX_ID", validate="1:1")
        .merge(raw(out, TRUTH_FILE), on="TX_ID", validate="1:1")
    )
    return frame.assign(
        amount=frame["TX_AMOUNT"].astype(np.int64),
        fraud=frame["IS_FRAUD"] == "1",
        at=utc(frame["TX_DATETIME"]),
        responded=utc(frame["RESPONDED_AT"]),
    )


# --- the files ------------------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_another_seed_other_bytes(export: Export, tmp_path: Path) -> None:
    generate(MerchantConfig(), tmp_path / "again")
    for name in FILES:
        assert (export[0] / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    generate(MerchantConfig(seed=DEFAULT.seed + 1), tmp_path / "other")
    for name in (TRANSACTIONS_FILE, RESULTS_FILE, CHARGEBACKS_FILE, TRUTH_FILE):
        assert (export[0] / name).read_bytes() != (tmp_path / "other" / name).read_bytes(), name


def test_files_have_the_providers_columns_and_shapes(export: Export) -> None:
    out, summary = export
    for name, columns in COLUMNS.items():
        assert list(raw(out, name).columns) == columns, name
    tx, results, truth = raw(out, TRANSACTIONS_FILE), raw(out, RESULTS_FILE), raw(out, TRUTH_FILE)
    assert len(tx) == len(results) == len(truth) == summary.transactions
    assert 50_000 <= summary.transactions <= 100_000
    assert (results["TX_ID"] == tx["TX_ID"]).all()
    assert (truth["TX_ID"] == tx["TX_ID"]).all()
    patterns = {
        "TX_ID": r"T\d{9}",
        "TX_DATETIME": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
        "CUSTOMER_ID": r"C\d{6}",
        "CUSTOMER_SINCE": r"\d{4}-\d{2}-\d{2}",
        "TERMINAL_ID": r"TRM\d{4}",
        "CARD_TOKEN": r"ctk_[a-z]{16}",
        "CARD_BIN": r"(4\d|5[1-5]|2[2-7])\d{4}",
        "TX_AMOUNT": r"\d+",
        "TX_TYPE": r"PURCHASE|AUTH_CHECK",
        "CHANNEL": r"web|app|moto",
        "IP_COUNTRY": r"([A-Z]{2})?",
    }
    for column, pattern in patterns.items():
        assert tx[column].str.fullmatch(pattern).all(), column
    assert tx["TX_ID"].is_unique
    countries = tx.loc[tx["IP_COUNTRY"] != "", "IP_COUNTRY"].unique()
    assert all(pycountry.countries.get(alpha_2=code) is not None for code in countries)
    assert (tx.loc[tx["CHANNEL"] == "moto", "IP_COUNTRY"] == "").all()
    assert 0 < (tx["IP_COUNTRY"] == "").mean() < 0.3
    assert set(results["RESULT"]) == {"OK", "KO", "ERR"}
    assert ((results["REASON_CODE"] == "") == (results["RESULT"] == "OK")).all()
    assert set(results["REASON_CODE"]) - {""} <= {"51", "05", "54", "43", "91", "96", "14"}


def test_transactions_are_in_time_order(joined: pd.DataFrame) -> None:
    assert joined["at"].is_monotonic_increasing
    assert joined["TX_ID"].is_monotonic_increasing


def test_customers_have_one_to_three_cards_and_a_token_has_one_bin(joined: pd.DataFrame) -> None:
    legit_customers = joined[joined["SCENARIO"] != "card_testing"]
    cards = legit_customers.groupby("CUSTOMER_ID")["CARD_TOKEN"].nunique()
    assert cards.min() >= 1
    assert cards.max() <= 3
    assert (cards >= 2).any()
    assert (joined.groupby("CARD_TOKEN")["CARD_BIN"].nunique() == 1).all()
    assert (joined.groupby("CUSTOMER_ID")["CUSTOMER_SINCE"].nunique() == 1).all()


def test_cards_added_during_the_export_are_checked_before_use(joined: pd.DataFrame) -> None:
    """Every card added during the export starts with a €0 check: only a customer's one card from before the
    export may be seen first in a purchase, and never for an account opened during the export."""
    first_rows = joined.drop_duplicates("CARD_TOKEN")
    unchecked = first_rows[first_rows["TX_TYPE"] == "PURCHASE"]
    assert unchecked["CUSTOMER_ID"].is_unique
    opened_during = unchecked["CUSTOMER_SINCE"] >= DEFAULT.start.isoformat()
    assert not opened_during.any()
    checked = first_rows[first_rows["TX_TYPE"] == "AUTH_CHECK"]
    assert (checked["CUSTOMER_SINCE"] >= DEFAULT.start.isoformat()).sum() > 100


def test_customer_since_is_often_before_the_export(joined: pd.DataFrame) -> None:
    since = pd.to_datetime(joined.drop_duplicates("CUSTOMER_ID")["CUSTOMER_SINCE"])
    before = since < pd.Timestamp(DEFAULT.start)
    assert 0.5 < before.mean() < 1.0
    first_seen = joined.groupby("CUSTOMER_ID")["TX_DATETIME"].min().str.slice(0, 10)
    customer_since = joined.groupby("CUSTOMER_ID")["CUSTOMER_SINCE"].first()
    assert (customer_since <= first_seen).all()


def test_no_card_number_anywhere(export: Export) -> None:
    out = export[0]
    for name in COLUMNS:
        frame = raw(out, name)
        for column in frame.columns:
            assert not card_number_mask(frame[column]).any(), (name, column)
    assert not contains_card_number((out / SUMMARY_FILE).read_text())


# --- time -----------------------------------------------------------------------------------------------


def test_local_times_without_offsets_cross_the_dst_change(joined: pd.DataFrame) -> None:
    """Every local time reads back to one instant in the zone (none is repeated or skipped), the export
    holds times on both sides of the autumn change, and responses follow their requests by seconds of real
    time, also around the change."""
    assert joined["at"].notna().all()
    assert joined["responded"].notna().all()
    offset = joined["at"].dt.tz_convert(DEFAULT.zone).map(lambda t: t.utcoffset().total_seconds() / 3600)
    assert set(offset) == {1.0, 2.0}
    change = pd.Timestamp("2025-10-26 01:00", tz="UTC")
    assert (offset[joined["at"] < change] == 2.0).all()
    assert (offset[joined["at"] >= change] == 1.0).all()
    delay = (joined["responded"] - joined["at"]).dt.total_seconds()
    assert delay.between(1, 40).all()
    around = (joined["at"] - change).abs() < pd.Timedelta(hours=6)
    assert around.sum() > 0


def test_spring_change_leaves_the_skipped_hour_empty(tmp_path: Path) -> None:
    config = MerchantConfig(customers=600, days=20, start=date(2025, 3, 20), seed=5)
    generate(config, tmp_path / "spring")
    tx = raw(tmp_path / "spring", TRANSACTIONS_FILE)
    at = utc(tx["TX_DATETIME"])
    assert at.notna().all()
    assert not tx["TX_DATETIME"].str.startswith("2025-03-30 02:").any()
    offset = at.dt.tz_convert(config.zone).map(lambda t: t.utcoffset().total_seconds() / 3600)
    assert set(offset) == {1.0, 2.0}


def test_repeated_hour_is_avoided_by_default_and_kept_on_request(tmp_path: Path) -> None:
    around_change = {"customers": 3000, "days": 6, "start": date(2025, 10, 23), "seed": 2}
    kept = MerchantConfig(**around_change, avoid_ambiguous_times=False)  # type: ignore[arg-type]
    generate(kept, tmp_path / "kept")
    summary = generate(MerchantConfig(**around_change), tmp_path / "avoided")  # type: ignore[arg-type]
    for name, column in (
        (TRANSACTIONS_FILE, "TX_DATETIME"),
        (RESULTS_FILE, "RESPONDED_AT"),
        (CHARGEBACKS_FILE, "RECEIVED_AT"),
    ):
        assert utc(raw(tmp_path / "avoided", name)[column]).notna().all(), name
    repeated = utc(raw(tmp_path / "kept", TRANSACTIONS_FILE)["TX_DATETIME"]).isna()
    assert repeated.sum() > 0
    assert summary.times_moved_out_of_repeated_hours >= repeated.sum()
    repeated_times = raw(tmp_path / "kept", TRANSACTIONS_FILE).loc[repeated, "TX_DATETIME"]
    assert repeated_times.str.startswith("2025-10-26 02:").all()


#: Six hours of UTC around each zone's autumn change in 2025 (Lord Howe's clocks go back half an hour).
CHANGES = {
    "Europe/Paris": np.datetime64("2025-10-25T22:00:00"),
    "America/New_York": np.datetime64("2025-11-02T03:00:00"),
    "Australia/Lord_Howe": np.datetime64("2025-04-05T12:00:00"),
}
ZONES = (*CHANGES, "UTC")
SIX_HOURS = np.timedelta64(6 * 3600, "s")


def test_each_change_window_holds_a_repeated_hour() -> None:
    for zone, begin in CHANGES.items():
        minutes = begin + np.arange(0, 6 * 3600, 60).astype("timedelta64[s]")
        assert in_repeated_hour(minutes, zone).any(), zone


@settings(max_examples=80, deadline=None)
@given(
    seconds=st.lists(st.integers(1_577_836_800, 1_893_456_000), min_size=1, max_size=50),
    zone=st.sampled_from(ZONES),
    near_change=st.booleans(),
    margin_seconds=st.sampled_from([0, 60]),
)
def test_moving_out_of_repeated_hours(
    seconds: list[int], zone: str, near_change: bool, margin_seconds: int
) -> None:
    """Moved instants are unambiguous (as is the instant ``margin`` later), never earlier, at most a few
    hours later; other instants stay put; and every written local time reads back to its instant."""
    instants = np.array(seconds, dtype="datetime64[s]")
    if near_change and zone in CHANGES:  # fold the instants into the hours around a change
        instants = CHANGES[zone] + (instants - instants.min()) % SIX_HOURS
    margin = np.timedelta64(margin_seconds, "s")
    moved, count = out_of_repeated_hours(instants, zone, margin)
    ambiguous = in_repeated_hour(instants, zone) | in_repeated_hour(instants + margin, zone)
    assert count == int(ambiguous.sum())
    assert not in_repeated_hour(moved, zone).any()
    assert not in_repeated_hour(moved + margin, zone).any()
    shift = (moved - instants).astype(np.int64)
    assert (shift[~ambiguous] == 0).all()
    assert ((shift[ambiguous] > 0) & (shift[ambiguous] <= 4 * 3600)).all()
    read_back = utc(pd.Series(local_text(moved, zone)), zone).dt.tz_localize(None)
    assert (read_back.to_numpy().astype("datetime64[s]") == moved).all()


# --- results, reports and fraud -------------------------------------------------------------------------


def test_auth_checks_are_zero_euro_requests_with_results(joined: pd.DataFrame) -> None:
    checks = joined[joined["TX_TYPE"] == "AUTH_CHECK"]
    assert len(checks) > 500
    assert (checks["amount"] == 0).all()
    assert (joined.loc[joined["TX_TYPE"] == "PURCHASE", "amount"] > 0).all()
    assert set(checks["RESULT"]) >= {"OK", "KO"}
    assert "51" not in set(checks["REASON_CODE"])  # a €0 check never lacks funds


def test_headline_rates_are_in_range(export: Export, joined: pd.DataFrame) -> None:
    summary = export[1]
    assert 0.005 <= summary.fraud_rate <= 0.012
    assert 0.05 <= summary.decline_rate <= 0.10
    assert 0.0005 <= summary.error_rate <= 0.01
    assert 0.3 <= summary.fraud_reported_share < summary.fraud_reported_eventually_share < 0.95
    assert summary.fraud_transactions == int(joined["fraud"].sum())
    assert summary.decline_rate == pytest.approx((joined["RESULT"] == "KO").mean(), abs=1e-6)
    written = json.loads((export[0] / SUMMARY_FILE).read_text())
    assert written == json.loads(json.dumps(asdict(summary)))


def test_chargebacks_follow_their_transactions(export: Export, joined: pd.DataFrame) -> None:
    cases = raw(export[0], CHARGEBACKS_FILE)
    assert cases["CASE_ID"].is_unique
    assert cases["TX_ID"].is_unique
    assert set(cases["TYPE"]) == {"CB", "TC40"}
    received = utc(cases["RECEIVED_AT"])
    assert received.notna().all()
    assert received.is_monotonic_increasing
    end = pd.Timestamp(DEFAULT.start, tz=DEFAULT.zone) + pd.Timedelta(days=DEFAULT.days)
    assert (received < end).all()
    at = cases[["TX_ID"]].merge(joined[["TX_ID", "at", "amount", "RESULT"]], on="TX_ID", validate="1:1")
    days = (received - at["at"]).dt.total_seconds() / 86400
    assert (days >= 1).all()
    assert (days <= 121).all()
    assert (days <= 30).mean() >= 0.7
    chargebacks = at[cases["TYPE"] == "CB"]
    assert (chargebacks["RESULT"] == "OK").all()
    assert (chargebacks["amount"] > 0).all()


def test_report_delays_have_a_tail_beyond_ninety_days(tmp_path: Path) -> None:
    summary = generate(MerchantConfig(customers=800, days=240, seed=3), tmp_path / "long")
    assert summary.report_delay_days["q50"] < 30
    assert summary.report_delay_days["max"] > 90


def test_every_case_is_fraud_and_not_every_fraud_is_reported(export: Export, joined: pd.DataFrame) -> None:
    cases = raw(export[0], CHARGEBACKS_FILE)
    truth = joined.set_index("TX_ID")["fraud"]
    assert truth[cases["TX_ID"]].all()
    assert len(cases) < truth.sum()
    assert set(joined.loc[joined["fraud"], "TX_ID"]) - set(cases["TX_ID"])


def test_every_fraud_scenario_is_present(export: Export, joined: pd.DataFrame) -> None:
    by_scenario = joined.loc[joined["fraud"], "SCENARIO"].value_counts()
    for scenario in ("compromised_terminal", "compromised_card", "card_testing", "large_amount"):
        assert by_scenario.get(scenario, 0) >= 20, scenario
        assert export[1].fraud_by_scenario[scenario] == by_scenario[scenario]
    assert (joined.loc[~joined["fraud"], "SCENARIO"] == "").all()


def test_compromised_terminals_concentrate_fraud_in_time(joined: pd.DataFrame) -> None:
    hit = joined[joined["SCENARIO"] == "compromised_terminal"]
    windows = hit.groupby("TERMINAL_ID")["at"].agg(["min", "max"])
    assert (windows["max"] - windows["min"] <= pd.Timedelta(days=28 * 2)).all()
    inside = joined.merge(windows, left_on="TERMINAL_ID", right_index=True)
    inside = inside[inside["at"].between(inside["min"], inside["max"]) & (inside["TX_TYPE"] == "PURCHASE")]
    assert inside["fraud"].mean() > 10 * joined["fraud"].mean()


def test_compromised_cards_spend_several_times_the_usual(joined: pd.DataFrame) -> None:
    purchases = joined[joined["TX_TYPE"] == "PURCHASE"]
    usual = purchases[~purchases["fraud"]].groupby("CUSTOMER_ID")["amount"].median().rename("usual")
    stolen = purchases[purchases["SCENARIO"] == "compromised_card"].join(usual, on="CUSTOMER_ID")
    assert (stolen["amount"] / stolen["usual"]).median() > 2.5
    legit = purchases[~purchases["fraud"]].join(usual, on="CUSTOMER_ID")
    assert (legit["amount"] / legit["usual"]).median() == pytest.approx(1.0, abs=0.1)


def test_card_testing_is_bursts_of_small_checks_on_fresh_cards_then_a_large_purchase(
    joined: pd.DataFrame,
) -> None:
    testing = joined[joined["SCENARIO"] == "card_testing"]
    assert set(testing["IP_COUNTRY"]).isdisjoint(HOME_COUNTRIES)
    assert (testing["IP_COUNTRY"] != "").all()
    checks = testing[testing["TX_TYPE"] == "AUTH_CHECK"]
    small = testing[(testing["TX_TYPE"] == "PURCHASE") & (testing["amount"] <= 200)]
    large = testing[testing["amount"] >= 15_000]
    assert len(checks) > len(large) > 0
    assert len(small) > 0
    assert len(checks) + len(small) + len(large) == len(testing)
    assert (pd.to_datetime(testing["CUSTOMER_SINCE"]) >= testing["at"].dt.tz_localize(None).dt.normalize()
            - pd.Timedelta(days=1)).all()  # fmt: skip
    first_use = joined.groupby("CARD_TOKEN")["at"].min()
    assert (checks["at"].to_numpy() == first_use[checks["CARD_TOKEN"]].to_numpy()).mean() > 0.9
    per_hour = checks.groupby([checks["IP_COUNTRY"], checks["at"].dt.floor("h")])["CARD_TOKEN"].nunique()
    assert per_hour.max() >= 4
    assert (testing["RESULT"] != "OK").mean() > 3 * (joined["RESULT"] != "OK").mean()


def test_large_amount_fraud_is_large(joined: pd.DataFrame) -> None:
    large = joined[joined["SCENARIO"] == "large_amount"]
    assert (large["amount"] >= 30_000).all()


def test_declines_follow_their_causes(joined: pd.DataFrame) -> None:
    purchases = joined[joined["TX_TYPE"] == "PURCHASE"]
    funds = purchases["REASON_CODE"] == "51"
    local = pd.to_datetime(purchases["TX_DATETIME"])
    month_end = local.dt.day > local.dt.days_in_month - 5
    assert funds[month_end].mean() > 1.5 * funds[~month_end].mean()
    euros = purchases["amount"] / 100
    assert funds[euros >= 100].mean() > 1.5 * funds[euros < 30].mean()
    caught = joined["REASON_CODE"] == "43"
    assert joined.loc[caught, "fraud"].all()
    assert caught.sum() > 0
    unavailable = joined[joined["REASON_CODE"] == "91"]
    clustered = unavailable.groupby("CARD_BIN")["at"].transform(lambda t: t.diff().abs().dt.total_seconds())
    assert (clustered.dropna() < 6 * 3600).mean() > 0.5


# --- configuration, overwriting and the command line -------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MerchantConfig(zone="Mars/Olympus_Mons"), "Mars/Olympus_Mons"),
        (lambda: MerchantConfig(customers=0), "customers"),
        (lambda: MerchantConfig(days=0), "days"),
        (lambda: Mechanisms(card_fraud_share=1.5), "card_fraud_share"),
        (lambda: Mechanisms(report_prob_by_scenario=(("phishing", 0.5),)), "phishing"),
        (lambda: Mechanisms(testing_cards=(5, 2)), "testing_cards"),
        (lambda: Mechanisms(fraudster_purchases=-1.0), "fraudster_purchases"),
    ],
)
def test_invalid_configuration_names_the_value(make: object, message: str) -> None:
    with pytest.raises(MerchantConfigError, match=message):
        make()  # type: ignore[operator]


def test_refuses_to_overwrite_an_export_unless_asked(tmp_path: Path) -> None:
    small = MerchantConfig(customers=100, days=10)
    generate(small, tmp_path / "out")
    (tmp_path / "out" / "mapping.yaml").write_text("the integrator's file")
    with pytest.raises(OutputExistsError, match="--force"):
        generate(small, tmp_path / "out")
    generate(small, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "mapping.yaml").read_text() == "the integrator's file"


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export"
    main(["--out", str(out), "--customers", "150", "--days", "15", "--seed", "4"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["customers"] == 150
    assert printed["seed"] == 4
    assert all((out / name).exists() for name in FILES)
    with pytest.raises(SystemExit) as refused:
        main(["--out", str(out), "--customers", "150", "--days", "15"])
    assert refused.value.code == 2
    assert "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "other"), "--zone", "Nowhere/City"])
    assert "Nowhere/City" in capsys.readouterr().err


def test_command_line_keeps_ambiguous_times_on_request(tmp_path: Path) -> None:
    around_change = ["--customers", "3000", "--days", "6", "--start", "2025-10-23", "--seed", "2"]
    main(["--out", str(tmp_path / "kept"), *around_change, "--keep-ambiguous-times"])
    main(["--out", str(tmp_path / "avoided"), *around_change])
    for name, expected in (("kept", True), ("avoided", False)):
        times = raw(tmp_path / name, TRANSACTIONS_FILE)["TX_DATETIME"]
        assert utc(times).isna().any() == expected, name
