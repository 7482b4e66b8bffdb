"""Benchmark of ``POST /v1/score`` against ``mlflow models serve``, side by side over loopback, in one run.

* riskgate: ``riskgate serve`` answers the full decision for a new attempt each time: online features
  (SQLite), both models, reason codes, policy, durable decision log; once as one uvicorn process
  (``riskgate``) and once with ``--workers 2`` (``riskgate_2w``, both cores, one shared state), each over its
  own state directory.
* MLflow: ``mlflow models serve -m models:/riskgate-fraud@champion --env-manager local`` (one worker) answers
  the fraud model alone on a ready-made feature row.
* reference: the issue's own reference point (:mod:`bench._reference`), a minimal FastAPI ``async def``
  endpoint answering the same row with one ``Booster.predict`` from memory under uvicorn (uvloop,
  httptools); ``reference_asgi``: the same as a bare ASGI callable, no framework at all. What the shape
  alone costs at each load, the floor under any full decision served this way (``ratios.reference*`` hold
  their ratios to MLflow, judged like riskgate's).

Both are driven by the same load generator (:mod:`bench._loadgen`, its own process): a steady rate both can
sustain (latency: 50 requests/s, then 100 and 150, which MLflow's one worker still sustains), one connection
sending each request as soon as the last is answered (``serial``: latency with the caches kept warm, no
queueing), and as fast as they answer (throughput); riskgate alone at 300 requests/s for 60 s (the absolute
targets) runs before the saturation runs, whose queues and write-ahead log backlog would otherwise spill
into it. The issue's ratios are judged at 50 requests/s; ``ratios.*.by_rate`` gives them at every steady
rate, ``ratios.*.serial`` back to back. The models are the project's ``@champion`` versions when its
tracking store has them, else synthetic models of production size (500 trees of 63 leaves for fraud) on the
real feature set.

With ``RISKGATE_BENCH_BASELINE=/path/to/an/older/checkout`` (e.g. ``git worktree add /tmp/old main``) the
run also starts that checkout's ``riskgate serve`` (same models, same virtualenv) and drives it and the
current one alternately at the steady rate, a few rounds each: ``cpu_before_after`` holds the server CPU per
decision of both (medians) and their ratio, measured side by side under the same machine load, and
``cpu_before_after.with_rules`` the same with the current one serving 50 rules and 5 lists of 100,000 items.

Every run also measures the analysts' rules the same way (``rules_side_by_side``): two servers alike but
for ``RISKGATE_RULES_FILE`` (50 rules and 5 lists of 100,000 items, :func:`write_rules_file`), driven
alternately at the steady rate; the server CPU per decision of both and their ratio (issue 17's budget: at
most 1.10).

Every run also records the CPU time the server's processes spent per request (``server_cpu_ms_per_request``,
from ``/proc``; robust where latencies are not, on a machine shared with other jobs), the load generator's
own CPU (``client_cpu_*``) and the machine's load average.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from bench._models import PRODUCTION_SIZE, register_production_size
from core.settings import Settings

logger = logging.getLogger(__name__)

SCORE_KEY = "rg-dev-score-key"
COMPARE_RATE = 50.0  # requests/s both servers sustain: the latency comparison
SWEEP_RATES = (100.0, 150.0)  # more steady rates MLflow's one worker still sustains (~240 req/s at most)
COMPARE_SECONDS = 20.0
THROUGHPUT_SECONDS = 15.0
THROUGHPUT_CONNECTIONS = 16
TARGET_RATE = 300.0
TARGET_SECONDS = 60.0
ATTEMPTS = 120_000
SERIAL_SECONDS = 10.0
SERIAL_ATTEMPTS = 15_000  # one connection, back to back: ~1,000 decisions/s at most
BASELINE_ENV = "RISKGATE_BENCH_BASELINE"
BASELINE_ROUNDS = 3
BASELINE_SECONDS = 10.0
REFERENCES = ("reference", "reference_asgi")  # the least the shape costs (bench._reference)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _champions_in(settings: Settings) -> bool:
    database = settings.mlruns_dir / "mlflow.db"
    if not database.exists():
        return False
    from registry.names import CHAMPION  # noqa: PLC0415
    from registry.store import tracking_store, version_by_alias  # noqa: PLC0415

    with tracking_store(settings.tracking_uri, settings.registry_uri) as client:
        names = ("riskgate-fraud", "riskgate-failure")
        return all(version_by_alias(client, name, CHAMPION) is not None for name in names)


def _models(scratch: Path) -> tuple[Path, str]:
    """The mlruns directory to serve from, and where its models come from."""
    project = Settings()
    if _champions_in(project):
        return project.mlruns_dir.resolve(), "project @champion models"
    mlruns = scratch / "mlruns"
    register_production_size(mlruns)
    return mlruns, PRODUCTION_SIZE


@contextmanager
def _process(command: list[str], env: dict[str, str], health_url: str, log: Path) -> Any:
    with log.open("wb") as output:
        process = subprocess.Popen(  # its own process group: worker processes are stopped with it
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for(process, health_url, log)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _attempts(count: int, first: int) -> list[bytes]:
    """Distinct attempts over a realistic spread of accounts, cards, devices and IPs, one second apart."""
    start = datetime(2026, 6, 1, tzinfo=UTC)
    kinds = ("renewal", "renewal", "renewal", "retry", "signup", "upgrade")
    bodies = []
    for n in range(first, first + count):
        attempt = {
            "attempt_id": f"bench-{n}",
            "occurred_at": (start + timedelta(seconds=n)).isoformat(),
            "account_id": f"acc-{(n * 7919) % 20_000}",
            "kind": kinds[n % len(kinds)],
            "plan_tier": ("basic", "standard", "premium")[n % 3],
            "plan_period": "monthly",
            "amount": (9.99, 14.99, 19.99, 119.0)[n % 4],
            "currency": "EUR",
            "payment_method_id": f"pm_{(n * 104_729) % 22_000}",
            "method_type": "card",
            "card_bin": f"{400_000 + n % 500}",
            "card_funding": ("credit", "debit", "prepaid")[n % 3],
            "card_country": ("DE", "FR", "GB", "US")[n % 4],
            "card_exp": "2028-04",
            "device_id": f"dev-{(n * 31) % 15_000}",
            "ip": f"10.{n % 200}.{(n // 200) % 250}.{n % 7}",
            "ip_country": ("DE", "FR", "GB", "NL")[n % 4],
            "billing_country": ("DE", "FR", "GB", "US")[n % 4],
            "invoice_id": f"inv-{n}",
            "retry_number": 1 if kinds[n % len(kinds)] == "retry" else 0,
        }
        bodies.append(json.dumps(attempt, separators=(",", ":")).encode())
    return bodies


def _load(
    scratch: Path, name: str, bodies: list[bytes], spec: dict[str, Any], server: int | None = None
) -> dict[str, Any]:
    """One load-generator run (its own process) with ``spec`` (port, path, connections, duration, rate);
    with ``server`` (a pid), the CPU time that process and its children spent per request answered."""
    bodies_file = scratch / f"{name}.bodies"
    bodies_file.write_bytes(b"\n".join(bodies))
    spec_file = scratch / f"{name}.json"
    spec_file.write_text(json.dumps({"host": "127.0.0.1", "bodies": str(bodies_file), **spec}))
    cpu = None if server is None else _tree_cpu_seconds(server)
    command = [sys.executable, "-m", "bench._loadgen", str(spec_file)]
    finished = subprocess.run(command, capture_output=True, timeout=600, check=False)
    if finished.returncode != 0:
        stderr = finished.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"the load generator failed on {name} (exit {finished.returncode}): {stderr}")
    result: dict[str, Any] = json.loads(finished.stdout)
    if server is not None and cpu is not None and result["requests"]:
        spent = _tree_cpu_seconds(server) - cpu
        result["server_cpu_ms_per_request"] = round(spent * 1000.0 / result["requests"], 3)
        result["server_cpu_cores"] = round(spent / result["seconds"], 3)
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    logger.info("%s: %s", name, result)
    return result


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (Linux ``/proc``)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        ticks[child] = int(fields[11]) + int(fields[12])  # utime, stime
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, of in parents.items() if of == parent and child not in tree]
        tree.update(children)
        frontier += children
    return sum(ticks.get(member, 0) for member in tree) / os.sysconf("SC_CLK_TCK")


def _feature_row(port: int) -> bytes:
    """The feature vector riskgate computed for one attempt, as MLflow's ``dataframe_split`` input."""
    body = json.loads(_attempts(1, 10_000_000)[0])
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/score", json=body, params={"explain": "true"},
                        headers={"X-API-Key": SCORE_KEY}, timeout=10).json()  # fmt: skip
    features = answer["features"]
    return json.dumps(
        {"dataframe_split": {"columns": list(features), "data": [list(features.values())]}}
    ).encode()


def run(scratch: Path) -> dict[str, Any]:
    mlruns, models = _models(scratch)
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    ours, ours_2w, theirs, floor, bare = (_free_port() for _ in range(5))
    venv_bin = str(Path(sys.executable).parent)  # mlflow starts `uvicorn` from PATH
    mlflow_env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
                  "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    mlflow_cmd = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m",
                  "models:/riskgate-fraud@champion", "--env-manager", "local", "-h", "127.0.0.1",
                  "-p", str(theirs), "-w", "1"]  # fmt: skip
    with (
        _process(*_riskgate(scratch, mlruns, ours, workers=1)) as riskgate,
        _process(*_riskgate(scratch, mlruns, ours_2w, workers=2)) as riskgate_2w,
        _process(mlflow_cmd, mlflow_env, f"http://127.0.0.1:{theirs}/ping", scratch / "mlflow.log") as mlflow,
        _process(*_reference("create_app", floor, mlflow_env, scratch)) as reference,
        _process(*_reference("create_asgi_app", bare, mlflow_env, scratch)) as reference_asgi,
    ):
        rows = [_feature_row(ours)] * 200_000
        attempts = _attempts(ATTEMPTS, 0)  # the same attempts for both riskgate configurations
        chunks = {"riskgate": iter_chunks(attempts), "riskgate_2w": iter_chunks(attempts)}
        specs = {"mlflow": {"port": theirs, "path": "/invocations"}, "riskgate": _score_spec(ours),
                 "riskgate_2w": _score_spec(ours_2w), "reference": {"port": floor, "path": "/invocations"},
                 "reference_asgi": {"port": bare, "path": "/invocations"}}  # fmt: skip
        pids = {"mlflow": mlflow.pid, "riskgate": riskgate.pid, "riskgate_2w": riskgate_2w.pid,
                "reference": reference.pid, "reference_asgi": reference_asgi.pid}  # fmt: skip
        warm: dict[str, Any] = {"connections": 2, "duration": 5.0, "rate": 40.0}
        steady: dict[str, Any] = {"connections": 8, "duration": COMPARE_SECONDS, "rate": COMPARE_RATE}
        flat_out = {"connections": THROUGHPUT_CONNECTIONS, "duration": THROUGHPUT_SECONDS, "rate": None}
        target = {"connections": 16, "duration": TARGET_SECONDS, "rate": TARGET_RATE}
        serial = {"connections": 1, "duration": SERIAL_SECONDS, "rate": None}  # back to back: warm caches
        results: dict[str, dict[str, Any]] = {}
        everyone = ("mlflow", "riskgate", "riskgate_2w", "reference", "reference_asgi")
        sweep = [(f"steady_{rate:.0f}", {**steady, "rate": rate}, everyone) for rate in SWEEP_RATES]
        for stage, shape, who in (
            ("warm", warm, everyone),
            ("steady", steady, everyone),
            *sweep,
            ("serial", serial, everyone),
            ("300rps_60s", target, ("riskgate", "riskgate_2w")),  # before saturation: its queues and WAL
            ("max", flat_out, everyone),
        ):
            for name in who:
                bodies = next(chunks[name]) if name in chunks else rows
                spec = {**specs[name], **shape}
                results[f"{name}_{stage}"] = _load(scratch, f"{name}-{stage}", bodies, spec, pids[name])
        for name in everyone:
            del results[f"{name}_warm"]
    results["rules_side_by_side"] = _rules_side_by_side(scratch, mlruns)
    baseline = os.environ.get(BASELINE_ENV)
    if baseline:
        results["cpu_before_after"] = _before_after(scratch, mlruns, Path(baseline))
    machine = {"load_average_1m_at_end": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    ratios = {name: _ratios(results, name) for name in ("riskgate", "riskgate_2w", *REFERENCES)}
    return {"models": models, "machine_load": machine, **results, "ratios": ratios}


def _before_after(scratch: Path, mlruns: Path, baseline: Path) -> dict[str, Any]:
    """Server CPU per decision of the ``baseline`` checkout's server and of this one, driven alternately at
    the steady rate (fresh state directories, attempts neither has seen): medians over the rounds; then the
    same against this one serving :func:`write_rules_file`'s 50 rules and 5 lists (``with_rules``)."""
    before, after = _free_port(), _free_port()
    servers = {
        "before": (before, _riskgate(scratch, mlruns, before, workers=1, source=baseline)),
        "after": (after, _riskgate(scratch, mlruns, after, workers=1, name="after")),
    }
    result = {"baseline_source": str(baseline), **_alternately(scratch, servers, 1_000_000)}
    rules_file = write_rules_file(scratch / "rules")
    before, after = _free_port(), _free_port()
    servers = {
        "before": (before, _riskgate(scratch, mlruns, before, workers=1, source=baseline)),
        "after": (
            after,
            _riskgate(scratch, mlruns, after, workers=1, name="after-ruled", rules_file=rules_file),
        ),
    }
    return {**result, "with_rules": _alternately(scratch, servers, 3_000_000)}


def _rules_side_by_side(scratch: Path, mlruns: Path) -> dict[str, Any]:
    """Server CPU per decision without and with the analysts' rules (issue 17's budget: at most +10%): two
    servers alike but for ``RISKGATE_RULES_FILE`` (:func:`write_rules_file`: 50 rules, 5 lists of 100,000
    items), driven alternately at the steady rate; medians over the rounds."""
    rules_file = write_rules_file(scratch / "rules")
    started = time.perf_counter()
    plain, ruled = _free_port(), _free_port()
    servers = {
        "without_rules": (plain, _riskgate(scratch, mlruns, plain, workers=1, name="plain")),
        "with_rules": (
            ruled,
            _riskgate(scratch, mlruns, ruled, workers=1, name="ruled", rules_file=rules_file),
        ),
    }
    result = _alternately(scratch, servers, 2_000_000)
    state = Path(servers["with_rules"][1][1]["RISKGATE_STATE_DIR"])
    return {
        "rules_file": str(rules_file),
        "started_and_measured_s": round(time.perf_counter() - started),
        "decided_by_a_rule_share": _decided_by_a_rule(state / "decisions.sqlite"),
        **result,
    }


def _decided_by_a_rule(log: Path) -> float:
    """The share of a stopped server's logged decisions that a rule made (the rest: the model policy)."""
    with contextlib.closing(sqlite3.connect(log)) as db:
        by_rule, total = db.execute(
            "SELECT COALESCE(SUM(decided_by = 'rule'), 0), COUNT(*) FROM decisions"
        ).fetchone()
    return round(by_rule / total, 3) if total else 0.0


def write_rules_file(directory: Path, size: int | None = None) -> Path:
    """:mod:`bench.rules`' 50 rules (as review rules, so that a decision evaluates them all unless one
    matches) and its 5 lists (of 100,000 items, or ``size``), as a rules file with one CSV file per list."""
    from bench.rules import LIST_ITEMS, list_items, rule_texts  # noqa: PLC0415 - numpy, the rules library

    directory.mkdir(parents=True, exist_ok=True)
    lists = []
    for name, (field, items) in list_items(np.random.default_rng(17), size or LIST_ITEMS).items():
        with (directory / f"{name}.csv").open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(("value", "expires_at", "reason"))
            for item in items:
                expires = "" if item.expires_at is None else item.expires_at.isoformat()
                writer.writerow((item.value, expires, item.reason))
        lists.append({"name": name, "field": field, "csv": f"{name}.csv"})
    rules = [
        {"name": f"bench-{k:02d}", "action": "review", "expression": text}
        for k, text in enumerate(rule_texts())
    ]
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"rules": rules, "lists": lists}, sort_keys=False), encoding="utf-8")
    return path


def _alternately(
    scratch: Path, servers: dict[str, tuple[int, tuple[list[str], dict[str, str], str, Path]]], first: int
) -> dict[str, Any]:
    """Two servers (by name: the port and :func:`_riskgate`'s answer) driven alternately at the steady rate,
    :data:`BASELINE_ROUNDS` rounds each, on attempts neither has seen (numbered from ``first``): the server
    CPU per decision of each (medians and samples), the second's over the first's."""
    (one, (one_port, one_server)), (two, (two_port, two_server)) = servers.items()
    ports = {one: one_port, two: two_port}
    per_round = int(COMPARE_RATE * BASELINE_SECONDS) + 10
    attempts = _attempts(per_round * 2 * BASELINE_ROUNDS, first)
    cpu: dict[str, list[float]] = {one: [], two: []}
    with _process(*one_server) as first_process, _process(*two_server) as second_process:
        pids = {one: first_process.pid, two: second_process.pid}
        shape = {"connections": 8, "duration": BASELINE_SECONDS, "rate": COMPARE_RATE}
        for k in range(2 * BASELINE_ROUNDS):
            which = one if k % 2 == 0 else two
            bodies = attempts[k * per_round : (k + 1) * per_round]
            spec = {**_score_spec(ports[which]), **shape}
            cpu[which].append(
                _load(scratch, f"{which}-{k}", bodies, spec, pids[which])["server_cpu_ms_per_request"]
            )
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    return {
        "rounds": BASELINE_ROUNDS,
        f"{one}_ms_per_decision": medians[one],
        f"{two}_ms_per_decision": medians[two],
        f"{two}_over_{one}": round(medians[two] / medians[one], 3),
        "samples": cpu,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _riskgate(
    scratch: Path,
    mlruns: Path,
    port: int,
    workers: int,
    *,
    source: Path | None = None,
    name: str = "",
    rules_file: Path | None = None,
) -> tuple[list[str], dict[str, str], str, Path]:
    """``riskgate serve`` with ``workers`` processes over a state directory of its own: command, environment,
    readiness URL, log file (the arguments of :func:`_process`). With ``source``, the server runs that
    checkout's code (put first on ``PYTHONPATH``) in this virtualenv; with ``rules_file``, it serves those
    rules and lists."""
    label = "baseline" if source is not None else f"{name}{workers}w"
    env = {
        "RISKGATE_STATE_DIR": str(scratch / f"state-{label}"),
        "RISKGATE_MLRUNS_DIR": str(mlruns),
        "RISKGATE_MODEL_RELOAD_SECONDS": "0",
        "RISKGATE_LOG_LEVEL": "WARNING",
    }
    if rules_file is not None:
        env["RISKGATE_RULES_FILE"] = str(rules_file)
    arguments = ["serve", "--port", str(port), "--workers", str(workers)]
    if source is None:
        command = [str(Path(sys.executable).with_name("riskgate")), *arguments]
    else:
        env["PYTHONPATH"] = str(source.resolve())
        launcher = "import sys; sys.argv[0] = 'riskgate'; from riskgate.cli import app; app()"
        command = [sys.executable, "-c", launcher, *arguments]
    return command, env, f"http://127.0.0.1:{port}/readyz", scratch / f"riskgate-{label}.log"


def _reference(
    factory: str, port: int, env: dict[str, str], scratch: Path
) -> tuple[list[str], dict[str, str], str, Path]:
    """A :mod:`bench._reference` server (``factory`` names the app) under uvicorn with riskgate's event loop
    and HTTP parser: the arguments of :func:`_process`."""
    command = [sys.executable, "-m", "uvicorn", "--factory", f"bench._reference:{factory}", "--host",
               "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    return command, env, f"http://127.0.0.1:{port}/ping", scratch / f"{factory}.log"


def _score_spec(port: int) -> dict[str, Any]:
    return {"port": port, "path": "/v1/score", "headers": {"X-API-Key": SCORE_KEY}}


def iter_chunks(bodies: list[bytes]) -> Iterator[list[bytes]]:
    """Hand out disjoint slices of the prepared attempts, so no run replays another's attempt ids."""
    steady = [int(rate * COMPARE_SECONDS) + 500 for rate in (COMPARE_RATE, *SWEEP_RATES)]
    sizes = (1_000, *steady, SERIAL_ATTEMPTS, int(TARGET_RATE * TARGET_SECONDS) + 1_000, 60_000)
    start = 0
    for size in sizes:
        yield bodies[start : start + size]
        start += size


def _ratios(results: dict[str, dict[str, Any]], ours: str) -> dict[str, Any]:
    """``ours`` (a riskgate configuration or a reference server) against MLflow: the issue's targets, met or
    not."""
    mine, theirs = results[f"{ours}_steady"], results["mlflow_steady"]
    ratios = {
        "p50_speedup": round(theirs["p50_ms"] / mine["p50_ms"], 2),
        "p99_speedup": round(theirs["p99_ms"] / mine["p99_ms"], 2),
        "throughput_ratio": round(
            results[f"{ours}_max"]["throughput_rps"] / results["mlflow_max"]["throughput_rps"], 2
        ),
    }
    ratios["meets_5x_latency_10x_throughput"] = (
        ratios["p50_speedup"] >= 5 and ratios["p99_speedup"] >= 5 and ratios["throughput_ratio"] >= 10
    )
    target = results.get(f"{ours}_300rps_60s")  # riskgate's own target: the reference is not run at it
    if target is not None:
        ratios["meets_300rps_p50_1_5ms_p99_5ms"] = (
            target["p50_ms"] < 1.5
            and target["p99_ms"] < 5
            and not target["errors"]
            and target["throughput_rps"] > 290
        )
    ratios["by_rate"] = {
        f"{rate:.0f}": {
            "p50_speedup": round(
                results[f"mlflow_{stage}"]["p50_ms"] / results[f"{ours}_{stage}"]["p50_ms"], 2
            ),
            "p99_speedup": round(
                results[f"mlflow_{stage}"]["p99_ms"] / results[f"{ours}_{stage}"]["p99_ms"], 2
            ),
        }
        for rate, stage in [(COMPARE_RATE, "steady")] + [(r, f"steady_{r:.0f}") for r in SWEEP_RATES]
    }
    ratios["serial"] = {  # one connection, each request sent when the last is answered
        "p50_speedup": round(results["mlflow_serial"]["p50_ms"] / results[f"{ours}_serial"]["p50_ms"], 2),
        "p99_speedup": round(results["mlflow_serial"]["p99_ms"] / results[f"{ours}_serial"]["p99_ms"], 2),
    }
    runs = [r for name, r in results.items() if name.startswith(f"{ours}_") or name.startswith("mlflow_")]
    ratios["errors"] = sum(sum(r["errors"].values()) for r in runs)
    return ratios
