"""The service as a real process (``riskgate serve``): kill -9 and reload under load, graceful stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench._models import register
from bench._models import synthetic_bundle as make_bundle
from registry.bundle import ModelBundle
from tests.serving.factories import ADMIN, SCORE, attempt, seed_cache

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(tmp: Path, workers: int = 1, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``riskgate serve`` on a free loopback port over ``tmp``'s state, in its own process group (the
    workers with it); the group is killed afterwards if still running."""
    port = free_port()
    environment = {
        **os.environ,
        "RISKGATE_STATE_DIR": str(tmp / "state"),
        "RISKGATE_MLRUNS_DIR": str(tmp / "mlruns"),
        "RISKGATE_MODEL_RELOAD_SECONDS": "0",
        "RISKGATE_LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("riskgate")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, url)
        yield process, url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def wait_until_up(process: subprocess.Popen[bytes], url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"the service exited with {process.returncode}: {errors[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"the service at {url} did not come up in {timeout} s")


class Load:
    """Threads scoring fresh attempts until stopped; keeps every answer received."""

    def __init__(self, url: str, threads: int = 4, start: int = 0) -> None:
        self.url = url
        self.answers: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._next = start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers=SCORE, timeout=10.0) as client:
            while not self._stop.is_set():
                with self._lock:
                    n, self._next = self._next, self._next + 1
                try:
                    response = client.post("/v1/score", json=attempt(n, account_id=f"acc-{n % 50}"))
                except httpx.TransportError as error:
                    self.failures.append(type(error).__name__)
                    continue
                if response.status_code == 200:
                    self.answers.append(response.json())
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")


def test_kill_9_under_load_loses_no_answered_decision(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    with server(tmp_path) as (process, url), Load(url) as load:
        deadline = time.monotonic() + 60
        while len(load.answers) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        process.wait(timeout=10)
    answered = {a["attempt_id"]: a for a in load.answers}
    assert len(answered) >= 100
    with sqlite3.connect(tmp_path / "state" / "decisions.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with server(tmp_path) as (_, url), httpx.Client(base_url=url, headers=SCORE) as client:
        for attempt_id, answer in answered.items():
            logged = client.get(f"/v1/decisions/{attempt_id}")
            assert logged.status_code == 200, attempt_id
            assert logged.json()["decision"] == answer["decision"]
        # the online store is consistent: a replayed attempt is not counted again, new ones score
        n = int(next(iter(answered)).split("-")[1])
        replay = client.post("/v1/score", json=attempt(n, account_id=f"acc-{n % 50}"))
        assert replay.json()["replayed"] is True
        fresh = client.post(
            "/v1/score", json=attempt(900_000, account_id="acc-new"), params={"explain": "true"}
        )
        assert fresh.status_code == 200
        assert fresh.json()["features"]["account_attempts_count_30d"] == 0.0


def test_reload_under_load_drops_no_request_and_never_mixes_versions(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    uri, artifacts = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "mlruns" / "artifacts"
    for bundle in bundles.values():
        register(uri, artifacts, bundle)
    with server(tmp_path) as (_, url), Load(url, threads=3) as load:
        time.sleep(0.5)
        register(uri, artifacts, make_bundle("fraud", seed=11))
        register(uri, artifacts, make_bundle("failure", seed=12))
        reload = httpx.post(f"{url}/v1/admin/reload", headers=ADMIN, timeout=60.0)
        assert reload.status_code == 200
        models = {m["task"]: m["model"] for m in reload.json()["models"]}
        assert [models["fraud"]["version"], models["failure"]["version"]] == ["2", "2"]
        assert models["retry"] is None  # no riskgate-retry@champion in this registry
        time.sleep(0.5)
        after = httpx.post(f"{url}/v1/score", json=attempt(800_000), headers=SCORE).json()
    assert load.failures == []
    pairs = {(a["fraud"]["model"]["version"], a["failure"]["model"]["version"]) for a in load.answers}
    assert pairs == {("1", "1"), ("2", "2")}
    assert (after["fraud"]["model"]["version"], after["failure"]["model"]["version"]) == ("2", "2")


def test_sigterm_drains_the_request_in_flight(tmp_path: Path, bundles: dict[str, ModelBundle]) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    batch = {"attempts": [attempt(n, account_id=f"acc-{n % 50}") for n in range(400)]}
    result: dict[str, Any] = {}
    with server(tmp_path) as (process, url):

        def send() -> None:
            result["response"] = httpx.post(f"{url}/v1/score/batch", json=batch, headers=SCORE, timeout=60.0)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.3)  # the batch is being scored
        process.send_signal(signal.SIGTERM)
        sender.join(timeout=60)
        assert process.wait(timeout=30) == 0  # drained, then a clean exit (issue 16 item 8: not 143)
    assert result["response"].status_code == 200
    assert len(result["response"].json()["results"]) == 400


def test_two_workers_share_the_state_kill_9_of_all_loses_no_answered_decision(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    """``--workers 2``: both processes answer from one online store and one decision log; a repeated
    attempt sent to both at once is decided once; killing every process mid-load loses no answer."""
    seed_cache(tmp_path / "state" / "models", bundles)
    with server(tmp_path, workers=2) as (process, url):
        repeated = attempt(700_000, account_id="acc-repeat")
        with ThreadPoolExecutor(8) as pool:  # separate connections: uvicorn spreads them over the workers
            repeats = list(pool.map(lambda _: _post_alone(url, repeated), range(16)))
        assert len({_core(r) for r in repeats}) == 1
        assert sum(not r["replayed"] for r in repeats) == 1
        with Load(url, threads=6) as load:
            deadline = time.monotonic() + 60
            while len(load.answers) < 150 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGKILL)  # every worker, mid-load
            process.wait(timeout=10)
    answered = {a["attempt_id"]: a for a in load.answers}
    assert len(answered) >= 150
    with server(tmp_path) as (_, url), httpx.Client(base_url=url, headers=SCORE) as client:
        for attempt_id, answer in answered.items():
            logged = client.get(f"/v1/decisions/{attempt_id}")
            assert logged.status_code == 200, attempt_id
            assert logged.json()["decision"] == answer["decision"]
        again = client.post("/v1/score", json=repeated, params={"explain": "true"}).json()
        assert again["replayed"] is True
        fresh = client.post(
            "/v1/score", json=attempt(700_001, account_id="acc-repeat"), params={"explain": "true"}
        ).json()
    assert fresh["features"]["account_attempts_count_30d"] == 1.0  # the repeat counted once


def _post_alone(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request on its own connection."""
    with httpx.Client(base_url=url, headers=SCORE, timeout=30.0) as client:
        response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _core(answer: dict[str, Any]) -> str:
    """An answer without what legitimately differs between a decision and its replays."""
    return json.dumps(
        {k: v for k, v in answer.items() if k not in {"replayed", "scoring_ms"}}, sort_keys=True
    )
