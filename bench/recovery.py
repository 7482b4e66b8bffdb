"""Recovery planner vs the fixed retry schedule on the default world (issue 7's target: ≥ 15% more revenue).

Simulates the default world into the scratch folder (or uses ``BENCH_RECOVERY_DATA`` if it names a world),
then runs :func:`simulator.recovery_eval.evaluate` on the same declined renewals and draws per period:

* ``served``: the planner with the retry model as the service serves it: trained, registered and promoted as
  ``riskgate train`` / ``riskgate promote`` do (into a scratch MLflow store, its own held-out window
  ``retry.test_days``), evaluated on the declines after its training data — the result;
* ``oracle_served_period``: the simulator's truth as the planner's model on that period (the ceiling of this
  planner, not a result);
* ``retry``: a retry model learned in place from the retries before the world's last three calendar months,
  evaluated on those three months (with the default 92-day window, nearly the served model's period).

``python -m bench recovery`` runs it; ``make recovery-eval`` runs the first on ``data/`` with the champion of
the project's own store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recovery.config import RecoveryConfig
from registry.store import load_retry_model, tracking_store
from simulator import WorldConfig, simulate
from simulator.recovery_eval import Evaluation, ModelChoice, evaluate
from training.config import load_config
from training.retry import promote_retry_model, train_retry_model


def _record(evaluation: Evaluation) -> dict[str, Any]:
    return evaluation.model_dump(mode="json") | {"headline": evaluation.headline()}


def run(scratch: Path) -> dict[str, Any]:
    given = os.environ.get("BENCH_RECOVERY_DATA")
    data_dir = Path(given) if given else scratch / "world"
    if not given:
        simulate(WorldConfig(), data_dir)
    config = RecoveryConfig()
    training = load_config()
    uri = f"sqlite:///{scratch / 'mlruns' / 'mlflow.db'}"
    (scratch / "mlruns").mkdir(exist_ok=True)
    trained = train_retry_model(
        data_dir, training, tracking_uri=uri, artifact_root=scratch / "mlruns" / "art"
    )
    promote_retry_model(training, tracking_uri=uri, data_dir=data_dir)
    with tracking_store(uri) as client:
        served = load_retry_model(client, "models:/riskgate-retry@champion")
    results: dict[str, Any] = {"retry_model_test_report": trained.report}
    evaluation = evaluate(data_dir, config, model=ModelChoice.REGISTERED_RETRY, retry_model=served)
    results["served"] = _record(evaluation)
    start = trained.trained_until.to_pydatetime()
    results["oracle_served_period"] = _record(
        evaluate(data_dir, config, model=ModelChoice.ORACLE, test_start=start)
    )
    results["retry"] = _record(evaluate(data_dir, config, model=ModelChoice.RETRY))
    results["policy"] = config.model_dump(mode="json")
    return results
