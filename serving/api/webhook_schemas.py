"""The documented answers of the webhook admin routes (:mod:`serving.api.routes.webhooks`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from serving.store.outbox import Delivery, DeliveryState


class DeliveryOut(BaseModel):
    """One event's delivery to one endpoint."""

    id: int = Field(description="The delivery's id (retry it with POST .../deliveries/{id}/retry).")
    event_id: str = Field(description="The event's id: receivers de-duplicate by it.")
    event_type: str
    endpoint: str = Field(description="The endpoint's URL (its secret is never shown).")
    state: DeliveryState
    attempts: int = Field(description="Tries so far.")
    last_status: int | None = Field(description="The endpoint's last HTTP status (null: none yet).")
    last_error: str | None = Field(description="Why the last try got no HTTP answer (timeout, refused).")
    next_try: datetime | None = Field(description="When a pending delivery is tried next.")
    created_at: datetime = Field(description="When the event was emitted.")
    settled_at: datetime | None = Field(description="When it was delivered or marked failed.")

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        d = delivery
        return cls(
            id=d.delivery_id,
            event_id=d.event_id,
            event_type=d.event_type,
            endpoint=d.endpoint,
            state=d.state,
            attempts=d.attempts,
            last_status=d.last_status,
            last_error=d.last_error,
            next_try=d.next_try,
            created_at=d.created_at,
            settled_at=d.settled_at,
        )


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )
