"""Recovery planner vs the fixed retry schedule on the default world (issue 7's target: ≥ 15% more revenue).

Simulates the default world into the scratch folder (or uses ``BENCH_RECOVERY_DATA`` if it names a world),
then runs :func:`recovery.evaluate.evaluate` twice on the same declined renewals and draws: with the retry
model learned from the retries observed before the test period (the result), and with the simulator's truth as
the planner's model (the ceiling of this planner, not a result). ``python -m bench recovery`` runs it;
``make recovery-eval`` runs the first alone on ``data/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recovery.config import RecoveryConfig
from recovery.evaluate import ModelChoice, evaluate
from simulator import WorldConfig, simulate


def run(scratch: Path) -> dict[str, Any]:
    given = os.environ.get("BENCH_RECOVERY_DATA")
    data_dir = Path(given) if given else scratch / "world"
    if not given:
        simulate(WorldConfig(), data_dir)
    config = RecoveryConfig()
    results: dict[str, Any] = {}
    for model in (ModelChoice.RETRY, ModelChoice.ORACLE):
        evaluation = evaluate(data_dir, config, model=model)
        results[model.value] = evaluation.model_dump(mode="json") | {"headline": evaluation.headline()}
    results["policy"] = config.model_dump(mode="json")
    return results
