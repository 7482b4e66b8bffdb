"""Training time and peak memory for worlds of about 1 million and 10 million attempts.

Each size runs in its own process (so peak memory is that size's alone): simulate the world into the scratch
folder, then time ``load_inputs`` (events → batch features → labels, baselines) and ``train_models`` (both
models: search, calibration, evaluation, MLflow logging into a scratch store), and record the process's peak
resident memory. The search budget is one trial per model (``BENCH_TRAINING_TRIALS``) so the 10M run fits a
session; a budget of N trials costs about N times the ``train_*`` figure. Sizes can be chosen with
``BENCH_TRAINING_ATTEMPTS=1000000,10000000``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Attempts per legitimate subscriber and year in the default world (330k attempts for 50k accounts).
ATTEMPTS_PER_ACCOUNT = 6.6
DEFAULT_SIZES = (1_000_000, 10_000_000)


def measure(attempts: int, scratch: Path, trials: int) -> dict[str, Any]:
    """Simulate, load and train one world in this process; return timings and peak memory."""
    from riskgate.settings import Settings  # noqa: PLC0415 - heavy imports stay out of discovery
    from simulator import WorldConfig, simulate  # noqa: PLC0415
    from training.config import load_config  # noqa: PLC0415
    from training.data import load_inputs  # noqa: PLC0415
    from training.pipeline import train_models  # noqa: PLC0415

    data_dir = scratch / "data"
    started = time.perf_counter()
    summary = simulate(
        WorldConfig(accounts=round(attempts / ATTEMPTS_PER_ACCOUNT), months=12, seed=7), data_dir
    )
    simulated = time.perf_counter()
    config = load_config(overrides={"model.trials": trials})
    inputs = load_inputs(data_dir, config.feature_set)
    loaded = time.perf_counter()
    settings = Settings(data_dir=data_dir, mlruns_dir=scratch / "mlruns")
    results = train_models(
        inputs, config, tracking_uri=settings.tracking_uri, artifact_root=settings.artifact_root
    )
    trained = time.perf_counter()
    return {
        "attempts": summary.attempts,
        "features": len(inputs.contract.names),
        "trials_per_model": trials,
        "simulate_seconds": round(simulated - started, 1),
        "features_and_labels_seconds": round(loaded - simulated, 1),
        **{f"train_{r.task.value}_seconds": round(r.seconds, 1) for r in results},
        "training_total_seconds": round(trained - simulated, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **{f"test_{r.task.value}_roc_auc": round(r.report["model"]["roc_auc"], 4) for r in results},
    }


def run(scratch: Path) -> dict[str, Any]:
    sizes = [int(s) for s in os.environ.get("BENCH_TRAINING_ATTEMPTS", "").split(",") if s] or DEFAULT_SIZES
    trials = int(os.environ.get("BENCH_TRAINING_TRIALS", "1"))
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    for size in sizes:
        folder = scratch / f"world-{size}"
        folder.mkdir()
        code = (
            "import json, sys; from pathlib import Path; from bench.training import measure; "
            f"print(json.dumps(measure({size}, Path({str(folder)!r}), {trials})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parents[1],
        )
        if done.returncode != 0:
            results[f"{size}"] = {"error": done.stderr.strip().splitlines()[-1:]}
            continue
        results[f"{size}"] = json.loads(done.stdout.strip().splitlines()[-1])
    return results
