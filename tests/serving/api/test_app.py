"""The application factory's process-level options."""

from __future__ import annotations

import gc
from pathlib import Path

from serving.api.app import create_app
from tests.serving.documented import DocumentedClient
from tests.serving.factories import SCORE, attempt, service_for


def test_the_start_up_heap_is_frozen_while_serving_and_released_at_shutdown(tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    with DocumentedClient(create_app(service=service_for(tmp_path), freeze_heap=True)) as client:
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # modules, models, the app: everything alive once started
        assert client.post("/v1/score", json=attempt(1), headers=SCORE).status_code == 200
        assert gc.get_freeze_count() <= frozen  # nothing a request makes is frozen (start-up garbage may go)
    assert gc.get_freeze_count() == 0


def test_by_default_the_heap_is_left_alone(tmp_path: Path) -> None:
    with DocumentedClient(create_app(service=service_for(tmp_path))):
        assert gc.get_freeze_count() == 0
