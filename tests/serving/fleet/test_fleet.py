"""A fleet as a provider runs it: two ``riskgate serve`` processes over one PostgreSQL (``riskgate db
upgrade`` first) and one Redis, each with a state directory and port of its own, behind HAProxy running
the shipped config (deploy/haproxy/riskgate.cfg).

The tests share one fleet (starting an instance takes tens of seconds on a loaded machine); the kill -9
scenario runs once, after the others (pytest runs a file's tests in order), and two tests read its outcome.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from registry.bundle import ModelBundle
from tests.servers import HAPROXY_CONFIG, PostgresServer, Proxy, enter_together, haproxy, haproxy_binary
from tests.serving.api.test_notices import RELOADS, eventually
from tests.serving.api.test_process import Load, _core, server
from tests.serving.factories import ADMIN, SCORE, attempt, seed_cache

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Fleet:
    proxy: Proxy
    instances: dict[str, tuple[subprocess.Popen[bytes], str]]  # HAProxy's server name: process, URL


@dataclass(frozen=True)
class Killed:
    """The outcome of killing instance ``a`` with -9 under load through the proxy."""

    fleet: Fleet
    load: Load
    answered_before_kill: int
    status_after: dict[str, str]  # HAProxy's view of each instance once the kill was seen
    stats_after: dict[str, dict[str, str]]  # and its counters (show stat) by instance


def _migrate(environment: dict[str, str]) -> None:
    """Apply the schema as a provider does before starting the instances: ``riskgate db upgrade``."""
    command = [str(Path(sys.executable).with_name("riskgate")), "db", "upgrade"]
    done = subprocess.run(
        command, env={**os.environ, **environment}, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    redis_url: str,
    bundles: dict[str, ModelBundle],
) -> Iterator[Fleet]:
    """A new database (``riskgate db upgrade``), Redis emptied, both instances started side by side, then
    HAProxy, once it sees both ready."""
    tmp = tmp_path_factory.mktemp("fleet")
    shared = {
        "RISKGATE_DATABASE_URL": postgres_server.create_database("fleet"),
        "RISKGATE_ONLINE_STORE": redis_url,
    }
    _migrate(shared)
    redis.Redis.from_url(redis_url).flushdb()
    with ExitStack() as stack:
        for name in ("a", "b"):
            seed_cache(tmp / name / "state" / "models", bundles)  # each instance's local model copy
        managers = {name: server(tmp / name, workers=1, **shared) for name in ("a", "b")}
        instances = enter_together(stack, managers)
        proxy = stack.enter_context(
            haproxy([url.removeprefix("http://") for _, url in instances.values()], tmp)
        )
        assert eventually(lambda: _statuses(proxy) == {"a": "UP", "b": "UP"}, within=30), _statuses(proxy)
        yield Fleet(proxy, instances)


def _statuses(proxy: Proxy) -> dict[str, str]:
    return {name: row["status"].split()[0] for name, row in proxy.servers().items()}


def _answered(proxy: Proxy) -> dict[str, int]:
    """2xx answers each instance gave through the proxy so far."""
    return {name: int(row["hrsp_2xx"]) for name, row in proxy.servers().items()}


def _reloads(url: str) -> float:
    return sum(float(n) for _, n in RELOADS.findall(httpx.get(f"{url}/metrics", timeout=10).text))


def test_the_proxy_spreads_requests_over_both_instances(fleet: Fleet) -> None:
    before = _answered(fleet.proxy)
    with httpx.Client(base_url=fleet.proxy.url, headers=SCORE, timeout=10) as client:
        answers = [client.post("/v1/score", json=attempt(n, account_id=f"acc-{n % 9}")) for n in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert {a.json()["attempt_id"] for a in answers} == {f"att-{n:06d}" for n in range(20)}
    spread = {name: count - before[name] for name, count in _answered(fleet.proxy).items()}
    assert spread == {"a": 10, "b": 10}  # round robin


def test_a_reload_asked_through_the_proxy_reaches_both_instances(fleet: Fleet) -> None:
    urls = {name: url for name, (_, url) in fleet.instances.items()}
    before = {name: _reloads(url) for name, url in urls.items()}
    reload = httpx.post(f"{fleet.proxy.url}/v1/admin/reload", headers=ADMIN, timeout=60)
    assert reload.status_code == 200, reload.text
    expected = {name: n + 1 for name, n in before.items()}
    assert eventually(lambda: {name: _reloads(url) for name, url in urls.items()} == expected)


def test_one_attempt_sent_to_both_instances_at_once_is_decided_once(fleet: Fleet) -> None:
    urls = [url for _, url in fleet.instances.values()]
    for n in range(300_000, 300_005):
        body = attempt(n, account_id=f"acc-twice-{n}")
        both = threading.Barrier(len(urls))

        def send(url: str, body: dict[str, Any] = body, both: threading.Barrier = both) -> dict[str, Any]:
            with httpx.Client(base_url=url, headers=SCORE, timeout=30) as client:
                both.wait()
                response = client.post("/v1/score", json=body)
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        with ThreadPoolExecutor(len(urls)) as pool:
            answers = list(pool.map(send, urls))
        assert len({_core(a) for a in answers}) == 1, answers
        assert sorted(a["replayed"] for a in answers) == [False, True]
        after = httpx.post(
            f"{urls[0]}/v1/score",
            json=attempt(n + 50, account_id=f"acc-twice-{n}"),  # 50 minutes later: inside 30 days
            params={"explain": "true"},
            headers=SCORE,
            timeout=30,
        ).json()
        assert after["features"]["account_attempts_count_30d"] == 1.0  # counted once


@pytest.fixture(scope="module")
def killed(fleet: Fleet) -> Killed:
    """kill -9 of instance ``a`` while two client threads score through the proxy without pause."""
    process, _ = fleet.instances["a"]
    with Load(fleet.proxy.url, threads=2, start=100_000) as load:
        deadline = time.monotonic() + 60
        while len(load.answers) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        answered_before_kill = len(load.answers)
        process.send_signal(signal.SIGKILL)  # mid-load: requests are in flight to it
        process.wait(timeout=10)
        eventually(lambda: _statuses(fleet.proxy)["a"] == "DOWN", within=10)
        time.sleep(1.0)  # and the survivor goes on answering alone
    return Killed(fleet, load, answered_before_kill, _statuses(fleet.proxy), fleet.proxy.servers())


def test_kill_9_of_one_instance_under_load_fails_no_request(killed: Killed) -> None:
    """Requests in flight to the dead instance are sent again to the other. The exception: an answer the
    instance had begun to write. uvicorn writes an answer's head and its body separately, and a kill between
    the two (a process descheduled there, on a loaded machine) leaves HAProxy a head it has passed on: it
    cannot send the request again (it counts a server abort, ``srv_abrt``) and the caller sees the answer
    cut (``RemoteProtocolError``); HAProxy logs it ``SD--``, status 200, the head's bytes only (1 kill in 12
    with 8 client threads). There are at most as many as the requests in flight (two threads)."""
    dead = killed.stats_after["a"]
    cut = int(dead["srv_abrt"])
    assert killed.load.failures == ["RemoteProtocolError"] * cut, (killed.load.failures, dead)
    assert cut <= 2
    assert killed.answered_before_kill >= 100
    assert len(killed.load.answers) > killed.answered_before_kill  # the other kept answering
    assert killed.status_after == {"a": "DOWN", "b": "UP"}
    _, survivor = killed.fleet.instances["b"]
    assert httpx.get(f"{survivor}/readyz", timeout=10).status_code == 200


def test_every_answered_decision_is_in_the_shared_log_after_the_kill(killed: Killed) -> None:
    answered = {answer["attempt_id"]: answer for answer in killed.load.answers}
    missing = []
    with httpx.Client(base_url=killed.fleet.proxy.url, headers=SCORE, timeout=10) as client:
        for attempt_id, answer in answered.items():
            logged = client.get(f"/v1/decisions/{attempt_id}")
            if logged.status_code != 200 or logged.json()["decision"] != answer["decision"]:
                missing.append(attempt_id)
    assert missing == [], f"{len(missing)} of {len(answered)} answered decisions not found through the proxy"


def test_the_shipped_config_is_valid() -> None:
    """``haproxy -c`` accepts deploy/haproxy/riskgate.cfg with its defaults (no environment given)."""
    environment = {k: v for k, v in os.environ.items() if not re.match(r"RISKGATE_(PROXY|INSTANCE)_", k)}
    done = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(HAPROXY_CONFIG)],
        env=environment,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
