from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator import SimulationSummary
from simulator.describe import main

World = tuple[Path, SimulationSummary]


def test_describe_prints_the_ceiling_and_mixes(
    small_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    main([str(small_world[0])])
    figures = json.loads(capsys.readouterr().out)
    assert 0.85 < figures["ceiling"]["fraud_roc_auc"] <= 1
    assert (
        0.5 < figures["ceiling"]["first_try_renewal_failure_roc_auc"] < figures["ceiling"]["failure_roc_auc"]
    )
    ceiling = figures["ceiling"]
    # Without the customers' hidden funds fragility even the truth ranks failures worse.
    assert 0.5 < ceiling["failure_roc_auc_without_fragility"] < ceiling["failure_roc_auc"]
    assert (
        0.5
        < ceiling["last_28_days_failure_roc_auc_without_fragility"]
        < ceiling["last_28_days_failure_roc_auc"]
    )
    assert sum(figures["kinds"].values()) == pytest.approx(1, abs=1e-3)
    overlap = figures["overlap"]
    assert overlap["fraud_rate_with_mismatch"] > overlap["fraud_rate_without_mismatch"]
    assert figures["report_delay_days"]["q0"] >= 2
    assert set(figures["report_types"]) == {"chargeback", "confirmed_fraud"}
