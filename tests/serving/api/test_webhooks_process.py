"""The outbox is durable: an event kept by a ``riskgate serve`` killed before delivering it is delivered
by the next one."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import orjson
import pytest

from registry.bundle import ModelBundle
from serving.api.webhooks import SIGNATURE_HEADER, verify
from tests.serving.api.receiver import receiving
from tests.serving.api.test_process import server
from tests.serving.factories import ADMIN, SCORE, attempt, seed_cache

pytestmark = pytest.mark.slow
SECRET = "whsec-process-secret"  # the receiver's


def test_an_event_kept_before_a_kill_9_is_delivered_after_the_restart(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    with receiving() as receiver:
        hooks = json.dumps([{"url": receiver.url, "secret": SECRET, "events": ["decision.blocked"]}])
        env = {"RISKGATE_WEBHOOKS": hooks, "RISKGATE_FRAUD_HIGHEST_THRESHOLD": "0"}
        with server(tmp_path, 1, RISKGATE_WEBHOOK_POLL_SECONDS="3600", **env) as (process, url):
            answer = httpx.post(f"{url}/v1/score", json=attempt(1), headers=SCORE, timeout=30).json()
            assert answer["decision"]["action"] == "block"
            process.send_signal(signal.SIGKILL)  # before the deliverer's first round
            process.wait(timeout=10)
        assert receiver.received == []
        with server(tmp_path, 1, RISKGATE_WEBHOOK_POLL_SECONDS="0.05", **env) as (_, url):
            (got,) = receiver.wait_for(1)
            assert verify(got.headers[SIGNATURE_HEADER], got.body, SECRET)
            event = orjson.loads(got.body)
            assert (event["type"], event["data"]["attempt_id"]) == ("decision.blocked", "att-000001")
            page = httpx.get(f"{url}/v1/admin/webhooks/deliveries", headers=ADMIN, timeout=30).json()
            assert [d["event_id"] for d in page["deliveries"]] == [event["id"]]
