"""The simulator's billing errors: documented rates, recorded in the truth, the catalogue beside the data, the
rest of the world untouched, and the billing checks measured on them (`riskgate billing check`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from billing.catalogue import CATALOGUE_FILE, read_catalogue
from events.io import read_table
from riskgate.cli import app
from simulator import SimulationSummary, simulate
from simulator.billing_errors import ERROR_COLUMNS
from tests.simulator.conftest import SMALL

World = tuple[Path, SimulationSummary]
#: Measured on the small world (4,000 subscribers, 6 months, seed 7): every error caught, no false alarm.
#: The bounds leave room for other seeds and sizes.
LEAST_CAUGHT = 0.9
MOST_FALSE_ALARMS = 0.001


def test_the_truth_marks_each_error_at_about_its_documented_rate(small_world: World) -> None:
    out, summary = small_world
    truth = read_table(out, "truth").to_pandas()
    attempts = read_table(out, "attempts", ["attempt_id", "kind", "retry_number"]).to_pandas()
    renewals = int(((attempts["kind"] == "renewal") & (attempts["retry_number"] == 0)).sum())
    counts = {column: int(truth[column].sum()) for column in ERROR_COLUMNS}
    assert counts == summary.billing_errors
    rates = SMALL.billing_errors
    assert (
        0.4 * rates.duplicate_rate * renewals
        < counts["billing_double_charge"]
        < 2 * rates.duplicate_rate * renewals
    )
    assert (
        0.3 * rates.early_renewal_rate * renewals
        < counts["billing_early_renewal"]
        < 3 * rates.early_renewal_rate * renewals
    )
    assert counts["billing_price_mismatch"] > 0


def test_the_catalogue_the_world_was_billed_from_is_beside_the_data(small_world: World) -> None:
    out, _ = small_world
    catalogue = read_catalogue(out / CATALOGUE_FILE)
    attempts = read_table(out, "attempts").to_pandas()
    truth = read_table(out, "truth", ["attempt_id", "billing_price_mismatch"]).to_pandas()
    signups = attempts.merge(truth, on="attempt_id")
    right = signups[(signups["kind"] == "signup") & ~signups["billing_price_mismatch"]]
    plans = zip(right["plan_tier"], right["plan_period"], right["currency"], strict=True)
    prices = [catalogue.price(tier, period, currency) for tier, period, currency in plans]
    assert prices == right["amount"].tolist()


def test_without_billing_errors_the_rest_of_the_world_is_the_same(small_world: World, tmp_path: Path) -> None:
    """The errors come from their own random stream: the world's own attempts are the same with or without
    them, but for the amounts of the invoices charged wrongly."""
    out, summary = small_world
    rates = SMALL.billing_errors.model_copy(
        update={"duplicate_rate": 0.0, "wrong_amount_rate": 0.0, "early_renewal_rate": 0.0}
    )
    clean = simulate(SMALL.model_copy(update={"billing_errors": rates}), tmp_path / "clean")
    assert clean.billing_errors == dict.fromkeys(ERROR_COLUMNS, 0)
    truth = read_table(out, "truth").to_pandas()
    ours = read_table(out, "attempts").to_pandas().merge(truth, on="attempt_id")
    own = ours[~ours["billing_double_charge"] & ~ours["billing_early_renewal"]].reset_index(drop=True)
    theirs = read_table(tmp_path / "clean", "attempts").to_pandas()
    assert len(ours) - len(own) == summary.attempts - clean.attempts
    assert len(own) == len(theirs)
    wrong = own["billing_price_mismatch"]
    assert 0 < wrong.sum() < 3 * SMALL.billing_errors.wrong_amount_rate * len(own)
    assert (own.loc[wrong, "amount"] != theirs.loc[wrong, "amount"]).all()
    columns = [c for c in theirs.columns if c not in ("attempt_id", "amount")]
    pd.testing.assert_frame_equal(own[columns], theirs[columns])
    pd.testing.assert_series_equal(own.loc[~wrong, "amount"], theirs.loc[~wrong, "amount"])
    other = read_table(tmp_path / "clean", "truth").to_pandas()
    assert other["p_fraud"].tolist() == own["p_fraud"].tolist()


def test_billing_check_measures_the_checks_against_the_truth(small_world: World, tmp_path: Path) -> None:
    out, _ = small_world
    report_file = tmp_path / "billing.json"
    result = CliRunner().invoke(app, ["billing", "check", "--data", str(out), "--out", str(report_file)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_file.read_text())
    assert report["against_truth"] is True
    assert report["catalogue"] == str(out / CATALOGUE_FILE)
    for name in ERROR_COLUMNS:
        figures = report["checks"][name]
        assert figures["errors"] > 0, name
        assert figures["caught"] + figures["missed"] == figures["errors"]
        assert figures["caught_share"] >= LEAST_CAUGHT, (name, figures)
        assert figures["false_alarm_share"] <= MOST_FALSE_ALARMS, (name, figures)
    assert "billing_double_charge:" in result.output


def test_billing_check_without_truth_or_catalogue_gives_plain_counts(
    small_world: World, tmp_path: Path
) -> None:
    out, _ = small_world
    data = tmp_path / "data"
    for table in ("attempts", "outcomes"):
        (data / table).mkdir(parents=True)
        for part in (out / table).iterdir():
            (data / table / part.name).write_bytes(part.read_bytes())
    result = CliRunner().invoke(app, ["billing", "check", "--data", str(data)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert report["against_truth"] is False
    assert report["catalogue"] is None
    prices = report["checks"]["billing_price_mismatch"]
    assert prices["checked"] == 0  # no catalogue: not checked
    assert prices["not_checked"] == report["attempts"]
    assert report["checks"]["billing_double_charge"]["flagged"] > 0
    assert report["checks"]["billing_double_charge"]["errors"] is None
    assert report["checks"]["billing_double_charge"]["caught_share"] is None


def test_billing_check_refuses_a_bad_catalogue_naming_its_line(small_world: World, tmp_path: Path) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("plan_tier,plan_period,currency,price\nbasic,monthly,EUR,free\n")
    args = ["billing", "check", "--data", str(small_world[0]), "--catalogue", str(bad)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"{bad}, line 2: price 'free' is not a number" in result.output
