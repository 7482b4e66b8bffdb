"""Limits on what a client may hold open without sending a request: the server's own guard against slow-loris.

uvicorn (httptools) accepts request heads of any size and waits for them indefinitely: a 16 MB header was
answered, and connections that send half a request head, or nothing at all, stayed open for ever. Without a
proxy in front, :class:`LimitedHttpProtocol` (``riskgate serve`` uses it) bounds them:

* a request head (request line and headers) longer than ``max_header_bytes`` is answered 431 and the
  connection closed (as soon as that many bytes of an unfinished head have arrived: httptools would buffer
  a long header whole);
* a request head not complete ``request_head_seconds`` after the connection opened, or after its first byte
  on a kept-alive connection, is answered 408 and the connection closed (a connection that sends nothing
  counts as a slow head);
* a kept-alive connection idle for ``keep_alive_seconds`` after an answer is closed (uvicorn's own timer).

The answers are in the service's error shape (``{"error", "message"}``), written before closing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.errors import RiskgateError
from core.settings import Settings

logger = logging.getLogger(__name__)

_REASONS: Final = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class HeadTooLargeError(RiskgateError):
    """Raised inside the HTTP parser when a request head passes ``max_header_bytes`` (stops the parser); its
    status and code are those of the 431 answer :meth:`LimitedHttpProtocol.send_400_response` writes."""

    http_status = 431
    code = "headers_too_large"


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits of :class:`LimitedHttpProtocol` (from the settings: see :meth:`of`)."""

    max_header_bytes: int
    request_head_seconds: float
    keep_alive_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.max_header_bytes, settings.request_head_seconds, settings.keep_alive_seconds)


def use_limits(settings: Settings) -> None:
    """Give every connection this process accepts from now on the limits of ``settings`` (the entry point
    calls this once per server process, before serving)."""
    LimitedHttpProtocol.limits = ConnectionLimits.of(settings)


def error_bytes(status: int, error: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer in the service's error shape that closes the connection."""
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, _REASONS[status], len(body))
    )
    return head + body


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the request head's size and on the time it takes.

    uvicorn builds one per connection from the class alone: the limits are the class's, set by the entry
    point of each server process (:func:`use_limits`) before it serves; until then the settings' defaults.
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits.of(Settings.model_construct())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._received_in_head = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.cycle is not None and self.cycle.response_complete:
            self._start_head_timer()  # the first byte of the next request on a kept-alive connection
        in_head = self._head_timer is not None
        super().data_received(data)
        if in_head and self._head_timer is not None and not self.transport.is_closing():
            self._received_in_head += len(data)  # a head still incomplete: bounded by the bytes it took
            if self._received_in_head > self.limits.max_header_bytes:
                self._head_too_large = True
                self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; the error raised by :meth:`_count` is answered 431 instead."""
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        limit = self.limits.max_header_bytes
        message = f"the request line and headers are longer than {limit} bytes"
        self._refuse(HeadTooLargeError.http_status, HeadTooLargeError.code, message)

    def _count(self, size: int) -> None:
        """Count head bytes; past the limit, stop the parser (uvicorn answers its error with
        :meth:`send_400_response`)."""
        self._head_bytes += size
        if self._head_bytes > self.limits.max_header_bytes:
            self._head_too_large = True
            raise HeadTooLargeError(self.limits.max_header_bytes)

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_bytes = self._received_in_head = 0
        self._head_timer = self.loop.call_later(self.limits.request_head_seconds, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(
                408,
                "request_timeout",
                f"the request head did not arrive within {self.limits.request_head_seconds:g} s",
            )

    def _refuse(self, status: int, error: str, message: str) -> None:
        logger.debug("closing a connection: %s", error)
        self._stop_head_timer()
        self.transport.write(error_bytes(status, error, message))
        self.transport.close()
