"""schemathesis against a real ``riskgate serve``: every operation, every check, a fixed seed, bounded.

The run (``st run`` with tests/serving/api/schemathesis.toml and the hooks of :mod:`tests.serving.st_hooks`)
fails
on any 5xx, any answer outside the OpenAPI document (status, content type, body schema, headers), any
schema-valid request refused and any schema-violating request accepted. It takes about two minutes on two
cores; the number of requests it sent is read from the service's own metrics.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from registry.bundle import ModelBundle
from tests.serving.api.test_process import server
from tests.serving.factories import ADMIN_KEY, seed_cache

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
REPOSITORY = Path(__file__).resolve().parents[3]
_REQUESTS = re.compile(r"^riskgate_request_seconds_count\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


def requests_served(url: str) -> int:
    """Requests the service has answered since it started (its ``riskgate_request_seconds`` histogram)."""
    text = httpx.get(f"{url}/metrics", timeout=10.0).text
    return int(sum(float(count) for count in _REQUESTS.findall(text)))


def test_schemathesis_finds_no_server_error_and_no_schema_non_conformance(
    tmp_path: Path, bundles: dict[str, ModelBundle], record_property: Callable[[str, object], None]
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    with server(tmp_path) as (_, url):
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(CONFIG),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"X-API-Key: {ADMIN_KEY}",
                "--no-color",
            ],
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.serving.st_hooks",
                "PYTHONPATH": str(REPOSITORY),
            },
            cwd=tmp_path,  # schemathesis keeps its cache in the working directory
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        served = requests_served(url)
    record_property("schemathesis_requests", served)  # in the JUnit report; about 7,500 per run
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    assert served > 1000, summary
