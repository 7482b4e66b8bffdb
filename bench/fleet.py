"""Benchmark of riskgate as a fleet: one instance against two behind HAProxy, and the stores side by side.

Layouts (:data:`LAYOUTS`), all started at once and measured in turn in one run, so that they meet the same
machine load:

* ``sqlite_1``: one ``riskgate serve`` with the embedded default (SQLite files under its state directory);
* ``postgres_1``: one instance with ``RISKGATE_DATABASE_URL`` (PostgreSQL for what the service keeps there);
* ``redis_postgres_1``: the same with ``RISKGATE_ONLINE_STORE=redis://`` (online features in Redis);
* ``redis_postgres_2_proxy``: two such instances over the same PostgreSQL database and Redis, behind HAProxy
  running the shipped config (deploy/haproxy/riskgate.cfg).

Each is driven by :mod:`bench.serving`'s load generator: at a steady rate (200 requests/s for 30 s:
p50 / p99) for a few rounds, the layouts taking turns, then flat out (throughput). Each run records the CPU
time the instances spent per decision (the sum over a layout's instances, from ``/proc``), and separately
HAProxy's, PostgreSQL's (the postmaster and every backend) and Redis's: what the capacity model of
docs/fleet.md needs. ``decision_log`` says where each layout's decisions were found after the run (the
PostgreSQL ``decisions`` table, or the instances' SQLite files), so a result says what it measured.

The run lengths are a :class:`Shape` (``RISKGATE_BENCH_FLEET_SCALE=0.1`` scales the default's durations); the
models are the project's ``@champion`` versions when its tracking store has them, else synthetic ones of
production size (as :mod:`bench.serving`).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench import serving
from serving.store.postgres import schema
from tests.servers import PostgresServer, Proxy, enter_together, haproxy, postgres, redis_server

logger = logging.getLogger(__name__)

SCALE_ENV = "RISKGATE_BENCH_FLEET_SCALE"
#: A renewal run the capacity figures are worked out for (attempts per second).
RENEWAL_RATE = 1_000.0
#: Attempt numbers between two runs' first attempts (far above any run's count): no run replays another's.
ATTEMPTS_STRIDE = 10_000_000


@dataclass(frozen=True)
class Shape:
    """How long and how hard each layout is driven."""

    steady_rate: float = 200.0  # requests/s
    steady_seconds: float = 30.0
    steady_connections: int = 8
    rounds: int = 2  # steady runs per layout, the layouts taking turns
    max_seconds: float = 15.0
    max_connections: int = serving.THROUGHPUT_CONNECTIONS

    def scaled(self, factor: float) -> Shape:
        """The same shape with every duration multiplied by ``factor``."""
        return replace(
            self, steady_seconds=self.steady_seconds * factor, max_seconds=self.max_seconds * factor
        )

    @classmethod
    def from_env(cls) -> Shape:
        return cls().scaled(float(os.environ.get(SCALE_ENV, "1")))


@dataclass(frozen=True)
class Layout:
    """A way to run the service: how many instances, over which stores, behind the proxy or not."""

    name: str
    instances: int
    postgres: bool
    redis: bool
    proxy: bool


LAYOUTS: tuple[Layout, ...] = (
    Layout("sqlite_1", 1, postgres=False, redis=False, proxy=False),
    Layout("postgres_1", 1, postgres=True, redis=False, proxy=False),
    Layout("redis_postgres_1", 1, postgres=True, redis=True, proxy=False),
    Layout("redis_postgres_2_proxy", 2, postgres=True, redis=True, proxy=True),
)


@dataclass(frozen=True)
class Running:
    """A layout up: the port its callers use, its instances' pids (and HAProxy's), its database URL."""

    layout: Layout
    port: int
    pids: tuple[int, ...]
    proxy_pid: int | None
    database_url: str | None


@dataclass(frozen=True)
class Shared:
    """The servers every layout shares, and their pids (their CPU is measured per run)."""

    postgres: PostgresServer
    postgres_pid: int
    redis_url: str
    redis_pid: int


def run(
    scratch: Path,
    shape: Shape | None = None,
    layouts: tuple[Layout, ...] = LAYOUTS,
    models: Callable[[Path], tuple[Path, str]] = serving._models,
    prepare: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Every layout measured (``python -m bench fleet``); ``models`` gives the MLflow store to serve from,
    ``prepare`` is called with each instance's state directory before it starts (the smoke test puts small
    models in its local copy there)."""
    shape = shape or Shape.from_env()
    mlruns, source = models(scratch)
    load_before = os.getloadavg()
    with ExitStack() as stack:
        server = stack.enter_context(postgres())
        redis_url = stack.enter_context(redis_server(_folder(scratch / "redis")))
        shared = Shared(server, _postmaster_pid(server), redis_url, _redis_pid(redis_url))
        started = time.perf_counter()
        running = _start(stack, scratch, mlruns, shared, layouts, prepare)
        logger.info("%d layouts up in %.0f s", len(running), time.perf_counter() - started)
        measured = _measure(scratch, shape, running, shared)
        logged = {name: _decision_log(layout) for name, layout in running.items()}
    results: dict[str, Any] = {
        "models": source,
        "shape": asdict(shape),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "layouts": {
            name: {**asdict(running[name].layout), "decision_log": logged[name], **runs}
            for name, runs in measured.items()
        },
    }
    results["summary"] = summary(results["layouts"])
    return results


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _postmaster_pid(server: PostgresServer) -> int:
    """The PostgreSQL server's main process (its backends are its children)."""
    return int((server.folder / "data" / "postmaster.pid").read_text().split()[0])


def _redis_pid(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def _start(  # noqa: PLR0917 - one caller
    stack: ExitStack,
    scratch: Path,
    mlruns: Path,
    shared: Shared,
    layouts: tuple[Layout, ...],
    prepare: Callable[[Path], None] | None,
) -> dict[str, Running]:
    """Every layout's instances at once (each over a state directory of its own; a layout's instances share
    its PostgreSQL database and Redis database), then the proxies in front of those that have one."""
    specs, ports, urls = {}, {}, {}
    for number, layout in enumerate(layouts, start=1):
        url = None
        if layout.postgres:
            url = shared.postgres.create_database(f"bench_{layout.name}")
            schema.upgrade(url)  # what `riskgate db upgrade` does
        urls[layout.name] = url
        for k in range(layout.instances):
            port = serving._free_port()
            spec = serving._riskgate(scratch, mlruns, port, 1, name=f"{layout.name}-{k}-")
            if url is not None:
                spec[1]["RISKGATE_DATABASE_URL"] = url
            if layout.redis:
                spec[1]["RISKGATE_ONLINE_STORE"] = shared.redis_url.rsplit("/", 1)[0] + f"/{number}"
            specs[(layout.name, k)], ports[(layout.name, k)] = spec, port
            if prepare is not None:
                prepare(Path(spec[1]["RISKGATE_STATE_DIR"]))
    processes = enter_together(stack, {f"{n}/{k}": serving._process(*spec) for (n, k), spec in specs.items()})
    running = {}
    for layout in layouts:
        keys = [(layout.name, k) for k in range(layout.instances)]
        pids = tuple(processes[f"{n}/{k}"].pid for n, k in keys)
        proxy_pid, port = None, ports[keys[0]]
        if layout.proxy:
            addresses = [f"127.0.0.1:{ports[key]}" for key in keys]
            proxy = stack.enter_context(haproxy(addresses, _folder(scratch / f"haproxy-{layout.name}")))
            proxy_pid, port = proxy.pid, int(proxy.url.rsplit(":", 1)[1])
            _until_up(proxy)
        running[layout.name] = Running(layout, port, pids, proxy_pid, urls[layout.name])
    return running


def _until_up(proxy: Proxy, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(row["status"] == "UP" for row in proxy.servers().values()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"HAProxy did not see every instance up within {timeout} s")
        time.sleep(0.2)


def _measure(
    scratch: Path, shape: Shape, running: dict[str, Running], shared: Shared
) -> dict[str, dict[str, Any]]:
    """The steady rounds (layouts in turn), then the flat-out runs: each with the CPU per decision of the
    instances, the proxy, PostgreSQL and Redis."""
    numbers = itertools.count()
    runs: dict[str, dict[str, Any]] = {name: {"steady": []} for name in running}
    steady = {"connections": shape.steady_connections, "duration": shape.steady_seconds,
              "rate": shape.steady_rate}  # fmt: skip
    for k in range(shape.rounds):
        for name, layout in running.items():
            runs[name]["steady"].append(
                _driven(scratch, f"{name}-steady-{k}", next(numbers), steady, layout=layout, shared=shared)
            )
    flat_out = {"connections": shape.max_connections, "duration": shape.max_seconds, "rate": None}
    for name, layout in running.items():
        runs[name]["max"] = _driven(
            scratch, f"{name}-max", next(numbers), flat_out, layout=layout, shared=shared
        )
    return runs


def _enough(spec: dict[str, Any]) -> int:
    """As many attempts as a run can send: its rate for its duration, or 2,500/s flat out."""
    rate = spec["rate"] or 2_500.0
    return int(rate * spec["duration"]) + 500


def _driven(
    scratch: Path, name: str, number: int, spec: dict[str, Any], *, layout: Running, shared: Shared
) -> dict[str, Any]:
    """The ``number``-th load-generator run (on attempts no other run sends) against ``layout``, with the
    CPU each party it uses spent per decision (ms)."""
    parties = {"instances": layout.pids}
    if layout.proxy_pid is not None:
        parties["proxy"] = (layout.proxy_pid,)
    if layout.layout.postgres:
        parties["postgres"] = (shared.postgres_pid,)
    if layout.layout.redis:
        parties["redis"] = (shared.redis_pid,)
    bodies = serving._attempts(_enough(spec), number * ATTEMPTS_STRIDE)
    before = {party: _cpu(pids) for party, pids in parties.items()}
    result = serving._load(scratch, name, bodies, {**serving._score_spec(layout.port), **spec})
    if result["requests"]:
        for party, pids in parties.items():
            spent = _cpu(pids) - before[party]
            result[f"{party}_cpu_ms_per_decision"] = round(spent * 1000.0 / result["requests"], 3)
        result["instances_cpu_cores"] = round(
            result["instances_cpu_ms_per_decision"] * result["requests"] / 1000.0 / result["seconds"], 3
        )
    return result


def _cpu(pids: tuple[int, ...]) -> float:
    return sum(serving._tree_cpu_seconds(pid) for pid in pids)


def _decision_log(layout: Running) -> str:
    """Where the layout's decisions went: PostgreSQL's ``decisions`` table when it holds them, else the
    instances' own SQLite files."""
    if layout.database_url is None:
        return "sqlite"
    with psycopg.connect(layout.database_url) as connection:
        row = connection.execute("SELECT count(*) FROM decisions").fetchone()
    return "postgresql" if row and row[0] else "sqlite (per instance; PostgreSQL's decisions table is empty)"


def summary(layouts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each layout side by side: throughput, steady latency (medians over the rounds), CPU per decision of
    each party, decisions per second one core of instances sustains, and the instances a renewal run of
    :data:`RENEWAL_RATE` attempts/s needs at that cost (with a core each and 30 % headroom)."""
    table = {}
    for name, runs in layouts.items():
        steady = [r for r in runs["steady"] if r["requests"]]
        row: dict[str, Any] = {
            "instances": runs["instances"],
            "decision_log": runs["decision_log"],
            "throughput_rps": runs["max"]["throughput_rps"],
            "errors": sum(sum(r["errors"].values()) for r in [*runs["steady"], runs["max"]]),
        }
        for key in ("p50_ms", "p99_ms"):
            row[f"steady_{key}"] = _median([r[key] for r in steady])
        for party in ("instances", "proxy", "postgres", "redis"):
            row[f"{party}_cpu_ms_per_decision"] = _median(
                [r[f"{party}_cpu_ms_per_decision"] for r in steady if f"{party}_cpu_ms_per_decision" in r]
            )
        cost = row["instances_cpu_ms_per_decision"]
        if cost:
            row["decisions_per_core_s"] = round(1000.0 / cost, 1)
            row[f"instances_for_{RENEWAL_RATE:.0f}_rps"] = math.ceil(RENEWAL_RATE * cost / 1000.0 / 0.7)
        table[name] = row
    return table


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
