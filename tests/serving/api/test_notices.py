"""Change notices between instances sharing PostgreSQL: a reload asked of one reaches the others at once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.store.postgres.notices import RELOAD, Listener, notify_url
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, seed_cache, service_for

RELOADS = re.compile(r'^riskgate_model_reloads_total\{result="(\w+)"\} ([0-9.e+]+)$', re.M)


def reloads(client: DocumentedClient) -> float:
    """How many model checks this instance made (swapped or not)."""
    return sum(float(n) for _, n in RELOADS.findall(client.get("/metrics").text))


def eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def fleet(
    tmp_path: Path, bundles: dict[str, ModelBundle], postgres_url: str
) -> Iterator[list[DocumentedClient]]:
    """Two instances (state directories of their own) over one PostgreSQL, periodic model checks off."""
    with ExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            home = tmp_path / name
            seed_cache(home / "state" / "models", bundles)
            service = service_for(home, database_url=postgres_url, model_reload_seconds=0)
            clients.append(stack.enter_context(DocumentedClient(create_app(service=service))))
        for client in clients:
            listener = client.app.state.service.listener  # type: ignore[attr-defined]
            assert listener is not None
            assert listener.connected.wait(10)
        yield clients


def test_a_reload_asked_of_one_instance_reloads_the_other_once(fleet: list[DocumentedClient]) -> None:
    asked, other = fleet
    before_asked, before_other = reloads(asked), reloads(other)
    response = asked.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert eventually(lambda: reloads(other) == before_other + 1)
    time.sleep(0.3)  # its own notice does not make the asked instance reload a second time
    assert reloads(asked) == before_asked + 1
    assert reloads(other) == before_other + 1


def test_a_notice_from_a_command_reaches_every_instance(
    fleet: list[DocumentedClient], postgres_url: str
) -> None:
    before = [reloads(client) for client in fleet]
    notify_url(postgres_url, RELOAD, "riskgate promote")
    assert eventually(lambda: [reloads(client) for client in fleet] == [n + 1 for n in before])


def test_a_dropped_connection_is_remade_and_what_was_missed_is_read(
    fleet: list[DocumentedClient], postgres_url: str
) -> None:
    _, other = fleet
    listener: Listener = other.app.state.service.listener  # type: ignore[attr-defined]
    before = reloads(other)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        listening = "SELECT pid FROM pg_stat_activity WHERE application_name = 'riskgate-notices'"
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM ({listening}) AS l")
    assert eventually(lambda: reloads(other) >= before + 1)  # the catch-up check on reconnection
    assert listener.connected.wait(10)
    caught_up = reloads(other)
    notify_url(postgres_url, RELOAD, "after the drop")
    assert eventually(lambda: reloads(other) == caught_up + 1)
