"""Limits on request heads and idle connections (issue 16, item 6), probed with raw sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest

from registry.bundle import ModelBundle
from tests.serving.api.test_process import server
from tests.serving.factories import seed_cache

pytestmark = pytest.mark.slow

HEAD_SECONDS = 1.0


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, bundles: dict[str, ModelBundle]) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("connections")
    seed_cache(tmp / "state" / "models", bundles)
    limits = {"RISKGATE_REQUEST_HEAD_SECONDS": str(HEAD_SECONDS), "RISKGATE_KEEP_ALIVE_SECONDS": "1"}
    with server(tmp, 1, **limits) as (_, address):
        yield address


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65_536):
            chunks.append(chunk)
    return b"".join(chunks)


def error_of(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


def test_a_16_mb_header_is_refused_431(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(256):  # 16 MB in 64 KB pieces; the server stops reading long before
                sock.sendall(b"a" * 65_536)
        assert error_of(read_all(sock)) == (431, "headers_too_large")


def test_an_ordinary_request_is_answered(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 200")


def test_200_half_sent_request_heads_are_closed_after_the_head_timeout(url: str) -> None:
    sockets = [connect(url) for _ in range(200)]
    started = time.monotonic()
    try:
        for sock in sockets:
            sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-")
        answers = [read_all(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert time.monotonic() - started < HEAD_SECONDS + 8
    assert {error_of(answer) for answer in answers} == {(408, "request_timeout")}


def test_1000_idle_connections_are_closed(url: str) -> None:
    sockets = [connect(url) for _ in range(1000)]
    started = time.monotonic()
    try:
        answers = [read_all(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert time.monotonic() - started < HEAD_SECONDS + 8
    assert {error_of(answer)[0] for answer in answers} == {408}


def test_a_kept_alive_connection_is_closed_when_idle(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = read_all(sock)  # the answer, then the close after the keep-alive timeout
    assert answer.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < 1 + 8
