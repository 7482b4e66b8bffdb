"""POST /v1/score through a real ``riskgate serve`` (uvicorn, httptools): the fast path's answers over a real
socket, chunked bodies, headers, metrics, ``--root-path``, the start-up heap frozen."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from core.settings import ApiKey
from registry.bundle import ModelBundle
from serving.api.security import hash_key
from tests.serving.api.test_process import free_port, wait_until_up
from tests.serving.factories import SCORE, SCORE_KEY, attempt, seed_cache

pytestmark = pytest.mark.slow

LIMIT = 4_096
KEYS = [
    ApiKey(name="billing", sha256=hash_key(SCORE_KEY), scopes=frozenset({"score"})),
    ApiKey(name="ops", sha256=hash_key("admin-only"), scopes=frozenset({"admin"})),
]


@contextmanager
def serve(tmp: Path, *options: str) -> Iterator[tuple[httpx.Client, Path]]:
    """``riskgate serve`` (one process, INFO logs to a file) over ``tmp``'s state; a client on its port."""
    port, log = free_port(), tmp / "serve.log"
    environment = {
        **os.environ,
        "RISKGATE_STATE_DIR": str(tmp / "state"),
        "RISKGATE_MLRUNS_DIR": str(tmp / "mlruns"),
        "RISKGATE_MODEL_RELOAD_SECONDS": "0",
        "RISKGATE_LOG_LEVEL": "INFO",
        "RISKGATE_MAX_BODY_BYTES": str(LIMIT),
        "RISKGATE_API_KEYS": json.dumps([key.model_dump(mode="json") for key in KEYS]),
    }
    command = [str(Path(sys.executable).with_name("riskgate")), "serve", "--host", "127.0.0.1"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port), *options],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, url)
        with httpx.Client(base_url=url, timeout=10.0) as client:
            yield client, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _post(
    client: httpx.Client,
    body: bytes | Iterator[bytes],
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {"content-type": "application/json", **SCORE, **(headers or {})}
    return client.post("/v1/score", content=body, headers=headers, params=params)


def test_a_real_server_answers_every_status_on_the_fast_path(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    body = json.dumps(attempt(1)).encode()
    with serve(tmp_path) as (client, log):
        ok = _post(client, body)
        assert ok.status_code == 200, ok.text
        assert ok.headers["content-type"] == "application/json"
        assert int(ok.headers["content-length"]) == len(ok.content)
        assert "server" not in ok.headers
        assert ok.json()["decision"]["fallback"] is False
        assert _post(client, body, params={"explain": "on"}).json()["replayed"] is True
        conflict = _post(client, json.dumps(attempt(1, amount=99.0)).encode())
        assert conflict.status_code == 409
        assert conflict.json()["error"] == "conflict"
        assert _post(client, body, headers={"X-API-Key": "nope"}).json() == {
            "error": "unauthenticated", "message": "invalid API key"
        }  # fmt: skip
        assert _post(client, body, headers={"X-API-Key": "admin-only"}).status_code == 403
        query = _post(client, json.dumps(attempt(2)).encode(), params={"explain": "maybe"})
        assert query.status_code == 422
        assert query.json()["details"][0]["loc"] == ["query", "explain"]
        card = _post(client, json.dumps(attempt(3, device_id="4111 1111 1111 1111")).encode())
        assert card.status_code == 422
        assert "4111" not in card.text
        too_large = {"error": "payload_too_large", "message": f"request body larger than {LIMIT} bytes"}
        assert _post(client, b"x" * (LIMIT + 1)).json() == too_large
        chunks = iter([b"x" * 1_000] * 5)  # no Content-Length: refused as the bytes arrive
        streamed = _post(client, chunks)
        assert (streamed.status_code, streamed.json()) == (413, too_large)
        fresh = _post(client, json.dumps(attempt(4)).encode(), params={"explain": "true"})
        assert fresh.status_code == 200
        assert len(fresh.json()["features"]) > 10
        assert client.get("/v1/score", headers=SCORE).status_code == 405
        metrics = client.get("/metrics").text
        for status in (200, 401, 403, 409, 413, 422):
            assert (
                f'riskgate_request_seconds_count{{method="POST",route="/v1/score",status="{status}"}}'
                in metrics
            )
        assert 'riskgate_errors_total{kind="conflict"} 1.0' in metrics
    assert "start-up heap frozen" in log.read_text()


def test_a_real_server_behind_a_proxy_prefix(tmp_path: Path, bundles: dict[str, ModelBundle]) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    with serve(tmp_path, "--root-path", "/risk") as (client, _):
        answer = _post(client, json.dumps(attempt(1)).encode())  # the proxy stripped /risk
        assert answer.status_code == 200, answer.text
        assert client.get("/openapi.json").json()["servers"] == [{"url": "/risk"}]
        metrics = client.get("/metrics").text
        assert 'riskgate_request_seconds_count{method="POST",route="/v1/score",status="200"} 1.0' in metrics
