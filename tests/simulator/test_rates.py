"""A small world's headline rates stay in the ranges simulator.config documents; fraud is learnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from events.io import read_events, read_table
from events.schema import EventKind
from simulator import SimulationSummary, WorldConfig, simulate
from simulator.config import FraudConfig

World = tuple[Path, SimulationSummary]


@pytest.fixture(scope="module")
def frame(small_world: World) -> pd.DataFrame:
    out = small_world[0]
    attempts = read_events(out, EventKind.ATTEMPTS)
    outcomes = read_events(out, EventKind.OUTCOMES)[["attempt_id", "status", "decline_code"]]
    truth = read_table(out, "truth").to_pandas()
    return attempts.merge(outcomes, on="attempt_id").merge(truth, on="attempt_id")


def test_headline_rates_are_in_their_documented_ranges(small_world: World) -> None:
    summary = small_world[1]
    assert 0.004 <= summary.fraud_rate <= 0.02
    assert 0.04 <= summary.first_try_renewal_decline_rate <= 0.15
    assert 0.35 <= summary.retry_recovery_rate <= 0.85
    assert 0.4 <= summary.fraud_reported_share <= 0.9
    assert summary.fraud_reported_eventually_share >= summary.fraud_reported_share
    assert 0.0005 <= summary.error_rate <= 0.03
    assert summary.involuntary_churn > 0
    assert summary.voluntary_cancellations > 0
    by_scheme = summary.fraud_attempts_by_scheme
    assert all(by_scheme[s] > 0 for s in ("card_testing", "stolen_card", "account_takeover", "friendly"))


def test_generative_probabilities_are_calibrated(small_world: World) -> None:
    summary = small_world[1]
    assert summary.mean_p_fraud == pytest.approx(summary.fraud_rate, rel=0.25)
    assert summary.mean_p_fail == pytest.approx(summary.failure_rate, rel=0.05)


def test_truth_ranks_fraud_and_failure_well(frame: pd.DataFrame) -> None:
    assert roc_auc_score(frame["is_fraud"], frame["p_fraud"]) > 0.85
    failed = frame["status"] != "approved"
    assert roc_auc_score(failed, frame["p_fail"]) > 0.75


def test_fraud_signals_are_there_but_overlap(frame: pd.DataFrame) -> None:
    mismatch = frame["card_country"].notna() & (frame["card_country"] != frame["ip_country"])
    rate_mismatch = frame.loc[mismatch, "is_fraud"].mean()
    rate_match = frame.loc[~mismatch, "is_fraud"].mean()
    assert rate_mismatch > 3 * rate_match
    assert rate_mismatch < 0.5  # travellers, VPN users and expats overlap with fraud
    cards_per_device = frame.groupby("device_id")["payment_method_id"].transform("nunique")
    assert (
        frame.loc[cards_per_device >= 5, "is_fraud"].mean()
        > 5 * frame.loc[cards_per_device == 1, "is_fraud"].mean()
    )


def test_prepaid_cards_fail_more_at_month_end(frame: pd.DataFrame) -> None:
    renewals = frame[(frame["kind"] == "renewal") & (frame["card_funding"] == "prepaid")]
    day = renewals["occurred_at"].dt.day
    late = (renewals.loc[day >= 24, "status"] != "approved").mean()
    early = (renewals.loc[day <= 7, "status"] != "approved").mean()
    assert late > early


def test_retry_success_depends_on_the_decline_code(frame: pd.DataFrame) -> None:
    ordered = frame.sort_values(["invoice_id", "retry_number"])
    previous_code = ordered.groupby("invoice_id")["decline_code"].shift(1)
    retries = ordered[(ordered["kind"] == "retry") & previous_code.notna()].assign(code=previous_code)
    success = retries.assign(ok=retries["status"] == "approved").groupby("code")["ok"].mean()
    assert success["processing_error"] > success["insufficient_funds"]
    assert np.isfinite(success.to_numpy()).all()


def test_reseller_fraud_grows_with_the_cluster_size(tmp_path: Path) -> None:
    config = WorldConfig(accounts=2000, months=3, seed=11, fraud=FraudConfig(clusters_per_10k_year=2000))
    summary = simulate(config, tmp_path / "world")
    assert summary.fraud_attempts_by_scheme["reseller"] > 0
    accounts = read_table(tmp_path / "world", "accounts").to_pandas()
    attempts = read_events(tmp_path / "world", EventKind.ATTEMPTS, columns=["account_id", "device_id"])
    clusters = accounts[accounts["segment"] == "shared_cluster"].merge(
        attempts.drop_duplicates("account_id"), on="account_id"
    )
    size = clusters.groupby("device_id")["account_id"].transform("size")
    small = clusters.loc[size <= 3, "scenario_p_fraud"].mean()
    large = clusters.loc[size >= 8, "scenario_p_fraud"].mean()
    assert large > 5 * small
