"""Training time and peak memory for a world of about 1 million attempts (10 million: ``training_10m``).

Each size runs as two child processes, so each peak resident memory (read from the child's own rusage) is
that step's alone: one simulates the world, the other times ``load_inputs`` (events → batch features →
labels, baselines) and ``train_models`` (both models: search, calibration, evaluation, MLflow logging into a
scratch store). Above 500k attempts ``load_inputs`` builds the features with the memory-bounded build
(``riskgate features build``); a reused world's features table is removed first, so the features are
always built and timed. The search budget is one trial per model (``BENCH_TRAINING_TRIALS``); with more
trials, each extra trial costs about one ``train_*`` figure on at most ``model.search_rows`` rows, plus a
refit on every row when the training window is larger than that.

Simulated worlds are kept and reused (a 10-million-attempt world takes about half an hour to simulate
here), by default in ``$XDG_CACHE_HOME/riskgate/bench-worlds`` (``~/.cache/...``).

Environment:

* ``BENCH_TRAINING_ATTEMPTS=1000000,3000000``: sizes this module measures (default: 1 million);
* ``BENCH_TRAINING_TRIALS=1``: trials per model;
* ``BENCH_TRAINING_WORLDS=DIR``: keep simulated worlds in ``DIR/world-SIZE/data`` (default: the cache
  folder above);
* ``BENCH_TRAINING_TIMEOUT=SECONDS``: time limit of each child process (default 3 hours); a size that hits it
  is recorded as timed out, with the steps that finished.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Attempts per legitimate subscriber and year in the default world (330k attempts for 50k accounts).
ATTEMPTS_PER_ACCOUNT = 6.6
DEFAULT_SIZES = (1_000_000,)
SEED = 7
MONTHS = 12
DEFAULT_TIMEOUT_SECONDS = 3 * 3600.0
_POLL_SECONDS = 0.5


def accounts_for(attempts: int) -> int:
    return round(attempts / ATTEMPTS_PER_ACCOUNT)


def simulate_world(attempts: int, data_dir: Path) -> dict[str, Any]:
    """Simulate the bench's world of about ``attempts`` attempts into ``data_dir`` (in this process)."""
    from simulator import WorldConfig, simulate  # noqa: PLC0415 - heavy imports stay out of discovery

    summary = simulate(WorldConfig(accounts=accounts_for(attempts), months=MONTHS, seed=SEED), data_dir)
    return {"attempts": summary.attempts}


def train_world(data_dir: Path, mlruns_dir: Path, trials: int) -> dict[str, Any]:
    """Load (features included) and train both models on ``data_dir`` in this process; return timings."""
    from core.settings import Settings  # noqa: PLC0415
    from features.registry import DEFAULT_SPEC  # noqa: PLC0415
    from training.baselines import IPTV_BASELINES  # noqa: PLC0415
    from training.config import load_config  # noqa: PLC0415
    from training.data import ChosenFeatureSet, load_inputs  # noqa: PLC0415
    from training.pipeline import train_models  # noqa: PLC0415

    started = time.perf_counter()
    config = load_config(overrides={"model.trials": trials})
    inputs = load_inputs(data_dir, ChosenFeatureSet.named(DEFAULT_SPEC), IPTV_BASELINES)
    loaded = time.perf_counter()
    settings = Settings(data_dir=data_dir, mlruns_dir=mlruns_dir)
    results = train_models(
        inputs,
        config,
        tracking_uri=settings.tracking_uri,
        artifact_root=settings.artifact_root,
        registry_uri=settings.registry_uri,
    )
    trained = time.perf_counter()
    return {
        "attempts": len(inputs.frame),
        "features": len(inputs.contract.names),
        "trials_per_model": trials,
        "search_rows": config.model.search_rows,
        "features_and_labels_seconds": round(loaded - started, 1),
        **{f"train_{r.task.value}_seconds": round(r.seconds, 1) for r in results},
        "training_total_seconds": round(trained - started, 1),
        **{f"test_{r.task.value}_roc_auc": round(r.report["model"]["roc_auc"], 4) for r in results},
        **{
            f"test_{r.task.value}_truth_roc_auc": round(r.report["truth"]["roc_auc"], 4)
            for r in results
            if "truth" in r.report
        },
    }


def run_child(code: str, log: Path, timeout: float) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Run ``python -c code`` (which prints one JSON line last) with a time limit.

    Returns its result (None if it failed or timed out) and its own wall time, peak resident memory (from
    its rusage, so other processes do not count), the machine's load average while it ran (mean and max of
    the 1-minute figure; the machine is shared) and status.
    """
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[1],
            start_new_session=True,  # its own process group, so a timeout stops all of it
        )
        loads: list[float] = [os.getloadavg()[0]]
        usage, status = _wait(child.pid, started + timeout, loads)
    seconds = time.perf_counter() - started
    facts: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average_mean": round(sum(loads) / len(loads), 1),
        "load_average_max": round(max(loads), 1),
    }
    if status is None:
        facts["status"] = f"timed out after {timeout:.0f} s"
        return None, facts
    if status != 0:
        facts["status"] = f"failed (exit {status}): " + " | ".join(log.read_text().strip().splitlines()[-3:])
        return None, facts
    facts["status"] = "ok"
    return json.loads(log.read_text().strip().splitlines()[-1]), facts


def _wait(pid: int, deadline: float, loads: list[float]) -> tuple[resource.struct_rusage, int | None]:
    """Wait for ``pid`` until ``deadline``; kill its process group past it. Returns rusage and exit code.

    Appends the machine's 1-minute load average to ``loads`` on every poll.
    """
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            return usage, os.waitstatus_to_exitcode(status)
        if time.perf_counter() > deadline:
            os.killpg(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
            return usage, None
        loads.append(os.getloadavg()[0])
        time.sleep(_POLL_SECONDS)


def measure(attempts: int, folder: Path, trials: int, timeout: float, mlruns_dir: Path) -> dict[str, Any]:
    """Simulate (unless the world is already in ``folder``), then load and train, each in a child process.

    A reused world's features table is removed first: the training child builds the features every time.
    The runs are logged into the MLflow store ``mlruns_dir`` (a scratch folder: nothing accumulates).
    """
    folder.mkdir(parents=True, exist_ok=True)
    data_dir = folder / "data"
    result: dict[str, Any] = {"accounts": accounts_for(attempts)}
    if (data_dir / "summary.json").exists():
        result["simulate"] = {"status": f"reused the world in {data_dir}"}
    else:
        code = (
            "import json; from pathlib import Path; from bench.training import simulate_world; "
            f"print(json.dumps(simulate_world({attempts}, Path({str(data_dir)!r}))))"
        )
        simulated, facts = run_child(code, folder / "simulate.log", timeout)
        result["simulate"] = facts
        if simulated is None:
            return result
    from events.io import table_dir  # noqa: PLC0415 - heavy imports stay out of discovery
    from features.batch import FEATURES_TABLE  # noqa: PLC0415

    stale = table_dir(data_dir, FEATURES_TABLE)
    if stale.exists():  # a reused world keeps the last run's features: the bench measures building them
        logger.info("removing %s so that this run builds the features again", stale)
        shutil.rmtree(stale)
    code = (
        "import json, logging; from pathlib import Path; from bench.training import train_world; "
        "logging.basicConfig(level=logging.INFO); "
        f"print(json.dumps(train_world(Path({str(data_dir)!r}), Path({str(mlruns_dir)!r}), {trials})))"
    )
    trained, facts = run_child(code, folder / "train.log", timeout)
    result["train"] = {**facts, **(trained or {})}
    return result


def worlds_cache() -> Path:
    """Where simulated worlds are kept between runs: ``$XDG_CACHE_HOME/riskgate/bench-worlds``."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "riskgate" / "bench-worlds"


def measure_sizes(sizes: tuple[int, ...], scratch: Path) -> dict[str, Any]:
    """:func:`measure` for each size, configured from the environment (see the module's docstring)."""
    trials = int(os.environ.get("BENCH_TRAINING_TRIALS", "1"))
    timeout = float(os.environ.get("BENCH_TRAINING_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))
    worlds = Path(os.environ.get("BENCH_TRAINING_WORLDS", str(worlds_cache())))
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    for size in sizes:
        folder = worlds / f"world-{size}"
        logger.info("training bench: %d attempts in %s", size, folder)
        results[f"{size}"] = measure(size, folder, trials, timeout, scratch / f"mlruns-{size}")
    results["load_average_at_end"] = os.getloadavg()[0]
    return results


def run(scratch: Path) -> dict[str, Any]:
    sizes = tuple(int(s) for s in os.environ.get("BENCH_TRAINING_ATTEMPTS", "").split(",") if s)
    return measure_sizes(sizes or DEFAULT_SIZES, scratch)
