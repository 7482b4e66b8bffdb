"""Benchmark of the HTTP layer of ``POST /v1/score``: the fast path (:mod:`serving.api.fastpath`) against the
FastAPI route, in one process, side by side.

Two apps are built from the same models over state directories of their own, one with the fast path and one
without (``create_app(fast_path=False)``), and driven alternately with the ASGI messages uvicorn would send
(no sockets, no load generator: CPU time per request, robust on a machine shared with other jobs, where
latencies over loopback are not):

* ``http_layer``: the engine's answer is fixed (``ScoringEngine.score`` replaced by a function returning a
  logged answer), so the CPU per request is the HTTP layer alone: ASGI app, routing or the fast path, API key,
  body validation (``parse_body``), answer rendering, metrics;
* ``full_decision``: the whole decision for a fresh attempt each time (features, both models, reasons,
  policy, decision log).

Each holds the median over rounds of each app's CPU microseconds per request and the median of the per-round
ratios (FastAPI route over fast path). The models are synthetic, of production size (fraud: 500 trees of 63
leaves; failure: 300 of 63), registered in a scratch MLflow store.

With ``RISKGATE_BENCH_BASELINE=/path/to/an/older/checkout`` (e.g. ``git worktree add /tmp/old house``) the run
also measures that checkout's two apps and this one's, each in a worker process of its own (same models, same
virtualenv, the same measuring code: :mod:`bench._fastpath_rounds`), in alternating rounds:
``before_after`` holds each app's CPU microseconds per request before and after (medians) and their ratio,
for the HTTP layer and the full decision, measured side by side under the same machine load.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import uvloop
from fastapi import FastAPI

from bench._fastpath_rounds import APPS, cpu_round, fix_the_answer, fresh_attempts, same_attempt, started
from bench._models import register_production_size

logger = logging.getLogger(__name__)

HTTP_ROUNDS, HTTP_REQUESTS = 9, 3_000
FULL_ROUNDS, FULL_REQUESTS = 9, 400
BASELINE_ENV = "RISKGATE_BENCH_BASELINE"
#: the current checkout (put on a worker's ``PYTHONPATH`` to measure it)
HERE = Path(__file__).resolve().parent.parent
#: a worker: loads :mod:`bench._fastpath_rounds` by path (its checkout's packages come from ``PYTHONPATH``)
_WORKER = (
    "import importlib.util, sys; spec = importlib.util.spec_from_file_location('rounds', sys.argv[1]); "
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
    "module.serve_commands(*sys.argv[2:])"
)


def run(scratch: Path) -> dict[str, Any]:
    mlruns = scratch / "mlruns"
    register_production_size(mlruns)
    with (
        started(scratch, mlruns, "fast_path", True) as fast,
        started(scratch, mlruns, "route", False) as route,
    ):
        apps = {"fast_path": fast, "fastapi_route": route}
        full = _compare(apps, FULL_ROUNDS, FULL_REQUESTS, fresh_attempts())
        for app in apps.values():
            fix_the_answer(app)
        http_layer = _compare(apps, HTTP_ROUNDS, HTTP_REQUESTS, same_attempt())
    result: dict[str, Any] = {"http_layer": http_layer, "full_decision": full}
    baseline = os.environ.get(BASELINE_ENV)
    if baseline:
        result["before_after"] = _before_after(scratch, mlruns, Path(baseline))
    return result


def _compare(
    apps: dict[str, FastAPI], rounds: int, requests: int, bodies: Callable[[], bytes]
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for k in range(rounds):
        for name in order if k % 2 == 0 else order[::-1]:
            samples[name].append(uvloop.run(cpu_round(apps[name], requests, bodies)))
    ratios = [r / f for r, f in zip(samples["fastapi_route"], samples["fast_path"], strict=True)]
    result = {
        "rounds": rounds,
        "requests_per_round": requests,
        "cpu_us_per_request": {name: round(statistics.median(values), 1) for name, values in samples.items()},
        "route_over_fast_path": round(statistics.median(ratios), 2),
        "samples": {name: [round(v, 1) for v in values] for name, values in samples.items()},
    }
    logger.info("%s", result)
    return result


def _before_after(scratch: Path, mlruns: Path, baseline: Path) -> dict[str, Any]:
    """CPU microseconds per request of the ``baseline`` checkout's apps and of this one's, each in a worker
    process, in alternating rounds (full decisions first, then the HTTP layer): medians and ratios."""
    result: dict[str, Any] = {"baseline_source": str(baseline.resolve())}
    with ExitStack() as stack:
        workers = {
            "before": stack.enter_context(_worker(scratch / "before", mlruns, baseline)),
            "after": stack.enter_context(_worker(scratch / "after", mlruns, HERE)),
        }
        for kind, rounds, requests in (
            ("full", FULL_ROUNDS, FULL_REQUESTS),
            ("http", HTTP_ROUNDS, HTTP_REQUESTS),
        ):
            if kind == "http":
                for worker in workers.values():
                    _ask(worker, "fix")
            samples: dict[str, dict[str, list[float]]] = {app: {"before": [], "after": []} for app in APPS}
            order = list(workers)
            for k in range(rounds):
                for which in order if k % 2 == 0 else order[::-1]:
                    for app in APPS:
                        samples[app][which].append(float(_ask(workers[which], f"{kind} {app} {requests}")))
            result["full_decision" if kind == "full" else "http_layer"] = {
                app: _medians(values) | {"samples": values} for app, values in samples.items()
            }
    result["rounds"] = {"full_decision": FULL_ROUNDS, "http_layer": HTTP_ROUNDS}
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    logger.info("before/after: %s", result)
    return result


def _medians(values: dict[str, list[float]]) -> dict[str, Any]:
    before, after = (statistics.median(values[which]) for which in ("before", "after"))
    return {
        "before_cpu_us_per_request": round(before, 1),
        "after_cpu_us_per_request": round(after, 1),
        "after_over_before": round(after / before, 3),
    }


@contextmanager
def _worker(state: Path, mlruns: Path, source: Path) -> Iterator[subprocess.Popen[str]]:
    """A worker process measuring ``source``'s apps over ``state`` (see :func:`_ask`)."""
    state.mkdir(parents=True, exist_ok=True)
    rounds = Path(__file__).with_name("_fastpath_rounds.py")
    env = {**os.environ, "PYTHONPATH": str(source.resolve()), "RISKGATE_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-c", _WORKER, str(rounds), str(state), str(mlruns)]
    with subprocess.Popen(
        command, cwd=state, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            if _read(process) != "ready":
                raise RuntimeError(f"the benchmark worker for {source} did not start: see its output above")
            yield process
        finally:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=60)


def _ask(worker: subprocess.Popen[str], command: str) -> str:
    if worker.stdin is None:  # pragma: no cover - started with a pipe
        raise RuntimeError("the benchmark worker has no stdin")
    worker.stdin.write(command + "\n")
    worker.stdin.flush()
    return _read(worker)


def _read(worker: subprocess.Popen[str]) -> str:
    if worker.stdout is None:  # pragma: no cover - started with a pipe
        raise RuntimeError("the benchmark worker has no stdout")
    return worker.stdout.readline().strip()
