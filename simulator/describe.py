"""Figures of a simulated world beyond ``summary.json``: the ground-truth ceiling, mixes and overlap.

``python -m simulator.describe data`` prints them as JSON (this is how the table in :mod:`simulator.config`
was measured). It reads whole tables into memory: meant for the default world, not the 10× one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from events.io import read_events, read_table
from events.schema import DeclineFamily, EventKind
from simulator.tables import TRUTH_TABLE
from simulator.truth import CAUSES


def _shares(values: pd.Series) -> dict[str, float]:
    return {str(k): round(float(v), 4) for k, v in values.value_counts(normalize=True).items()}


def _joined(data_dir: Path) -> pd.DataFrame:
    attempts = read_events(data_dir, EventKind.ATTEMPTS)
    outcomes = read_events(data_dir, EventKind.OUTCOMES, columns=["attempt_id", "status", "decline_code"])
    causes = [f"p_fail_{cause.value}" for cause in CAUSES]
    columns = ["attempt_id", "p_fraud", "p_fail", "is_fraud", *causes, "fragility"]
    truth = read_table(data_dir, TRUTH_TABLE, columns=columns)
    return attempts.merge(outcomes, on="attempt_id").merge(truth.to_pandas(), on="attempt_id")


def without_fragility(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The true failure probability with every customer's latent funds fragility at the population mean.

    What a model of observable data could know at most (an upper bound: it still knows each BIN's issuer
    quality, each card's hidden state and the gateway incidents exactly): the ceiling that matters for a model
    trained on what a billing system sees."""
    by_cause = frame[[f"p_fail_{cause.value}" for cause in CAUSES]].to_numpy(np.float64, copy=True)
    funds = CAUSES.index(DeclineFamily.FUNDS)
    p = np.clip(by_cause[:, funds], 1e-12, 1.0 - 1e-12)
    fragility = frame["fragility"].to_numpy(np.float64)
    shifted = np.log(p / (1.0 - p)) - fragility + fragility.mean()
    by_cause[:, funds] = 1.0 / (1.0 + np.exp(-shifted))
    result: npt.NDArray[np.float64] = 1.0 - np.prod(1.0 - by_cause, axis=1)
    return result


def _failure_ceilings(frame: pd.DataFrame, failed: pd.Series, last_days: int) -> dict[str, float]:
    """Failure ROC AUC of the truth and of the truth without the hidden fragility, over the whole world and
    over its last ``last_days`` days (the default training test window)."""
    observable = without_fragility(frame)
    recent = (frame["occurred_at"] >= frame["occurred_at"].max() - pd.Timedelta(days=last_days)).to_numpy()
    return {
        "failure_roc_auc_without_fragility": round(float(roc_auc_score(failed, observable)), 4),
        f"last_{last_days}_days_failure_roc_auc": round(
            float(roc_auc_score(failed[recent], frame.loc[recent, "p_fail"])), 4
        ),
        f"last_{last_days}_days_failure_roc_auc_without_fragility": round(
            float(roc_auc_score(failed[recent], observable[recent])), 4
        ),
    }


def _report_delays(data_dir: Path, attempts: pd.DataFrame) -> dict[str, Any]:
    reports = read_events(data_dir, EventKind.FRAUD_REPORTS)
    joined = reports.merge(attempts[["attempt_id", "occurred_at"]], on="attempt_id")
    days = (joined["reported_at"] - joined["occurred_at"]).dt.total_seconds() / 86400
    levels = (0.0, 0.1, 0.5, 0.9, 1.0)
    return {
        "report_delay_days": {f"q{round(100 * q)}": round(float(days.quantile(q)), 1) for q in levels},
        "report_types": {str(k): int(v) for k, v in reports["report_type"].value_counts().items()},
    }


def describe(data_dir: Path, last_days: int = 28) -> dict[str, Any]:
    """The world's ceiling (how well the generative truth ranks outcomes), mixes and fraud overlap;
    ``last_days``: the recent window also reported (28: training's default test window)."""
    frame = _joined(data_dir)
    failed = frame["status"] != "approved"
    renewals = frame["kind"] == "renewal"
    mismatch = frame["card_country"].notna() & (frame["card_country"] != frame["ip_country"])
    return {
        "ceiling": {
            "fraud_roc_auc": round(float(roc_auc_score(frame["is_fraud"], frame["p_fraud"])), 4),
            "fraud_average_precision": round(
                float(average_precision_score(frame["is_fraud"], frame["p_fraud"])), 4
            ),
            "failure_roc_auc": round(float(roc_auc_score(failed, frame["p_fail"])), 4),
            "first_try_renewal_failure_roc_auc": round(
                float(roc_auc_score(failed[renewals], frame.loc[renewals, "p_fail"])), 4
            ),
            **_failure_ceilings(frame, failed, last_days),
        },
        "kinds": _shares(frame["kind"]),
        "statuses": _shares(frame["status"]),
        "decline_codes": {str(k): int(v) for k, v in frame["decline_code"].value_counts().items()},
        "method_types": _shares(frame["method_type"]),
        "card_fundings": _shares(frame["card_funding"].dropna()),
        "overlap": {
            "card_country_ne_ip_country_share": round(float(mismatch.mean()), 4),
            "fraud_rate_with_mismatch": round(float(frame.loc[mismatch, "is_fraud"].mean()), 4),
            "fraud_rate_without_mismatch": round(float(frame.loc[~mismatch, "is_fraud"].mean()), 4),
        },
        **_report_delays(data_dir, frame),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator.describe", description=__doc__)
    parser.add_argument("data_dir", type=Path, nargs="?", default=Path("data"), help="a simulated world")
    parser.add_argument(
        "--last-days", type=int, default=28, help="also the ceiling over the world's last N days (default 28)"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(describe(args.data_dir, args.last_days), indent=2) + "\n")


if __name__ == "__main__":
    main()
