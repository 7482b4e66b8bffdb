"""The outbox of events riskgate sends out (signed webhooks): what it holds and what serving needs of it.

An event is appended by :meth:`Outbox.emit` (one durable write, on the caller's thread; nothing is delivered
there) with a unique id (receivers de-duplicate by it) and its creation time. The deliverer
(:mod:`serving.api.webhooks`) later fans each event out into one delivery per configured endpoint that wants
its type (:meth:`Outbox.fan_out`), claims due deliveries (:meth:`Outbox.claim`), posts them, and settles each
(:meth:`Outbox.settle`): delivered, tried again later, or failed. A claim is a lease: a delivery whose
deliverer died is claimed again once the lease ends (at least once).

The SQLite outbox (:class:`serving.store.sqlite_outbox.SQLiteOutbox`, ``STATE_DIR/outbox.sqlite``) implements
:class:`Outbox`, and so does the PostgreSQL one (:class:`serving.store.postgres.outbox.PostgresOutbox`, shared
by a fleet of instances each running a deliverer). Both keep the same events (:func:`new_event`) and
deliveries (:func:`settled_state`, :func:`delivery_of`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

import orjson


class EventType(StrEnum):
    """The events riskgate sends (their payloads are documented in docs/webhooks.md)."""

    REVIEW_OPENED = "review.opened"
    REVIEW_RESOLVED = "review.resolved"
    DECISION_BLOCKED = "decision.blocked"
    RECOVERY_CUSTOMER_ACTION = "recovery.customer_action"


@dataclass(frozen=True)
class EventSpec:
    """One event type: what it means and the keys of its payload (``data``), documented and tested."""

    type: EventType
    description: str
    payload: tuple[str, ...]


#: Every event type and its payload keys. Ids of people appear only as the decision log's pseudonyms.
EVENTS: Final[Mapping[EventType, EventSpec]] = {
    spec.type: spec
    for spec in (
        EventSpec(
            EventType.REVIEW_OPENED,
            "A `review` decision opened a case in the review queue.",
            (
                "case_id",
                "attempt_id",
                "account",
                "rule",
                "fraud_probability",
                "fraud_level",
                "amount",
                "currency",
                "opened_at",
            ),
        ),
        EventSpec(
            EventType.REVIEW_RESOLVED,
            "An analyst resolved a review case.",
            ("case_id", "attempt_id", "account", "outcome", "resolved_at"),
        ),
        EventSpec(
            EventType.DECISION_BLOCKED,
            "riskgate answered `block` for an attempt (first decision only, never a replay).",
            (
                "attempt_id",
                "occurred_at",
                "account",
                "payment_method",
                "kind",
                "rule",
                "decided_by",
                "reasons",
                "fallback",
                "fraud_probability",
                "fraud_level",
                "amount",
                "currency",
            ),
        ),
        EventSpec(
            EventType.RECOVERY_CUSTOMER_ACTION,
            "A recovery plan has a step that needs the customer (for example a new card).",
            ("attempt_id", "invoice_id", "account", "action", "at", "reason"),
        ),
    )
}


class DeliveryState(StrEnum):
    PENDING = "pending"  # due at ``next_try`` (or being tried)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up after the maximum age (retry it through the admin API)


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one try: where to send which body (the exact bytes that are signed)."""

    delivery_id: int
    event_id: str
    event_type: str
    endpoint: str
    body: bytes
    created_at: datetime
    attempts: int  # tries before this one


@dataclass(frozen=True)
class Delivery:
    """A delivery's status, as an admin sees it."""

    delivery_id: int
    event_id: str
    event_type: str
    endpoint: str
    state: DeliveryState
    attempts: int
    last_status: int | None  # the endpoint's last HTTP status (None: not tried, or no answer)
    last_error: str | None  # why the last try failed without an HTTP status (timeout, refused)
    next_try: datetime | None  # when a pending delivery is due
    created_at: datetime  # the event's creation time
    settled_at: datetime | None  # when it was delivered or given up


def new_event(event_type: EventType, payload: Mapping[str, Any]) -> tuple[str, datetime, bytes]:
    """A new event's unique id, creation time (now) and body: the JSON ``{"id", "type", "created_at",
    "data"}`` sent, and signed, exactly as stored."""
    event_id = f"evt_{uuid.uuid4().hex}"
    created = datetime.now(UTC)
    body = orjson.dumps(
        {"id": event_id, "type": event_type.value, "created_at": created.isoformat(), "data": payload}
    )
    return event_id, created, body


def settled_state(status: int | None, next_try: datetime | None) -> DeliveryState:
    """A try's result (see :meth:`Outbox.settle`): a 2xx ``status`` delivers; otherwise due again at
    ``next_try``, or failed without one."""
    if status is not None and 200 <= status < 300:
        return DeliveryState.DELIVERED
    return DeliveryState.PENDING if next_try is not None else DeliveryState.FAILED


def delivery_of(row: Sequence[Any], time: Callable[[Any], datetime | None]) -> Delivery:
    """A delivery from its row: id, event id, type, endpoint, state, attempts, last status, last error, next
    try, creation time and settling time, the backend's times read by ``time``."""
    created = time(row[9])
    if created is None:  # pragma: no cover - NOT NULL in the schemas
        raise RuntimeError("an outbox event has no creation time")
    return Delivery(
        delivery_id=int(row[0]),
        event_id=str(row[1]),
        event_type=str(row[2]),
        endpoint=str(row[3]),
        state=DeliveryState(row[4]),
        attempts=int(row[5]),
        last_status=row[6],
        last_error=row[7],
        next_try=time(row[8]) if row[4] == DeliveryState.PENDING else None,
        created_at=created,
        settled_at=time(row[10]),
    )


class Outbox(Protocol):
    """Durable events and their deliveries; safe to share between threads."""

    def emit(self, event_type: EventType, payload: Mapping[str, Any], key: str | None = None) -> str:
        """Append an event; returns its id. ``key``: an event with the same type and key was emitted before
        (e.g. the same attempt blocked twice after a restart) is not appended again (its id is returned)."""
        ...

    def fan_out(self, endpoints_for: Callable[[str], Sequence[str]], now: datetime) -> int:
        """Give every event not yet fanned out one delivery per endpoint of ``endpoints_for(type)``, due
        ``now``; returns how many deliveries were made."""
        ...

    def claim(self, now: datetime, limit: int, lease_s: float) -> list[Claimed]:
        """Up to ``limit`` pending deliveries due at ``now`` (oldest first), claimed for ``lease_s`` s."""
        ...

    def settle(
        self,
        delivery_id: int,
        now: datetime,
        *,
        status: int | None,
        error: str | None = None,
        next_try: datetime | None = None,
    ) -> None:
        """Record a try: a 2xx ``status`` delivers it; otherwise it is due again at ``next_try`` or, with
        None, failed."""
        ...

    def deliveries(self, limit: int, before: int | None = None) -> list[Delivery]:
        """Deliveries newest first, at most ``limit``, with ids below ``before`` (a page's cursor)."""
        ...

    def retry(self, delivery_id: int, now: datetime) -> Delivery | None:
        """Make a delivery pending and due ``now`` (its attempts are kept); None if there is no such one."""
        ...

    def close(self) -> None: ...
