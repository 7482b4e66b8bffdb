"""The load generator reads each response whole, and refuses one it cannot delimit."""

from __future__ import annotations

import asyncio

import pytest

from bench._loadgen import _read_response


def _read(raw: bytes) -> tuple[int, bytes]:
    async def run() -> tuple[int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        status = await _read_response(reader)
        return status, await reader.read()

    return asyncio.run(run())


def test_a_sized_response_is_read_to_its_end() -> None:
    first = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    second = b"HTTP/1.1 422 Unprocessable Content\r\nContent-Length: 0\r\n\r\n"
    assert _read(first + second) == (200, second)


def test_a_response_without_a_length_is_refused_rather_than_misread() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    with pytest.raises(ValueError, match="without Content-Length"):
        _read(chunked)
