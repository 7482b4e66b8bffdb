"""Feature engines: batch throughput, the ratio against the plain pandas reference, memory, online latency.

``python -m bench features`` (part of ``make bench``). Sizes can be reduced for a quick look with
``RISKGATE_BENCH_SCALE=0.1``. Timings on a shared machine are noisy: batch times are medians of repeated runs
and the pandas ratio is measured side by side on the same data in the same process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.pandas_reference import build_features_pandas
from events.io import to_arrow, write_part
from events.schema import EventKind
from features.batch import PARTITION_ATTEMPTS, build_features
from features.definitions import FeatureSet
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.sqlite import SQLiteStore
from tests.features.factory import History, random_history
from tests.features.replay import mismatches, records

logger = logging.getLogger(__name__)

SCALE = float(os.environ.get("RISKGATE_BENCH_SCALE", "1"))
BATCH_ROWS = int(1_000_000 * SCALE)
RATIO_ROWS = int(100_000 * SCALE)
ONLINE_HISTORY = int(20_000 * SCALE)
ATTACK_EVENTS = 10_000
QUERIES = 5_000


def world(n: int, seed: int = 7) -> History:
    """A billing history of ``n`` attempts over a year (~12 attempts per account)."""
    return random_history(n, seed, accounts=max(n // 12, 10), days=365.0)


def build(history: History, feature_set: FeatureSet = FEATURE_SET) -> pd.DataFrame:
    return build_features(history.attempts, history.outcomes, history.reports, feature_set)


def timed(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of ``repeats`` runs (CPU time is what a loaded, shared
    machine distorts least)."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_extra_memory(work: Callable[[], object]) -> int:
    """Peak resident memory above the level before ``work``, sampled every 5 ms."""
    baseline = _rss_bytes()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return peak - baseline


def _memory_of_build(n: int) -> int:
    history = world(n, seed=9)
    build(world(500, seed=1))
    return peak_extra_memory(lambda: build(history))


def _in_fresh_process(n: int) -> int:
    """Peak extra memory of one build of ``n`` attempts, measured in a new process (no reused heap)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_memory_of_build, n).result()


_CHILD = """
import sys
from pathlib import Path
from features.batch import build_data_dir, build_features
from features.iptv import FEATURE_SET
from events.io import read_events
from events.schema import EventKind

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))

build_data_dir(Path(sys.argv[1]), FEATURE_SET)  # warm-up: imports, compiled kernels, allocator
warm_kb = status("VmRSS")
with open("/proc/self/clear_refs", "w") as refs:  # reset the peak (VmHWM) to the current RSS
    refs.write("5")
if sys.argv[3] == "bounded":
    build_data_dir(Path(sys.argv[2]), FEATURE_SET)
else:  # what build_data_dir did before: every table in memory at once
    tables = [read_events(Path(sys.argv[2]), kind) for kind in EventKind]
    build_features(*tables, FEATURE_SET)
print(warm_kb, status("VmHWM"), flush=True)
"""
DATA_DIR_ATTEMPTS = int(330_000 * SCALE)  # the default simulated world's size
DATA_DIR_PARTS = 10


def _write_world(data_dir: Path, parts: int, accounts: int, years: int) -> int:
    """A history written part by part, never held whole: each part ``DATA_DIR_ATTEMPTS / DATA_DIR_PARTS``
    attempts over one year of a shared pool of ``accounts``, the parts spread over ``years`` years."""
    per_part = DATA_DIR_ATTEMPTS // DATA_DIR_PARTS
    for part in range(parts):
        history = random_history(per_part, seed=1_000 + part, accounts=accounts, days=365.0)
        shift = pd.Timedelta(days=365 * (part * years // parts))
        frames = (
            history.attempts.assign(occurred_at=history.attempts["occurred_at"] + shift),
            history.outcomes.assign(occurred_at=history.outcomes["occurred_at"] + shift),
            history.reports.assign(reported_at=history.reports["reported_at"] + shift),
        )
        for kind, frame in zip(EventKind, frames, strict=True):
            write_part(data_dir, kind.value, part, to_arrow(kind, frame))
    return per_part * parts


def _peak_of_build(warm: Path, data_dir: Path, how: str) -> dict[str, float]:
    """Peak RSS of a feature build in a child process (its own ``VmHWM``, reset after a warm-up build of a
    tiny world: ``ru_maxrss`` would carry the parent's size over ``fork``/``exec``), and its CPU seconds."""
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(warm), str(data_dir), how],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"the {how} feature build of {data_dir} failed: {child.stderr[-2000:]}")
    warm_kb, peak_kb = (int(word) for word in child.stdout.split()[-2:])
    return {
        "peak_rss_mb": round(peak_kb / 1024),
        "peak_above_warm_process_mb": round((peak_kb - warm_kb) / 1024),
    }


def data_dir_memory(scratch: Path) -> dict[str, Any]:
    """Peak memory of ``build_data_dir`` (bounded) at 1x (``DATA_DIR_ATTEMPTS`` attempts over a year), at 10x
    with ten years of the same accounts, and at 10x with ten times the accounts over the same year; next to
    the in-memory build (every table loaded at once, what ``build_data_dir`` did before) at 1x."""
    warm = scratch / "warm"
    _write_world(warm, 1, 50, 1)
    accounts = max(DATA_DIR_ATTEMPTS // 12, 10)
    worlds = {
        "1x": (DATA_DIR_PARTS, accounts, 1),
        "10x_longer": (10 * DATA_DIR_PARTS, accounts, 10),
        "10x_accounts": (10 * DATA_DIR_PARTS, 10 * accounts, 1),
    }
    results: dict[str, Any] = {"partition_attempts": PARTITION_ATTEMPTS}
    for name, (parts, n_accounts, years) in worlds.items():
        folder = scratch / name
        attempts = _write_world(folder, parts, n_accounts, years)
        results[name] = {"attempts": attempts, "bounded": _peak_of_build(warm, folder, "bounded")}
        if name == "1x":
            results[name]["in_memory"] = _peak_of_build(warm, folder, "in_memory")
        shutil.rmtree(folder)
    base = max(results["1x"]["bounded"]["peak_above_warm_process_mb"], 1)
    for name in ("10x_longer", "10x_accounts"):
        results[f"peak_ratio_{name}_vs_1x"] = round(
            results[name]["bounded"]["peak_above_warm_process_mb"] / base, 2
        )
    results["load_average_1min"] = round(os.getloadavg()[0], 1)
    return results


def batch_results() -> dict[str, Any]:
    build(world(500, seed=1))  # load the compiled kernels once
    big = world(BATCH_ROWS)
    seconds, cpu_seconds = timed(lambda: build(big), repeats=3)
    small = world(RATIO_ROWS, seed=8)
    engine_seconds, engine_cpu = timed(lambda: build(small), repeats=3)
    pandas_seconds, pandas_cpu = timed(
        lambda: build_features_pandas(small.attempts, small.outcomes, small.reports, FEATURE_SET), repeats=1
    )
    reference = build_features_pandas(small.attempts, small.outcomes, small.reports, FEATURE_SET)
    disagreements = mismatches(build(small), reference, FEATURE_SET.names, tolerance=1e-6)
    memory_small = _in_fresh_process(BATCH_ROWS // 10)
    memory_big = _in_fresh_process(BATCH_ROWS)
    return {
        "batch_rows": BATCH_ROWS,
        "batch_features": len(FEATURE_SET.names),
        "batch_seconds_median_of_3": round(seconds, 2),
        "batch_cpu_seconds_median_of_3": round(cpu_seconds, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "batch_attempts_per_second": round(BATCH_ROWS / seconds),
        "ratio_rows": RATIO_ROWS,
        "ratio_engine_seconds_median_of_3": round(engine_seconds, 3),
        "ratio_pandas_reference_seconds": round(pandas_seconds, 2),
        "speedup_vs_pandas_reference": round(pandas_seconds / engine_seconds, 1),
        "speedup_vs_pandas_reference_cpu": round(pandas_cpu / engine_cpu, 1),
        "pandas_reference_disagreements": disagreements[:5],
        "peak_extra_memory_mb": {
            str(BATCH_ROWS // 10): round(memory_small / 2**20),
            str(BATCH_ROWS): round(memory_big / 2**20),
        },
        "peak_extra_memory_bytes_per_attempt": {
            str(BATCH_ROWS // 10): round(memory_small / (BATCH_ROWS // 10)),
            str(BATCH_ROWS): round(memory_big / BATCH_ROWS),
        },
    }


def latencies(engine: OnlineEngine, queries: Iterator[dict[str, Any]]) -> dict[str, float]:
    """Wall-clock percentiles (what a caller sees) and CPU-time percentiles of the scoring thread (the code's
    own cost, without the time the shared machine gave to other processes)."""
    walls, cpus = [], []
    for query in queries:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        engine.features_for(query)
        cpus.append(time.thread_time_ns() - cpu)
        walls.append(time.perf_counter_ns() - wall)
    wall_ms, cpu_ms = np.array(walls) / 1e6, np.array(cpus) / 1e6
    return {
        "calls": len(walls),
        "p50_ms": round(float(np.percentile(wall_ms, 50)), 4),
        "p99_ms": round(float(np.percentile(wall_ms, 99)), 4),
        "max_ms": round(float(wall_ms.max()), 3),
        "cpu_p50_ms": round(float(np.percentile(cpu_ms, 50)), 4),
        "cpu_p99_ms": round(float(np.percentile(cpu_ms, 99)), 4),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def _load(engine: OnlineEngine, history: History) -> None:
    for row in records(history.attempts.sort_values("occurred_at")):
        engine.record_attempt(row)
    for row in records(history.outcomes):
        engine.record_outcome(row)
    for row in records(history.reports):
        engine.record_report(row)


def online_results(scratch: Path) -> dict[str, Any]:
    history = world(ONLINE_HISTORY, seed=11)
    engine = OnlineEngine(SQLiteStore(scratch / "online.db"), FEATURE_SET)
    engine.warm_up()
    started = time.perf_counter()
    _load(engine, history)
    load_seconds = time.perf_counter() - started
    events = len(history.attempts) + len(history.outcomes) + len(history.reports)
    later = history.attempts["occurred_at"].max() + pd.Timedelta(minutes=5)
    rows = records(history.attempts.sample(n=min(QUERIES, len(history.attempts)), random_state=1))
    typical = latencies(engine, ({**row, "occurred_at": later} for row in rows))
    attack = attack_results(scratch)
    return {
        "store": "sqlite (WAL)",
        "state_events_recorded": events,
        "record_events_per_second": round(events / load_seconds),
        "features_for": typical,
        "features_for_under_attack": attack,
    }


def attack_results(scratch: Path) -> dict[str, Any]:
    """One card tested from many devices: 10,000 attempts and declines in its windows, then score it."""
    engine = OnlineEngine(SQLiteStore(scratch / "attack.db"), FEATURE_SET)
    engine.warm_up()
    (base,) = records(world(1, seed=3).attempts)
    start = base["occurred_at"]
    for i in range(ATTACK_EVENTS // 2):
        at = start + timedelta(seconds=12 * i)
        attempt = {
            **base,
            "attempt_id": f"attack_{i}",
            "occurred_at": at,
            "payment_method_id": "pm_attacked",
            "account_id": f"acc_{i % 500}",
            "device_id": f"dev_{i % 300}",
        }
        engine.record_attempt(attempt)
        engine.record_outcome(
            {
                "attempt_id": f"attack_{i}",
                "occurred_at": at,
                "status": "declined",
                "decline_code": "incorrect_number",
            }
        )
    query = {**base, "attempt_id": "probe", "payment_method_id": "pm_attacked"}
    end = start + timedelta(seconds=12 * ATTACK_EVENTS // 2 + 60)
    result = latencies(engine, ({**query, "occurred_at": end} for _ in range(1_000)))
    result["events_in_card_windows"] = ATTACK_EVENTS
    return result


def run(scratch: Path) -> dict[str, Any]:
    logging.getLogger("features").setLevel(logging.WARNING)
    return {
        "batch": batch_results(),
        "data_dir_build": data_dir_memory(scratch),
        "online": online_results(scratch),
    }
