"""A small HTTP/1.1 load generator (asyncio + uvloop, keep-alive connections, pre-rendered requests).

Run as a separate process: ``python -m bench._loadgen SPEC.json`` prints one JSON result. Two modes:

* steady (``rate`` set): request *k* is due at ``start + k / rate``. When its connection is still waiting
  for the server's previous answer at that time, latency is measured from the due time, so a stalled server
  cannot hide its queueing (no coordinated omission); when the connection was free, from the moment the
  request was written: the event loop's timers fire up to a millisecond late (libuv and epoll count in
  whole milliseconds), and that lateness is the generator's, not the server's;
* max throughput (``rate`` null): every connection sends its next request as soon as the last one answered.

Every run is bounded by ``duration`` seconds and by the number of prepared requests. The generator shares the
machine with the server it measures, so it reports its own CPU time too (``client_cpu_*``): what the server
could not use.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvloop


@dataclass
class Run:
    host: str
    port: int
    requests: list[bytes]
    connections: int
    duration: float
    rate: float | None
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    next_index: int = 0

    def take(self) -> int | None:
        if self.next_index >= len(self.requests):
            return None
        index, self.next_index = self.next_index, self.next_index + 1
        return index

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length is None:  # a chunked body would be read as the next response's head
        raise ValueError(f"a response without Content-Length (only sized bodies are read): {head!r}")
    if length:
        await reader.readexactly(length)
    return status


async def _connection(run: Run, start: float, stop: float) -> None:
    reader, writer = await asyncio.open_connection(run.host, run.port)
    free_at = time.perf_counter()  # when this connection last had no request in flight
    try:
        while True:
            index = run.take()
            if index is None:
                return
            due = start + index / run.rate if run.rate else time.perf_counter()
            if due >= stop:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            writer.write(run.requests[index])
            status = await _read_response(reader)
            began = due if free_at > due else sent
            free_at = time.perf_counter()
            run.latencies.append(free_at - began)
            if status != 200:
                run.error(str(status))
    except (ConnectionError, asyncio.IncompleteReadError) as error:
        run.error(type(error).__name__)
    finally:
        writer.close()


async def _drive(run: Run) -> float:
    start = time.perf_counter()
    stop = start + run.duration
    await asyncio.gather(*(_connection(run, start, stop) for _ in range(run.connections)))
    return time.perf_counter() - start


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summarise(run: Run, elapsed: float, cpu: float | None = None) -> dict[str, Any]:
    latencies = np.array(run.latencies) * 1000.0
    pct = (lambda q: round(float(np.percentile(latencies, q)), 3)) if len(latencies) else (lambda q: None)
    return {
        "mode": "steady" if run.rate else "max_throughput",
        "target_rate": run.rate,
        "connections": run.connections,
        "seconds": round(elapsed, 2),
        "requests": len(run.latencies),
        "errors": dict(run.errors),
        "throughput_rps": round(len(run.latencies) / elapsed, 1),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(float(latencies.max()), 3) if len(latencies) else None,
        **({} if cpu is None else _client_cpu(cpu, elapsed, len(latencies))),
    }


def _client_cpu(cpu: float, elapsed: float, requests: int) -> dict[str, float | None]:
    """The generator's own CPU: per request, and as a share of one core over the run."""
    return {
        "client_cpu_ms_per_request": round(cpu * 1000.0 / requests, 3) if requests else None,
        "client_cpu_cores": round(cpu / elapsed, 3),
    }


def render(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 keep-alive POST, ready to write."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    bodies = Path(spec["bodies"]).read_bytes().splitlines()
    requests = [render(spec["host"], spec["path"], spec.get("headers", {}), body) for body in bodies]
    run = Run(spec["host"], spec["port"], requests, spec["connections"], spec["duration"], spec.get("rate"))
    cpu = _cpu_seconds()
    elapsed = uvloop.run(_drive(run))
    cpu = _cpu_seconds() - cpu
    sys.stdout.write(json.dumps(summarise(run, elapsed, cpu)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
