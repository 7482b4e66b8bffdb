"""Signed webhooks: the signature (verifiable as Stripe's are) and the deliverer posting the outbox's events.

**Signature.** Each POST carries ``Riskgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` where the
HMAC is over ``"<t>.<raw body>"`` with the endpoint's secret; :func:`verify` is what a receiver runs (it is
self-contained: copy it). The event's id is in the body and in ``Riskgate-Event-Id`` (receivers de-duplicate
by it: delivery is at least once).

**Delivery.** :class:`Deliverer` runs in a background thread of the service (started and stopped with it):
every ``poll_s`` it fans new events out to the endpoints that want their type, claims the due deliveries
(a lease: another process sharing the outbox, or this one after a crash, takes over when it ends) and posts
them with a short timeout. A 2xx answer delivers; anything else (another status, a timeout, a refused
connection) is tried again after an exponential backoff with jitter (:func:`backoff`), until the event is
older than ``max_age_s``: then it is marked failed (an admin can retry it). The scoring path never waits for
any of this: it only appends to the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx

from core.settings import Settings, WebhookEndpoint
from serving.errors import ConfigurationError
from serving.store.outbox import Claimed, EventType, Outbox

logger = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "Riskgate-Signature"
EVENT_ID_HEADER: Final = "Riskgate-Event-Id"
#: the longest wait between two tries of a delivery, whatever the backoff has grown to
MAX_BACKOFF_S: Final = 3600.0
#: how many deliveries one round claims (posted one after the other)
BATCH: Final = 20


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Riskgate-Signature`` header value of ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(header: str, body: bytes, secret: str, tolerance: float = 300.0) -> bool:
    """Whether ``header`` (``Riskgate-Signature``) signs the raw ``body`` with ``secret``, at most
    ``tolerance`` seconds ago (an older one may be a replay). Self-contained: receivers copy it."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff(attempts: int, base_s: float, jitter: float) -> float:
    """Seconds to wait after the ``attempts``-th failed try: ``base_s`` doubled per try before it, at most
    :data:`MAX_BACKOFF_S`, times a ``jitter`` in [0, 1) mapped to [0.5, 1) (tries spread out)."""
    exponent = min(max(attempts - 1, 0), 32)
    return min(base_s * 2.0**exponent, MAX_BACKOFF_S) * (0.5 + jitter / 2)


def check_endpoints(endpoints: Sequence[WebhookEndpoint]) -> None:
    """Refuse (at start-up) an endpoint listed twice or wanting an event type riskgate does not send."""
    known = {event.value for event in EventType}
    seen: set[str] = set()
    for number, endpoint in enumerate(endpoints, start=1):
        unknown = sorted(endpoint.events - known)
        if unknown:
            raise ConfigurationError(
                f"RISKGATE_WEBHOOKS, endpoint {number}: unknown event types {unknown}; use {sorted(known)}"
            )
        if endpoint.url in seen:
            raise ConfigurationError(f"RISKGATE_WEBHOOKS, endpoint {number}: its URL is listed twice")
        seen.add(endpoint.url)


class Deliverer:
    """Posts the outbox's deliveries to their endpoints from a background thread (see the module docs)."""

    def __init__(
        self,
        outbox: Outbox,
        endpoints: Sequence[WebhookEndpoint],
        *,
        timeout_s: float,
        backoff_s: float,
        max_age_s: float,
        poll_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        check_endpoints(endpoints)
        self.outbox = outbox
        self.endpoints = {endpoint.url: endpoint for endpoint in endpoints}
        self.backoff_s = backoff_s
        self.max_age = timedelta(seconds=max_age_s)
        self.poll_s = poll_s
        self.lease_s = BATCH * (timeout_s + 1.0)  # a round of posts ends before its claims do
        self.clock = clock
        self._random = random.Random()
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, outbox: Outbox, settings: Settings) -> Deliverer:
        return cls(
            outbox,
            settings.webhooks,
            timeout_s=settings.webhook_timeout_seconds,
            backoff_s=settings.webhook_backoff_seconds,
            max_age_s=settings.webhook_max_age_seconds,
            poll_s=settings.webhook_poll_seconds,
        )

    def endpoints_for(self, event_type: str) -> list[str]:
        return [url for url, endpoint in self.endpoints.items() if event_type in endpoint.events]

    def run_once(self) -> int:
        """One round: fan out new events, claim due deliveries, post them; returns how many were tried."""
        self.outbox.fan_out(self.endpoints_for, self.clock())
        claimed = self.outbox.claim(self.clock(), BATCH, self.lease_s)
        for delivery in claimed:
            self._deliver(delivery)
        return len(claimed)

    def _deliver(self, delivery: Claimed) -> None:
        endpoint = self.endpoints.get(delivery.endpoint)
        status: int | None = None
        error: str | None = None
        if endpoint is None:
            error = "the endpoint is no longer configured"
        else:
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(delivery.body, endpoint.secret.get_secret_value(), stamp),
                EVENT_ID_HEADER: delivery.event_id,
            }
            try:
                status = self._client.post(endpoint.url, content=delivery.body, headers=headers).status_code
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: no answer"
        now = self.clock()
        if status is not None and 200 <= status < 300:
            self.outbox.settle(delivery.delivery_id, now, status=status)
            return
        attempts = delivery.attempts + 1
        due = now + timedelta(seconds=backoff(attempts, self.backoff_s, self._random.random()))
        last = due if endpoint is not None and due - delivery.created_at <= self.max_age else None
        self.outbox.settle(delivery.delivery_id, now, status=status, error=error, next_try=last)
        logger.warning(
            "webhook %s (%s) to %s: try %d failed (%s); %s",
            delivery.event_id,
            delivery.event_type,
            delivery.endpoint,
            attempts,
            status if status is not None else error,
            "marked failed" if last is None else f"next try at {last.isoformat()}",
        )

    def start(self) -> Deliverer:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                while self.run_once() and not self._stop.is_set():
                    pass  # a full round: more may be due at once
            except Exception:  # the outbox keeps everything: the next round tries again
                logger.exception("webhook delivery round failed; retrying")

    def stop(self) -> None:
        """Stop the thread (a delivery in flight finishes or times out first); undelivered events stay."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=30.0)
        self._client.close()
