"""Loading a history into the online engine: one event at a time against in bulk, per store, side by side.

``python -m bench history``. Simulates the default world (what ``make data`` writes: ~330k attempts, ~330k
outcomes and the fraud reports, ~660k events), then per store (memory, SQLite, and Redis when
``redis-server`` is installed):

* the first ``SAMPLE_EVENTS`` events of the stream recorded one by one (the reference path) and the same
  events loaded in bulk, into fresh stores, one after the other: events/s of both and their ratio;
* the whole world loaded in bulk from its data directory (:func:`features.history.load_data_dir`): seconds;
  then ``features_for`` latency (wall and CPU percentiles) of ``QUERIES`` attempts made after the world's end,
  on the state the load left (Redis: a real ``redis-server`` on 127.0.0.1, as the tests start it).

Timings on the shared 2-core machine are noisy: CPU seconds are recorded next to wall seconds, and so is the
load average. ``RISKGATE_BENCH_SCALE=0.1`` simulates a world ten times smaller for a quick look.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from bench.features import latencies
from features.history import Event, event_stream, load_data_dir, load_history
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores import OnlineStore
from features.stores.memory import MemoryStore
from features.stores.redis import RedisStore
from features.stores.sqlite import SQLiteStore
from simulator import WorldConfig, simulate

logger = logging.getLogger(__name__)

SCALE = float(os.environ.get("RISKGATE_BENCH_SCALE", "1"))
SAMPLE_EVENTS = 20_000
QUERIES = 2_000
FAR = pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime()
StoreFactory = Callable[[str], OnlineStore]


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _side_by_side(sample: list[Event], make_store: StoreFactory) -> dict[str, Any]:
    """The same events recorded one by one, then loaded in bulk, each into a fresh store."""
    slow = OnlineEngine(make_store("one-by-one"), FEATURE_SET)
    one_wall, one_cpu = _timed(lambda: load_history(slow, sample, FAR, bulk=False))
    fast = OnlineEngine(make_store("bulk-sample"), FEATURE_SET)
    bulk_wall, bulk_cpu = _timed(lambda: load_history(fast, sample, FAR))
    return {
        "events": len(sample),
        "one_by_one_events_per_second": round(len(sample) / one_wall),
        "bulk_events_per_second": round(len(sample) / bulk_wall),
        "speedup": round(one_wall / bulk_wall, 1),
        "speedup_cpu": round(one_cpu / bulk_cpu, 1),
    }


def _whole_world(data_dir: Path, events: list[Event], make_store: StoreFactory) -> dict[str, Any]:
    """The world loaded in bulk, then ``features_for`` of sampled attempts made after its end (the state
    a provider's service starts from)."""
    engine = OnlineEngine(make_store("bulk-world"), FEATURE_SET)
    wall, cpu = _timed(lambda: load_data_dir(engine, data_dir, FAR))
    attempts = [fields for _, _, kind, fields in events if kind == "attempt"]
    later = attempts[-1]["occurred_at"] + pd.Timedelta(minutes=5)
    sample = random.Random(1).sample(attempts, min(QUERIES, len(attempts)))
    return {
        "events": len(events),
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "events_per_second": round(len(events) / wall),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "features_for_after_load": latencies(engine, ({**row, "occurred_at": later} for row in sample)),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _redis_server(folder: Path) -> Iterator[str | None]:
    """A throwaway redis-server on 127.0.0.1 (a free port), or None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        logger.warning("redis-server is not installed (make system-deps): the Redis figures are skipped")
        yield None
        return
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [*command, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _redis_factory(url: str) -> StoreFactory:
    def make(_: str) -> OnlineStore:
        redis.Redis.from_url(url).flushdb()
        return RedisStore(url)

    return make


def run(scratch: Path) -> dict[str, Any]:
    logging.getLogger("features").setLevel(logging.WARNING)
    data_dir = scratch / "data"
    config = WorldConfig(accounts=max(int(50_000 * SCALE), 500))
    simulate(config, data_dir)
    started = time.perf_counter()
    events = event_stream(data_dir)
    stream_wall = time.perf_counter() - started
    OnlineEngine(MemoryStore(), FEATURE_SET).warm_up()  # compiled kernels loaded before any timing
    factories: dict[str, StoreFactory] = {
        "memory": lambda _: MemoryStore(),
        "sqlite": lambda name: SQLiteStore(scratch / f"{name}.db"),
    }
    results: dict[str, Any] = {
        "world_accounts": config.accounts,
        "events": len(events),
        "event_stream_seconds": round(stream_wall, 1),
    }
    with _redis_server(scratch) as url:
        if url is not None:
            factories["redis"] = _redis_factory(url)
        for name, make_store in factories.items():
            results[name] = {
                "sample_side_by_side": _side_by_side(events[:SAMPLE_EVENTS], make_store),
                "whole_world_bulk": _whole_world(data_dir, events, make_store),
            }
    return results
